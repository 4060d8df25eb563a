"""Retention: with ``BOT_RETENTION_DAYS=N`` what the gateway keeps about people is deleted once it
is older than N days: transcripts, conversations with no activity since, answered inbound and
sent outbound rows, files sent and received, finished requests, the operations log, visits that
are over, closed outages and who was told of them, the operators' audit log.

It runs once at start-up and then daily (a background task of the services), and on demand
with ``python -m bot retention run [--days N] [--dry-run]``. Each run is logged with counts
only and counted on ``/metrics`` as ``retention_deleted_total{kind}``.

Never deleted, whatever their age: an open conversation (waiting in a queue or with an
operator) with its transcript and notes, an open request (or a closed one the CRM has not been
told of yet), a booked visit whose window is still ahead, an outage still in force, a file that
something kept still names. Unset, nothing is ever deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot.metrics import Metrics
from bot.outages.store import OutageStore
from bot.periodic import Periodic
from bot.requests.store import RequestBoard
from bot.selfservice.oplog import OperationLog
from bot.storage.base import Store
from bot.storage.files import FileStore
from bot.visits.store import VisitStore

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

DAY = 86400.0
METRIC = "retention_deleted_total"
# The label values of the metric: our own vocabulary, never data.
KINDS = (
    "messages", "conversations", "identity_links", "unreachable", "notes", "csat", "inbox",
    "unparsed", "outbox", "dedupe", "receipts", "legacy_requests", "requests",
    "request_webhooks", "operations", "visits", "outages", "outage_notices", "files",
    "uploads", "notifications", "audit",
)  # fmt: skip


class AuditTrail(Protocol):
    """The operators' audit log (bot/handoff/audit.py) as far as retention needs it."""

    async def delete_older_than(self, days: float) -> int: ...


def register_metrics(metrics: Metrics) -> None:
    metrics.counter(METRIC, "Records and files deleted by the retention task, by kind")


@dataclass(frozen=True, slots=True)
class RetentionRun:
    cutoff: datetime
    dry_run: bool
    counts: Mapping[str, int]
    failed: tuple[str, ...] = ()  # parts that raised (logged); the others still ran

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        found = ", ".join(f"{kind} {n}" for kind, n in self.counts.items() if n) or "nothing"
        failed = f"; failed: {', '.join(self.failed)}" if self.failed else ""
        return f"{found}{failed}"


@dataclass
class Retention:
    days: int
    store: Store
    files: FileStore
    board: RequestBoard
    oplog: OperationLog
    visits: VisitStore | None = None
    outages: OutageStore | None = None
    outage_keep: Set[str] = frozenset()  # the catalog's outages: seeded again if deleted
    folders: Mapping[str, Path] = field(default_factory=dict)  # "uploads", "notifications"
    audit: AuditTrail | None = None
    metrics: Metrics | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    every: float = DAY
    _daily: Periodic | None = field(default=None, init=False, repr=False)

    async def run(self, *, dry_run: bool = False) -> RetentionRun:
        """One pass over every store. ``dry_run`` counts what would go and changes nothing (the
        file counts may then be a little low: files of rows that would go count as named)."""
        cutoff = self.clock() - timedelta(days=self.days)
        counts: dict[str, int] = {}
        failed: list[str] = []

        async def part(name: str, work: Callable[[], Awaitable[Mapping[str, int] | int]]) -> None:
            try:
                found = await work()
            except Exception:
                log.exception("retention: %s failed", name)
                failed.append(name)
                return
            for kind, n in found.items() if isinstance(found, Mapping) else ((name, found),):
                counts[kind] = counts.get(kind, 0) + n

        if not dry_run:
            # Requests of older versions live in the conversation store until the board takes
            # them over (at start-up); the CLI runs without a start-up, so take them over here
            # before their old rows go.
            await part("legacy_import", self._import_legacy)
            counts.pop("legacy_import", None)
        await part("store", lambda: self.store.delete_older_than(cutoff, dry_run=dry_run))
        await part("requests", lambda: self.board.delete_older_than(cutoff, dry_run=dry_run))
        await part("operations", lambda: self.oplog.delete_older_than(cutoff, dry_run=dry_run))
        if self.visits is not None:
            visits = self.visits
            await part("visits", lambda: visits.delete_older_than(cutoff, dry_run=dry_run))
        if self.outages is not None:
            outages = self.outages
            await part(
                "outages",
                lambda: outages.delete_closed_before(
                    cutoff, keep=self.outage_keep, dry_run=dry_run
                ),
            )
        if self.audit is not None and not dry_run:  # it only deletes: not counted in a dry run
            audit = self.audit
            await part("audit", lambda: audit.delete_older_than(self.days))
        # Files last: what the rows kept above still name is kept.
        in_use: set[str] = set()
        try:
            in_use = await self.store.files_in_use(cutoff) | await self.board.files_in_use()
        except Exception:
            log.exception("retention: listing the files in use failed; no file deleted")
            failed.append("files")
        else:
            await part(
                "files",
                lambda: self.files.delete_older_than(cutoff, keep=in_use, dry_run=dry_run),
            )
            for kind, folder in self.folders.items():
                await part(
                    kind,
                    partial(asyncio.to_thread, sweep_folder, folder, cutoff, in_use, dry_run),
                )
        result = RetentionRun(cutoff, dry_run, counts, tuple(failed))
        if not dry_run and self.metrics is not None:
            for kind, n in counts.items():
                if n:
                    self.metrics.inc(METRIC, n, kind=kind)
        log.info(
            "retention (%d days)%s: %s", self.days, " dry run" if dry_run else "", result.summary()
        )
        return result

    async def _import_legacy(self) -> int:
        await self.board.import_legacy(await self.store.requests())
        return 0

    async def start(self) -> None:
        """Run now, then every day, in the background."""
        if self._daily is None:
            self._daily = Periodic(
                "retention", self.run, every=self.every, failure="retention: the run failed"
            )
        self._daily.start()

    async def close(self) -> None:
        if self._daily is not None:
            await self._daily.close()


def sweep_folder(folder: Path, cutoff: datetime, keep: Set[str], dry_run: bool) -> int:
    """Delete the files directly in ``folder`` last changed before ``cutoff``, except those
    whose name (up to the first dot) is in ``keep``; hidden files are left alone."""
    if not folder.is_dir():
        return 0
    limit = cutoff.timestamp()
    deleted = 0
    for path in folder.iterdir():
        if path.name.startswith(".") or path.name.split(".", 1)[0] in keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < limit:
                deleted += 1
                if not dry_run:
                    path.unlink()
    return deleted


def build_retention(services: Services, *, days: int | None = None) -> Retention | None:
    """The task for these services: ``days`` or else ``BOT_RETENTION_DAYS``; None when neither
    is set (everything is kept)."""
    from bot.outages.csv_file import load_outages

    days = services.settings.retention_days if days is None else days
    if days is None:
        return None
    if days < 1:
        raise ValueError("retention: at least 1 day")
    settings = services.settings
    register_metrics(services.metrics)
    outages = services.outages
    keep = {o.outage_id for o in load_outages(settings.data_dir, services.catalog)}
    return Retention(
        days=days,
        store=services.store,
        files=services.files,
        board=services.requests.board,
        oplog=services.oplog,
        visits=services.visits.store if services.visits is not None else None,
        outages=outages.store if outages is not None else None,
        outage_keep=keep,
        folders={
            "uploads": settings.var_dir / "uploads",
            "notifications": settings.var_dir / "notifications",
        },
        audit=getattr(services, "audit", None),  # the operators' audit log, when there is one
        metrics=services.metrics,
    )
