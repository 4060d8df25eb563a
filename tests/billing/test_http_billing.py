"""HttpBilling against a fake bridge on 127.0.0.1 that runs the real embedded ledger: what the
bot would read and change through a provider's bridge, and how it behaves when the bridge or
the network misbehaves."""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.billing.base import OPERATION_KINDS, BillingRefused, BillingUnavailable, Operation
from bot.billing.http import MAX_ATTEMPTS, HttpBilling, http_billing_from_settings
from bot.catalog.models import Account
from bot.config import ConfigError, Settings
from tests.fakes.billing import (
    BLOCKED_WITH_MONEY,
    PREFIX,
    TOKEN,
    FakeBilling,
    make_test_catalog,
    running_fake_billing,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # midday in Chita, after the seeded history
TODAY = date(2026, 11, 29)

IVANOV = "750012345678"  # Chita, active, 880.50 ₽, +79140000001
SOKOLOV = "750045678924"  # Chita, blocked, -450.00 ₽
LEBEDEV = "750067890146"  # Chita, suspended
IVANOV_PHONE = "+79140000001"


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeBilling]:
    catalog = make_test_catalog(tmp_path / "catalog")
    async with running_fake_billing(data_dir=catalog, clock=lambda: NOW) as server:
        yield server


@pytest.fixture
async def billing(fake: FakeBilling) -> AsyncIterator[HttpBilling]:
    client = HttpBilling(fake.url, fake.token, timeout=2.0)
    yield client
    await client.close()


def op(kind: Any, op_id: str = "op-1", **params: Any) -> Operation:
    return Operation(id=op_id, kind=kind, params=params, by="bot")


# --- reading ---------------------------------------------------------------------------------
async def test_account_is_read_with_the_token(billing: HttpBilling, fake: FakeBilling) -> None:
    account = await billing.account(IVANOV)

    assert account is not None
    assert account.holder_name == "Иванов Иван Иванович"
    assert account.balance_rub == Decimal("880.50")
    assert account.status == "active"
    assert account.tariff_id == "chita-inet-500"
    assert fake.requests[-1].authorization == f"Bearer {TOKEN}"


async def test_unknown_contract_reads_as_none(billing: HttpBilling) -> None:
    assert await billing.account("000000000000") is None
    assert await billing.transactions("000000000000") == []
    with pytest.raises(BillingRefused) as refused:
        await billing.apply("000000000000", op("autopay", enabled=True))
    assert refused.value.code == "unknown_contract"


async def test_contract_number_cannot_change_the_endpoint(
    billing: HttpBilling, fake: FakeBilling
) -> None:
    assert await billing.account("12/../transactions") is None
    assert fake.requests[-1].path == f"{PREFIX}/accounts/12%2F..%2Ftransactions"
    assert await billing.account("..") is None  # no contract looks like this: not even asked
    assert len(fake.requests) == 1


async def test_find_by_phone(billing: HttpBilling, fake: FakeBilling) -> None:
    found = await billing.find_by_phone(IVANOV_PHONE)

    assert [a.contract_number for a in found] == [IVANOV]
    assert fake.requests[-1].query == {"phone": IVANOV_PHONE}  # the "+" survived the URL
    assert await billing.find_by_phone("+79990000000") == []


async def test_transactions_newest_first_and_limited(
    billing: HttpBilling, fake: FakeBilling
) -> None:
    latest = await billing.transactions(IVANOV, limit=3)

    assert fake.requests[-1].query == {"limit": "3"}
    assert len(latest) == 3
    assert [t.at for t in latest] == sorted((t.at for t in latest), reverse=True)
    assert latest == await fake.ledger.transactions(IVANOV, limit=3)
    everything = await billing.transactions(IVANOV, limit=100)
    assert latest == everything[:3]
    assert len(everything) > 3


# --- operations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    contract: str
    operation: Operation
    effect: Callable[[Account], bool]


