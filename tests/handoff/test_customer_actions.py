"""The customer card and account actions of the operator API: the card's fields for accounts in
each state, the session and CSRF checks, previews that change nothing, actions done once per
operation id and logged under the operator's login, refusals, bad requests and a billing that
does not answer. The real application and the embedded ledger; only the network is local."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.billing.base import Billing, BillingUnavailable, Operation
from bot.catalog.models import Account, Transaction
from bot.handoff.operators import Operator
from bot.services import Services
from tests.conftest import Say, identity
from tests.handoff.test_handoff_api import PASSWORD, OperatorClient

ACTIVE = "750012345678"  # Чита, 880.50 on the balance
BLOCKED = "750045678924"  # Чита, -450.00, blocked
SUSPENDED = "380300667788"  # Братск, on a pause
UNKNOWN = "999999999999"


class Console(OperatorClient):
    """An operator's browser (login and cookie jar as in the handoff API tests), with the
    customer-card calls and any status code returned rather than asserted."""

    async def get(self, path: str) -> tuple[int, Any]:
        async with self._session.get(self._client.make_url(path)) as resp:
            return resp.status, await resp.json()

    async def post(
        self, path: str, body: Any = None, *, csrf: bool = True, raw: str | None = None
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        if raw is not None:
            headers["Content-Type"] = "application/json"
            request = self._session.post(self._client.make_url(path), data=raw, headers=headers)
        else:
            request = self._session.post(
                self._client.make_url(path), json=body or {}, headers=headers
            )
        async with request as resp:
            return resp.status, await resp.json()

    async def card(self, contract: str) -> dict[str, Any]:
        status, body = await self.get(customer(contract))
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def act(self, contract: str, kind: str, body: Any = None) -> tuple[int, Any]:
        return await self.post(customer(contract, kind), body)


def customer(contract: str, kind: str | None = None) -> str:
    path = f"/api/v1/operator/customers/{quote(contract, safe='')}"
    return f"{path}/actions/{kind}" if kind else path


@pytest.fixture
async def anna(client: TestClient, services: Services) -> AsyncIterator[Console]:
    await services.operators.add(
        Operator("anna", "Анна", departments=("general", "billing", "technical", "sales")),
        PASSWORD,
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        console = Console(client, session)
        await console.login("anna")
        yield console


async def account(services: Services, contract: str) -> Account:
    found = await services.billing.account(contract)
    assert found is not None
    return found


# --- the card -------------------------------------------------------------------------------


async def test_card_of_an_active_account(anna: Console, services: Services) -> None:
    card = await anna.card(ACTIVE)
    acc = await account(services, ACTIVE)
    assert card["contract"] == ACTIVE
    assert card["holder"] == acc.holder_name
    assert card["city_id"] == "chita"
    assert card["status"] == "active"
    assert card["balance_rub"] == "880.50"  # amounts are strings, two decimals
    assert card["bonus_points"] == acc.bonus_points
    assert card["tariff_id"] == acc.tariff_id
    tariff = services.catalog.tariffs[acc.tariff_id]
    assert card["tariff"]["name"] == tariff.name
    assert card["tariff"]["price"] == f"{tariff.price_rub:.2f}"
    assert card["pending_tariff"] is None
    assert card["promised_payment"] is None
    assert card["suspension"] is None
    assert card["services"] == list(acc.services)
    assert card["autopay"] == acc.autopay
    assert card["notifications"] == {t: list(c) for t, c in acc.notifications.items()}
    # Contacts masked: recognisable, not readable.
    assert card["phone"] == "+7 914 ***-**-01"
    assert card["email"] == "i***@example.ru"
    assert acc.phone not in str(card)
    assert acc.email not in str(card)
    assert Decimal(card["monthly_total_rub"]) >= tariff.price_rub
    assert card["operations"] == []
    offered = [t["tariff_id"] for t in card["available"]["tariffs"]]
    assert acc.tariff_id not in offered  # the current tariff is not a choice
    assert offered
    assert all(services.catalog.tariffs[t].city_id == "chita" for t in offered)
    assert "set_contact" not in card["available"]["kinds"]


async def test_card_of_a_blocked_and_a_suspended_account(anna: Console) -> None:
    blocked = await anna.card(BLOCKED)
    assert blocked["status"] == "blocked"
    assert blocked["balance_rub"] == "-450.00"
    assert Decimal(blocked["to_unblock_rub"]) > 0  # what it takes to get service back
    paused = await anna.card(SUSPENDED)
    assert paused["status"] == "suspended"
    assert paused["to_unblock_rub"] is None


async def test_unknown_contract_is_404(anna: Console) -> None:
    assert (await anna.get(customer(UNKNOWN)))[0] == 404
    assert (await anna.act(UNKNOWN, "promised_payment", {"dry_run": True}))[0] == 404
    assert (await anna.act(UNKNOWN, "promised_payment"))[0] == 404


# --- who may ----------------------------------------------------------------------------------


async def test_without_a_session_nothing_is_shown_or_done(
    client: TestClient, services: Services
) -> None:
    assert (await client.get(customer(BLOCKED))).status == 401
    resp = await client.post(customer(BLOCKED, "promised_payment"), json={})
    assert resp.status == 401
    assert (await account(services, BLOCKED)).status == "blocked"


async def test_an_action_without_the_csrf_token_is_refused(
    anna: Console, services: Services
) -> None:
    status, body = await anna.post(customer(BLOCKED, "promised_payment"), {}, csrf=False)
    assert status == 403
    assert "CSRF" in body["error"]
    assert (await account(services, BLOCKED)).status == "blocked"
    assert (await anna.card(BLOCKED))["operations"] == []


# --- previews and actions ---------------------------------------------------------------------


async def test_a_dry_run_shows_the_terms_and_changes_nothing(
    anna: Console, services: Services
) -> None:
    before = await anna.card(BLOCKED)
    status, body = await anna.act(BLOCKED, "promised_payment", {"dry_run": True})
    assert status == 200, body
    assert body["proposal"]["kind"] == "promised_payment"
    terms = body["proposal"]["terms"]
    assert Decimal(terms["amount"]) >= Decimal(before["to_unblock_rub"])
    assert terms["unblocks"] is True
    assert isinstance(body["op_id"], str)
    assert len(body["op_id"]) >= 8
    after = await anna.card(BLOCKED)
    assert after == before  # no money, no status, no log entry
    assert await services.account_actions.oplog.get(body["op_id"]) is None


async def test_promised_payment_from_the_console_is_done_once_and_logged(
    anna: Console, services: Services
) -> None:
    _, preview = await anna.act(BLOCKED, "promised_payment", {"dry_run": True})
    op_id = preview["op_id"]
    amount = Decimal(preview["proposal"]["terms"]["amount"])

    status, body = await anna.act(BLOCKED, "promised_payment", {"op_id": op_id})
    assert status == 200, body
    assert body["repeat"] is False
    assert body["done"]["amount"] == preview["proposal"]["terms"]["amount"]
    card = body["card"]
    assert card["status"] == "active"
    assert Decimal(card["balance_rub"]) == Decimal("-450.00") + amount
    assert card["promised_payment"]["amount_rub"] == f"{amount:.2f}"
    assert card["promised_payment"]["until"] == preview["proposal"]["terms"]["until"]
    [entry] = card["operations"]
    assert entry["kind"] == "promised_payment"
    assert entry["by"] == "anna"
    assert entry["status"] == "done"
    assert entry["details"]["terms"]["amount"] == f"{amount:.2f}"
    assert card == await anna.card(BLOCKED)  # the answer's card is the card

    # The same operation id again (a double click, a retry): not done twice.
    status, again = await anna.act(BLOCKED, "promised_payment", {"op_id": op_id})
    assert status == 200, again
    assert again["repeat"] is True
    assert again["card"]["balance_rub"] == card["balance_rub"]
    assert len(again["card"]["operations"]) == 1
    assert (await account(services, BLOCKED)).balance_rub == Decimal("-450.00") + amount


async def test_the_conversation_view_has_the_same_card(
    anna: Console, say: Say, services: Services
) -> None:
    await say("site-7", "позовите оператора", identity=identity(BLOCKED))
    await anna.act(BLOCKED, "promised_payment", {"conversation_id": "rest:site-7:site-7"})
    status, detail = await anna.get(
        f"/api/v1/operator/conversations/{quote('rest:site-7:site-7', safe='')}"
    )
    assert status == 200, detail
    card = await anna.card(BLOCKED)
    assert detail["card"] == card
    assert detail["card"]["operations"][0]["by"] == "anna"
    [record] = await services.account_actions.oplog.for_contract(BLOCKED)
    assert record.conversation_id == "rest:site-7:site-7"


async def test_a_refusal_is_409_with_the_reason(anna: Console) -> None:
    for body in ({"dry_run": True}, {}):
        status, answer = await anna.act(ACTIVE, "promised_payment", body)
        assert status == 409, answer
        assert answer["refusal"]["reason"] == "promised_not_needed"
        assert answer["refusal"]["terms"]["balance"] == "880.50"
    assert (await anna.card(ACTIVE))["operations"] == []


async def test_tariff_change_is_planned_and_cancelled(anna: Console) -> None:
    # The demo rules switch tariffs at the next charge: the change waits on the card until then.
    card = await anna.card(ACTIVE)
    target = card["available"]["tariffs"][0]
    status, body = await anna.act(ACTIVE, "change_tariff", {"tariff_id": target["tariff_id"]})
    assert status == 200, body
    assert body["card"]["tariff_id"] == card["tariff_id"]
    pending = body["card"]["pending_tariff"]
    assert pending["tariff_id"] == target["tariff_id"]
    assert pending["name"] == target["name"]
    assert pending["effective"] == body["done"]["effective"]
    status, body = await anna.act(ACTIVE, "cancel_tariff_change")
    assert status == 200, body
    assert body["card"]["pending_tariff"] is None
    kinds = [(o["kind"], o["by"]) for o in body["card"]["operations"]]
    assert kinds == [("cancel_tariff_change", "anna"), ("change_tariff", "anna")]  # newest first


async def test_a_pause_with_dates_then_a_refusal_for_a_second_one(anna: Console) -> None:
    card = await anna.card(ACTIVE)
    tomorrow = (await anna.act(ACTIVE, "suspend", {"dry_run": True, "days": 7}))[1]
    start = tomorrow["proposal"]["terms"]["from"]
    end = tomorrow["proposal"]["terms"]["to"]
    status, body = await anna.act(ACTIVE, "suspend", {"from": start, "to": end})
    assert status == 200, body
    assert body["card"]["suspension"] == {"from": start, "to": end}
    assert body["card"]["status"] == card["status"]  # booked from tomorrow, active today
    status, refused = await anna.act(ACTIVE, "suspend", {"from": start, "to": end})
    assert status == 409
    assert refused["refusal"]["reason"] == "suspend_already"


# --- bad requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "says"),
    [
        ("fly_to_the_moon", {}, "unknown action"),
        ("set_contact", {"field": "phone", "value": "+79990000000"}, "one-time code"),
        ("change_tariff", {"dry_run": True}, "tariff_id"),
        ("suspend", {"from": "15 декабря", "to": "2026-12-20"}, "ISO dates"),
        ("promised_payment", {"op_id": "x"}, "op_id"),
        ("promised_payment", {"dry_run": "yes"}, "dry_run"),
        ("promised_payment", [1, 2], "JSON object"),
    ],
)
async def test_bad_requests_are_400(
    anna: Console, services: Services, kind: str, body: Any, says: str
) -> None:
    status, answer = await anna.post(customer(BLOCKED, kind), body)
    assert status == 400, answer
    assert says in answer["error"]
    assert (await account(services, BLOCKED)).status == "blocked"


async def test_a_body_that_is_not_json_is_400(anna: Console) -> None:
    status, answer = await anna.post(customer(BLOCKED, "promised_payment"), raw="{not json")
    assert status == 400
    assert "JSON" in answer["error"]


# --- the billing does not answer --------------------------------------------------------------


class UnansweredBilling(Billing):
    """Reads go through; every change times out, as a billing behind a broken network does."""

    def __init__(self, inner: Billing) -> None:
        self.inner = inner

    async def account(self, contract_number: str) -> Account | None:
        return await self.inner.account(contract_number)

    async def transactions(self, contract_number: str, *, limit: int = 10) -> list[Transaction]:
        return await self.inner.transactions(contract_number, limit=limit)

    async def find_by_phone(self, phone: str) -> list[Account]:
        return await self.inner.find_by_phone(phone)

    async def apply(self, contract_number: str, operation: Operation) -> Account:
        raise BillingUnavailable("timed out")


async def test_billing_down_is_503_and_the_same_id_is_safe_to_retry(
    anna: Console, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    actions = services.account_actions
    _, preview = await anna.act(BLOCKED, "promised_payment", {"dry_run": True})
    op_id = preview["op_id"]
    monkeypatch.setattr(actions, "billing", UnansweredBilling(actions.billing))
    status, body = await anna.act(BLOCKED, "promised_payment", {"op_id": op_id})
    assert status == 503
    assert "billing" in body["error"]
    card = await anna.card(BLOCKED)
    assert card["status"] == "blocked"
    assert [(o["status"], o["by"]) for o in card["operations"]] == [("failed", "anna")]

    monkeypatch.undo()  # the billing is back: the same id goes through, once
    status, body = await anna.act(BLOCKED, "promised_payment", {"op_id": op_id})
    assert status == 200, body
    assert body["card"]["status"] == "active"
    assert [o["status"] for o in body["card"]["operations"]] == ["done"]
