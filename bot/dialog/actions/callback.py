"""A call-back request: what about, consent, the phone, and when — a window in the future and
within the hours of the department that will call. Stored on the request board for operators.

The flow (flows/dialog.d/requests.yml ``callback_request``) declares the slots; this action
decides what to ask next, so that a refusal of consent ends it before a phone is asked and a
time that cannot be kept is explained instead of accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.dialog.actions import consent
from bot.dialog.actions.render import day_month, mentions_stem
from bot.dialog.types import ActionContext, ActionResult
from bot.handoff.config import Department
from bot.intents.datetimes import find_dates, find_times
from bot.intents.nlu import make_payload
from bot.models import Button, Raw, Reply, Text
from bot.notify import mask_phone
from bot.requests.desk import requests_of
from bot.requests.model import NewRequest

# ActionContext.extras key: department name -> Department (hours from flows/handoff.yml, read
# live so a changed configuration applies to the next call-back). bot/services.py puts it there.
DEPARTMENTS: Final = "departments"
ON_FILE: Final = "on_file"  # the phone button of an identified customer: the account's number
# A time without an end ("в 15:00", "после 18") asks for a call within this long.
POINT_WINDOW = timedelta(hours=1)
AFTER_WINDOW = timedelta(hours=2)
SHORTEST = timedelta(minutes=15)  # a window cut by closing time shorter than this is no window


@dataclass(frozen=True, slots=True)
class Reason:
    reason_id: str
    title: str  # message id of its button
    department: str
    markers: tuple[str, ...]


def _reasons(ctx: ActionContext) -> list[Reason]:
    return [
        Reason(
            str(r["id"]),
            str(r["title"]),
            str(r.get("department", "general")),
            tuple(str(m) for m in r.get("markers") or ()),
        )
        for r in ctx.params.get("reasons") or ()
    ]


def _reason(ctx: ActionContext, reasons: Sequence[Reason]) -> tuple[Reason | None, str | None]:
    """The reason pressed, or read from typed words (anything else is "other", the words kept
    as the topic so the operator knows what the call is about)."""
    value = ctx.slots.get("reason")
    if value is None:
        return None, None
    said = str(value)
    by_id = {r.reason_id: r for r in reasons}
    if said in by_id:
        return by_id[said], None
    for reason in reasons:
        if mentions_stem(said, list(reason.markers)):
            return reason, said
    return by_id.get(str(ctx.params.get("fallback_reason", "other"))) or reasons[-1], said


def _department(ctx: ActionContext, name: str) -> Department:
    lookup = ctx.extras.get(DEPARTMENTS)
    if callable(lookup):
        found = lookup(name)
        if isinstance(found, Department):
            return found
    return Department(name)  # no hours configured: around the clock


def _customer_zone(ctx: ActionContext, department: Department) -> ZoneInfo:
    """The customer's clock: "в 10" from Chita is ten in Chita. Their city (account or the
    one they named), else the department's zone."""
    city_id = ctx.account.city_id if ctx.account else ctx.memory.get("city")
    if isinstance(city_id, str) and ctx.catalog.city(city_id) is not None:
        return ctx.catalog.timezone(city_id)
    return ZoneInfo(department.timezone)


async def save_callback(ctx: ActionContext) -> ActionResult:
    reasons = _reasons(ctx)
    reason, topic = _reason(ctx, reasons)
    if reason is None:
        buttons = tuple(
            Button(Text(r.title), make_payload("inform", {"reason": r.reason_id})) for r in reasons
        )
        return ActionResult(ask="reason", ask_buttons=buttons)

    agreed = consent.answer(ctx)
    if agreed == "refused":
        return consent.refused(ctx, ctx.account.city_id if ctx.account else None)
    if agreed != "given":
        return consent.ask(ctx, unclear=agreed == "unclear")

    phone = _phone(ctx)
    if phone is None:
        return _ask_phone(ctx)

    department = _department(ctx, reason.department)
    zone = _customer_zone(ctx, department)
    when = ctx.slots.get("when")
    if when is None:
        return ActionResult(ask="when")
    fitted = fit_window(str(when), ctx.now, zone, department)
    if isinstance(fitted, Refusal):
        return _ask_when_again(fitted, zone)

    start, end = fitted
    shown = window_text(start, end, zone)
    details: dict[str, Any] = {
        "reason": reason.reason_id,
        "department": department.name,
        "when": ctx.render(shown),
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "timezone": str(zone),
        **consent.record(ctx),
    }
    if topic:
        details["topic"] = topic
    request = await requests_of(ctx).create(
        NewRequest(
            kind="callback",
            conversation_id=ctx.conversation.id,
            contract=ctx.conversation.contract_number,
            phone=phone,
            city_id=ctx.account.city_id if ctx.account else None,
            details=details,
        )
    )
    saved = Text(
        "callback.saved",
        {
            "number": request.id,
            "phone": Raw(mask_phone(phone)),
            "when": shown,
            "reason": Text(reason.title),
        },
    )
    return ActionResult(
        replies=(Reply((saved,), (Button(Text("button.menu"), "/menu"),)),),
        forget_memory=(consent.SHOWN,),
    )


def _phone(ctx: ActionContext) -> str | None:
    value = ctx.slots.get("phone")
    if value == ON_FILE:
        # Resolved here, not carried in the button: the number stays out of payloads and logs.
        return ctx.account.phone if ctx.account and ctx.account.phone else None
    return str(value) if value else None


def _ask_phone(ctx: ActionContext) -> ActionResult:
    buttons: tuple[Button, ...] = ()
    if ctx.account is not None and ctx.account.phone:
        title = Text("callback.button.phone_on_file", {"phone": Raw(mask_phone(ctx.account.phone))})
        buttons = (Button(title, make_payload("inform", {"phone": ON_FILE})),)
    return ActionResult(ask="phone", forget=("phone",), ask_buttons=buttons)


