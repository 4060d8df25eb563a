"""The request board's interface, kept apart from the conversation ``Store``: requests have a
life of their own (status, assignee, history, a CRM mirror) that the dialog store knows nothing
of. ``SqliteRequestBoard`` (bot/requests/sqlite.py) is the embedded implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bot.requests.model import Change, NewRequest, RequestRecord
from bot.storage.base import StoredRequest


class _Unset:
    """Marks "leave the assignee as it is" apart from ``None`` ("nobody")."""

    __slots__ = ()


UNSET: Final = _Unset()


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook call waiting to be made: the exact body (signed as is) and its schedule."""

    id: int
    request_id: int
    body: bytes
    attempts: int
    next_at: datetime


class RequestBoard(ABC):
    @abstractmethod
    async def add(self, new: NewRequest, *, by: str) -> RequestRecord: ...

    @abstractmethod
    async def get(self, request_id: int) -> RequestRecord | None: ...

    @abstractmethod
    async def find(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        city_id: str | None = None,
    ) -> list[RequestRecord]:
        """Newest first, each with its history."""

    @abstractmethod
    async def change(
        self,
        request_id: int,
        *,
        by: str,
        status: str | None = None,
        comment: str | None = None,
        assignee: str | _Unset | None = UNSET,
    ) -> Change | None:
        """Apply what differs from the record, one history entry per field; None if no such
        record."""

    @abstractmethod
    async def record_access(
        self, request_ids: Sequence[int], *, by: str, action: str
    ) -> RequestRecord | None:
        """Note in the history that ``by`` saw the customer's contacts (``opened`` one record,
        ``exported`` a list); the first record after it, or None if there is none."""

    @abstractmethod
    async def import_legacy(self, rows: Sequence[StoredRequest]) -> int:
        """Take over requests stored by older versions in the conversation store, each once
        (under the number the customer was told when it is free); how many were new."""

    # The CRM webhook's outbox, written in the same transaction as the change it reports.
    @abstractmethod
    async def deliveries_due(self, now: datetime, limit: int) -> list[Delivery]:
        """The oldest undelivered call of each record whose time has come: a record's calls go
        out in order, one record waiting for the CRM does not hold the others back."""

    @abstractmethod
    async def next_delivery_at(self) -> datetime | None: ...

    @abstractmethod
    async def delivery_done(self, delivery_id: int) -> None: ...

    @abstractmethod
    async def delivery_failed(self, delivery_id: int, error: str, retry_at: datetime) -> None: ...

    @abstractmethod
    async def undelivered(self) -> int: ...

    @abstractmethod
    async def close(self) -> None: ...

    # retention (BOT_RETENTION_DAYS, bot/retention.py); not abstract: a board without them
    # keeps everything.
    async def delete_older_than(self, cutoff: datetime, *, dry_run: bool = False) -> dict[str, int]:
        """Delete records done or cancelled before ``cutoff`` (with their history and their
        delivered webhook calls) and webhook calls delivered before it. An open record, or one
        the CRM has not heard of yet, is kept. ``dry_run`` only counts."""
        raise NotImplementedError(f"{type(self).__name__} does not delete old records")

    async def files_in_use(self) -> set[str]:
        """Ids of the files the records still kept carry (a complaint's photos)."""
        raise NotImplementedError(f"{type(self).__name__} does not list files in use")
