"""Typed messages that cross module boundaries: what a channel hands the core, what it answers.

Raw platform JSON never leaves a channel adapter except inside ``Inbound.raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

ConversationState = Literal["bot", "queued", "operator", "closed"]
Sender = Literal["customer", "bot", "operator", "system"]
InboundKind = Literal["text", "payload", "location", "attachment", "contact"]


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Who we talk to and where: one conversation per (channel, chat, user)."""

    channel: str
    chat_id: str
    user_id: str

    @property
    def id(self) -> str:
        """Stable string form, e.g. ``telegram:123:123``; used as the conversation id."""
        return f"{self.channel}:{self.chat_id}:{self.user_id}"

    @classmethod
    def parse(cls, value: str) -> ConversationKey:
        channel, chat_id, user_id = value.split(":", 2)
        return cls(channel, chat_id, user_id)


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the customer sent. ``url`` / ``ref`` say where the platform keeps it (a URL, or
    Telegram's ``file_id``) and ``size`` what the platform declared; once fetched into our file
    store ``file`` is set, or ``problem`` says why it was not (``too_large``, ``type``,
    ``unavailable``: bot/channels/inbound_files.py)."""

    kind: str
    url: str | None = None
    name: str | None = None
    ref: str | None = None
    size: int | None = None
    file: FileRef | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """A phone number the customer shared. ``verified`` only when the platform vouches that it
    is the sender's own number (Telegram: the contact's user_id is the sender's)."""

    phone: str
    verified: bool = False
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One customer message, normalised from any channel."""

    key: ConversationKey
    message_id: str
    kind: InboundKind
    text: str | None = None
    payload: str | None = None
    location: Location | None = None
    attachments: tuple[Attachment, ...] = ()
    contact: Contact | None = None
    locale: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Text:
    """A localisable text: a message id from ``locales/`` and its parameters.

    Parameters may themselves be ``Text`` or ``Plural`` values, or lists of them (joined by
    newlines), so an action can build a whole answer without holding a single customer-facing word.
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plural:
    """A number with its noun agreed for the locale: 1 балл, 2 балла, 5 баллов."""

    key: str
    n: int


@dataclass(frozen=True, slots=True)
class Number:
    """A decimal quantity written with the locale's separator: 1,2 км / 1.2 km."""

    value: Decimal


@dataclass(frozen=True, slots=True)
class Raw:
    """Text that is data, not wording (an address, a tariff name from the catalog)."""

    value: str


@dataclass(frozen=True, slots=True)
class Button:
    title: Text | Raw
    payload: str


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file in the file store under ``file_id``: one we send to a customer (an invoice PDF)
    or one a customer sent us."""

    file_id: str
    name: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Reply:
    """One outgoing message before rendering: paragraphs joined by blank lines, plus buttons
    and files (sent as documents where the channel can, else as links)."""

    parts: tuple[Text | Raw, ...]
    buttons: tuple[Button, ...] = ()
    sender: Sender = "bot"
    attachments: tuple[FileRef, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderedButton:
    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class RenderedReply:
    text: str
    buttons: tuple[RenderedButton, ...] = ()
    sender: Sender = "bot"
    attachments: tuple[FileRef, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    id: int
    conversation_id: str
    sender: Sender
    text: str
    at: datetime
    buttons: tuple[RenderedButton, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Conversation:
    """What the core remembers about one conversation between turns.

    ``dialog`` belongs to the dialog engine (JSON-serialisable); the rest is read by the gateway,
    the handoff layer and the operator console.
    """

    key: ConversationKey
    state: ConversationState = "bot"
    locale: str = "ru"
    contract_number: str | None = None
    dialog: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.key.id