CASES = {
    "promised_payment": Case(
        SOKOLOV,
        op("promised_payment", amount_rub=Decimal(500), until=TODAY + timedelta(days=3)),
        lambda a: (
            a.balance_rub == Decimal("50.00")
            and a.status == "active"
            and a.promised_payment is not None
            and a.promised_payment.until == TODAY + timedelta(days=3)
        ),
    ),
    "suspend": Case(
        IVANOV,
        op("suspend", start=TODAY.isoformat(), end=(TODAY + timedelta(days=14)).isoformat()),
        lambda a: (
            a.status == "suspended"
            and a.suspension is not None
            and a.suspension.end == TODAY + timedelta(days=14)
        ),
    ),
    "resume": Case(LEBEDEV, op("resume"), lambda a: a.status == "active"),
    "change_tariff": Case(
        IVANOV,
        op("change_tariff", tariff_id="chita-inet-100", effective=TODAY.isoformat()),
        lambda a: a.tariff_id == "chita-inet-100" and a.pending_tariff is None,
    ),
    "change_tariff_later": Case(
        IVANOV,
        op("change_tariff", tariff_id="chita-inet-100", effective="2026-12-01"),
        lambda a: (
            a.tariff_id == "chita-inet-500"
            and a.pending_tariff is not None
            and a.pending_tariff.tariff_id == "chita-inet-100"
        ),
    ),
    "service_on": Case(
        IVANOV,
        op("service_on", service_id="chita-antivirus", charge_rub="99.00"),
        lambda a: "chita-antivirus" in a.services and a.balance_rub == Decimal("781.50"),
    ),
    "autopay": Case(IVANOV, op("autopay", enabled=True), lambda a: a.autopay),
    "set_contact": Case(
        IVANOV,
        op("set_contact", field="email", value="new@example.ru"),
        lambda a: a.email == "new@example.ru",
    ),
    "set_notifications": Case(
        IVANOV,
        op("set_notifications", notifications={"balance": ["email"], "outages": []}),
        lambda a: a.notifications == {"balance": ("email",), "outages": (), "offers": ()},
    ),
    "unblock": Case(BLOCKED_WITH_MONEY, op("unblock"), lambda a: a.status == "active"),
    "payment": Case(
        SOKOLOV,
        op("payment", amount_rub="500.00"),
        lambda a: (
            a.balance_rub == Decimal("50.00")
            and a.status == "active"
            and a.last_payment_date == TODAY
        ),
    ),
}


@pytest.mark.parametrize("name", CASES)
async def test_operation_takes_effect(name: str, billing: HttpBilling) -> None:
    case = CASES[name]

    answered = await billing.apply(case.contract, case.operation)

    assert case.effect(answered)
    reread = await billing.account(case.contract)
    assert reread == answered  # what the customer sees on their next question


async def test_tariff_change_can_be_cancelled(billing: HttpBilling) -> None:
    await billing.apply(IVANOV, op("change_tariff", "a", tariff_id="chita-inet-100",
                                   effective="2026-12-01"))  # fmt: skip
    account = await billing.apply(IVANOV, op("cancel_tariff_change", "b"))
    assert account.pending_tariff is None
    assert account.tariff_id == "chita-inet-500"


async def test_service_off_removes_it(billing: HttpBilling) -> None:
    await billing.apply(IVANOV, op("service_on", "a", service_id="chita-static-ip"))
    account = await billing.apply(IVANOV, op("service_off", "b", service_id="chita-static-ip"))
    assert "chita-static-ip" not in account.services


async def test_payment_appears_in_history(billing: HttpBilling) -> None:
    await billing.apply(IVANOV, op("payment", amount_rub="500"))
    newest = (await billing.transactions(IVANOV, limit=1))[0]
    assert newest.amount_rub == Decimal(500)


async def test_repeated_id_is_applied_once(billing: HttpBilling, fake: FakeBilling) -> None:
    first = await billing.apply(IVANOV, op("payment", "pay-1", amount_rub="500"))
    again = await billing.apply(IVANOV, op("payment", "pay-1", amount_rub="500"))

    assert first.balance_rub == again.balance_rub == Decimal("1380.50")
    assert fake.applied == ["pay-1"]
    payments = [t for t in await billing.transactions(IVANOV, limit=100) if t.amount_rub == 500]
    assert len(payments) == 1


