"""The embedded ledger: seeded from a catalog's CSV files, kept in SQLite, changed by operations
once per id, and moved along by the passing of days (an injected clock)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.billing.base import BillingRefused, Operation
from bot.billing.ledger import LedgerBilling, open_ledger
from bot.billing.redis_ledger import RedisLedgerStorage
from bot.catalog.catalog import load_catalog
from bot.config import DEMO_CATALOG
from bot.storage.redis.client import connect
from tests.fakes.billing import make_test_catalog

IVANOV = "750012345678"  # Chita (UTC+9), active, 880.50 ₽
SOKOLOV = "750045678924"  # Chita, blocked, -450.00 ₽
PETROVA = "750012345691"  # Chita, active, 1250.00 ₽
START = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # midday in Chita


class Clock:
    """Now, as the test says; ``days(n)`` lets n days pass."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def days(self, n: int) -> None:
        self.now += timedelta(days=n)

    @property
    def today(self) -> date:
        return (self.now + timedelta(hours=9)).date()  # Chita


def op(kind: Any, op_id: str = "op-1", **params: Any) -> Operation:
    return Operation(id=op_id, kind=kind, params=params)


# Opens a ledger of the test's backend on a catalog directory; ``name`` is the SQLite file (a
# restart opens the same name again: on Redis, a new client on the same Redis).
OpenAt = Callable[..., LedgerBilling]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "redis"])
async def open_at(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenAt]:
    """Every ledger test runs on both storages: the SQLite file and the shared Redis."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    clients: list[Redis] = []

    def open_at(directory: Path, name: str | None, clock: Clock) -> LedgerBilling:
        catalog = load_catalog(directory)
        if url is None:
            path = ":memory:" if name is None else tmp_path / name
            return open_ledger(directory, catalog, path=path, describe=str, clock=clock)
        clients.append(connect(url))
        storage = RedisLedgerStorage(clients[-1])
        return open_ledger(directory, catalog, storage=storage, describe=str, clock=clock)

    yield open_at
    for client in clients:
        await client.aclose()


@pytest.fixture
async def ledger(tmp_path: Path, clock: Clock, open_at: OpenAt) -> AsyncIterator[LedgerBilling]:
    opened = open_at(make_test_catalog(tmp_path / "catalog"), None, clock)
    yield opened
    await opened.close()


async def test_seeded_from_the_demo_catalog(clock: Clock, open_at: OpenAt) -> None:
    ledger = open_at(DEMO_CATALOG, None, clock)
    try:
        account = await ledger.account(IVANOV)
        assert account is not None
        assert account.holder_name == "Иванов Иван Иванович"
        assert account.balance_rub == Decimal("880.50")
        assert account.tariff_id == "chita-inet-500"
        assert [a.contract_number for a in await ledger.find_by_phone("+79140000001")] == [IVANOV]
        history = await ledger.transactions(IVANOV, limit=100)
        assert history
        assert [t.at for t in history] == sorted((t.at for t in history), reverse=True)
        assert len(await ledger.transactions(IVANOV, limit=2)) == 2
        assert await ledger.transactions(IVANOV, limit=0) == []
        assert await ledger.transactions(IVANOV, limit=-1) == history
        assert await ledger.account("000000000000") is None
        assert len(ledger.contracts) == len(
            (DEMO_CATALOG / "accounts.csv").read_text(encoding="utf-8").strip().splitlines()[1:]
        )
    finally:
        await ledger.close()


async def test_changes_survive_a_restart(clock: Clock, open_at: OpenAt) -> None:
    path = "ledger.sqlite3"
    first = open_at(DEMO_CATALOG, path, clock)
    await first.apply(IVANOV, op("payment", amount_rub="100"))
    await first.apply(IVANOV, op("autopay", "op-2", enabled=True))
    await first.close()

    again = open_at(DEMO_CATALOG, path, clock)
    try:
        account = await again.account(IVANOV)
        assert account is not None
        assert account.balance_rub == Decimal("980.50")
        assert account.autopay
        assert (await again.transactions(IVANOV, limit=1))[0].amount_rub == Decimal(100)
        # The operation id is remembered across the restart as well.
        await again.apply(IVANOV, op("payment", amount_rub="100"))
        assert (await again.account(IVANOV)).balance_rub == Decimal("980.50")  # type: ignore[union-attr]
    finally:
        await again.close()


async def test_an_edited_csv_row_reseeds_only_that_contract(
    tmp_path: Path, clock: Clock, open_at: OpenAt
) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(DEMO_CATALOG, catalog)
    path = "ledger.sqlite3"
    first = open_at(catalog, path, clock)
    await first.apply(IVANOV, op("payment", "a", amount_rub="100"))
    await first.apply(PETROVA, op("payment", "b", amount_rub="100"))
    await first.close()

    accounts = catalog / "accounts.csv"
    text = accounts.read_text(encoding="utf-8")
    assert f"{IVANOV},chita" in text
    assert ",880.50," in text
    accounts.write_text(text.replace(",880.50,", ",2000.00,"), encoding="utf-8")

    again = open_at(catalog, path, clock)
    try:
        ivanov = await again.account(IVANOV)
        petrova = await again.account(PETROVA)
        assert ivanov is not None
        assert petrova is not None
        assert ivanov.balance_rub == Decimal("2000.00")  # the provider's edit wins
        assert petrova.balance_rub == Decimal("1350.00")  # untouched row keeps its history
        assert all(t.amount_rub != 100 for t in await again.transactions(IVANOV, limit=100))
    finally:
        await again.close()


async def test_an_operation_id_is_applied_once(ledger: LedgerBilling) -> None:
    first = await ledger.apply(IVANOV, op("payment", "pay", amount_rub="500"))
    again = await ledger.apply(IVANOV, op("payment", "pay", amount_rub="500"))
    assert first.balance_rub == again.balance_rub == Decimal("1380.50")
    with pytest.raises(BillingRefused) as refused:
        await ledger.apply(PETROVA, op("payment", "pay", amount_rub="500"))
    assert refused.value.code == "bad_request"
    assert (await ledger.account(PETROVA)).balance_rub == Decimal("1250.00")  # type: ignore[union-attr]


async def test_a_promised_payment_is_taken_back_after_its_last_day(
    ledger: LedgerBilling, clock: Clock
) -> None:
    until = clock.today + timedelta(days=3)
    account = await ledger.apply(SOKOLOV, op("promised_payment", amount_rub="500", until=until))
    assert account.status == "active"
    assert account.balance_rub == Decimal("50.00")

    clock.days(3)  # the last day it covers
    still = await ledger.account(SOKOLOV)
    assert still is not None
    assert still.promised_payment is not None
    assert still.status == "active"

    clock.days(1)
    after = await ledger.account(SOKOLOV)
    assert after is not None
    assert after.promised_payment is None
    assert after.balance_rub == Decimal("-450.00")
    assert after.status == "blocked"
    assert after.last_promised_on == until - timedelta(days=3)  # the cooldown still counts


async def test_a_booked_pause_starts_and_ends(ledger: LedgerBilling, clock: Clock) -> None:
    start, end = clock.today + timedelta(days=2), clock.today + timedelta(days=5)
    booked = await ledger.apply(IVANOV, op("suspend", start=start.isoformat(),
                                           end=end.isoformat()))  # fmt: skip
    assert booked.status == "active"
    assert booked.suspension is not None

    clock.days(2)
    assert (await ledger.account(IVANOV)).status == "suspended"  # type: ignore[union-attr]
    clock.days(3)  # the last paused day
    assert (await ledger.account(IVANOV)).status == "suspended"  # type: ignore[union-attr]
    clock.days(1)
    resumed = await ledger.account(IVANOV)
    assert resumed is not None
    assert resumed.status == "active"
    assert resumed.suspension is None


async def test_a_pause_ending_on_a_debt_leaves_the_account_blocked(
    ledger: LedgerBilling, clock: Clock
) -> None:
    end = clock.today + timedelta(days=1)
    await ledger.apply(SOKOLOV, op("suspend", start=clock.today.isoformat(), end=end.isoformat()))
    clock.days(2)
    assert (await ledger.account(SOKOLOV)).status == "blocked"  # type: ignore[union-attr]


async def test_a_planned_tariff_change_takes_effect_on_its_day(
    ledger: LedgerBilling, clock: Clock
) -> None:
    effective = clock.today + timedelta(days=2)
    planned = await ledger.apply(IVANOV, op("change_tariff", tariff_id="chita-inet-100",
                                            effective=effective.isoformat()))  # fmt: skip
    assert planned.tariff_id == "chita-inet-500"
    assert planned.pending_tariff is not None

    clock.days(1)
    assert (await ledger.account(IVANOV)).tariff_id == "chita-inet-500"  # type: ignore[union-attr]
    clock.days(1)
    changed = await ledger.account(IVANOV)
    assert changed is not None
    assert changed.tariff_id == "chita-inet-100"
    assert changed.pending_tariff is None


async def test_next_charge_date_is_never_in_the_past(ledger: LedgerBilling, clock: Clock) -> None:
    before = await ledger.account(IVANOV)
    assert before is not None
    assert before.next_charge_date == date(2026, 12, 1)
    for days in (2, 1, 9, 31, 40):  # past the seeded date, on a billing day, months later
        clock.days(days)
        account = await ledger.account(IVANOV)
        assert account is not None
        assert account.next_charge_date >= clock.today
        assert account.next_charge_date.day == 1  # the catalog's billing day


async def test_services_are_charged_once_and_removed(ledger: LedgerBilling) -> None:
    on = await ledger.apply(IVANOV, op("service_on", "a", service_id="chita-antivirus",
                                       charge_rub="99"))  # fmt: skip
    twice = await ledger.apply(IVANOV, op("service_on", "b", service_id="chita-antivirus",
                                          charge_rub="99"))  # fmt: skip
    assert on.services == twice.services == ("chita-antivirus",)
    assert twice.balance_rub == Decimal("781.50")
    off = await ledger.apply(IVANOV, op("service_off", "c", service_id="chita-antivirus"))
    assert off.services == ()


async def test_a_changed_phone_finds_the_account(ledger: LedgerBilling) -> None:
    await ledger.apply(IVANOV, op("set_contact", field="phone", value="+79145550000"))
    assert [a.contract_number for a in await ledger.find_by_phone("+79145550000")] == [IVANOV]
    assert await ledger.find_by_phone("+79140000001") == []


@pytest.mark.parametrize(
    ("contract", "operation", "code"),
    [
        (SOKOLOV, op("unblock"), "insufficient_funds"),
        (IVANOV, op("unblock"), "not_blocked"),
        (IVANOV, op("resume"), "not_suspended"),
        (IVANOV, op("cancel_tariff_change"), "no_pending_change"),
        (IVANOV, op("change_tariff", tariff_id="no-such", effective="2026-12-01"),
         "unknown_tariff"),
        (IVANOV, op("change_tariff", tariff_id="bratsk-inet-100", effective="2026-12-01"),
         "unknown_tariff"),  # another city's tariff
        (IVANOV, op("change_tariff", tariff_id="chita-inet-50", effective="2026-12-01"),
         "unknown_tariff"),  # archived
        (IVANOV, op("service_on", service_id="no-such"), "unknown_service"),
        (IVANOV, op("service_on", service_id="bratsk-antivirus"), "unknown_service"),
        (IVANOV, op("service_on", service_id="chita-tv-sport-old"), "unknown_service"),  # archived
        (IVANOV, op("promised_payment", amount_rub="100", until="soon"), "bad_request"),
        (IVANOV, op("payment", amount_rub="-5"), "bad_request"),
        (IVANOV, op("set_contact", field="address", value="x"), "bad_request"),
        (IVANOV, op("set_notifications", notifications={"balance": ["pigeon"]}), "bad_request"),
        ("000000000000", op("payment", amount_rub="5"), "unknown_contract"),
    ],
)  # fmt: skip
async def test_refusals_change_nothing(
    ledger: LedgerBilling, contract: str, operation: Operation, code: str
) -> None:
    before = await ledger.account(contract)
    with pytest.raises(BillingRefused) as refused:
        await ledger.apply(contract, operation)
    assert refused.value.code == code
    assert await ledger.account(contract) == before
    # A refused id was not used up: the same id may carry a corrected request later.
    if contract == IVANOV:
        fixed = await ledger.apply(IVANOV, Operation(operation.id, "autopay", {"enabled": True}))
        assert fixed.autopay
