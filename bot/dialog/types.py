"""Types shared by the dialog engine and its actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.billing import Billing
from bot.catalog.catalog import Catalog
from bot.catalog.models import Account
from bot.intents.nlu import NluResult
from bot.models import Button, Conversation, Inbound, Location, Reply, Text
from bot.notify import Notifier
from bot.selfservice.service import AccountActions
from bot.storage.base import Store


@dataclass(slots=True)
class DialogState:
    """The engine's working memory of one conversation, stored as JSON between turns."""

    flow: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    pending: str | None = None
    reasks: int = 0
    misses: int = 0
    memory: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DialogState:
        return cls(
            flow=data.get("flow"),
            slots=dict(data.get("slots") or {}),
            pending=data.get("pending"),
            reasks=int(data.get("reasks", 0)),
            misses=int(data.get("misses", 0)),
            memory=dict(data.get("memory") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "slots": self.slots,
            "pending": self.pending,
            "reasks": self.reasks,
            "misses": self.misses,
            "memory": self.memory,
        }


@dataclass(frozen=True, slots=True)
class Handoff:
    """The conversation needs a person: which department, and why (intent or trigger)."""

    department: str
    reason: str


@dataclass(frozen=True, slots=True)
class ActionContext:
    conversation: Conversation
    inbound: Inbound
    nlu: NluResult
    slots: Mapping[str, Any]
    memory: Mapping[str, Any]
    params: Mapping[str, Any]
    catalog: Catalog
    billing: Billing
    store: Store
    account: Account | None
    now: datetime  # aware UTC
    notifier: Notifier
    render: Callable[[Text], str]  # wording for messages that leave the chat (an SMS code)
    actions: AccountActions | None = None  # account actions (promised payment, pause …)
    extras: Mapping[str, Any] = field(default_factory=dict)  # optional services (file store)

    @property
    def text(self) -> str:
        return self.inbound.text or ""

    @property
    def location(self) -> Location | None:
        loc = self.slots.get("location")
        if isinstance(loc, Mapping):
            return Location(float(loc["lat"]), float(loc["lon"]))
        return self.inbound.location


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action decided. ``ask`` keeps the flow open waiting for that slot; ``forget``
    drops slot values that turned out wrong (so they are asked again)."""

    replies: tuple[Reply, ...] = ()
    ask: str | None = None
    ask_replies: tuple[Reply, ...] = ()
    ask_parts: tuple[Text, ...] = ()  # said in the same message before the question
    ask_buttons: tuple[Button, ...] | None = None  # instead of the slot's suggestions
    forget: tuple[str, ...] = ()
    handoff: Handoff | None = None
    remember: Mapping[str, Any] = field(default_factory=dict)
    forget_memory: tuple[str, ...] = ()
    identify: str | None = None  # the customer proved they hold this contract
    unidentify: bool = False  # the customer unlinked their contract


Action = Callable[[ActionContext], Awaitable[ActionResult]]


@dataclass(frozen=True, slots=True)
class Turn:
    replies: tuple[Reply, ...]
    conversation: Conversation
    handoff: Handoff | None = None
    nlu: NluResult | None = None
