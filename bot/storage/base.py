"""Storage interfaces. Every backend (embedded SQLite, Redis) implements these and passes the
same contract tests in ``tests/test_store.py``."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.models import (
    Conversation,
    ConversationKey,
    FileRef,
    Inbound,
    RenderedButton,
    Sender,
    TranscriptEntry,
)
from bot.storage.health import StoreHealth


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """A conversation (messenger account) vouched to belong to a contract."""

    key: ConversationKey
    contract_number: str
    method: str
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """Something the customer asked the provider to act on: a connection request, a call back."""

    id: int
    kind: str
    conversation_id: str
    data: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    sender: Sender
    text: str
    buttons: tuple[RenderedButton, ...] = ()
    meta: Mapping[str, Any] | None = None
    # Files sent with the line: kept in the transcript's meta (``attachments``) and the outbox.
    attachments: tuple[FileRef, ...] = ()


# Outbox lanes: replies to people who are chatting go first; bulk messages (an outage notice to
# every affected customer) only take what the channel's budget has left (``bot/outbox.py``).
PRIORITY_REPLY = 0
PRIORITY_BULK = 1

# The lane of deliveries committed in this context when a TurnRecord does not say. Code that
# sends notices one by one (``CustomerNotices.tell``) does not know it is part of a broadcast;
# the broadcaster wraps the whole fan-out in ``bulk_delivery()`` instead.
_DELIVERY_PRIORITY: ContextVar[int] = ContextVar("delivery_priority", default=PRIORITY_REPLY)


@contextmanager
def bulk_delivery() -> Iterator[None]:
    """Replies committed inside go to the outbox's low-priority lane."""
    token = _DELIVERY_PRIORITY.set(PRIORITY_BULK)
    try:
        yield
    finally:
        _DELIVERY_PRIORITY.reset(token)


def delivery_priority(turn: TurnRecord) -> int:
    """The outbox lane of ``turn.deliver``: its own, else the context's (``bulk_delivery``)."""
    return _DELIVERY_PRIORITY.get() if turn.priority is None else turn.priority


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """Everything one turn changes, written in one transaction: the conversation's new state,
    its transcript lines, the replies to deliver (if the channel delivers through the outbox),
    and the inbound marked done. A crash before the commit leaves the inbound pending (it is
    processed again); after it, everything is there and nothing is answered twice."""

    conversation: Conversation
    lines: tuple[TranscriptLine, ...]
    deliver: tuple[TranscriptLine, ...] = ()
    inbox_id: int | None = None
    priority: int | None = None  # outbox lane of ``deliver``; None: see ``delivery_priority``


