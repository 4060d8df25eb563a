"""The ledger's storage on both backends where several processes meet: two ledgers on one
SQLite file or on one Redis (two clients: two gateway processes). The same operation id booked
by both at once is booked once, changes made at once all count, seeding by processes starting
together happens once and never undoes a change; a Redis that is gone is BillingUnavailable.
(Each operation's rules run on both backends in test_ledger.py.)"""

from __future__ import annotations

import asyncio
import inspect
from decimal import Decimal
from pathlib import Path

import pytest

from bot.billing.base import BillingUnavailable, Operation
from bot.billing.ledger import LedgerBilling, LedgerStorage, SqliteLedgerStorage, open_ledger
from bot.billing.redis_ledger import RedisLedgerStorage
from bot.catalog.catalog import load_catalog
from bot.config import DEMO_CATALOG
from bot.storage.health import StoreHealth
from bot.storage.redis.client import connect
from tests.billing.test_ledger import IVANOV, PETROVA, Clock, OpenAt, clock, open_at
from tests.redis_server import RedisServer

__all__ = ["clock", "open_at"]  # fixtures shared with test_ledger.py

FILE = "shared-ledger.sqlite3"


def pay(op_id: str, amount: str) -> Operation:
    return Operation(op_id, "payment", {"amount_rub": amount}, by="billing")


def test_every_storage_method_is_covered() -> None:
    """A method added to LedgerStorage must be exercised on both backends: through the ledger
    here or in test_ledger.py."""
    here = Path(__file__).read_text(encoding="utf-8")
    there = (Path(__file__).parent / "test_ledger.py").read_text(encoding="utf-8")
    through = {"seed": "account", "accounts": "accounts_in_city", "by_phone": "find_by_phone"}
    for name in sorted(LedgerStorage.__abstractmethods__):
        call = f".{through.get(name, name)}("
        assert call in here + there, name
    assert not inspect.isabstract(SqliteLedgerStorage)
    assert not inspect.isabstract(RedisLedgerStorage)


async def test_accounts_in_a_city(clock: Clock, open_at: OpenAt) -> None:
    ledger = open_at(DEMO_CATALOG, None, clock)
    try:
        chita = await ledger.accounts_in_city("chita")
        assert IVANOV in [a.contract_number for a in chita]
        assert {a.city_id for a in chita} == {"chita"}
        numbers = [a.contract_number for a in chita]
        assert numbers == sorted(numbers)
        assert await ledger.accounts_in_city("atlantis") == []
    finally:
        await ledger.close()


async def test_the_same_event_booked_by_two_processes_at_once_is_booked_once(
    clock: Clock, open_at: OpenAt
) -> None:
    first, second = open_at(DEMO_CATALOG, FILE, clock), open_at(DEMO_CATALOG, FILE, clock)
    try:
        before = await first.account(IVANOV)
        assert before is not None
        history = len(await first.transactions(IVANOV, limit=1000))
        results = await asyncio.gather(
            *(ledger.apply(IVANOV, pay("event:42", "300")) for ledger in (first, second) * 5)
        )
        assert {r.balance_rub for r in results} == {before.balance_rub + 300}
        for ledger in (first, second):
            assert (await ledger.account(IVANOV)).balance_rub == before.balance_rub + 300  # type: ignore[union-attr]
            assert len(await ledger.transactions(IVANOV, limit=1000)) == history + 1
    finally:
        await first.close()
        await second.close()


async def test_changes_made_at_once_by_two_processes_all_count(
    clock: Clock, open_at: OpenAt
) -> None:
    first, second = open_at(DEMO_CATALOG, FILE, clock), open_at(DEMO_CATALOG, FILE, clock)
    try:
        before = await first.account(IVANOV)
        other = await first.account(PETROVA)
        assert before is not None
        assert other is not None
        await asyncio.gather(
            *(
                ledger.apply(IVANOV, pay(f"{n}-{i}", "10.05"))
                for n, ledger in enumerate((first, second))
                for i in range(15)
            ),
            second.apply(PETROVA, pay("petrova", "1")),
        )
        for ledger in (first, second):
            after = await ledger.account(IVANOV)
            assert after is not None
            assert after.balance_rub == before.balance_rub + Decimal("301.50")
            latest = await ledger.transactions(IVANOV, limit=30)
            assert [t.amount_rub for t in latest] == [Decimal("10.05")] * 30
        assert (await first.account(PETROVA)).balance_rub == other.balance_rub + 1  # type: ignore[union-attr]
    finally:
        await first.close()
        await second.close()


async def test_processes_starting_together_seed_once_and_keep_later_changes(
    clock: Clock, open_at: OpenAt
) -> None:
    starting = [open_at(DEMO_CATALOG, FILE, clock) for _ in range(4)]
    try:
        seen = await asyncio.gather(
            *(ledger.transactions(IVANOV, limit=1000) for ledger in starting)
        )
        assert len({len(history) for history in seen}) == 1  # nobody saw the seed twice
        expected = len([line for line in (DEMO_CATALOG / "transactions.csv").read_text(
            encoding="utf-8").splitlines() if line.startswith(IVANOV)])  # fmt: skip
        assert len(seen[0]) == expected
        paid = await starting[0].apply(IVANOV, pay("after-seed", "100"))
        late = open_at(DEMO_CATALOG, FILE, clock)  # a process started later seeds again
        starting.append(late)
        assert (await late.account(IVANOV)).balance_rub == paid.balance_rub  # type: ignore[union-attr]
        assert len(await late.transactions(IVANOV, limit=1000)) == expected + 1
    finally:
        for ledger in starting:
            await ledger.close()


async def test_redis_gone_is_billing_unavailable(own_redis: RedisServer, clock: Clock) -> None:
    client = connect(own_redis.url)
    health = StoreHealth()
    ledger: LedgerBilling = open_ledger(
        DEMO_CATALOG, load_catalog(DEMO_CATALOG), describe=str, clock=clock,
        storage=RedisLedgerStorage(client, health=health),
    )  # fmt: skip
    try:
        assert await ledger.account(IVANOV) is not None
        own_redis.stop()
        with pytest.raises(BillingUnavailable):
            await ledger.account(IVANOV)
        with pytest.raises(BillingUnavailable):
            await ledger.apply(IVANOV, pay("during", "5"))
        assert health.failing
    finally:
        await client.aclose()
