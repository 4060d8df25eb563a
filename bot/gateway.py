"""The core every channel feeds: Inbound → per-conversation order → bot or person → replies.

A channel calls ``Gateway.handle`` with a normalised ``Inbound``; the gateway takes the
conversation's lock before reading its state, records the customer's message, lets the dialog
engine answer unless a person owns the conversation, saves the new state and the bot's replies to
the transcript, and returns the replies rendered for the customer's locale.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.dialog.engine import DialogEngine
from bot.dialog.types import Handoff, Turn
from bot.handoff.service import CSAT, HandoffService
from bot.i18n import Translator
from bot.intents.names import INTENTS
from bot.intents.nlu import PayloadError, parse_payload
from bot.intents.normalize import basic
from bot.metrics import Metrics
from bot.models import Button as ButtonModel
from bot.models import Conversation, Inbound, RenderedReply, Reply, Text
from bot.storage.base import Locks, Store, TranscriptLine, TurnRecord
from bot.storage.health import StoreUnavailable
from bot.untrusted import clean_inbound

log = logging.getLogger(__name__)

# While a person is expected, the customer can still take the conversation back to the bot.
BACK_TO_BOT = "/back_to_bot"
# Key in Conversation.dialog: the buttons of the last answer, as rendered.
OFFERED = "offered"
# Key in Conversation.dialog: when a message typed in the queue was last acknowledged.
QUEUE_ACK = "queue_ack_at"
# Buttons that take a waiting customer out of the queue to the bot ("Заказать обратный
# звонок" offered when nobody is online): waiting for a call instead of in the chat.
LEAVE_QUEUE_FOR = ("/callback_request",)
DEFAULT_QUEUED_ACK_SECONDS = 180.0


@dataclass(frozen=True, slots=True)
class Handled:
    conversation: Conversation
    replies: tuple[RenderedReply, ...]


def register_metrics(metrics: Metrics) -> None:
    metrics.counter("messages_in_total", "Customer messages received, by channel.")
    metrics.counter("replies_out_total", "Bot and system replies produced, by channel.")
    metrics.counter("intents_total", "Recognised intents of customer messages.")
    metrics.counter("fallbacks_total", "Messages the bot did not understand.")
    metrics.counter("handoffs_total", "Conversations handed to a person, by reason.")
    metrics.counter("turn_errors_total", "Turns where the engine failed or timed out.")
    metrics.histogram(
        "turn_seconds", "Time to answer one message.", (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
    )


class Gateway:
    def __init__(
        self,
        *,
        store: Store,
        locks: Locks,
        engine: DialogEngine,
        translator: Translator,
        metrics: Metrics,
        default_locale: str = "ru",
        turn_timeout: float = 10.0,
        handoff: HandoffService | None = None,
    ) -> None:
        self._store = store
        self._locks = locks
        self._engine = engine
        self._translator = translator
        self._metrics = metrics
        self._default_locale = default_locale
        self._turn_timeout = turn_timeout
        self._handoff = handoff

    def attach_handoff(self, handoff: HandoffService) -> None:
        self._handoff = handoff

    async def handle(
        self,
        inbound: Inbound,
        *,
        contract_number: str | None = None,
        inbox_id: int | None = None,
        deliver: bool = False,
    ) -> Handled:
        """Answer one inbound and commit the turn atomically.

        ``contract_number`` is set only by a channel that has verified the customer (a signed
        identity). ``inbox_id`` is the durable inbound this turn answers (marked done in the same
        transaction); with ``deliver`` the replies are queued in the outbox for the channel to
        send, otherwise the caller returns them itself (the REST channel)."""
        # The one door every channel passes: whatever an adapter let through, the text is
        # valid (storable) and no longer than the channel allows, so no step below can be fed
        # a megabyte or a lone surrogate.
        inbound = clean_inbound(inbound)
        started = time.perf_counter()
        channel = inbound.key.channel
        self._metrics.inc("messages_in_total", channel=channel)
        async with self._locks.hold(inbound.key.id):
            conversation = await self._store.load_conversation(inbound.key) or Conversation(
                key=inbound.key,
                locale=self._translator.resolve_locale(inbound.locale or self._default_locale),
            )
            if inbound.locale:
                conversation = replace(
                    conversation, locale=self._translator.resolve_locale(inbound.locale)
                )
            if contract_number and contract_number != conversation.contract_number:
                await self._store.link_identity(inbound.key, contract_number, "signed")
            # The stored link is the truth: a revoked link signs the customer out at once, and
            # a link made elsewhere (the widget's signed identity, a code) signs them in.
            link = await self._store.identity(inbound.key)
            conversation = replace(
                conversation, contract_number=link.contract_number if link else None
            )
            customer = TranscriptLine(
                "customer",
                _customer_text(inbound),
                meta=_customer_meta(inbound),
                # Files the customer sent, stored: operators open them from the transcript.
                attachments=tuple(a.file for a in inbound.attachments if a.file is not None),
            )
            inbound = _pressed(inbound, conversation)
            with_person = conversation.state in ("queued", "operator")
            if with_person:
                conversation, replies = await self._while_with_person(conversation, inbound)
            elif conversation.state == "closed" and (score := _csat_score(inbound)) is not None:
                replies = (
                    await self._handoff.record_csat(conversation, score) if self._handoff else []
                )
            else:
                if conversation.state == "closed":
                    conversation = replace(conversation, state="bot")
                conversation, replies = await self._bot_turn(conversation, inbound)
            rendered = tuple(self._translator.render_reply(conversation.locale, r) for r in replies)
            conversation = _remember_offered(conversation, rendered)
            answers = tuple(
                TranscriptLine(r.sender, r.text, r.buttons, attachments=r.attachments)
                for r in rendered
            )
            entries = await self._store.commit_turn(
                TurnRecord(
                    conversation=conversation,
                    lines=(customer, *answers),
                    deliver=answers if deliver else (),
                    inbox_id=inbox_id,
                )
            )
            if self._handoff is not None and (with_person or conversation.state != "bot"):
                for entry in entries:  # live in the operators' consoles
                    await self._handoff.customer_wrote(conversation, entry)
        self._metrics.inc("replies_out_total", len(rendered), channel=channel)
        self._metrics.observe("turn_seconds", time.perf_counter() - started, channel=channel)
        return Handled(conversation, rendered)

    async def _while_with_person(
        self, conversation: Conversation, inbound: Inbound
    ) -> tuple[Conversation, list[Reply]]:
        # The bot does not answer; the message is in the transcript for the operator.
        if conversation.state != "queued":
            return conversation, []  # an operator has the chat: they answer, the bot is silent
        if inbound.payload == BACK_TO_BOT:
            await self._leave_queue(conversation)
            return replace(conversation, state="bot"), [
                Reply((Text("handoff.returned_to_bot"),), self._engine.menu_buttons(), "system")
            ]
        if inbound.payload and inbound.payload.startswith(LEAVE_QUEUE_FOR):
            await self._leave_queue(conversation)
            return await self._bot_turn(replace(conversation, state="bot"), inbound)
        return self._acknowledge_in_queue(conversation)

    async def _leave_queue(self, conversation: Conversation) -> None:
        await self._store.queue_remove(conversation.id)
        if self._handoff is not None:
            self._handoff.events.publish({"type": "queue"})

    def _acknowledge_in_queue(self, conversation: Conversation) -> tuple[Conversation, list[Reply]]:
        """A brief "passed on" for a message typed while waiting, so the customer knows it is
        not lost — the first one, then at most once per ``queued_ack_seconds``."""
        handoff = self._handoff
        now = handoff.now() if handoff is not None else datetime.now(UTC)
        every = handoff.config.queued_ack_seconds if handoff else DEFAULT_QUEUED_ACK_SECONDS
        last = conversation.dialog.get(QUEUE_ACK)
        if last is not None and (now - datetime.fromisoformat(last)).total_seconds() < every:
            return conversation, []
        conversation = replace(
            conversation, dialog={**conversation.dialog, QUEUE_ACK: now.isoformat()}
        )
        back = ButtonModel(Text("button.back_to_bot"), BACK_TO_BOT)
        return conversation, [Reply((Text("handoff.message_received"),), (back,), "system")]

    async def _bot_turn(
        self, conversation: Conversation, inbound: Inbound
    ) -> tuple[Conversation, list[Reply]]:
        try:
            turn: Turn = await asyncio.wait_for(
                self._engine.step(conversation, inbound), self._turn_timeout
            )
        except StoreUnavailable:
            raise  # not the engine's fault: the whole turn is retried when the store works
        except Exception:  # the customer must get an answer whatever broke
            log.exception("dialog turn failed for %s", conversation.key.channel)
            self._metrics.inc("turn_errors_total", channel=conversation.key.channel)
            if self._handoff is None:
                return conversation, [Reply((Text("error.generic"),), self._engine.menu_buttons())]
            # Fail open to a person, never to silence.
            turn = Turn((Reply((Text("handoff.error"),), sender="system"),), conversation,
                        Handoff("general", "engine_error"))  # fmt: skip
        if turn.nlu is not None:
            self._metrics.inc("intents_total", intent=_metric_intent(turn.nlu.intent))
            if not self._engine.nlu.understood(turn.nlu):
                self._metrics.inc("fallbacks_total", channel=conversation.key.channel)
        replies = list(turn.replies)
        conversation = turn.conversation
        if turn.handoff is not None:
            self._metrics.inc("handoffs_total", reason=turn.handoff.reason)
            dialog = {k: v for k, v in conversation.dialog.items() if k != QUEUE_ACK}
            conversation = replace(
                conversation,
                state="queued",
                dialog={**dialog, "handoff": {"department": turn.handoff.department,
                                              "reason": turn.handoff.reason}},
            )  # fmt: skip
            if self._handoff is not None:
                replies += await self._handoff.enqueue(
                    conversation, turn.handoff.department, turn.handoff.reason
                )
            back = ButtonModel(Text("button.back_to_bot"), BACK_TO_BOT)
            if replies:
                last = replies[-1]
                replies[-1] = replace(last, buttons=(*last.buttons, back))
        return conversation, replies


def _metric_intent(intent: str) -> str:
    return intent if intent in INTENTS else "payload"


def _customer_text(inbound: Inbound) -> str:
    if inbound.text:
        return inbound.text
    if inbound.payload:
        return inbound.payload
    if inbound.location is not None:
        return f"📍 {inbound.location.lat:.5f}, {inbound.location.lon:.5f}"
    if inbound.attachments:
        return "\n".join(f"📎 {a.name or a.kind}" for a in inbound.attachments)
    if inbound.contact is not None:
        return f"☎ {inbound.contact.phone}"
    return ""


def _customer_meta(inbound: Inbound) -> dict[str, object]:
    meta: dict[str, object] = {"message_id": inbound.message_id, "kind": inbound.kind}
    if inbound.payload:
        meta["payload"] = inbound.payload
    if inbound.location is not None:
        meta["location"] = {"lat": inbound.location.lat, "lon": inbound.location.lon}
    return meta


def _remember_offered(
    conversation: Conversation, replies: tuple[RenderedReply, ...]
) -> Conversation:
    """Keep the buttons just shown, so a customer who types a title or its number presses it."""
    if not replies:
        return conversation
    offered = [{"title": b.title, "payload": b.payload} for r in replies for b in r.buttons]
    return replace(conversation, dialog={**conversation.dialog, OFFERED: offered})


def _pressed(inbound: Inbound, conversation: Conversation) -> Inbound:
    """Typed "Проверить адрес" or "2" where those buttons were offered: the button's payload.

    Messengers without buttons show them as a numbered list, and people type what they see."""
    if not inbound.text or inbound.payload:
        return inbound
    offered = conversation.dialog.get(OFFERED) or []
    typed = basic(inbound.text).strip(" .!?")
    for number, button in enumerate(offered, start=1):
        if typed in (basic(button["title"]), str(number)):
            return replace(inbound, kind="payload", payload=button["payload"])
    return inbound


def _csat_score(inbound: Inbound) -> int | None:
    """The rating pressed after a chat with an operator: /csat{"score": 1..5}."""
    if not inbound.payload or not inbound.payload.startswith(f"/{CSAT}"):
        return None
    try:
        _, args = parse_payload(inbound.payload)
        score = int(args.get("score", 0))
    except (PayloadError, TypeError, ValueError):
        return None
    return score if 1 <= score <= 5 else None
