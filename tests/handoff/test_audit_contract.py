"""The audit log's contract, on both backends (SQLite file, shared Redis): what is written, how
``find`` filters and orders, what retention deletes. The HTTP side (supervisors only, CSV) is in
test_operator_security.py and test_audit_console_e2e.py."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.handoff.audit import AuditLog, SqliteAuditLog
from bot.handoff.redis_audit import RedisAuditLog
from bot.storage.health import StoreHealth, StoreUnavailable
from bot.storage.redis.client import connect
from tests.redis_server import RedisServer

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "redis"])
async def audit(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[AuditLog]:
    if request.param == "sqlite":
        opened: AuditLog = SqliteAuditLog(tmp_path / "audit.sqlite3", clock=clock)
        yield opened
        await opened.close()
        return
    client = connect(request.getfixturevalue("redis_url"))
    opened = RedisAuditLog(client, clock=clock)
    yield opened
    await opened.close()
    await client.aclose()


def test_every_abstract_method_is_covered_here() -> None:
    """A method added to the interface must be added to this contract too."""
    source = Path(__file__).read_text(encoding="utf-8")
    abstract = AuditLog.__abstractmethods__ | {"record", "delete_older_than"}
    for name in sorted(abstract):
        public = name.lstrip("_")
        covered = {"write": "record", "delete_before": "delete_older_than"}.get(public, public)
        assert f".{covered}(" in source, name
    assert not inspect.isabstract(SqliteAuditLog)
    assert not inspect.isabstract(RedisAuditLog)


async def test_an_entry_reads_back_as_written(audit: AuditLog) -> None:
    await audit.record(
        "customer.card", login="anna", target="750012345678", address="198.51.100.7",
        details={"contract": "750012345678", "n": 3, "ok": True, "none": None},
    )  # fmt: skip
    [entry] = await audit.find()
    assert entry.id > 0
    assert entry.at == 1_800_000_000.0
    assert (entry.login, entry.action, entry.target, entry.address) == (
        "anna", "customer.card", "750012345678", "198.51.100.7",
    )  # fmt: skip
    assert dict(entry.details) == {"contract": "750012345678", "n": 3, "ok": True, "none": None}
    assert entry.as_json()["at"] == "2027-01-15T08:00:00+00:00"


async def test_secrets_are_dropped_and_values_cut(audit: AuditLog) -> None:
    await audit.record(
        "login", login="anna\x00" + "x" * 1000, target=None, address=None,
        details={"password": "hunter2", "Token": "t", "csrf": "c", "code": "1", "why": "y" * 999},
    )  # fmt: skip
    [entry] = await audit.find()
    assert set(entry.details) == {"why"}
    assert len(entry.details["why"]) == 300
    assert entry.login.startswith("anna")
    assert "\x00" not in entry.login
    assert len(entry.login) == 300
    assert (entry.target, entry.address) == (None, None)


async def test_newest_first_ties_by_id_and_limit(audit: AuditLog, clock: Clock) -> None:
    for n in range(5):
        await audit.record("login", login=f"op{n}")  # all at the same moment
    clock.now += 1
    await audit.record("logout", login="op0")
    entries = await audit.find()
    assert [e.login for e in entries] == ["op0", "op4", "op3", "op2", "op1", "op0"]
    assert [e.action for e in entries][:2] == ["logout", "login"]
    assert [e.id for e in entries[1:]] == sorted((e.id for e in entries[1:]), reverse=True)
    assert [e.login for e in await audit.find(limit=2)] == ["op0", "op4"]


async def test_filters_by_login_action_family_and_since(audit: AuditLog, clock: Clock) -> None:
    written = [
        ("login", "anna"), ("conversation.open", "anna"), ("conversation.claim", "boris"),
        ("customer.card", "anna"), ("conversation.close", "anna"), ("login_failed", "boris"),
    ]  # fmt: skip
    for action, login in written:
        await audit.record(action, login=login)
        clock.now += 10

    def seen(entries: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
        return [(e.action, e.login) for e in reversed(entries)]

    assert seen(await audit.find(login="anna")) == [w for w in written if w[1] == "anna"]
    assert seen(await audit.find(login="")) == written  # empty: no filter
    assert seen(await audit.find(action="login")) == [("login", "anna")]
    family = [w for w in written if w[0].startswith("conversation.")]
    assert seen(await audit.find(action="conversation.*")) == family
    assert seen(await audit.find(action="conversation.")) == family
    assert seen(await audit.find(action=("login", "login_failed", "logout"))) == [
        ("login", "anna"), ("login_failed", "boris"),
    ]  # fmt: skip
    assert seen(await audit.find(action=["customer.*", "login"])) == [
        ("login", "anna"), ("customer.card", "anna"),
    ]  # fmt: skip
    assert seen(await audit.find(login="anna", action="conversation.*")) == [
        ("conversation.open", "anna"), ("conversation.close", "anna"),
    ]  # fmt: skip
    assert seen(await audit.find(action="request.*")) == []
    assert seen(await audit.find(action="nothing")) == []
    since = 1_800_000_000.0 + 30  # inclusive
    assert seen(await audit.find(since=since)) == written[3:]
    assert seen(await audit.find(since=since, login="anna", limit=1)) == [written[-2]]
    assert seen(await audit.find(action="conversation.*", limit=2)) == family[-2:]


async def test_delete_older_than_removes_only_old_entries(audit: AuditLog, clock: Clock) -> None:
    await audit.record("login", login="anna")
    await audit.record("conversation.open", login="anna")
    clock.now += 10 * DAY
    await audit.record("login", login="anna")
    clock.now += 20 * DAY
    assert await audit.delete_older_than(30) == 0  # exactly 30 days old: kept
    clock.now += 1
    assert await audit.delete_older_than(30) == 2
    [kept] = await audit.find()
    assert kept.at == 1_800_000_000.0 + 10 * DAY
    assert await audit.find(action="conversation.*") == []
    assert await audit.find(login="anna", action="login") == [kept]
    assert await audit.delete_older_than(30) == 0


async def test_many_writers_at_once_lose_nothing(audit: AuditLog) -> None:
    # 80: within the shared client's pool (100 connections), as the gateway's callers are.
    await asyncio.gather(*(audit.record("login", login=f"op{n % 7}") for n in range(80)))
    entries = await audit.find(limit=1000)
    assert len(entries) == 80
    assert len({e.id for e in entries}) == 80
    assert len(await audit.find(login="op3", action="login")) == 11


async def test_redis_gone_is_store_unavailable_and_reported(own_redis: RedisServer) -> None:
    client = connect(own_redis.url)
    health = StoreHealth()
    audit = RedisAuditLog(client, health=health)
    try:
        await audit.record("login", login="anna")
        own_redis.stop()
        with pytest.raises(StoreUnavailable):
            await audit.record("logout", login="anna")
        with pytest.raises(StoreUnavailable):
            await audit.find()
        assert health.failing
    finally:
        await client.aclose()