@dataclass(frozen=True, slots=True)
class PendingInbound:
    id: int
    inbound: Inbound
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboundItem:
    """A reply waiting to be sent through its channel, in ``id`` order per chat and lane
    (a chat's replies go before its bulk messages)."""

    id: int
    conversation_id: str
    channel: str
    chat_id: str
    text: str
    buttons: tuple[RenderedButton, ...]
    attempts: int
    attachments: tuple[FileRef, ...] = ()
    priority: int = PRIORITY_REPLY
    # A send of it started (``outbox_sending``) and no outcome was recorded: the sender died or
    # the store failed in between, so the platform may or may not have it. Sent again with the
    # platform's idempotency key where it has one (VK ``random_id``), else counted as a
    # possible duplicate (``outbox_uncertain_total``).
    uncertain: bool = False


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A conversation that belongs to people: waiting in a department's queue, or with an
    operator. Removed when it goes back to the bot or is closed."""

    conversation_id: str
    channel: str
    department: str
    reason: str
    queued_at: datetime
    operator: str | None = None
    assigned_at: datetime | None = None
    first_response_at: datetime | None = None
    notified_position: int | None = None


@dataclass(frozen=True, slots=True)
class Note:
    author: str
    text: str
    at: datetime


class Conversations(abc.ABC):
    """Conversations, their transcripts and the identity links vouching them to a contract:
    what the dialog, the console and the notices read and write."""

    health: StoreHealth

    # conversations
    @abc.abstractmethod
    async def load_conversation(self, key: ConversationKey) -> Conversation | None: ...

    @abc.abstractmethod
    async def save_conversation(self, conversation: Conversation) -> None: ...

    # transcripts
    @abc.abstractmethod
    async def append_message(
        self,
        conversation_id: str,
        sender: Sender,
        text: str,
        *,
        buttons: Sequence[RenderedButton] = (),
        meta: Mapping[str, Any] | None = None,
    ) -> TranscriptEntry: ...

    @abc.abstractmethod
    async def messages(
        self, conversation_id: str, *, after: int = 0, limit: int = 200
    ) -> list[TranscriptEntry]: ...

    @abc.abstractmethod
    async def last_message(
        self, conversation_id: str, *, sender: Sender | None = None
    ) -> TranscriptEntry | None:
        """The newest transcript line (from ``sender``, if given): queue previews."""

    @abc.abstractmethod
    async def commit_turn(self, turn: TurnRecord) -> list[TranscriptEntry]:
        """Everything one turn changes, atomically: the conversation's state, its transcript
        lines, the replies queued in the outbox and the inbound marked done (``TurnRecord``).
        It spans this interface and ``Delivery``: a backend implements both on one store."""

    @abc.abstractmethod
    async def recent_conversations(self, *, state: str, limit: int = 50) -> list[str]:
        """Ids of conversations in ``state``, most recently active first (live bot chats an
        operator may take over)."""

    @abc.abstractmethod
    async def conversations_of_contract(self, contract_number: str) -> list[str]:
        """Every conversation, on any channel, linked to this contract, oldest first."""

    # identity links
    @abc.abstractmethod
    async def link_identity(
        self, key: ConversationKey, contract_number: str, method: str
    ) -> None: ...

    @abc.abstractmethod
    async def identity(self, key: ConversationKey) -> IdentityLink | None: ...

    @abc.abstractmethod
    async def revoke_identity(self, key: ConversationKey) -> bool: ...


class Delivery(abc.ABC):
    """The durable inbox (platform deliveries recorded before they are acknowledged), the
    outbox (replies in order per chat until the platform took them) and delivery-id dedupe:
    what the ingress, the outbox and the channels' webhooks use."""

    health: StoreHealth

    # dedupe
    @abc.abstractmethod
    async def remember_once(self, scope: str, platform_id: str) -> bool:
        """Record a platform delivery id; True the first time, False for a redelivery."""

    # durable ingress and delivery
    @abc.abstractmethod
    async def inbox_put(self, scope: str, platform_id: str, inbound: Inbound) -> int | None:
        """Record an inbound before acknowledging it; None if ``platform_id`` was seen before."""

    @abc.abstractmethod
    async def inbox_pending(self, conversation_id: str | None = None) -> list[PendingInbound]:
        """Inbounds recorded but not yet answered (after a crash), oldest first; only those of
        ``conversation_id`` if given (a worker draining one conversation in order)."""

    @abc.abstractmethod
    async def inbox_retry_later(self, inbox_id: int, error: str, *, give_up: bool) -> None:
        """Count a failed attempt; ``give_up`` parks it as failed, kept for inspection."""

    @abc.abstractmethod
    async def inbox_forget(self, older_than_days: float) -> int:
        """Drop answered inbounds older than this: platforms reuse delivery ids after a while
        (Telegram restarts update_id after a quiet week), so dedupe keys must not live forever."""

    @abc.abstractmethod
    async def keep_unparsed(self, scope: str, body: str, problem: str) -> None:
        """An authentic delivery we could not parse: acknowledged, kept for inspection."""

    @abc.abstractmethod
    async def outbox_pending(
        self, *, limit: int = 500, conversation_id: str | None = None
    ) -> list[OutboundItem]:
        """Unsent items, replies (``PRIORITY_REPLY``) before bulk ones, each in ``id`` order:
        a backlog of bulk items never hides a reply from the dispatcher. Only those of
        ``conversation_id`` if given (a sender holding that chat's lease)."""

    @abc.abstractmethod
    async def outbox_sending(self, item_id: int) -> None:
        """About to hand the item to the platform: if no outcome follows (``outbox_done``,
        ``outbox_attempt_failed``), whoever sends it next sees it as ``uncertain``."""

    @abc.abstractmethod
    async def outbox_done(
        self, item_id: int, *, platform_message_id: str | None = None, error: str | None = None
    ) -> None:
        """Sent (with the platform's id) or finally failed (with the error): no longer pending."""

    @abc.abstractmethod
    async def outbox_attempt_failed(self, item_id: int, error: str) -> None: ...


