"""Every ``OperationLog`` method on both backends (SQLite, Redis); one begin wins across two
processes."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.selfservice.oplog import OperationLog, OperationRecord, SqliteOperationLog
from bot.selfservice.redis_oplog import RedisOperationLog
from bot.storage.redis.client import connect

T0 = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
Make = Callable[[], OperationLog]


@pytest.fixture(params=["sqlite", "redis"])
async def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Make]:
    made: list[OperationLog] = []
    clients = []

    def make() -> OperationLog:
        log: OperationLog
        if request.param == "sqlite":
            log = SqliteOperationLog(tmp_path / "ops.sqlite3")
        else:
            client = connect(request.getfixturevalue("redis_url"))  # emptied for each test
            clients.append(client)
            log = RedisOperationLog(client)
        made.append(log)
        return log

    yield make
    for log in made:
        await log.close()
    for client in clients:
        await client.aclose()


def op(
    op_id: str, kind: str = "promised_payment", at: datetime = T0, **kw: object
) -> OperationRecord:
    return OperationRecord(id=op_id, contract="750012345678", kind=kind, by="bot", at=at, **kw)  # type: ignore[arg-type]


async def test_begin_finish_get_supersede_and_list(make_log: Make) -> None:
    log = make_log()
    first = op("a", details={"days": 3}, conversation_id="rest:a:a")
    assert await log.begin(first) == first
    assert await log.begin(op("a", kind="pause")) == first  # a repeat: the earlier entry
    await log.finish("a", "done", {"until": "2026-03-13"})
    await log.finish("missing", "done")
    got = await log.get("a")
    assert got is not None
    assert (got.status, dict(got.details)) == ("done", {"days": 3, "until": "2026-03-13"})
    assert await log.get("missing") is None
    await log.begin(op("b"))
    await log.begin(op("c", status="failed"))
    await log.begin(op("d", kind="pause"))
    assert await log.supersede("750012345678", "promised_payment", keep="c") == 1
    assert [r.id for r in await log.for_contract("750012345678")] == ["d", "c", "b", "a"]
    assert [r.id for r in await log.for_contract("750012345678", limit=2)] == ["d", "c"]
    statuses = {r.id: r.status for r in await log.for_contract("750012345678")}
    assert statuses == {"a": "done", "b": "superseded", "c": "failed", "d": "pending"}
    assert await log.for_contract("other") == []


async def test_old_entries_are_deleted_but_pending_ones_kept(make_log: Make) -> None:
    log = make_log()
    await log.begin(op("old"))
    await log.finish("old", "done")
    await log.begin(op("stuck"))
    await log.begin(op("new", at=T0 + timedelta(days=10)))
    await log.finish("new", "done")
    cutoff = T0 + timedelta(days=1)
    assert await log.delete_older_than(cutoff, dry_run=True) == 1
    assert await log.delete_older_than(cutoff) == 1
    assert await log.get("old") is None
    assert await log.get("stuck") is not None
    assert [r.id for r in await log.for_contract("750012345678")] == ["new", "stuck"]


async def test_two_processes_begin_an_operation_once(make_log: Make) -> None:
    one, two = make_log(), make_log()
    results = await asyncio.gather(
        *((one, two)[n % 2].begin(op("same", details={"n": n})) for n in range(10))
    )
    assert len({tuple(r.details.items()) for r in results}) == 1
    assert len(await one.for_contract("750012345678")) == 1


def test_every_method_of_the_interface_is_covered_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    methods = [
        name
        for name, member in inspect.getmembers(OperationLog)
        if getattr(member, "__isabstractmethod__", False) or name == "delete_older_than"
    ]
    assert [m for m in methods if f".{m}(" not in source] == []