async def test_lost_answer_is_retried_with_the_same_key_and_applied_once(
    billing: HttpBilling, fake: FakeBilling, caplog: pytest.LogCaptureFixture
) -> None:
    fake.drop_after_apply()
    caplog.set_level(logging.WARNING, logger="bot.billing.http")

    account = await billing.apply(IVANOV, op("payment", "pay-7", amount_rub="500"))

    assert account.balance_rub == Decimal("1380.50")
    keys = [r.idempotency_key for r in fake.operations()]
    assert keys == ["pay-7", "pay-7"]
    assert fake.applied == ["pay-7"]
    assert "retrying" in caplog.text
    assert IVANOV not in caplog.text


async def test_refusal_carries_the_code_and_is_not_retried(
    billing: HttpBilling, fake: FakeBilling
) -> None:
    with pytest.raises(BillingRefused) as refused:
        await billing.apply(SOKOLOV, op("unblock", "u1"))
    assert refused.value.code == "insufficient_funds"

    with pytest.raises(BillingRefused) as unknown:
        await billing.apply(IVANOV, op("change_tariff", "t1", tariff_id="bratsk-inet-100",
                                       effective=TODAY.isoformat()))  # fmt: skip
    assert unknown.value.code == "unknown_tariff"

    fake.refuse_next("not_allowed")
    with pytest.raises(BillingRefused) as bridge_rule:
        await billing.apply(IVANOV, op("autopay", "a1", enabled=True))
    assert bridge_rule.value.code == "not_allowed"
    assert len(fake.operations()) == 3  # one request each
    account = await billing.account(IVANOV)
    assert account is not None
    assert not account.autopay


async def test_resume_when_not_paused_is_refused(billing: HttpBilling) -> None:
    with pytest.raises(BillingRefused) as refused:
        await billing.apply(IVANOV, op("resume"))
    assert refused.value.code == "not_suspended"


# --- failures --------------------------------------------------------------------------------
async def test_5xx_is_retried(billing: HttpBilling, fake: FakeBilling) -> None:
    fake.fail_next(503, times=MAX_ATTEMPTS - 1)
    account = await billing.account(IVANOV)
    assert account is not None
    assert len(fake.requests) == MAX_ATTEMPTS


async def test_persistent_5xx_is_unavailable(billing: HttpBilling, fake: FakeBilling) -> None:
    fake.fail_next(500, times=10)
    with pytest.raises(BillingUnavailable):
        await billing.account(IVANOV)
    assert len(fake.requests) == MAX_ATTEMPTS


async def test_429_waits_as_told(billing: HttpBilling, fake: FakeBilling) -> None:
    fake.fail_next(429, retry_after="0")
    assert await billing.find_by_phone(IVANOV_PHONE) != []
    assert len(fake.requests) == 2


async def test_429_with_a_wait_past_the_budget_gives_up_at_once(
    billing: HttpBilling, fake: FakeBilling
) -> None:
    fake.fail_next(429, retry_after="120")
    with pytest.raises(BillingUnavailable):
        await billing.account(IVANOV)
    assert len(fake.requests) == 1


async def test_slow_bridge_is_unavailable(fake: FakeBilling) -> None:
    fake.delay(5)
    client = HttpBilling(fake.url, fake.token, timeout=0.3)
    try:
        with pytest.raises(BillingUnavailable, match="no answer"):
            await client.account(IVANOV)
        with pytest.raises(BillingUnavailable):
            await client.apply(IVANOV, op("payment", amount_rub="1"))
    finally:
        await client.close()


async def test_wrong_token_is_unavailable_and_not_retried(fake: FakeBilling) -> None:
    client = HttpBilling(fake.url, "wrong-token", timeout=2.0)
    try:
        with pytest.raises(BillingUnavailable, match="BILLING_TOKEN") as error:
            await client.account(IVANOV)
    finally:
        await client.close()
    assert "wrong-token" not in str(error.value)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        '{"contract_number": "750012345678"}',
        json.dumps({"contract_number": IVANOV, "status": "frozen"}),
    ],
)
async def test_malformed_account_is_unavailable(
    billing: HttpBilling, fake: FakeBilling, body: str
) -> None:
    fake.answer_raw_next(body)
    with pytest.raises(BillingUnavailable):
        await billing.account(IVANOV)


async def test_malformed_operation_answer_is_unavailable(
    billing: HttpBilling, fake: FakeBilling
) -> None:
    fake.answer_raw_next('{"account": {"balance_rub": "lots"}}')
    with pytest.raises(BillingUnavailable):
        await billing.apply(IVANOV, op("autopay", enabled=True))


