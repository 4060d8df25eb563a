"""Every ``VisitStore`` method on both backends (SQLite, Redis), and the capacity of a window
held across processes: the Redis store must behave exactly like the embedded one."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.storage.redis.client import connect
from bot.visits.redis_store import RedisVisitStore
from bot.visits.store import NewVisit, SqliteVisitStore, VisitStore

AT = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
NINE = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)  # 09:00 in Chita
NOON = NINE + timedelta(hours=3)

Make = Callable[[], VisitStore]


@pytest.fixture(params=["sqlite", "redis"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Make]:
    """Builds stores on one backend (two builds = two processes sharing it)."""
    made: list[VisitStore] = []
    clients = []

    def make() -> VisitStore:
        if request.param == "sqlite":
            store: VisitStore = SqliteVisitStore(tmp_path / "visits.sqlite3")
        else:
            client = connect(request.getfixturevalue("redis_url"))  # emptied for each test
            clients.append(client)
            store = RedisVisitStore(client)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.shut()
    for client in clients:
        await client.aclose()


@pytest.fixture
def store(make_store: Make) -> VisitStore:
    return make_store()


def new(op: str, contract: str = "750012345678", starts: datetime = NINE, **kw: object) -> NewVisit:
    fields: dict[str, object] = {
        "op": op, "contract": contract, "conversation_id": f"rest:{contract}:{contract}",
        "city_id": "chita", "starts_at": starts, "ends_at": starts + timedelta(hours=3),
        "problem": "нет интернета", "address": "ул. Бутина, 10, кв. 5",
        "fee_rub": Decimal("500.00"),
    }  # fmt: skip
    fields.update(kw)
    return NewVisit(**fields)  # type: ignore[arg-type]


async def test_book_get_by_op_and_a_second_yes_finds_the_same_visit(store: VisitStore) -> None:
    booked = await store.book(new("op-1"), crews=2, at=AT)
    assert booked is not None
    assert not booked.repeat
    visit = booked.visit
    assert (visit.status, visit.starts_at, visit.fee_rub) == ("booked", NINE, Decimal("500.00"))
    assert visit.request_id is None
    assert visit.reminded_at is None
    assert visit.created_at == AT
    assert await store.get(visit.id) == visit
    assert await store.by_op("op-1") == visit
    again = await store.book(new("op-1"), crews=2, at=AT)
    assert again is not None
    assert again.repeat
    assert again.visit == visit
    assert await store.get(visit.id + 100) is None
    assert await store.by_op("nope") is None


async def test_a_window_holds_its_crews_and_a_cancelled_place_is_free_again(
    store: VisitStore,
) -> None:
    first = await store.book(new("a"), crews=2, at=AT)
    second = await store.book(new("b", contract="750012345691"), crews=2, at=AT)
    assert first is not None
    assert second is not None
    assert first.visit.id != second.visit.id
    assert await store.book(new("c", contract="750023456702"), crews=2, at=AT) is None
    assert await store.book(new("c", starts=NOON), crews=2, at=AT) is not None  # other window
    closed = await store.close(first.visit.id, "cancelled", at=AT + timedelta(minutes=1))
    assert closed is not None
    assert closed.status == "cancelled"
    assert closed.updated_at == AT + timedelta(minutes=1)
    assert await store.close(first.visit.id, "done", at=AT) is None  # not booked any more
    assert await store.book(new("d", contract="750023456702"), crews=2, at=AT) is not None


async def test_move_checks_the_new_window_and_needs_a_new_reminder(store: VisitStore) -> None:
    booked = await store.book(new("a"), crews=1, at=AT)
    other = await store.book(new("b", contract="750012345691", starts=NOON), crews=1, at=AT)
    assert booked is not None
    assert other is not None
    assert await store.mark_reminded(booked.visit.id, AT) is True
    assert await store.move(booked.visit.id, NOON, NOON + timedelta(hours=3), op="m1", crews=1,
                            at=AT) is None  # fmt: skip
    later = NOON + timedelta(days=1)
    moved = await store.move(booked.visit.id, later, later + timedelta(hours=3), op="m1",
                             crews=1, at=AT + timedelta(minutes=5))  # fmt: skip
    assert moved is not None
    assert not moved.repeat
    assert (moved.visit.starts_at, moved.visit.op, moved.visit.reminded_at) == (later, "m1", None)
    again = await store.move(booked.visit.id, later, later, op="m1", crews=1, at=AT)
    assert again is not None
    assert again.repeat
    assert again.visit == moved.visit
    assert await store.by_op("a") is None
    assert await store.by_op("m1") == moved.visit
    # The old window is free again, the visit's new one is full.
    assert await store.book(new("c", contract="750023456702"), crews=1, at=AT) is not None
    assert await store.book(new("d", contract="750023456702", starts=later), crews=1, at=AT) is None
    assert await store.mark_reminded(booked.visit.id, AT) is True
    closed = await store.close(booked.visit.id, "done", at=AT)
    assert closed is not None
    assert await store.move(booked.visit.id, NINE, NOON, op="m2", crews=5, at=AT) is None


async def test_lists_set_request_and_mark_reminded_once(store: VisitStore) -> None:
    late = await store.book(new("a", starts=NOON), crews=3, at=AT)
    early = await store.book(new("b"), crews=3, at=AT)
    khv = await store.book(new("c", contract="270000111222", city_id="khabarovsk"), crews=3, at=AT)
    assert late is not None
    assert early is not None
    assert khv is not None
    assert [v.id for v in await store.booked_of("750012345678")] == [early.visit.id, late.visit.id]
    day = (NINE, NINE + timedelta(days=1))
    assert [v.id for v in await store.booked_between("chita", *day)] == [
        early.visit.id, late.visit.id,
    ]  # fmt: skip
    assert {v.id for v in await store.booked_between(None, *day)} == {
        early.visit.id, late.visit.id, khv.visit.id,
    }  # fmt: skip
    same_start = await store.booked_between(None, NINE, NOON)  # two visits, one start
    assert {v.id for v in same_start} == {early.visit.id, khv.visit.id}
    await store.set_request(early.visit.id, 42)
    await store.set_request(999, 42)  # no such visit: nothing happens
    assert await store.get(999) is None
    got = await store.get(early.visit.id)
    assert got is not None
    assert got.request_id == 42
    assert await store.mark_reminded(early.visit.id, AT) is True
    assert await store.mark_reminded(early.visit.id, AT) is False
    got = await store.get(early.visit.id)
    assert got is not None
    assert got.reminded_at == AT
    await store.close(late.visit.id, "cancelled", at=AT)
    assert await store.mark_reminded(late.visit.id, AT) is False
    assert [v.id for v in await store.booked_of("750012345678")] == [early.visit.id]


async def test_old_visits_are_deleted(store: VisitStore) -> None:
    over = await store.book(new("a"), crews=3, at=AT)
    closed = await store.book(new("b", starts=NOON), crews=3, at=AT)
    ahead = await store.book(new("c", starts=NINE + timedelta(days=30)), crews=3, at=AT)
    assert over is not None
    assert closed is not None
    assert ahead is not None
    await store.close(closed.visit.id, "cancelled", at=AT)
    cutoff = NINE + timedelta(days=2)
    assert await store.delete_older_than(cutoff, dry_run=True) == 2
    assert await store.get(over.visit.id) is not None
    assert await store.delete_older_than(cutoff) == 2
    assert await store.get(over.visit.id) is None
    assert await store.get(closed.visit.id) is None
    assert await store.by_op("a") is None
    assert await store.get(ahead.visit.id) is not None
    # The deleted visit's window is free again.
    assert await store.book(new("e"), crews=1, at=AT) is not None


async def test_twenty_bookings_of_a_window_of_two_from_two_processes(make_store: Make) -> None:
    one, two = make_store(), make_store()
    results = await asyncio.gather(
        *(
            (one if n % 2 else two).book(new(f"op-{n}", contract=f"7500{n:08d}"), crews=2, at=AT)
            for n in range(20)
        )
    )
    won = [r for r in results if r is not None]
    assert len(won) == 2
    assert len(await one.booked_between("chita", NINE, NOON)) == 2


async def test_two_processes_remind_a_visit_once(make_store: Make) -> None:
    one, two = make_store(), make_store()
    booked = await one.book(new("a"), crews=1, at=AT)
    assert booked is not None
    marks = await asyncio.gather(
        *((one, two)[n % 2].mark_reminded(booked.visit.id, AT) for n in range(10))
    )
    assert marks.count(True) == 1


def test_every_method_of_the_interface_is_covered_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    methods = [
        name
        for name, member in inspect.getmembers(VisitStore)
        if getattr(member, "__isabstractmethod__", False) or name == "delete_older_than"
    ]
    assert methods
    assert [m for m in methods if f".{m}(" not in source] == []
