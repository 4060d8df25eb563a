"""Catalog values as localisable parts: money, dates, weekly schedules, tariff lines.

Everything here returns ``Text``/``Raw`` values; the wording is in ``locales/``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from bot.catalog.models import Office, Tariff, Transaction
from bot.catalog.opening_hours import OpeningHours, status_at
from bot.intents.normalize import basic
from bot.models import Number, Plural, Raw, Text


def mentions(text: str, markers: Sequence[str]) -> bool:
    """True if any marker phrase occurs in the text as whole words (case and ё insensitive)."""
    norm = basic(text)
    return any(re.search(rf"(?<!\w){re.escape(basic(m))}(?!\w)", norm) for m in markers)


def mentions_stem(text: str, markers: Sequence[str]) -> bool:
    """True if a marker starts a word of the text: "реклам" finds "рекламой", "отключ" finds
    "отключите" (Russian inflects, so flows list stems). Case and ё insensitive."""
    norm = basic(text)
    return any(re.search(rf"(?<!\w){re.escape(basic(m))}", norm) for m in markers)


def day_month(day: date) -> Text:
    return Text("date.day_month", {"day": day.day, "month": Text(f"month.gen.{day.month}")})


def clock(t: time) -> str:
    return "24:00" if t == time.max else f"{t.hour:02d}:{t.minute:02d}"


def tariff_line(tariff: Tariff) -> Text:
    params: dict[str, object] = {"name": Raw(tariff.name), "price": tariff.price_rub}
    if tariff.speed_mbps is not None:
        params["speed"] = tariff.speed_mbps
    if tariff.tv_channels is not None:
        params["channels"] = Plural("unit.channels", tariff.tv_channels)
    return Text(f"tariff.line.{tariff.kind}", params)


def transaction_line(tx: Transaction) -> Text:
    key = "history.line.payment" if tx.amount_rub > 0 else "history.line.charge"
    return Text(
        key,
        {
            "date": day_month(tx.at.date()),
            "amount": abs(tx.amount_rub),
            "description": Raw(tx.description),
        },
    )


def weekly_schedule(hours: OpeningHours) -> Text:
    if hours.always_open:
        return Text("hours.always")
    groups: list[tuple[int, int, tuple[tuple[time, time], ...]]] = []
    for day in range(7):
        intervals = hours.intervals_on(day)
        if groups and groups[-1][2] == intervals and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, intervals)
        else:
            groups.append((day, day, intervals))
    parts: list[Text] = []
    for first, last, intervals in groups:
        days: Text = (
            Text(f"weekday.short.{first}")
            if first == last
            else Text(
                "hours.day_range",
                {"first": Text(f"weekday.short.{first}"), "last": Text(f"weekday.short.{last}")},
            )
        )
        if intervals:
            span = ", ".join(f"{clock(a)}–{clock(b)}" for a, b in intervals)
            parts.append(Text("hours.group", {"days": days, "hours": Raw(span)}))
        else:
            parts.append(Text("hours.group_closed", {"days": days}))
    return Text("hours.schedule", {"groups": _joined(parts)})


def _joined(parts: Sequence[Text]) -> Text:
    out = parts[0]
    for part in parts[1:]:
        out = Text("list.join", {"a": out, "b": part})
    return out


def hours_line(hours: OpeningHours, now_utc: datetime, tz: str) -> Text:
    """The weekly schedule and, unless it never closes, whether it is open right now."""
    if hours.always_open:
        return Text("hours.open_always")
    return Text(
        "hours.with_status",
        {"schedule": weekly_schedule(hours), "status": open_status(hours, now_utc, tz)},
    )


def open_status(hours: OpeningHours, now_utc: datetime, tz: str) -> Text:
    """Open until 20:00 / closed, opens tomorrow at 09:00 — in the office's time zone."""
    status = status_at(hours, now_utc, tz)
    if status.changes_at is None:
        return Text("hours.open_now") if status.is_open else Text("hours.closed_now")
    local_now = now_utc.astimezone(status.changes_at.tzinfo)
    when = _relative_moment(status.changes_at, local_now)
    key = "hours.open_until" if status.is_open else "hours.opens_at"
    return Text(key, {"when": when})


def _relative_moment(moment: datetime, now: datetime) -> Text:
    at = clock(moment.time())
    if moment.date() == now.date():
        return Text("when.today", {"time": at})
    if moment.date() == now.date() + timedelta(days=1):
        return Text("when.tomorrow", {"time": at})
    return Text("when.weekday", {"day": Text(f"weekday.on.{moment.weekday()}"), "time": at})


def office_block(
    office: Office, hours: OpeningHours, now_utc: datetime, tz: str, *, distance_km: float | None
) -> Text:
    distance: Text | Raw = Raw("")
    if distance_km is not None:
        distance = (
            Text("distance.m", {"m": int(round(distance_km * 1000, -1))})
            if distance_km < 1
            else Text("distance.km", {"km": Number(Decimal(str(round(distance_km, 1))))})
        )
    return Text(
        f"office.block.{office.kind}",
        {
            "name": Raw(office.name),
            "address": Raw(office.address),
            "hours": hours_line(hours, now_utc, tz),
            "distance": distance,
        },
    )
