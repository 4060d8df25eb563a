"""Every ``OutageStore`` method on both backends (SQLite, Redis), and what two processes sharing
one store must do once: seed the catalog's outages, tell a contract of an event, end an outage."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.catalog.catalog import Catalog, load_catalog
from bot.config import DEMO_CATALOG
from bot.outages.model import Outage
from bot.outages.redis_store import RedisOutageStore
from bot.outages.store import OutageStore, SqliteOutageStore
from bot.storage.redis.client import connect

T0 = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
CHITA = timezone(timedelta(hours=9))
CONTRACT = "750012345678"

Make = Callable[[], OutageStore]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(DEMO_CATALOG)


@pytest.fixture(params=["sqlite", "redis"])
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, catalog: Catalog
) -> AsyncIterator[Make]:
    """Builds stores on one backend (two builds = two processes sharing it)."""
    made: list[OutageStore] = []
    clients = []

    def make() -> OutageStore:
        store: OutageStore
        if request.param == "sqlite":
            store = SqliteOutageStore(tmp_path / "outages.sqlite3", catalog=catalog)
        else:
            client = connect(request.getfixturevalue("redis_url"))  # emptied for each test
            clients.append(client)
            store = RedisOutageStore(client, catalog=catalog)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()
    for client in clients:
        await client.aclose()


@pytest.fixture
def store(make_store: Make) -> OutageStore:
    return make_store()


def outage(outage_id: str, city_id: str = "chita", started: datetime = T0, **kw: object) -> Outage:
    fields: dict[str, object] = {
        "outage_id": outage_id, "city_id": city_id, "street": "ул. Курнатовского",
        "houses": ("5", "7"), "services": ("internet", "tv"), "kind": "accident",
        "started_at": started, "expected_end": started + timedelta(hours=4),
        "reason": "Повреждение кабеля",
    }  # fmt: skip
    fields.update(kw)
    return Outage(**fields)  # type: ignore[arg-type]


async def test_seed_adds_only_unknown_outages_and_a_closed_one_stays_closed(
    make_store: Make,
) -> None:
    store = make_store()
    assert await store.seed([]) == 0
    assert await store.seed([outage("a"), outage("b"), outage("a")]) == 2
    assert await store.close_outage("a", T0 + timedelta(hours=1)) is not None
    # A restart seeds the catalog again: "a" keeps the end the API gave it, "c" is new.
    restarted = make_store()
    catalog_again = [outage("a"), outage("b", reason="другое"), outage("c")]
    assert await restarted.seed(catalog_again) == 1
    a = await restarted.get("a")
    assert a is not None
    assert a.ended_at == T0 + timedelta(hours=1)
    b = await restarted.get("b")
    assert b is not None
    assert b.reason == "Повреждение кабеля"  # known: not replaced by the catalog's copy
    assert [o.outage_id for o in await restarted.open_outages()] == ["b", "c"]


async def test_seed_keeps_an_outage_the_catalog_gives_as_ended(store: OutageStore) -> None:
    over = outage("old", ended_at=T0 + timedelta(hours=2))
    assert await store.seed([over]) == 1
    assert await store.get("old") == over
    assert await store.open_outages() == []


async def test_upsert_creates_replaces_and_opens_a_closed_one_again(make_store: Make) -> None:
    store, other = make_store(), make_store()
    first = outage("a", houses=(), street="", services=("phone",), expected_end=None)
    assert await store.upsert(first) is None
    assert await other.get("a") == first  # what one process wrote, another reads
    assert await store.get("missing") is None
    changed = outage("a", reason="Плановые работы", kind="planned")
    assert await other.upsert(changed) == first
    assert await store.get("a") == changed
    ended_at = T0 + timedelta(hours=1)
    await store.close_outage("a", ended_at)
    previous = await store.upsert(changed)
    assert previous == replace(changed, ended_at=ended_at)  # the caller learns it was closed
    got = await other.get("a")
    assert got is not None
    assert got.ended_at is None
    assert [o.outage_id for o in await other.open_outages()] == ["a"]


async def test_upsert_ignores_an_end_given_with_the_record(store: OutageStore) -> None:
    # The API's record has no end; a closed one posted again is open again, whatever it carries.
    assert await store.upsert(outage("a", ended_at=T0)) is None
    got = await store.get("a")
    assert got is not None
    assert got.ended_at is None


async def test_close_outage_ends_it_once_and_keeps_the_first_end(store: OutageStore) -> None:
    assert await store.close_outage("missing", T0) is None
    await store.upsert(outage("a"))
    at = datetime(2026, 3, 10, 15, 30, tzinfo=CHITA)
    found = await store.close_outage("a", at)
    assert found is not None
    closed, ended_now = found
    assert ended_now
    assert (closed.outage_id, closed.ended_at, closed.reason) == ("a", at, "Повреждение кабеля")
    again = await store.close_outage("a", at + timedelta(hours=1))
    assert again == (closed, False)
    assert await store.get("a") == closed
    assert await store.open_outages() == []


async def test_open_outages_by_start_across_offsets_and_by_city(store: OutageStore) -> None:
    # 07:40 in Chita is 22:40 UTC the day before: earlier than T0 whatever the text says.
    early_local = outage("z-early", started=datetime(2026, 3, 10, 7, 40, tzinfo=CHITA))
    await store.upsert(outage("b", started=T0 + timedelta(hours=1)))
    await store.upsert(outage("a", started=T0 + timedelta(hours=1)))  # same start: by id
    await store.upsert(early_local)
    await store.upsert(outage("irk", city_id="irkutsk", started=T0))
    await store.upsert(outage("gone"))
    await store.close_outage("gone", T0)
    everywhere = await store.open_outages()
    assert [o.outage_id for o in everywhere] == ["z-early", "irk", "a", "b"]
    assert all(o.ended_at is None for o in everywhere)
    assert [o.outage_id for o in await store.open_outages("chita")] == ["z-early", "a", "b"]
    assert [o.outage_id for o in await store.open_outages("irkutsk")] == ["irk"]
    assert await store.open_outages("bratsk") == []


async def test_first_notice_is_true_once_per_outage_contract_and_event(
    store: OutageStore,
) -> None:
    await store.upsert(outage("a"))
    assert await store.first_notice("a", CONTRACT, "posted") is True
    assert await store.first_notice("a", CONTRACT, "posted") is False  # a repeated POST
    assert await store.first_notice("a", CONTRACT, "ended") is True
    assert await store.first_notice("a", "750012345691", "posted") is True
    assert await store.first_notice("b", CONTRACT, "posted") is True
    # Reopened and posted again: the customer was told already, not told twice.
    await store.close_outage("a", T0)
    await store.upsert(outage("a"))
    assert await store.first_notice("a", CONTRACT, "posted") is False


async def test_delete_closed_before_counts_keeps_and_forgets_notices(store: OutageStore) -> None:
    cutoff = T0 + timedelta(days=30)
    for outage_id in ("old", "catalog", "recent", "open"):
        await store.upsert(outage(outage_id))
        await store.first_notice(outage_id, CONTRACT, "posted")
    await store.first_notice("old", CONTRACT, "ended")
    await store.close_outage("old", T0)
    await store.close_outage("catalog", T0)
    await store.close_outage("recent", cutoff + timedelta(hours=1))
    keep = frozenset({"catalog"})

    counts = {"outages": 1, "outage_notices": 3}  # old's two, catalog's one
    assert await store.delete_closed_before(cutoff, keep=keep, dry_run=True) == counts
    assert await store.get("old") is not None  # a dry run only counts
    assert await store.first_notice("old", CONTRACT, "posted") is False

    assert await store.delete_closed_before(cutoff, keep=keep) == counts
    assert await store.get("old") is None
    kept = await store.get("catalog")
    assert kept is not None
    assert kept.ended_at == T0  # seed would bring it back open without its closed record
    assert await store.seed([outage("catalog"), outage("old")]) == 1
    assert await store.first_notice("catalog", CONTRACT, "posted") is True  # notices forgotten
    assert await store.first_notice("recent", CONTRACT, "posted") is False  # closed after
    assert await store.first_notice("open", CONTRACT, "posted") is False
    assert [o.outage_id for o in await store.open_outages()] == ["old", "open"]
    assert await store.delete_closed_before(cutoff) == {"outages": 1, "outage_notices": 1}
    assert await store.delete_closed_before(cutoff) == {"outages": 0, "outage_notices": 0}


async def test_two_processes_seeding_at_once_add_each_outage_once(make_store: Make) -> None:
    one, two = make_store(), make_store()
    catalog = [outage(f"o{n:02d}", started=T0 + timedelta(minutes=n)) for n in range(30)]
    added = await asyncio.gather(*((one, two)[n % 2].seed(catalog) for n in range(10)))
    assert sum(added) == 30
    assert [o.outage_id for o in await two.open_outages()] == [o.outage_id for o in catalog]


async def test_two_processes_tell_a_contract_of_an_event_once(make_store: Make) -> None:
    one, two = make_store(), make_store()
    await one.upsert(outage("a"))
    told = await asyncio.gather(
        *((one, two)[n % 2].first_notice("a", CONTRACT, "ended") for n in range(20))
    )
    assert told.count(True) == 1


async def test_two_processes_closing_at_once_end_the_outage_once(make_store: Make) -> None:
    one, two = make_store(), make_store()
    await one.upsert(outage("a"))
    ends = [T0 + timedelta(minutes=n) for n in range(20)]
    found = await asyncio.gather(
        *((one, two)[n % 2].close_outage("a", at) for n, at in enumerate(ends))
    )
    results = [f for f in found if f is not None]
    assert len(results) == 20
    assert [ended for _, ended in results].count(True) == 1
    winner = next(record for record, ended in results if ended)
    assert {record.ended_at for record, _ in results} == {winner.ended_at}
    assert await two.get("a") == winner


def test_every_method_of_the_interface_is_covered_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    methods = [
        name
        for name, member in inspect.getmembers(OutageStore)
        if getattr(member, "__isabstractmethod__", False) or name == "delete_closed_before"
    ]
    assert methods
    assert [m for m in methods if f".{m}(" not in source] == []
