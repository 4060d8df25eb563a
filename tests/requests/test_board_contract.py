"""Every ``RequestBoard`` method on both backends (SQLite, Redis), and what two processes
sharing a Redis board must not do twice (number a record, take a legacy row over, send a call)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.requests.model import NewRequest
from bot.requests.redis_board import RedisRequestBoard
from bot.requests.sqlite import SqliteRequestBoard
from bot.requests.store import RequestBoard
from bot.storage.base import StoredRequest
from bot.storage.redis.client import connect

T0 = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
FILE_ID = "A" * 32

Make = Callable[[], RequestBoard]


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "redis"])
async def make_board(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Make]:
    made: list[RequestBoard] = []
    clients = []

    def make() -> RequestBoard:
        board: RequestBoard
        if request.param == "sqlite":
            board = SqliteRequestBoard(tmp_path / "r.sqlite3", webhooks=True, clock=clock)
        else:
            client = connect(request.getfixturevalue("redis_url"))  # emptied for each test
            clients.append(client)
            board = RedisRequestBoard(client, webhooks=True, clock=clock)
        made.append(board)
        return board

    yield make
    for board in made:
        await board.close()
    for client in clients:
        await client.aclose()


@pytest.fixture
def board(make_board: Make) -> RequestBoard:
    return make_board()


def lead(conversation: str = "rest:a:a", **kw: object) -> NewRequest:
    fields: dict[str, object] = {
        "kind": "connection",
        "conversation_id": conversation,
        "name": "Анна",
        "phone": "89145551234",
        "city_id": "bratsk",
    }
    fields.update(kw)
    return NewRequest(**fields)  # type: ignore[arg-type]


async def test_add_get_find_change_and_access(board: RequestBoard, clock: Clock) -> None:
    first = await board.add(lead(), by="bot")
    clock.at += timedelta(minutes=1)
    second = await board.add(lead("rest:b:b", kind="callback", city_id="chita", phone=""), by="bot")
    assert second.id > first.id
    assert second.phone is None
    assert [h.action for h in first.history] == ["created"]
    assert await board.get(first.id) == first
    assert await board.get(first.id + 100) is None
    assert [r.id for r in await board.find()] == [second.id, first.id]
    assert [r.id for r in await board.find(kind="callback")] == [second.id]
    assert [r.id for r in await board.find(city_id="bratsk", status="new")] == [first.id]
    clock.at += timedelta(minutes=1)
    change = await board.change(first.id, by="anna", status="in_progress", assignee="anna")
    assert change is not None
    assert [(e.action, e.before, e.after) for e in change.changed] == [
        ("status", "new", "in_progress"), ("assignee", None, "anna"),
    ]  # fmt: skip
    assert change.record.updated_at == clock.at
    assert await board.get(first.id) == change.record
    same = await board.change(first.id, by="anna", status="in_progress")
    assert same is not None
    assert same.changed == ()
    cleared = await board.change(first.id, by="anna", assignee=None, comment="перезвонить")
    assert cleared is not None
    assert (cleared.record.assignee, cleared.record.comment) == (None, "перезвонить")
    assert await board.change(999, by="anna", status="done") is None
    opened = await board.record_access([999, first.id, second.id], by="sveta", action="exported")
    assert opened is not None
    assert opened.id == first.id
    assert opened.history[-1].action == "exported"
    assert await board.record_access([999], by="sveta", action="opened") is None


async def test_webhook_calls_go_out_in_order_per_record(board: RequestBoard, clock: Clock) -> None:
    one = await board.add(lead(), by="bot")
    await board.change(one.id, by="anna", status="done")
    two = await board.add(lead("rest:b:b"), by="bot")
    assert await board.undelivered() == 3
    assert await board.next_delivery_at() == T0
    due = await board.deliveries_due(clock.at, 10)
    assert [d.request_id for d in due] == [one.id, two.id]  # one's second call waits
    body = json.loads(due[0].body)
    assert (body["event"], body["request"]["phone"]) == ("created", "89145551234")
    assert body["delivery_id"] == due[0].id
    await board.delivery_failed(due[0].id, "HTTP 500", clock.at + timedelta(minutes=5))
    await board.delivery_done(due[1].id)
    assert await board.undelivered() == 2
    assert await board.next_delivery_at() == clock.at + timedelta(minutes=5)
    assert await board.deliveries_due(clock.at, 10) == []
    clock.at += timedelta(minutes=5)
    again = await board.deliveries_due(clock.at, 10)
    assert [(d.id, d.attempts, d.body) for d in again] == [(due[0].id, 1, due[0].body)]
    await board.delivery_done(again[0].id)
    after = await board.deliveries_due(clock.at, 10)
    assert [json.loads(d.body)["event"] for d in after] == ["updated"]
    await board.delivery_done(after[0].id)
    assert await board.undelivered() == 0
    assert await board.next_delivery_at() is None


async def test_legacy_rows_are_taken_over_once(board: RequestBoard) -> None:
    taken = await board.add(lead(), by="bot")  # holds id 1
    rows = [
        StoredRequest(id=1, kind="callback", conversation_id="rest:x:x", created_at=T0,
                      data={"name": "Борис", "phone": "89140000000", "street": "Ленина",
                            "house": "5", "status": "planned"}),
        StoredRequest(id=7, kind="connection", conversation_id="rest:y:y", created_at=T0,
                      data={"name": "Вера"}),
    ]  # fmt: skip
    assert await board.import_legacy(rows) == 2
    assert await board.import_legacy(rows) == 0
    seven = await board.get(7)
    assert seven is not None
    assert seven.name == "Вера"
    moved = [r for r in await board.find() if r.name == "Борис"]
    assert len(moved) == 1
    assert moved[0].id not in (taken.id, 7)
    assert moved[0].address == "Ленина, 5"
    assert moved[0].details == {"house_status": "planned"}
    newer = await board.add(lead(), by="bot")
    assert newer.id > 7


async def test_retention_keeps_open_and_undelivered_records(
    board: RequestBoard, clock: Clock
) -> None:
    old = await board.add(lead(attachments=({"file_id": FILE_ID},)), by="bot")
    still_open = await board.add(lead("rest:b:b"), by="bot")
    await board.change(old.id, by="anna", status="done")
    assert await board.files_in_use() == {FILE_ID}
    cutoff = T0 + timedelta(days=1)
    # The CRM has not heard of it yet: kept.
    assert (await board.delete_older_than(cutoff))["requests"] == 0
    while due := await board.deliveries_due(clock.at, 10):
        for d in due:
            await board.delivery_done(d.id)
    assert await board.delete_older_than(cutoff, dry_run=True) == {
        "requests": 1, "request_webhooks": 3,
    }  # fmt: skip
    assert await board.get(old.id) is not None
    assert await board.delete_older_than(cutoff) == {"requests": 1, "request_webhooks": 3}
    assert await board.get(old.id) is None
    assert await board.get(still_open.id) is not None
    assert await board.files_in_use() == set()
    assert await board.delete_older_than(cutoff) == {"requests": 0, "request_webhooks": 0}


async def test_two_processes_number_and_take_over_once(make_board: Make) -> None:
    one, two = make_board(), make_board()
    added = await asyncio.gather(*((one, two)[n % 2].add(lead(), by="bot") for n in range(20)))
    assert len({r.id for r in added}) == 20
    rows = [StoredRequest(id=n, kind="callback", conversation_id=f"rest:{n}:{n}", created_at=T0,
                          data={}) for n in range(1, 30)]  # fmt: skip
    counts = await asyncio.gather(one.import_legacy(rows), two.import_legacy(rows))
    assert sum(counts) == 29
    assert len(await one.find()) == 49


async def test_two_senders_never_take_the_same_call(make_board: Make, clock: Clock) -> None:
    one = make_board()
    if isinstance(one, SqliteRequestBoard):
        pytest.skip("one process per SQLite file: its single sender needs no claim")
    two = make_board()
    for n in range(10):
        await one.add(lead(f"rest:{n}:{n}"), by="bot")
    batches = await asyncio.gather(
        *((one, two)[n % 2].deliveries_due(clock.at, 3) for n in range(8))
    )
    taken = [d.id for batch in batches for d in batch]
    assert sorted(taken) == sorted(set(taken))
    assert len(taken) == 10
    # A sender that died: its claim runs out and another process sends the call.
    clock.at += timedelta(minutes=2)
    assert len(await two.deliveries_due(clock.at, 20)) == 10


def test_every_method_of_the_interface_is_covered_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    methods = [
        name
        for name, member in inspect.getmembers(RequestBoard)
        if getattr(member, "__isabstractmethod__", False)
        or name in ("delete_older_than", "files_in_use")
    ]
    assert [m for m in methods if f".{m}(" not in source] == []
