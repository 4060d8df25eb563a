"""The one place requests are created and moved along, by the bot and by operators: the board
stores the change (and the CRM call that reports it, in the same transaction), consoles hear of
it live, the webhook sender is woken, and the customer is told of a status change that concerns
them in the conversation the request came from."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from bot.dialog.types import ActionContext
from bot.handoff.events import EventHub
from bot.models import Text
from bot.notify import mask_phone
from bot.requests.model import BY_BOT, Change, NewRequest, RequestRecord, record_json
from bot.requests.store import UNSET, RequestBoard, _Unset

log = logging.getLogger(__name__)

# ActionContext.extras key under which the dialog actions find the desk (bot/services.py).
REQUESTS: Final = "requests"

# Which status changes the customer hears of. Feedback needs no "we are on it"; "new" is what
# they were told when they left the request.
TOLD: Final[Mapping[str, frozenset[str]]] = {
    "connection": frozenset({"in_progress", "done", "cancelled"}),
    "callback": frozenset({"in_progress", "done", "cancelled"}),
    "visit": frozenset({"in_progress", "done", "cancelled"}),
    "complaint": frozenset({"in_progress", "done", "cancelled"}),
    "termination": frozenset({"in_progress", "done", "cancelled"}),
    "feedback": frozenset({"done"}),
}

# (conversation id, parts) -> whether the message was stored for the customer.
Tell = Callable[[str, Sequence[Text]], Awaitable[bool]]


def masked(record: RequestRecord) -> dict[str, Any]:
    """The record as lists, exports and live events show it: the phone recognisable, not usable."""
    return record_json(record, phone=mask_phone(record.phone) if record.phone else None)


class RequestDesk:
    def __init__(
        self,
        *,
        board: RequestBoard,
        events: EventHub,
        wake_webhook: Callable[[], None] = lambda: None,
    ) -> None:
        self.board = board
        self._events = events
        self._wake_webhook = wake_webhook
        self._tell: Tell | None = None

    def attach_tell(self, tell: Tell) -> None:
        """Customer notices are built after the engine that needs this desk (bot/services.py)."""
        self._tell = tell

    async def create(self, new: NewRequest) -> RequestRecord:
        record = await self.board.add(new, by=BY_BOT)
        log.info("request %d (%s) stored", record.id, record.kind)
        self._announce("created", record)
        return record

    async def change(
        self,
        request_id: int,
        *,
        by: str,
        status: str | None = None,
        comment: str | None = None,
        assignee: str | _Unset | None = UNSET,
    ) -> Change | None:
        change = await self.board.change(
            request_id, by=by, status=status, comment=comment, assignee=assignee
        )
        if change is None or not change.changed:
            return change
        record = change.record
        log.info(
            "request %d changed by %s: %s",
            record.id, by, ", ".join(entry.action for entry in change.changed),
        )  # fmt: skip
        if change.status_changed and record.status in TOLD.get(record.kind, ()):
            await self._tell_customer(record)
        self._announce("updated", record)
        return change

    async def open(self, request_id: int, *, by: str) -> RequestRecord | None:
        """The record with the customer's phone, for an operator about to call; the opening is
        kept in its history (who saw whose contacts is for the provider to answer for)."""
        record = await self.board.record_access([request_id], by=by, action="opened")
        if record is not None:
            self._announce("updated", record)
        return record

    async def _tell_customer(self, record: RequestRecord) -> None:
        if self._tell is None:
            return
        parts = (Text(f"requests.status.{record.kind}.{record.status}", {"number": record.id}),)
        try:
            told = await self._tell(record.conversation_id, parts)
        except Exception:  # the change is made; a failed notice must not undo it
            log.exception("request %d: the customer could not be told", record.id)
            return
        if not told:
            log.info("request %d: the customer's conversation cannot be reached", record.id)

    def _announce(self, event: str, record: RequestRecord) -> None:
        self._events.publish({"type": "request", "event": event, "request": masked(record)})
        self._wake_webhook()


def requests_of(ctx: ActionContext) -> RequestDesk:
    """The desk the dialog actions store requests with (put in ``extras`` at start-up)."""
    desk = ctx.extras.get(REQUESTS)
    if not isinstance(desk, RequestDesk):
        raise RuntimeError("the request desk is not wired into the dialog engine")
    return desk


def notice_keys() -> tuple[str, ...]:
    """Message ids the desk may send; start-up refuses a locale that lacks one."""
    return tuple(
        f"requests.status.{kind}.{status}"
        for kind, statuses in TOLD.items()
        for status in sorted(statuses)
    )