# --- the time window ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a time cannot be taken: ``past`` or ``closed`` (with the nearest window that can)."""

    why: str
    suggestion: tuple[datetime, datetime] | None = None


def fit_window(
    text: str, now: datetime, zone: ZoneInfo, department: Department
) -> tuple[datetime, datetime] | Refusal:
    """The call-back window for what the customer typed (or a suggestion they pressed), in
    their zone: in the future, and inside the department's hours (clipped to them), or why not.
    """
    local_now = now.astimezone(zone)
    asked = _interval(text, zone) or _typed_window(text, local_now)
    if asked is None:
        return Refusal("unclear")
    start, end = asked
    if end <= local_now:
        return Refusal("past")
    start = max(start, _round_up(local_now))
    return _within_hours(start, end, department, zone)


def _interval(text: str, zone: ZoneInfo) -> tuple[datetime, datetime] | None:
    """A suggestion button's value: ``<ISO start>/<ISO end>``."""
    first, sep, second = text.partition("/")
    if not sep:
        return None
    try:
        start, end = datetime.fromisoformat(first), datetime.fromisoformat(second)
    except ValueError:
        return None
    if start.tzinfo is None or end.tzinfo is None:
        return None
    return start.astimezone(zone), end.astimezone(zone)


def _typed_window(text: str, local_now: datetime) -> tuple[datetime, datetime] | None:
    today = local_now.date()
    dates = find_dates(text, today)
    spans = [(d.start, d.end) for d in dates]
    times = find_times(text, spans, spans)
    if not dates and not times:
        return None
    day = date.fromisoformat(dates[0].value) if dates else today
    zone = local_now.tzinfo

    def at(value: str) -> datetime:
        hour, minute = (int(x) for x in value.split(":"))
        return datetime.combine(day, time(hour, minute), tzinfo=zone)

    starts = [t for t in times if t.qualifier in (None, "from", "after")]
    ends = [t for t in times if t.qualifier in ("to", "before")]
    midnight = datetime.combine(day, time(0, 0), tzinfo=zone)
    if starts and ends:
        start, end = at(starts[0].value), at(ends[0].value)
        if end <= start:
            end = start + POINT_WINDOW
    elif starts:
        start = at(starts[0].value)
        end = start + (POINT_WINDOW if starts[0].qualifier is None else AFTER_WINDOW)
    elif ends:
        start, end = midnight, at(ends[0].value)
    else:  # a day only: any time the department works that day
        start, end = midnight, midnight + timedelta(days=1)
    return start, end


def _round_up(moment: datetime) -> datetime:
    """Now, to the next quarter of an hour: nobody can be called back in the past minute."""
    base = moment.replace(second=0, microsecond=0)
    return base + timedelta(minutes=(-base.minute) % 15 or (15 if moment > base else 0))


def _within_hours(
    start: datetime, end: datetime, department: Department, zone: ZoneInfo
) -> tuple[datetime, datetime] | Refusal:
    hours = department.hours
    if hours is None or hours.always_open:
        return start, end
    dept_zone = ZoneInfo(department.timezone)
    local = start.astimezone(dept_zone)
    opening = local if hours.is_open(local) else hours.next_change(local)
    if opening is None:
        return Refusal("closed")
    closing = hours.next_change(opening)
    if opening < end.astimezone(dept_zone):
        window_end = min(end.astimezone(dept_zone), closing) if closing else end
        if window_end - opening >= SHORTEST:
            return opening.astimezone(zone), window_end.astimezone(zone)
        opening = hours.next_change(closing) if closing else None
        if opening is None:
            return Refusal("closed")
        closing = hours.next_change(opening)
    length = POINT_WINDOW if closing is None else min(POINT_WINDOW, closing - opening)
    suggestion = (opening.astimezone(zone), (opening + length).astimezone(zone))
    return Refusal("closed", suggestion)


def window_text(start: datetime, end: datetime, zone: ZoneInfo) -> Text:
    """ "завтра, 23 ноября, с 10:00 до 12:00" in the customer's clock."""
    start, end = start.astimezone(zone), end.astimezone(zone)
    until = (
        "24:00" if end.date() > start.date() and end.time() == time(0) else end.strftime("%H:%M")
    )
    return Text(
        "callback.window",
        {"day": day_month(start.date()), "from": start.strftime("%H:%M"), "to": until},
    )


def _ask_when_again(refusal: Refusal, zone: ZoneInfo) -> ActionResult:
    buttons: tuple[Button, ...] = ()
    parts: tuple[Text, ...]
    if refusal.why == "past":
        parts = (Text("callback.when_past"),)
    elif refusal.why == "closed" and refusal.suggestion is not None:
        start, end = refusal.suggestion
        parts = (Text("callback.when_closed", {"nearest": window_text(start, end, zone)}),)
        value = f"{start.isoformat()}/{end.isoformat()}"
        title = Text("callback.button.nearest", {"window": window_text(start, end, zone)})
        buttons = (Button(title, make_payload("inform", {"when": value})),)
    elif refusal.why == "closed":
        parts = (Text("callback.when_never"),)
    else:
        parts = (Text("callback.when_unclear"),)
    return ActionResult(ask="when", forget=("when",), ask_parts=parts, ask_buttons=buttons)


def departments_lookup(config: Callable[[], Any]) -> Callable[[str], Department]:
    """For bot/services.py: the department by name from the live handoff configuration."""

    def lookup(name: str) -> Department:
        found = config().department(name)
        return found if isinstance(found, Department) else Department(name)

    return lookup
