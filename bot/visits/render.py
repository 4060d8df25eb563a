"""How a window is named to a customer ("завтра, 10:00–12:00"): message ids and data only; the
wording is in locales/*/visits.yml."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.models import Raw, Text


def window_text(starts_at: datetime, ends_at: datetime, now: datetime, tz: ZoneInfo) -> Text:
    """The window in the city's own clock and calendar, relative to the city's today."""
    start, end = starts_at.astimezone(tz), ends_at.astimezone(tz)
    ahead = (start.date() - now.astimezone(tz).date()).days
    if ahead == 0:
        day = Text("visits.day.today")
    elif ahead == 1:
        day = Text("visits.day.tomorrow")
    else:
        day = Text(
            "visits.day.date",
            {"weekday": Text(f"visits.weekday.{start.weekday()}"), "date": day_month(start.date())},
        )
    return Text(
        "visits.window",
        {"day": day, "from": Raw(f"{start:%H:%M}"), "to": Raw(f"{end:%H:%M}")},
    )


def day_month(day: date) -> Text:
    # The same as bot/dialog/actions/render.py; not imported from there, since the dialog
    # actions import this module (a cycle through bot/dialog/actions/__init__.py).
    return Text("date.day_month", {"day": day.day, "month": Text(f"month.gen.{day.month}")})


def fee_text(fee_rub: Decimal) -> Text:
    return Text("visits.fee.free") if fee_rub == 0 else Text("visits.fee.paid", {"fee": fee_rub})
