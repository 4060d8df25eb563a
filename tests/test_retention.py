"""Retention (BOT_RETENTION_DAYS): what is older than N days goes, what is newer or still open
stays, files leave the disk, each run is counted on /metrics, a dry run changes nothing.

Conversations are made by customers over the REST channel; ages are set by rewriting the
stored times (SQL on the real files, mtime on the real files on disk), as N days passing would.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.__main__ import main
from bot.config import Settings
from bot.handoff.audit import SqliteAuditLog
from bot.intents.nlu import Nlu
from bot.models import ConversationKey
from bot.outages.model import Outage
from bot.requests.model import NewRequest
from bot.retention import METRIC, Retention, build_retention
from bot.selfservice.oplog import OperationRecord
from bot.services import Services, build_services
from bot.storage.files import FilesystemFileStore
from bot.visits.store import NewVisit
from tests.conftest import Say

DAYS = 30
OLD = datetime.now(UTC) - timedelta(days=DAYS + 10)
IVANOV = "750012345678"


def rest_id(sender: str) -> str:
    return ConversationKey("rest", sender, sender).id


def age(path: Path, sql: str, *args: Any) -> None:
    """Rewrite stored times as if the rows were written at ``OLD``."""
    db = sqlite3.connect(path)
    try:
        db.execute(sql, (OLD.isoformat(), *args))
        db.commit()
    finally:
        db.close()


def age_file(path: Path) -> None:
    stamp = OLD.timestamp()
    os.utime(path, (stamp, stamp))


def table_counts(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        db.close()


def everything(settings: Settings) -> dict[str, Any]:
    """Every row count of every store and every file under var/: a dry run must not move any."""
    state: dict[str, Any] = {}
    for path in sorted(settings.var_dir.rglob("*")):
        if path.suffix == ".sqlite3":
            state[str(path)] = table_counts(path)
        elif path.is_file() and "-wal" not in path.name and "-shm" not in path.name:
            state[str(path)] = "file"
    return state


@pytest.fixture
async def retention(services: Services) -> Retention:
    found = build_retention(services, days=DAYS)
    assert found is not None
    return found


async def chat(say: Say, sender: str) -> str:
    await say(sender, "Здравствуйте, сколько стоит подключение?")
    return rest_id(sender)


async def test_old_transcripts_and_idle_conversations_go_new_and_open_ones_stay(
    client: TestClient, say: Say, services: Services, settings: Settings, retention: Retention
) -> None:
    old, new, open_ = [await chat(say, s) for s in ("ret-old", "ret-new", "ret-open")]
    await services.store.link_identity(ConversationKey.parse(old), IVANOV, "test")
    await services.store.queue_put(open_, "rest", "support", "test")  # with people
    gateway = settings.sqlite_path
    for conversation_id in (old, open_):
        age(gateway, "UPDATE messages SET at = ? WHERE conversation_id = ?", conversation_id)
        age(gateway, "UPDATE conversations SET updated_at = ? WHERE id = ?", conversation_id)
    age(gateway, "UPDATE identity_links SET linked_at = ?")
    age(gateway, "UPDATE inbox SET received_at = ?")

    run = await retention.run()

    assert await services.store.messages(old) == []
    assert await services.store.load_conversation(ConversationKey.parse(old)) is None
    assert await services.store.identity(ConversationKey.parse(old)) is None
    assert await services.store.messages(new)  # newer than the window
    assert await services.store.load_conversation(ConversationKey.parse(new)) is not None
    assert await services.store.messages(open_)  # open: kept whatever its age
    assert await services.store.queue_get(open_) is not None
    assert run.counts["messages"] >= 2
    assert run.counts["conversations"] == 1
    assert run.counts["identity_links"] == 1
    # Counted on /metrics, by kind.
    metrics = await (await client.get("/metrics")).text()
    line = f'isp_bot_{METRIC}{{kind="messages"}} {run.counts["messages"]}'
    assert line in metrics
    # The customer who comes back starts afresh and is answered.
    answer = await say("ret-old", "Здравствуйте")
    assert answer["replies"]


async def test_a_dry_run_counts_and_changes_nothing(
    say: Say, services: Services, settings: Settings, retention: Retention
) -> None:
    old = await chat(say, "dry-old")
    age(settings.sqlite_path, "UPDATE messages SET at = ? WHERE conversation_id = ?", old)
    age(settings.sqlite_path, "UPDATE conversations SET updated_at = ? WHERE id = ?", old)
    ref = await services.files.put(b"%PDF-1.4 old", "old.pdf", "application/pdf")
    folder = Path(getattr(services.files, "folder"))  # noqa: B009 - FilesystemFileStore
    for suffix in (".bin", ".json"):
        age_file(folder / f"{ref.file_id}{suffix}")
    before = everything(settings)

    dry = await retention.run(dry_run=True)

    assert everything(settings) == before
    assert await services.store.messages(old)
    assert services.metrics.value(METRIC, kind="messages") == 0  # a dry run is not counted
    real = await retention.run()
    assert dry.counts["messages"] == real.counts["messages"] > 0
    assert dry.counts["conversations"] == real.counts["conversations"] == 1
    assert dry.counts["files"] == real.counts["files"] == 1


async def test_old_files_leave_the_disk_unless_something_kept_names_them(
    say: Say, services: Services, settings: Settings, retention: Retention
) -> None:
    files = services.files
    assert isinstance(files, FilesystemFileStore)
    old = await files.put(b"%PDF-1.4 old invoice", "invoice.pdf", "application/pdf")
    new = await files.put(b"%PDF-1.4 new invoice", "invoice.pdf", "application/pdf")
    named = await files.put(b"\x89PNG old photo", "photo.png", "image/png")
    # A complaint still open carries the photo.
    await services.requests.create(
        NewRequest("complaint", rest_id("files"), attachments=({"file_id": named.file_id},))
    )
    uploads = settings.var_dir / "uploads"
    notifications = settings.var_dir / "notifications"
    for folder in (uploads, notifications):
        folder.mkdir(parents=True, exist_ok=True)
    old_upload, new_upload = uploads / ("a" * 32 + ".png"), uploads / ("b" * 32 + ".png")
    old_upload.write_bytes(b"x")
    new_upload.write_bytes(b"x")
    old_sms = notifications / "20261001T000000-abcd.sms.json"
    old_sms.write_text('{"to": "+79140000001", "text": "код 123456"}')
    link_key = files.folder / "link.key"
    link_key.write_bytes(os.urandom(32))
    for path in (old_upload, old_sms, link_key):
        age_file(path)
    for ref in (old, named):
        for suffix in (".bin", ".json"):
            age_file(files.folder / f"{ref.file_id}{suffix}")

    run = await retention.run()

    assert await files.get(old.file_id) is None
    assert not (files.folder / f"{old.file_id}.bin").exists()
    assert await files.get(new.file_id) is not None
    assert await files.get(named.file_id) is not None  # the open complaint still shows it
    assert not old_upload.exists()
    assert new_upload.exists()
    assert not old_sms.exists()
    assert link_key.exists()  # the key of the signed links is not a customer's file
    assert (run.counts["files"], run.counts["uploads"], run.counts["notifications"]) == (1, 1, 1)


async def test_finished_records_go_open_ones_stay(
    services: Services, settings: Settings, retention: Retention
) -> None:
    var = settings.var_dir
    desk = services.requests
    done = await desk.create(NewRequest("callback", rest_id("a"), phone="+79140000001"))
    await desk.change(done.id, by="op", status="done")
    waiting = await desk.create(NewRequest("callback", rest_id("b"), phone="+79140000002"))
    age(var / "requests.sqlite3", "UPDATE requests SET updated_at = ?, created_at = ?", OLD)

    oplog = services.oplog
    for op_id, status in (("op-done", "done"), ("op-pending", "pending")):
        await oplog.begin(OperationRecord(op_id, IVANOV, "promised_payment", "bot", OLD))
        if status != "pending":
            await oplog.finish(op_id, "done")

    assert services.visits is not None
    visits = services.visits.store
    start = datetime.now(UTC) + timedelta(days=2)

    def visit(op: str, at: datetime) -> NewVisit:
        return NewVisit(op, IVANOV, rest_id("v"), "chita", at, at + timedelta(hours=2),
                        "no internet", "ул. Бутина, 10", Decimal(0))  # fmt: skip

    ahead = (await visits.book(visit("ahead", start), crews=5, at=OLD)).visit  # type: ignore[union-attr]
    past = (await visits.book(visit("past", OLD), crews=5, at=OLD)).visit  # type: ignore[union-attr]
    cancelled = (await visits.book(visit("cancel", start), crews=5, at=OLD)).visit  # type: ignore[union-attr]
    await visits.close(cancelled.id, "cancelled", at=OLD)

    assert services.outages is not None
    outages = services.outages.store
    accident = Outage("ret-1", "chita", "ул. Ленина", (), ("internet",), "accident", OLD, None, "r")
    await outages.upsert(accident)
    await outages.first_notice("ret-1", IVANOV, "posted")
    await outages.close_outage("ret-1", OLD)
    await services.outages.current()  # the catalog's outages are on the board
    catalog_one = next(iter(retention.outage_keep))  # closed, but the catalog would seed it again
    assert await outages.close_outage(catalog_one, OLD) is not None
    ongoing = replace(accident, outage_id="ret-2")
    await outages.upsert(ongoing)
    await outages.first_notice("ret-2", IVANOV, "posted")

    clock = [time.time() - (DAYS + 10) * 86400]
    audit = SqliteAuditLog(var / "audit-test.sqlite3", clock=lambda: clock[0])
    retention.audit = audit
    await audit.record("login", login="anna")
    clock[0] = time.time()
    await audit.record("login", login="anna")

    run = await retention.run()

    assert await desk.board.get(done.id) is None
    assert await desk.board.get(waiting.id) is not None  # open, however old
    assert await oplog.get("op-done") is None
    assert await oplog.get("op-pending") is not None
    assert await visits.get(ahead.id) is not None
    assert await visits.get(past.id) is None
    assert await visits.get(cancelled.id) is None
    assert await outages.get("ret-1") is None
    assert await outages.get(catalog_one) is not None
    assert await outages.get("ret-2") is not None
    assert not await outages.first_notice("ret-2", IVANOV, "posted")  # still told once only
    assert len(await audit.find()) == 1
    await audit.close()
    assert run.counts["requests"] == 1
    assert run.counts["operations"] == 1
    assert run.counts["visits"] == 2
    assert run.counts["outages"] == 1
    assert run.counts["outage_notices"] == 1
    assert run.counts["audit"] == 1
    for kind in ("requests", "operations", "visits", "outages", "audit"):
        assert services.metrics.value(METRIC, kind=kind) == run.counts[kind]


@pytest.fixture
async def retaining(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[Services]:
    built = build_services(replace(settings, retention_days=DAYS), nlu=demo_nlu)
    yield built
    await built.close()


async def test_it_runs_at_start_up_when_the_setting_is_set(
    retaining: Services, settings: Settings
) -> None:
    old_id = rest_id("startup")
    await retaining.store.append_message(old_id, "customer", "старое сообщение")
    age(settings.sqlite_path, "UPDATE messages SET at = ?")
    await retaining.start()  # what the server does at start-up
    assert retaining.retention is not None
    for _ in range(500):  # the first run is a background task: wait for it, not for a clock
        if retaining.metrics.value(METRIC, kind="messages"):
            break
        await asyncio.sleep(0.01)
    assert retaining.metrics.value(METRIC, kind="messages") == 1
    assert await retaining.store.messages(old_id) == []


async def test_without_the_setting_nothing_is_deleted(
    client: TestClient, say: Say, services: Services, settings: Settings
) -> None:
    old = await chat(say, "keep")
    age(settings.sqlite_path, "UPDATE messages SET at = ?")
    assert services.retention is None
    assert build_retention(services) is None
    assert await services.store.messages(old)


def test_the_command_line_runs_it_and_a_dry_run_deletes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_nlu: Nlu,
    capsys: pytest.CaptureFixture[str],
) -> None:
    var = tmp_path / "var"
    monkeypatch.setenv("BOT_VAR_DIR", str(var))
    monkeypatch.setattr("bot.services.build_nlu", lambda *a, **k: demo_nlu)

    async def seed() -> None:
        services = build_services(replace(Settings(), var_dir=var), nlu=demo_nlu)
        await services.store.append_message(rest_id("cli"), "customer", "старое")
        await services.close()

    asyncio.run(seed())
    age(var / "gateway.sqlite3", "UPDATE messages SET at = ?")
    assert main(["retention", "run", "--days", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete" in out
    assert "messages           1" in out
    assert table_counts(var / "gateway.sqlite3")["messages"] == 1
    assert main(["retention", "run"]) == 2  # neither BOT_RETENTION_DAYS nor --days
    assert main(["retention", "run", "--days", "30"]) == 0
    assert "deleted" in capsys.readouterr().out
    assert table_counts(var / "gateway.sqlite3")["messages"] == 0


async def test_a_long_history_goes_in_batches_all_of_it(
    services: Services, settings: Settings, retention: Retention
) -> None:
    """More old lines than one batch (2000): all of them go, batch after batch."""
    await services.store.append_message(rest_id("long"), "customer", "первое")
    db = sqlite3.connect(settings.sqlite_path)
    db.executemany(
        "INSERT INTO messages (conversation_id, sender, text, buttons, meta, at)"
        " VALUES (?, 'customer', 'старое', '[]', '{}', ?)",
        [(rest_id("long"), OLD.isoformat())] * 4500,
    )
    db.commit()
    db.close()
    run, answered = await asyncio.gather(
        retention.run(), services.store.messages(rest_id("long"), limit=1)
    )
    assert run.counts["messages"] == 4500
    assert answered  # the store answers while a run is going on
    assert [m.text for m in await services.store.messages(rest_id("long"))] == ["первое"]
