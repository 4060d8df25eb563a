"""Handoff settings from ``flows/handoff.yml``: departments, hours, assignment, timeouts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import yaml

from bot.catalog.opening_hours import OpeningHours, OpeningHoursError, OpenStatus, status_at
from bot.dialog.flows import FlowError


@dataclass(frozen=True, slots=True)
class Department:
    name: str
    hours: OpeningHours | None = None  # None: around the clock
    timezone: str = "UTC"

    def status(self, now_utc: datetime) -> OpenStatus:
        if self.hours is None:
            return OpenStatus(True, None)
        return status_at(self.hours, now_utc, self.timezone)


@dataclass(frozen=True, slots=True)
class HandoffConfig:
    departments: Mapping[str, Department]
    assignment: Literal["least_busy", "round_robin"]
    answer_timeout_seconds: float
    average_handle_seconds: float
    canned: tuple[str, ...]
    # While waiting in the queue a customer's message is acknowledged ("передано, оператор
    # увидит") at most once per this many seconds: reassuring, not an echo of every message.
    queued_ack_seconds: float = 180.0

    def department(self, name: str) -> Department:
        return self.departments.get(name) or self.departments["general"]


def load_handoff_config(path: Path) -> HandoffConfig:
    """The settings, or ``FlowError`` naming the file for anything it cannot be (not UTF-8,
    not a mapping, a setting of the wrong type): start-up stops with the reason."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FlowError(f"{path}: {exc}") from exc
    try:
        return _parse(path, data)
    except FlowError:
        raise
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise FlowError(f"{path}: {exc}") from None


def _parse(path: Path, data: object) -> HandoffConfig:
    if not isinstance(data, dict):
        raise FlowError(f"{path}: the file must be a mapping of settings")
    raw_departments = data.get("departments") or {"general": {}}
    if not isinstance(raw_departments, dict):
        raise FlowError(f"{path}: departments must be a mapping of names to settings")
    departments: dict[str, Department] = {}
    for name, raw in raw_departments.items():
        raw = raw or {}
        if not isinstance(raw, dict):
            raise FlowError(f"{path}: department {name!r} must be a mapping")
        hours = None
        if raw.get("hours"):
            try:
                hours = OpeningHours.parse(str(raw["hours"]))
                ZoneInfo(str(raw.get("timezone", "UTC")))
            except (OpeningHoursError, ValueError, KeyError) as exc:  # KeyError: unknown zone
                raise FlowError(f"{path}: department {name!r}: {exc}") from None
        departments[str(name)] = Department(str(name), hours, str(raw.get("timezone", "UTC")))
    departments.setdefault("general", Department("general"))
    assignment = data.get("assignment", "least_busy")
    if assignment not in ("least_busy", "round_robin"):
        raise FlowError(f"{path}: assignment must be least_busy or round_robin")
    canned = data.get("canned") or ()
    if not isinstance(canned, list | tuple):
        raise FlowError(f"{path}: canned must be a list of answer names")
    return HandoffConfig(
        departments=departments,
        assignment=assignment,
        answer_timeout_seconds=float(data.get("answer_timeout_seconds", 300)),
        average_handle_seconds=float(data.get("average_handle_seconds", 240)),
        canned=tuple(str(c) for c in canned),
        queued_ack_seconds=float(data.get("queued_ack_seconds", 180)),
    )
