"""An outage as message parts (wording in ``locales/*/outages.yml``): in the dialog, before any
troubleshooting, and in the notices to affected customers. Times are the city's local time."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.models import Raw, Text
from bot.outages.model import Outage


# The same parts as bot/dialog/actions/render.py makes; not imported from there because the
# dialog's actions import this module (the package's __init__ would import itself).
def _day_month(day: date) -> Text:
    return Text("date.day_month", {"day": day.day, "month": Text(f"month.gen.{day.month}")})


def _moment(prefix: str, at: datetime, now: datetime, tz: ZoneInfo) -> Text:
    """ "сегодня к 14:00" / "завтра к 14:00" / "3 декабря к 14:00" (or "… с …" for starts)."""
    local, today = at.astimezone(tz), now.astimezone(tz).date()
    params: dict[str, object] = {"time": Raw(f"{local.hour:02d}:{local.minute:02d}")}
    if local.date() == today:
        return Text(f"{prefix}.today", params)
    if local.date() == today + timedelta(days=1):
        return Text(f"{prefix}.tomorrow", params)
    return Text(f"{prefix}.day", {**params, "date": _day_month(local.date())})


def what_is_down(outage: Outage) -> Text:
    return Text(f"outages.what.{'_'.join(outage.services)}")


def end_part(outage: Outage, now: datetime, tz: ZoneInfo) -> Text:
    # An accident past its expected end is still going on: that time means nothing any more.
    if outage.expected_end is None or outage.expected_end <= now:
        return Text("outages.end_unknown")
    return Text("outages.end_at", {"when": _moment("outages.when", outage.expected_end, now, tz)})


def outage_answer(outage: Outage, now: datetime, tz: ZoneInfo) -> list[Text]:
    """What is down at the customer's address, why, and until when."""
    return [
        Text(f"outages.now.{outage.kind}", {"what": what_is_down(outage)}),
        Text("outages.reason", {"reason": Raw(outage.reason.rstrip("."))}),
        end_part(outage, now, tz),
    ]


def posted_notice(outage: Outage, address: str, now: datetime, tz: ZoneInfo) -> list[Text]:
    params: dict[str, object] = {"address": Raw(address), "what": what_is_down(outage)}
    if outage.kind == "planned":
        params["start"] = _moment("outages.start", outage.started_at, now, tz)
    return [
        Text(f"outages.notice.{outage.kind}", params),
        Text("outages.reason", {"reason": Raw(outage.reason.rstrip("."))}),
        end_part(outage, now, tz),
    ]


def ended_notice(outage: Outage, address: str) -> list[Text]:
    key = "outages.notice.planned_ended" if outage.kind == "planned" else "outages.notice.ended"
    return [Text(key, {"address": Raw(address)})]