async def test_malformed_transactions_are_unavailable(
    billing: HttpBilling, fake: FakeBilling
) -> None:
    fake.answer_raw_next('{"transactions": [{"at": "yesterday", "amount_rub": "1"}]}')
    with pytest.raises(BillingUnavailable):
        await billing.transactions(IVANOV)


async def test_404_page_of_a_wrong_url_is_not_a_missing_contract(
    billing: HttpBilling, fake: FakeBilling
) -> None:
    fake.answer_raw_next("<html>Not Found</html>", status=404)
    with pytest.raises(BillingUnavailable, match="BILLING_URL"):
        await billing.account(IVANOV)


async def test_nobody_listening_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = HttpBilling(f"http://127.0.0.1:{port}/bridge", TOKEN, timeout=1.0)
    try:
        with pytest.raises(BillingUnavailable):
            await client.account(IVANOV)
    finally:
        await client.close()


async def test_no_token_or_personal_data_in_logs_or_errors(
    fake: FakeBilling, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = HttpBilling(fake.url, fake.token, timeout=0.5)
    messages: list[str] = []
    try:
        fake.fail_next(502, times=10)
        with pytest.raises(BillingUnavailable) as e1:
            await client.find_by_phone(IVANOV_PHONE)
        messages.append(str(e1.value))
        fake.fail_next(500, times=10)
        with pytest.raises(BillingUnavailable) as e2:
            await client.apply(IVANOV, op("payment", amount_rub="1"))
        messages.append(str(e2.value))
        fake.answer_raw_next(json.dumps({"contract_number": IVANOV, "holder_name": 5}))
        with pytest.raises(BillingUnavailable) as e3:
            await client.account(IVANOV)
        messages.append(str(e3.value))
        fake.delay(2)
        with pytest.raises(BillingUnavailable) as e4:
            await client.account(IVANOV)
        messages.append(str(e4.value))
    finally:
        await client.close()
    # Everything logged on the bot's side (the fake server's own access log is not ours).
    logged = [r.getMessage() for r in caplog.records if r.name != "aiohttp.access"]
    seen = "\n".join(logged + messages)
    assert "retrying" in seen
    for secret in (TOKEN, IVANOV, IVANOV_PHONE, IVANOV_PHONE[1:]):
        assert secret not in seen


# --- settings --------------------------------------------------------------------------------
async def test_built_from_settings(fake: FakeBilling) -> None:
    assert http_billing_from_settings(Settings()) is None
    settings = replace(
        Settings(), billing_url=fake.url, billing_token=fake.token, billing_timeout=2.0
    )
    client = http_billing_from_settings(settings)
    assert client is not None
    try:
        assert await client.account(IVANOV) is not None
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("url", "token", "timeout"),
    [
        ("http://127.0.0.1:1/bridge", None, 5.0),
        ("ftp://127.0.0.1/bridge", TOKEN, 5.0),
        ("http://127.0.0.1:1/bridge", TOKEN, 0.0),
    ],
)
def test_bad_billing_settings_are_refused(url: str, token: str | None, timeout: float) -> None:
    settings = replace(Settings(), billing_url=url, billing_token=token, billing_timeout=timeout)
    with pytest.raises(ConfigError):
        http_billing_from_settings(settings)


# --- the documented API ----------------------------------------------------------------------
async def test_openapi_describes_every_call_the_client_makes(
    billing: HttpBilling, fake: FakeBilling
) -> None:
    spec = json.loads((ROOT / "docs" / "billing-api.openapi.json").read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.0")
    await billing.account(IVANOV)
    await billing.account("000000000000")
    await billing.find_by_phone(IVANOV_PHONE)
    await billing.transactions(IVANOV)
    await billing.apply(IVANOV, op("autopay", enabled=True))

    documented = [
        (method.upper(), re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    for request in fake.requests:
        path = request.path.removeprefix(PREFIX)
        assert any(m == request.method and rx.match(path) for m, rx in documented), path
    kinds = spec["components"]["schemas"]["Operation"]["properties"]["kind"]["enum"]
    assert sorted(kinds) == sorted(OPERATION_KINDS)
