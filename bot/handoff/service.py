"""The people side of a conversation: queue, routing and what operators do with a chat.

States (``Conversation.state``): ``bot`` → ``queued`` (waiting in a department's queue) →
``operator`` (an operator has it) → ``closed`` (after a CSAT question) or back to ``bot``.
While ``queued`` or ``operator`` the bot never answers; the customer's messages reach the
operators' consoles live. Every change happens under the conversation's lock, so a customer
message arriving during a transfer is neither lost nor answered by the bot.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.billing import Billing
from bot.catalog.catalog import Catalog
from bot.handoff.config import HandoffConfig
from bot.handoff.events import EventHub
from bot.handoff.messages import message_json
from bot.handoff.operators import Operator, OperatorStore
from bot.handoff.presence import MemoryPresence, Presence
from bot.i18n import Translator
from bot.metrics import Metrics
from bot.models import (
    Button,
    Conversation,
    ConversationKey,
    FileRef,
    Raw,
    RenderedReply,
    Reply,
    Text,
    TranscriptEntry,
)
from bot.periodic import Periodic
from bot.storage.base import Locks, QueueEntry, Store, TranscriptLine, TurnRecord

log = logging.getLogger(__name__)

CSAT = "csat"  # payload of the rating buttons: /csat{"score": 5}


class HandoffError(Exception):
    """An operator action that cannot be done: ``status`` is the HTTP answer (404, 409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def register_metrics(metrics: Metrics) -> None:
    metrics.gauge("queue_length", "Conversations waiting for an operator, by department.")
    metrics.histogram(
        "queue_wait_seconds", "Time from handoff to an operator taking the chat.",
        (10, 30, 60, 120, 300, 600, 1800, 3600),
    )  # fmt: skip
    metrics.histogram(
        "first_response_seconds", "Time from handoff to the operator's first answer.",
        (10, 30, 60, 120, 300, 600, 1800, 3600),
    )  # fmt: skip
    metrics.counter("csat_total", "Customer ratings after a chat, by score.")
    metrics.counter("operator_timeouts_total", "Assigned chats returned to the queue unanswered.")


class HandoffService:
    def __init__(
        self,
        *,
        store: Store,
        locks: Locks,
        translator: Translator,
        metrics: Metrics,
        config: HandoffConfig,
        operators: OperatorStore,
        events: EventHub,
        catalog: Catalog,
        billing: Billing,
        delivers: Callable[[str], bool],
        notify_outbox: Callable[[], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        presence: Presence | None = None,
    ) -> None:
        self._store = store
        self._locks = locks
        self._translator = translator
        self._metrics = metrics
        self.config = config
        self._operators = operators
        self.events = events
        self._catalog = catalog
        self._billing = billing
        self._delivers = delivers
        self._notify_outbox = notify_outbox
        self._clock = clock
        # Who is online: this process's memory, or Redis shared by every process (REDIS_URL).
        self.presence: Presence = presence if presence is not None else MemoryPresence()
        # When each operator last got a chat, for "least busy" ties: this process's view only
        # (a tie-break, not a rule; sharing it would cost a Redis write per assignment).
        self._last_assigned: dict[str, float] = {}
        self._round_robin = itertools.count()
        self._ticks = Periodic("handoff", self.tick, every=5.0, failure="handoff tick failed")

    # --- called by the gateway, inside the conversation's lock --------------------------------
    async def enqueue(
        self, conversation: Conversation, department: str, reason: str
    ) -> list[Reply]:
        """Put a conversation in its department's queue; the notices to show the customer."""
        dept = self.config.department(department)
        await self._store.queue_put(conversation.id, conversation.key.channel, dept.name, reason)
        self.events.publish({"type": "queue"})
        status = dept.status(self._clock())
        call_me = Button(Text("button.callback"), "/callback_request")
        if not status.is_open and status.changes_at is not None:
            when = Text("when.weekday", {
                "day": Text(f"weekday.on.{status.changes_at.weekday()}"),
                "time": f"{status.changes_at:%H:%M}",
            })  # fmt: skip
            return [
                Reply((Text("handoff.out_of_hours", {"when": when}),), (call_me,), sender="system")
            ]
        online = await self.online_in(dept.name)
        if not status.is_open or online == 0:
            # A wait estimate with nobody to answer would be a guess: say how things are and
            # offer a call back; waiting stays possible (the chat is in the queue). The position
            # is told once someone is online (see _update_positions).
            return [Reply((Text("handoff.nobody_online"),), (call_me,), sender="system")]
        position = await self._position(conversation.id)
        await self._store.queue_notified(conversation.id, position)
        return [self._position_notice(position, online)]

    async def customer_wrote(self, conversation: Conversation, entry: TranscriptEntry) -> None:
        self.events.publish(
            {"type": "message", "conversation_id": conversation.id, "message": message_json(entry)}
        )

    async def record_csat(self, conversation: Conversation, score: int) -> list[Reply]:
        await self._store.add_csat(conversation.id, score, conversation.dialog.get("operator"))
        self._metrics.inc("csat_total", score=str(score))
        return [Reply((Text("handoff.csat_thanks"),), sender="system")]

    def now(self) -> datetime:
        return self._clock()

    # --- operator presence -------------------------------------------------------------------
    async def set_online(self, login: str, online: bool) -> None:
        await self.presence.set_online(login, online)

    async def is_online(self, login: str) -> bool:
        return login in await self.presence.online_of((login,))

    async def _online_operators(self) -> list[Operator]:
        """Operators online now (and not disabled), in whichever process they went online."""
        enabled = [o for o in await self._operators.list() if not o.disabled]
        online = await self.presence.online_of(o.login for o in enabled)
        return [o for o in enabled if o.login in online]

    async def online_in(self, department: str) -> int:
        """Operators of the department who are online now (and not disabled)."""
        return sum(1 for o in await self._online_operators() if department in o.departments)

    # --- operator actions ---------------------------------------------------------------------
    async def claim(self, conversation_id: str, operator: Operator) -> None:
        """Take a queued chat, or take over one the bot is having right now."""
        async with self._locks.hold(conversation_id):
            if await self._store.queue_get(conversation_id) is None:
                conversation = await self._conversation(conversation_id)
                if conversation.state not in ("bot", "closed"):
                    raise HandoffError("this conversation is not with people", 404)
                await self._store.queue_put(
                    conversation_id, conversation.key.channel, "general", "takeover"
                )
                self._metrics.inc("handoffs_total", reason="takeover")
            entry = await self._entry(conversation_id)
            if entry.operator == operator.login:
                return
            if not await self._store.queue_assign(
                conversation_id, operator.login, only_if_unassigned=True
            ):
                raise HandoffError("another operator has this conversation", 409)
            await self._joined(entry, operator)

    async def reply(
        self,
        conversation_id: str,
        operator: Operator,
        text: str,
        attachments: tuple[FileRef, ...] = (),
    ) -> TranscriptEntry:
        """The operator's message, with files (sent through the customer's channel)."""
        text = text.strip()
        if not text and not attachments:
            raise HandoffError("empty message", 400)
        async with self._locks.hold(conversation_id):
            entry = await self._owned(conversation_id, operator)
            conversation = await self._conversation(conversation_id)
            reply = RenderedReply(text, (), "operator", attachments)
            [line] = await self._commit(conversation, [reply])
            await self._store.queue_responded(conversation_id)
            if entry.first_response_at is None:
                waited = (self._clock() - entry.queued_at).total_seconds()
                self._metrics.observe("first_response_seconds", waited, department=entry.department)
            return line

    async def check_owned(self, conversation_id: str, operator: Operator) -> None:
        """HandoffError unless ``operator`` may write in the conversation now."""
        await self._owned(conversation_id, operator)

    async def note(self, conversation_id: str, operator: Operator, text: str) -> dict[str, Any]:
        if not text.strip():
            raise HandoffError("empty note", 400)
        await self._entry(conversation_id)
        note = await self._store.add_note(conversation_id, operator.login, text.strip())
        event = {"author": note.author, "text": note.text, "at": note.at.isoformat()}
        self.events.publish({"type": "note", "conversation_id": conversation_id, "note": event})
        return event

    async def transfer(
        self,
        conversation_id: str,
        operator: Operator,
        *,
        to_operator: str | None = None,
        to_department: str | None = None,
        note: str | None = None,
    ) -> None:
        if bool(to_operator) == bool(to_department):
            raise HandoffError("give either to_operator or to_department", 400)
        if to_department and to_department not in self.config.departments:
            raise HandoffError(f"unknown department {to_department!r}", 400)
        target = await self._operators.get(to_operator) if to_operator else None
        if to_operator and target is None:
            raise HandoffError(f"unknown operator {to_operator!r}", 400)
        async with self._locks.hold(conversation_id):
            entry = await self._owned(conversation_id, operator)
            if note and note.strip():
                await self._store.add_note(conversation_id, operator.login, note.strip())
            conversation = await self._conversation(conversation_id)
            if to_department:
                await self._store.queue_put(
                    conversation_id, entry.channel, to_department, entry.reason
                )
                conversation = replace(conversation, state="queued")
            else:
                await self._store.queue_assign(conversation_id, to_operator)
            notice = self._system(conversation, Text("handoff.transferred"))
            await self._commit(conversation, [notice])
        self.events.publish({"type": "queue"})
        await self.assign_waiting()

    async def release(
        self, conversation_id: str, operator: Operator, menu: Sequence[Button]
    ) -> None:
        async with self._locks.hold(conversation_id):
            await self._owned(conversation_id, operator)
            conversation = replace(await self._conversation(conversation_id), state="bot")
            notice = self._system(conversation, Text("handoff.released"), tuple(menu))
            await self._commit(conversation, [notice])
            await self._store.queue_remove(conversation_id)
        self.events.publish({"type": "queue"})

    async def close_chat(self, conversation_id: str, operator: Operator) -> None:
        async with self._locks.hold(conversation_id):
            await self._owned(conversation_id, operator)
            conversation = await self._conversation(conversation_id)
            conversation = replace(
                conversation,
                state="closed",
                dialog={**conversation.dialog, "operator": operator.login},
            )
            scores = tuple(Button(Raw(str(n)), f'/{CSAT}{{"score":{n}}}') for n in range(1, 6))
            await self._commit(
                conversation, [self._system(conversation, Text("handoff.closed"), scores)]
            )
            await self._store.queue_remove(conversation_id)
        self.events.publish({"type": "queue"})

    # --- routing -------------------------------------------------------------------------------
    async def assign_waiting(self) -> None:
        """Give waiting chats to online operators of their department with free capacity."""
        entries = await self._store.queue_entries()
        load: dict[str, int] = {}
        for e in entries:
            if e.operator:
                load[e.operator] = load.get(e.operator, 0) + 1
        operators = await self._online_operators()
        for entry in entries:
            if entry.operator is not None:
                continue
            free = [
                o for o in operators
                if entry.department in o.departments and load.get(o.login, 0) < o.max_chats
            ]  # fmt: skip
            if not free:
                continue
            chosen = self._choose(free, load)
            async with self._locks.hold(entry.conversation_id):
                if await self._store.queue_assign(
                    entry.conversation_id, chosen.login, only_if_unassigned=True
                ):
                    load[chosen.login] = load.get(chosen.login, 0) + 1
                    await self._joined(entry, chosen)
        await self._update_positions()

    def _choose(self, free: Sequence[Operator], load: dict[str, int]) -> Operator:
        if self.config.assignment == "round_robin":
            return free[next(self._round_robin) % len(free)]
        # least busy; among equals the one who got a chat longest ago
        return min(
            free,
            key=lambda o: (
                load.get(o.login, 0),
                self._last_assigned.get(o.login, 0.0),
            ),
        )

    async def tick(self) -> None:
        """Time-based work: unanswered assigned chats back to the queue, assignment, positions."""
        now = self._clock()
        for entry in await self._store.queue_entries():
            if entry.operator and entry.first_response_at is None and entry.assigned_at:
                idle = (now - entry.assigned_at).total_seconds()
                if idle >= self.config.answer_timeout_seconds:
                    await self._return_to_queue(entry)
        await self.assign_waiting()
        self._metrics_snapshot(await self._store.queue_entries())

    async def start(self) -> None:
        self._ticks.start()

    async def close(self) -> None:
        await self._ticks.close()
        await self.presence.close()

    # --- helpers ------------------------------------------------------------------------------
    async def _return_to_queue(self, entry: QueueEntry) -> None:
        async with self._locks.hold(entry.conversation_id):
            await self._store.queue_put(
                entry.conversation_id, entry.channel, entry.department, entry.reason
            )
            conversation = replace(await self._conversation(entry.conversation_id), state="queued")
            await self._store.save_conversation(conversation)
        self._metrics.inc("operator_timeouts_total", department=entry.department)
        self.events.publish({"type": "queue"})

    async def _joined(self, entry: QueueEntry, operator: Operator) -> None:
        conversation = replace(await self._conversation(entry.conversation_id), state="operator")
        notice = self._system(conversation, Text("handoff.joined", {"name": Raw(operator.name)}))
        await self._commit(conversation, [notice])
        waited = (self._clock() - entry.queued_at).total_seconds()
        self._metrics.observe("queue_wait_seconds", waited, department=entry.department)
        self._last_assigned[operator.login] = asyncio.get_running_loop().time()
        self.events.publish({"type": "queue"})
        self.events.publish({
            "type": "conversation", "conversation_id": entry.conversation_id,
            "state": "operator", "operator": operator.login,
        })  # fmt: skip

    async def _update_positions(self) -> None:
        """Tell waiting customers their new place when it changed, while their department is
        open and someone there is online (otherwise they were told so, and a place with no one
        to answer would promise a wait that is not coming)."""
        online: dict[str, int] = {}
        for entry in await self._store.queue_entries():
            if entry.operator is not None:
                continue
            if entry.department not in online:
                open_now = self.config.department(entry.department).status(self._clock()).is_open
                online[entry.department] = await self.online_in(entry.department) if open_now else 0
            if online[entry.department] == 0:
                continue
            position = await self._position(entry.conversation_id)
            if position == entry.notified_position:
                continue
            async with self._locks.hold(entry.conversation_id):
                conversation = await self._conversation(entry.conversation_id)
                if conversation.state != "queued":
                    continue
                rendered = self._translator.render_reply(
                    conversation.locale, self._position_notice(position, online[entry.department])
                )
                await self._commit(conversation, [rendered])
                await self._store.queue_notified(entry.conversation_id, position)

    async def _position(self, conversation_id: str) -> int:
        entry = await self._store.queue_get(conversation_id)
        waiting = [
            e for e in await self._store.queue_entries()
            if e.operator is None and entry is not None and e.department == entry.department
        ]  # fmt: skip
        ids = [e.conversation_id for e in waiting]
        return ids.index(conversation_id) + 1 if conversation_id in ids else 1

    def _position_notice(self, position: int, online: int) -> Reply:
        """The place in the queue and the expected wait with ``online`` operators answering."""
        if position <= 1:
            return Reply((Text("handoff.queued_next"),), sender="system")
        per_operator = self.config.average_handle_seconds / max(1, online)
        minutes = max(1, math.ceil(position * per_operator / 60))
        return Reply(
            (Text("handoff.queued_position", {"position": position, "minutes": minutes}),),
            sender="system",
        )

    def _system(
        self, conversation: Conversation, text: Text, buttons: tuple[Button, ...] = ()
    ) -> RenderedReply:
        return self._translator.render_reply(conversation.locale, Reply((text,), buttons, "system"))

    async def _commit(
        self, conversation: Conversation, replies: Sequence[RenderedReply]
    ) -> list[TranscriptEntry]:
        lines = tuple(
            TranscriptLine(r.sender, r.text, r.buttons, attachments=r.attachments) for r in replies
        )
        deliver = lines if self._delivers(conversation.key.channel) else ()
        entries = await self._store.commit_turn(TurnRecord(conversation, lines, deliver))
        if deliver:
            self._notify_outbox()
        for entry in entries:
            self.events.publish(
                {
                    "type": "message",
                    "conversation_id": conversation.id,
                    "message": message_json(entry),
                }
            )
        return entries

    async def _entry(self, conversation_id: str) -> QueueEntry:
        entry = await self._store.queue_get(conversation_id)
        if entry is None:
            raise HandoffError("this conversation is not with people", 404)
        return entry

    async def _owned(self, conversation_id: str, operator: Operator) -> QueueEntry:
        entry = await self._entry(conversation_id)
        if entry.operator != operator.login and operator.role != "supervisor":
            raise HandoffError("claim the conversation first", 409)
        return entry

    async def _conversation(self, conversation_id: str) -> Conversation:
        conversation = await self._store.load_conversation(ConversationKey.parse(conversation_id))
        if conversation is None:
            raise HandoffError("no such conversation", 404)
        return conversation

    async def refresh_metrics(self) -> None:
        """Queue lengths as of now (for a /metrics scrape between ticks)."""
        self._metrics_snapshot(await self._store.queue_entries())

    def _metrics_snapshot(self, entries: Sequence[QueueEntry]) -> None:
        waiting: dict[str, int] = {name: 0 for name in self.config.departments}
        for e in entries:
            if e.operator is None:
                waiting[e.department] = waiting.get(e.department, 0) + 1
        for department, count in waiting.items():
            self._metrics.set("queue_length", count, department=department)
