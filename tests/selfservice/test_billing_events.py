"""The billing tells the gateway about a payment: booked once, the customer told in their own
conversation, forged or unsigned events refused and nothing changed."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import Settings
from bot.selfservice.billing_events import sign
from bot.services import Services
from tests.conftest import IDENTITY_SECRET, Say, identity

SECRET = "test-billing-webhook-secret"
BLOCKED = "750045678924"  # -450 ₽


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return replace(
        Settings(),
        var_dir=tmp_path / "var",
        identity_secret=IDENTITY_SECRET,
        billing_webhook_secret=SECRET,
    )


async def post_event(
    client: TestClient, event: dict[str, Any], *, secret: str = SECRET
) -> tuple[int, dict[str, Any]]:
    body = json.dumps(event).encode()
    resp = await client.post(
        "/api/v1/billing/events",
        data=body,
        headers={"Content-Type": "application/json", "X-Billing-Signature": sign(secret, body)},
    )
    return resp.status, await resp.json()


async def transcript(client: TestClient, conversation_id: str) -> str:
    resp = await client.get(f"/api/v1/conversations/{conversation_id}/messages")
    assert resp.status == 200
    return "\n".join(m["text"] for m in (await resp.json())["messages"])


async def test_payment_unblocks_and_the_customer_is_told(
    client: TestClient, say: Say, services: Services
) -> None:
    chat = await say("ev-1", "какой у меня баланс", identity=identity(BLOCKED))
    event = {"id": "pay-001", "contract": BLOCKED, "kind": "payment", "amount_rub": "500.00"}
    status, answer = await post_event(client, event)
    assert status == 200
    assert answer["status"] == "active"
    assert answer["notified"] is True
    account = await services.billing.account(BLOCKED)
    assert account is not None
    assert account.status == "active"
    assert account.balance_rub == Decimal("50.00")
    text = await transcript(client, chat["conversation_id"])
    assert "Платёж 500 ₽ зачислен" in text
    assert "Услуги снова работают" in text
    # The same event again: nothing booked twice, nobody told twice.
    status, again = await post_event(client, event)
    assert status == 200
    assert again["duplicate"] is True
    account = await services.billing.account(BLOCKED)
    assert account is not None
    assert account.balance_rub == Decimal("50.00")
    assert (await transcript(client, chat["conversation_id"])).count("зачислен") == 1
    log = await services.oplog.for_contract(BLOCKED)
    assert [(r.kind, r.by, r.status) for r in log] == [("billing_payment", "billing", "done")]


async def test_forged_event_is_refused_and_changes_nothing(
    client: TestClient, services: Services
) -> None:
    before = await services.billing.account(BLOCKED)
    event = {"id": "pay-002", "contract": BLOCKED, "kind": "payment", "amount_rub": "5000"}
    status, _ = await post_event(client, event, secret="guessed")
    assert status == 403
    resp = await client.post("/api/v1/billing/events", json=event)  # no signature at all
    assert resp.status == 403
    assert await services.billing.account(BLOCKED) == before
    assert await services.oplog.for_contract(BLOCKED) == []


@pytest.mark.parametrize(
    "event",
    [
        {"id": "x", "contract": BLOCKED, "kind": "refund", "amount_rub": "1"},
        {"id": "x", "contract": BLOCKED, "kind": "payment", "amount_rub": "-5"},
        {"id": "x", "contract": "abc", "kind": "payment", "amount_rub": "5"},
        {"contract": BLOCKED, "kind": "payment", "amount_rub": "5"},
        ["not", "an", "object"],
    ],
)
async def test_malformed_events_are_refused(
    client: TestClient, services: Services, event: Any
) -> None:
    before = await services.billing.account(BLOCKED)
    body = json.dumps(event).encode()
    resp = await client.post(
        "/api/v1/billing/events", data=body, headers={"X-Billing-Signature": sign(SECRET, body)}
    )
    assert resp.status == 400
    assert await services.billing.account(BLOCKED) == before


async def test_customer_who_turned_messenger_notices_off_is_not_told(
    client: TestClient, say: Say, services: Services
) -> None:
    chat = await say("ev-3", "баланс", identity=identity(BLOCKED))
    await services.account_actions.carry_out(
        BLOCKED, "set_notifications", {"notifications": {"balance": ["sms"]}},
        op_id="prefs-1", by="bot",
    )  # fmt: skip
    event = {"id": "pay-003", "contract": BLOCKED, "kind": "payment", "amount_rub": "100"}
    status, answer = await post_event(client, event)
    assert status == 200
    assert answer["notified"] is False
    assert "зачислен" not in await transcript(client, chat["conversation_id"])


async def test_without_a_secret_billing_events_are_off(
    aiohttp_client: Any, tmp_path: Path, services: Services
) -> None:
    open_settings = replace(Settings(), var_dir=tmp_path / "other")
    client = await aiohttp_client(create_app(open_settings, services=services))
    event = {"id": "pay-004", "contract": BLOCKED, "kind": "payment", "amount_rub": "100"}
    body = json.dumps(event).encode()
    resp = await client.post(
        "/api/v1/billing/events", data=body, headers={"X-Billing-Signature": sign("", body)}
    )
    assert resp.status == 403
    assert "BILLING_WEBHOOK_SECRET" in (await resp.json())["error"]


async def test_an_event_id_reused_for_another_contract_is_refused(
    client: TestClient, services: Services
) -> None:
    first = {"id": "pay-005", "contract": BLOCKED, "kind": "payment", "amount_rub": "10"}
    assert (await post_event(client, first))[0] == 200
    other = "750012345678"
    before = await services.billing.account(other)
    status, _ = await post_event(client, {**first, "contract": other})
    assert status == 409
    assert await services.billing.account(other) == before
