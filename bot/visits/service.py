"""Technician visits for the dialog, the operators and the reminder job: free windows, booking,
moving and cancelling (each mirrored on the request board as a ``visit`` record), and the
reminder the day before.

The time everywhere is the city's: windows are built on its calendar and clock, "завтра" is its
tomorrow, and the reminder goes on its day before. ``clock`` is injectable (tests set it).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from bot.catalog.models import Account
from bot.handoff.events import EventHub
from bot.models import Raw, Text
from bot.periodic import Periodic
from bot.requests.desk import RequestDesk, masked
from bot.requests.model import NewRequest
from bot.visits.render import fee_text, window_text
from bot.visits.schedule import CitySlots, Window, parse_window_id, window_at, windows_from
from bot.visits.store import Booked, NewVisit, Visit, VisitStore

log = logging.getLogger(__name__)

# ActionContext.extras key under which the dialog actions find the service (bot/services.py).
VISITS: Final = "visits"
# How far ahead windows are offered, in the city's days.
HORIZON_DAYS: Final = 14
# The reminder goes on the city's day before the visit, from this local hour (not at night);
# a visit booked after that moment needs none: the customer has just been told.
REMIND_FROM: Final = time(10, 0)
# A window is offered only if it starts at least this long from now: a crew needs to get there.
LEAD: Final = timedelta(hours=1)
CHECK_EVERY: Final = 60.0  # seconds between looks for reminders due

Refusal = Literal["taken", "past", "unknown", "no_visits", "not_booked"]
Tell = Callable[[str, Sequence[Text]], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal


class VisitService:
    def __init__(
        self,
        *,
        store: VisitStore,
        slots: Mapping[str, CitySlots],
        desk: RequestDesk | None = None,
        events: EventHub | None = None,
        wake_webhook: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] | None = None,
        check_every: float = CHECK_EVERY,
    ) -> None:
        self.store = store
        self.slots = slots
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._desk = desk
        self._events = events
        self._wake_webhook = wake_webhook
        self._tell: Tell | None = None
        self._reminders = Periodic(
            "visit-reminders", self.remind_due, every=check_every, failure="visit reminders failed"
        )

    def now(self) -> datetime:
        return self.clock()

    def attach_tell(self, tell: Tell) -> None:
        """Customer notices are built after the engine that needs this service."""
        self._tell = tell

    def city(self, city_id: str) -> CitySlots | None:
        return self.slots.get(city_id)

    def label(self, visit: Visit) -> Text:
        return window_text(visit.starts_at, visit.ends_at, self.now(), self._tz(visit.city_id))

    def _tz(self, city_id: str) -> ZoneInfo:
        slots = self.slots.get(city_id)
        return slots.timezone if slots else ZoneInfo("UTC")  # a city dropped from the file

    # --- windows ---------------------------------------------------------------------------
    async def free(
        self, city_id: str, *, skip: int = 0, limit: int = 6, moving: Visit | None = None
    ) -> list[Window]:
        """Windows after now with a crew still free, earliest first; the visit being moved does
        not get its own window back as a choice."""
        slots = self.slots.get(city_id)
        if slots is None:
            return []
        now = self.now()
        booked = await self.store.booked_between(
            city_id, now, now + timedelta(days=HORIZON_DAYS + 1)
        )
        held = Counter(visit.starts_at for visit in booked)
        out: list[Window] = []
        for window in windows_from(slots, now + LEAD, HORIZON_DAYS):
            if held[window.starts_at] >= slots.crews:
                continue
            if moving is not None and moving.starts_at == window.starts_at:
                continue
            if skip:
                skip -= 1
                continue
            out.append(window)
            if len(out) >= limit:
                break
        return out

    def _window(self, city_id: str, window_id: str) -> Window | Refused:
        slots = self.slots.get(city_id)
        if slots is None:
            return Refused("no_visits")
        starts_at = parse_window_id(window_id)
        window = window_at(slots, starts_at) if starts_at is not None else None
        if window is None:
            return Refused("unknown")
        if window.starts_at <= self.now():
            return Refused("past")
        return window

    # --- booking ---------------------------------------------------------------------------
    async def book(
        self, *, op: str, account: Account, conversation_id: str, window_id: str, problem: str
    ) -> Booked | Refused:
        done = await self.store.by_op(op)
        if done is not None:  # a second «Да»: what was booked then, even if the window passed
            return Booked(done, repeat=True)
        window = self._window(account.city_id, window_id)
        if isinstance(window, Refused):
            return window
        slots = self.slots[account.city_id]
        new = NewVisit(
            op=op, contract=account.contract_number, conversation_id=conversation_id,
            city_id=account.city_id, starts_at=window.starts_at, ends_at=window.ends_at,
            problem=problem, address=account.address, fee_rub=slots.fee_rub,
        )  # fmt: skip
        booked = await self.store.book(new, crews=slots.crews, at=self.now())
        if booked is None:
            return Refused("taken")
        if booked.repeat:
            return booked
        log.info("visit %d booked in %s", booked.visit.id, account.city_id)
        request_id = await self._board_record(booked.visit, phone=account.phone)
        return Booked(await self._with_request(booked.visit, request_id))

    async def move(self, visit: Visit, window_id: str, *, op: str, by: str) -> Booked | Refused:
        done = await self.store.by_op(op)
        if done is not None:
            return Booked(done, repeat=True)
        window = self._window(visit.city_id, window_id)
        if isinstance(window, Refused):
            return window
        slots = self.slots[visit.city_id]
        moved = await self.store.move(
            visit.id, window.starts_at, window.ends_at, op=op, crews=slots.crews, at=self.now()
        )
        if moved is None:
            current = await self.store.get(visit.id)
            return Refused(
                "not_booked" if current is None or current.status != "booked" else "taken"
            )
        if moved.repeat:
            return moved
        log.info("visit %d moved by %s", visit.id, by)
        # The board keeps one record per booked time: the old one is closed, a new one names the
        # new window (and the one it replaces), so operators never act on a stale time.
        await self._close_record(visit.request_id, by=by)
        # The new record keeps the phone the customer can be called on.
        old = (
            await self._desk.board.get(visit.request_id)
            if self._desk is not None and visit.request_id is not None
            else None
        )
        request_id = await self._board_record(
            moved.visit, phone=old.phone if old else None, moved_from=visit.request_id
        )
        return Booked(await self._with_request(moved.visit, request_id))

    async def cancel(self, visit_id: int, *, by: str) -> Visit | None:
        visit = await self.store.close(visit_id, "cancelled", at=self.now())
        if visit is not None:
            log.info("visit %d cancelled by %s", visit_id, by)
            await self._close_record(visit.request_id, by=by)
        return visit

    async def booked_of(self, contract: str) -> list[Visit]:
        """The customer's booked visits still ahead. One the operators closed on the board (done,
        cancelled) is closed here too, so it is neither shown nor reminded of."""
        out = []
        for visit in await self.store.booked_of(contract):
            if await self._closed_on_board(visit):
                continue
            if visit.ends_at > self.now():
                out.append(visit)
        return out

    # --- operators -------------------------------------------------------------------------
    async def operator_move(self, visit: Visit, window_id: str, *, by: str) -> Booked | Refused:
        outcome = await self.move(
            visit, window_id, op=f"operator:{by}:{visit.id}:{window_id}", by=by
        )
        if isinstance(outcome, Booked) and not outcome.repeat:
            await self._tell_customer(
                outcome.visit, Text("visits.operator.moved", {"when": self.label(outcome.visit)})
            )
        return outcome

    async def operator_cancel(self, visit: Visit, *, by: str) -> Visit | None:
        cancelled = await self.cancel(visit.id, by=by)
        if cancelled is not None:
            await self._tell_customer(
                cancelled, Text("visits.operator.cancelled", {"when": self.label(cancelled)})
            )
        return cancelled

    # --- reminders -------------------------------------------------------------------------
    async def remind_due(self) -> int:
        """Send the reminders whose moment has come; how many went. Marked before sending, in
        the visit's own row: a restart or a second worker never sends one twice (a crash in
        between loses that one reminder rather than repeating it)."""
        now = self.now()
        sent = 0
        for visit in await self.store.booked_between(None, now, now + timedelta(days=2)):
            if visit.reminded_at is not None or not self._reminder_due(visit, now):
                continue
            if await self._closed_on_board(visit):
                continue
            if not await self.store.mark_reminded(visit.id, now):
                continue
            parts = (
                Text(
                    "visits.reminder",
                    {"when": self.label(visit), "address": Raw(visit.address)},
                ),
            )
            if await self._tell_customer(visit, *parts):
                sent += 1
        return sent

    def _reminder_due(self, visit: Visit, now: datetime) -> bool:
        tz = self._tz(visit.city_id)
        day_before = visit.starts_at.astimezone(tz).date() - timedelta(days=1)
        moment = datetime.combine(day_before, REMIND_FROM, tzinfo=tz)
        return moment <= now < visit.starts_at and visit.updated_at < moment

    async def start(self) -> None:
        self._reminders.start()

    async def close(self) -> None:
        await self._reminders.close()
        await self.store.shut()

    # --- the request board -----------------------------------------------------------------
    async def _board_record(
        self, visit: Visit, *, phone: str | None = None, moved_from: int | None = None
    ) -> int | None:
        if self._desk is None:
            return None
        tz = self._tz(visit.city_id)
        start, end = visit.starts_at.astimezone(tz), visit.ends_at.astimezone(tz)
        details: dict[str, object] = {
            "visit_id": visit.id,
            "window": f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} ({tz})",
            "starts_at": start.isoformat(),
            "problem": visit.problem,
            "fee_rub": str(visit.fee_rub),
        }
        if moved_from is not None:
            details["moved_from"] = moved_from
        record = await self._desk.create(
            NewRequest(
                kind="visit", conversation_id=visit.conversation_id, contract=visit.contract,
                phone=phone, city_id=visit.city_id, address=visit.address, details=details,
            )
        )  # fmt: skip
        return record.id

    async def _with_request(self, visit: Visit, request_id: int | None) -> Visit:
        if request_id is None:
            return visit
        await self.store.set_request(visit.id, request_id)
        return await self.store.get(visit.id) or visit

    async def _close_record(self, request_id: int | None, *, by: str) -> None:
        """Closed on the board without the desk's generic "заявка отменена" notice: the customer
        hears of it from us with the window named (or has just done it themselves)."""
        if self._desk is None or request_id is None:
            return
        change = await self._desk.board.change(request_id, by=by, status="cancelled")
        if change is None or not change.changed:
            return
        if self._events is not None:
            self._events.publish(
                {"type": "request", "event": "updated", "request": masked(change.record)}
            )
        self._wake_webhook()

    async def _closed_on_board(self, visit: Visit) -> bool:
        if self._desk is None or visit.request_id is None:
            return False
        record = await self._desk.board.get(visit.request_id)
        if record is None or record.status not in ("done", "cancelled"):
            return False
        await self.store.close(
            visit.id, "done" if record.status == "done" else "cancelled", at=self.now()
        )
        return True

    async def _tell_customer(self, visit: Visit, *parts: Text) -> bool:
        if self._tell is None:
            return False
        try:
            told = await self._tell(visit.conversation_id, parts)
        except Exception:  # the change is made; a failed notice must not undo it
            log.exception("visit %d: the customer could not be told", visit.id)
            return False
        if not told:
            log.info("visit %d: the customer's conversation cannot be reached", visit.id)
        return told


def describe(visit: Visit, service: VisitService) -> Text:
    """The visit as the customer is shown it: when, where, what for, the fee."""
    return Text(
        "visits.booked_line",
        {
            "when": service.label(visit),
            "address": Raw(visit.address),
            "problem": Raw(visit.problem),
            "fee": fee_text(visit.fee_rub),
        },
    )
