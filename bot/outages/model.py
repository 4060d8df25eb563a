"""An outage or a planned work, as in ``outages.csv`` and the outage API (DATA_FORMAT.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

OutageKind = Literal["accident", "planned"]
OUTAGE_KINDS: tuple[str, ...] = ("accident", "planned")
OUTAGE_SERVICES: tuple[str, ...] = ("internet", "tv", "phone")  # also the order they are named in


@dataclass(frozen=True, slots=True)
class Outage:
    outage_id: str
    city_id: str
    street: str  # "" = the whole city
    houses: tuple[str, ...]  # () = the whole street
    services: tuple[str, ...]  # a subset of OUTAGE_SERVICES, in that order
    kind: OutageKind
    started_at: datetime  # aware
    expected_end: datetime | None  # aware; None = unknown
    reason: str
    ended_at: datetime | None = None  # closed by the operations centre (or a planned work over)

    def in_force(self, at: datetime) -> bool:
        """Going on at ``at``: started, not closed, and (for planned works, which end on
        schedule) not past their end. An accident past its expected end still goes on until
        the operations centre closes it."""
        if self.started_at > at or (self.ended_at is not None and self.ended_at <= at):
            return False
        return not (self.kind == "planned" and self.expected_end and self.expected_end <= at)

    def upcoming(self, at: datetime) -> bool:
        return self.ended_at is None and self.started_at > at

    def state(self, at: datetime) -> Literal["upcoming", "ongoing", "ended"]:
        if self.in_force(at):
            return "ongoing"
        return "upcoming" if self.upcoming(at) else "ended"


def ordered_services(services: set[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s for s in OUTAGE_SERVICES if s in services)
