"""What a request is: its kind, where it stands, who works on it, and what happened to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

KINDS: Final = ("connection", "callback", "visit", "complaint", "termination", "feedback")
STATUSES: Final = ("new", "in_progress", "done", "cancelled")

Action = Literal["created", "imported", "status", "comment", "assignee", "opened", "exported"]

# Who a history entry names when no person acted.
BY_BOT: Final = "bot"


@dataclass(frozen=True, slots=True)
class NewRequest:
    """What the bot knows when it stores a request. ``details`` holds kind-specific facts (the
    call-back time, the house's status in the register) that have no column of their own."""

    kind: str
    conversation_id: str
    contract: str | None = None
    name: str | None = None
    phone: str | None = None
    city_id: str | None = None
    address: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    attachments: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    by: str  # an operator login, or "bot"
    action: Action
    before: str | None = None
    after: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "by": self.by,
            "action": self.action,
            "from": self.before,
            "to": self.after,
        }


@dataclass(frozen=True, slots=True)
class RequestRecord:
    id: int
    kind: str
    status: str
    created_at: datetime
    updated_at: datetime
    conversation_id: str
    contract: str | None
    name: str | None
    phone: str | None  # as the customer gave it; masked wherever it is shown by default
    city_id: str | None
    address: str | None
    details: Mapping[str, Any]
    attachments: tuple[Mapping[str, Any], ...]
    comment: str | None
    assignee: str | None
    history: tuple[HistoryEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of an operator's update: the record after it and what actually changed
    (an update that sets what is already there changes nothing and is not recorded)."""

    record: RequestRecord
    changed: tuple[HistoryEntry, ...]

    @property
    def status_changed(self) -> bool:
        return any(entry.action == "status" for entry in self.changed)


def record_json(record: RequestRecord, *, phone: str | None) -> dict[str, Any]:
    """The record as the API, the events and the webhook show it; ``phone`` is what to show
    (masked, or the real one for whoever opened it)."""
    return {
        "id": record.id,
        "kind": record.kind,
        "status": record.status,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "contract": record.contract,
        "name": record.name,
        "phone": phone,
        "city_id": record.city_id,
        "address": record.address,
        "details": dict(record.details),
        "conversation_id": record.conversation_id,
        "attachments": [dict(a) for a in record.attachments],
        "comment": record.comment,
        "assignee": record.assignee,
        "history": [entry.as_json() for entry in record.history],
    }


def webhook_body(
    delivery_id: int, event: str, record: RequestRecord, changed: tuple[HistoryEntry, ...]
) -> dict[str, Any]:
    """What the CRM receives: the whole record as it is after the change (phone unmasked: the
    CRM is where people call back from), and the changes that led to it."""
    request = record_json(record, phone=record.phone)
    del request["history"]  # the CRM keeps its own; the changes below say what is new
    return {
        "delivery_id": delivery_id,
        "event": event,
        "request": request,
        "changes": [entry.as_json() for entry in changed],
    }