class HandoffQueue(abc.ABC):
    """Conversations that belong to people: the queue, assignment (a compare-and-set claim),
    the operators' notes and the customers' scores."""

    health: StoreHealth

    # the operators' queue
    @abc.abstractmethod
    async def queue_put(
        self, conversation_id: str, channel: str, department: str, reason: str
    ) -> QueueEntry:
        """Add to (or move within) the queue: unassigned, in ``department``; keeps queued_at."""

    @abc.abstractmethod
    async def queue_get(self, conversation_id: str) -> QueueEntry | None: ...

    @abc.abstractmethod
    async def queue_entries(self) -> list[QueueEntry]:
        """Everything with people, oldest first."""

    @abc.abstractmethod
    async def queue_assign(
        self, conversation_id: str, operator: str | None, *, only_if_unassigned: bool = False
    ) -> bool:
        """Set (or clear) the operator. With ``only_if_unassigned`` it is a compare-and-set:
        of two operators claiming at once exactly one gets True."""

    @abc.abstractmethod
    async def queue_responded(self, conversation_id: str) -> None:
        """The operator answered: first response time is recorded once."""

    @abc.abstractmethod
    async def queue_notified(self, conversation_id: str, position: int) -> None: ...

    @abc.abstractmethod
    async def queue_remove(self, conversation_id: str) -> None: ...

    @abc.abstractmethod
    async def add_note(self, conversation_id: str, author: str, text: str) -> Note: ...

    @abc.abstractmethod
    async def notes(self, conversation_id: str) -> list[Note]: ...

    @abc.abstractmethod
    async def add_csat(self, conversation_id: str, score: int, operator: str | None) -> None: ...


class ChannelBookkeeping(abc.ABC):
    """What channels remember about a platform: long button payloads behind short tokens,
    whether a customer can be written to, delivery receipts."""

    health: StoreHealth

    # platform bookkeeping
    @abc.abstractmethod
    async def payload_token(self, payload: str) -> str:
        """A short stable token for a long button payload (Telegram allows 64 bytes)."""

    @abc.abstractmethod
    async def payload_for(self, token: str) -> str | None: ...

    @abc.abstractmethod
    async def set_reachable(self, conversation_id: str, reachable: bool, reason: str = "") -> None:
        """The customer blocked the bot / unsubscribed (False) or came back (True)."""

    @abc.abstractmethod
    async def is_reachable(self, conversation_id: str) -> bool: ...

    @abc.abstractmethod
    async def record_receipt(self, scope: str, platform_message_id: str, event: str) -> None:
        """A delivery receipt from the platform (delivered, seen, failed)."""

    @abc.abstractmethod
    async def receipts(self, scope: str, platform_message_id: str) -> list[str]: ...


class Records(abc.ABC):
    """Requests older versions kept in the conversation store (now on the request board,
    ``bot/requests``): read once at start and taken over, so none is lost."""

    health: StoreHealth

    # customer requests (connection requests, call-backs)
    @abc.abstractmethod
    async def add_request(
        self, kind: str, conversation_id: str, data: Mapping[str, Any]
    ) -> StoredRequest: ...

    @abc.abstractmethod
    async def requests(self, kind: str | None = None) -> list[StoredRequest]: ...


class Store(Conversations, Delivery, HandoffQueue, ChannelBookkeeping, Records):
    """Durable state of the gateway: every interface above on one backend, so a turn's commit
    (conversation, transcript, outbox, inbox) is one transaction. Consumers take the narrowest
    interface they need; the wiring (``bot/services.py``) builds one ``Store``.

    A call that fails because the backend cannot read or write just now (disk full, locked,
    unreachable) raises ``StoreUnavailable`` and is reported to ``health``, which every backend
    sets up (``bot/storage/health.py``)."""

    health: StoreHealth

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the backend answers (for ``/healthz``)."""

    # retention (BOT_RETENTION_DAYS, bot/retention.py)
    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Delete what is older than ``cutoff`` (aware UTC): transcript lines, conversations
        with no activity since (with their identity links), finished inbox and outbox rows,
        dedupe keys, receipts, notes, scores, unparsed deliveries, old-style requests. Never
        an open conversation (queued or with an operator) or anything of it. How many of each
        kind; ``dry_run`` only counts. Not abstract: a backend without it keeps everything."""
        raise NotImplementedError(f"{type(self).__name__} does not delete old data")

    async def files_in_use(self, cutoff: datetime) -> set[str]:
        """Ids of the files (the file store's and the widget's uploads) named by what retention
        keeps at ``cutoff``: newer transcript lines, open conversations, unsent outbox rows."""
        raise NotImplementedError(f"{type(self).__name__} does not list files in use")

    @abc.abstractmethod
    async def close(self) -> None: ...


class Locks(abc.ABC):
    """Per-conversation mutual exclusion: state is read only after the lock is held, so quick
    successive messages of one conversation never see stale state (cf. aiogram#1317)."""

    @abc.abstractmethod
    def hold(self, conversation_id: str) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release backend resources."""
