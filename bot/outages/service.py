"""The outage board: what the network operations centre posted or the catalog listed, and the
notices that follow. Fan-outs run in the background so the API answers at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta

from bot.outages.model import Outage
from bot.outages.notices import OutageNotices
from bot.outages.store import OutageStore
from bot.periodic import Periodic

log = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0  # how often planned works past their end are closed (and told so)
# Planned works that ended longer ago than this are closed quietly: "the works are over" about a
# work from last month (an old catalog row, a long downtime) would only confuse.
ANNOUNCE_END_WITHIN = timedelta(hours=1)


class OutageService:
    def __init__(
        self,
        *,
        store: OutageStore,
        notices: OutageNotices | None,
        seed: Sequence[Outage] = (),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self._notices = notices
        self._seed = seed
        self._clock = clock or (lambda: datetime.now(UTC))
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper = Periodic(
            "outage-sweeper",
            self.sweep,
            every=SWEEP_SECONDS,
            failure="outages: the sweep of finished planned works failed",
        )
        self._seeded = False

    def attach_notices(self, notices: OutageNotices) -> None:
        """Notices need the customer notices, built after the dialog engine that reads the
        board: the board comes first, its notices are attached when wiring is done."""
        self._notices = notices

    def now(self) -> datetime:
        return self._clock()

    async def _ensure_seeded(self) -> None:
        # On first use, not only in start(): a board used without the background work (the
        # terminal chat, tests) still knows the catalog's outages.
        if self._seeded:
            return
        self._seeded = True
        added = await self.store.seed(self._seed)
        if added:
            log.info("outages: %d added from the catalog", added)

    async def start(self) -> None:
        await self._ensure_seeded()
        self._sweeper.start()

    async def close(self) -> None:
        await self._sweeper.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Wait for the fan-outs started so far (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _background(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, outage: Outage, event: str) -> None:
        if self._notices is None:
            return
        try:
            await self._notices.announce(outage, event)
        except Exception:  # a failed fan-out is logged; the outage itself is recorded
            log.exception("outage %s: notices (%s) failed", outage.outage_id, event)

    async def current(self, city_id: str | None = None) -> list[Outage]:
        """In force now, or planned and not begun yet."""
        await self._ensure_seeded()
        now = self._clock()
        return [
            o for o in await self.store.open_outages(city_id) if o.in_force(now) or o.upcoming(now)
        ]

    async def get(self, outage_id: str) -> Outage | None:
        await self._ensure_seeded()
        return await self.store.get(outage_id)

    async def in_force(self, city_id: str) -> list[Outage]:
        await self._ensure_seeded()
        now = self._clock()
        return [o for o in await self.store.open_outages(city_id) if o.in_force(now)]

    async def post(self, outage: Outage) -> tuple[Outage, bool]:
        """Create or update; (the stored record, created). A new (or reopened) outage that is in
        force or still to come is announced to the affected customers."""
        await self._ensure_seeded()
        previous = await self.store.upsert(outage)
        created = previous is None or previous.ended_at is not None
        now = self._clock()
        if created and (outage.in_force(now) or outage.upcoming(now)):
            self._background(self._announce(outage, "posted"))
        return outage, created

    async def end(self, outage_id: str) -> tuple[Outage, bool] | None:
        """Close it now; (the record, whether this call ended it), None if unknown."""
        await self._ensure_seeded()
        found = await self.store.close_outage(outage_id, self._clock())
        if found is not None and found[1]:
            self._background(self._announce(found[0], "ended"))
        return found

    async def sweep(self) -> int:
        """Close planned works whose end has passed and tell their customers; how many."""
        await self._ensure_seeded()
        now = self._clock()
        done = 0
        for outage in await self.store.open_outages():
            if outage.kind == "planned" and outage.expected_end and outage.expected_end <= now:
                found = await self.store.close_outage(outage.outage_id, outage.expected_end)
                if found is None or not found[1]:
                    continue
                done += 1
                if now - outage.expected_end <= ANNOUNCE_END_WITHIN:
                    self._background(self._announce(found[0], "ended"))
        return done
