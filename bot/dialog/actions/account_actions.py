"""Promised payment, unblocking, voluntary pause and tariff change in the dialog: the rules
decide, the customer confirms an offer (``offers``), the billing does it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.catalog.models import Tariff
from bot.dialog.actions.offers import (
    account_of,
    actions_of,
    menu_button,
    offer,
    refusal_reply,
    say,
    term_params,
)
from bot.dialog.actions.render import day_month, mentions_stem
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.entities import speed_mbps
from bot.intents.nlu import make_payload
from bot.intents.normalize import basic
from bot.models import Button, Raw, Reply, Text
from bot.selfservice import policy
from bot.selfservice.policy import Proposal, Refusal


def _mode(ctx: ActionContext, markers: dict[str, str]) -> str | None:
    """The sub-request: from a button (``mode``) or marker words in the text (flow params)."""
    mode = ctx.slots.get("mode") or ctx.nlu.payload_args.get("mode")
    if mode:
        return str(mode)
    for name, param in markers.items():
        if mentions_stem(ctx.text, ctx.params.get(param, [])):
            return name
    return None


def _pay_buttons(ctx: ActionContext) -> tuple[Button, ...]:
    return (
        Button(Text("button.how_to_pay"), "/payment_method"),
        Button(Text("button.show_terminals"), '/offices{"kind":"terminal"}'),
    )


# --- promised payment --------------------------------------------------------------------------
async def promised_payment(ctx: ActionContext) -> ActionResult:
    account = account_of(ctx)
    decision = actions_of(ctx).decide("promised_payment", account, {})
    if isinstance(decision, Refusal):
        return ActionResult(replies=(refusal_reply(decision, _pay_buttons(ctx)),))
    params = term_params(decision.terms)
    parts = [Text("selfservice.promised_payment.offer", params)]
    if decision.terms.get("unblocks"):
        parts.append(Text("selfservice.promised_payment.will_unblock"))
    if decision.terms.get("fee") not in (None, "0.00"):
        parts.append(Text("selfservice.promised_payment.fee", params))
    return offer(ctx, "promised_payment", {}, decision, tuple(parts))


# --- unblocking ----------------------------------------------------------------------------------
async def unblock(ctx: ActionContext) -> ActionResult:
    account = account_of(ctx)
    actions = actions_of(ctx)
    decision = actions.decide("unblock", account, {})
    if isinstance(decision, Proposal):  # the money is there: switch it back on
        return offer(
            ctx,
            "unblock",
            {},
            decision,
            (Text("selfservice.unblock.offer", term_params(decision.terms)),),
        )
    if decision.reason == "unblock_suspended":
        resume = Button(Text("button.resume"), make_payload("suspend_service", {"mode": "resume"}))
        return ActionResult(replies=(refusal_reply(decision, (resume,)),))
    if decision.reason != "unblock_funds":
        return ActionResult(
            replies=(refusal_reply(decision, (Button(Text("button.balance"), "/balance"),)),)
        )
    reasons = dict(decision.terms)
    params = term_params(reasons)
    parts = [Text("selfservice.blocked.debt", params)]
    if reasons.get("long_unpaid") and reasons.get("last_payment"):
        parts.append(Text("selfservice.blocked.long_unpaid", params))
    parts.append(Text("selfservice.blocked.what_to_pay", params))
    link = ctx.catalog.rules.payment_link(account.contract_number)
    if link:
        parts.append(Text("selfservice.pay_link", {"link": Raw(link)}))
    parts.append(Text("selfservice.blocked.after_payment"))
    buttons = (Button(Text("button.promised_payment"), "/promised_payment"), *_pay_buttons(ctx))
    return ActionResult(replies=(Reply(tuple(parts), buttons),))


# --- voluntary pause -------------------------------------------------------------------------
_PAUSE_MARKERS = {"resume": "resume_markers", "status": "status_markers"}


async def suspension(ctx: ActionContext) -> ActionResult:
    account = account_of(ctx)
    actions = actions_of(ctx)
    mode = _mode(ctx, _PAUSE_MARKERS)
    pause = account.suspension
    resume_button = Button(
        Text("button.resume"), make_payload("suspend_service", {"mode": "resume"})
    )
    if mode == "resume":
        decision = actions.decide("resume", account, {})
        if isinstance(decision, Refusal):
            return ActionResult(replies=(refusal_reply(decision),))
        key = "offer" if decision.terms.get("started") else "offer_booked"
        return offer(
            ctx,
            "resume",
            {},
            decision,
            (Text(f"selfservice.resume.{key}", term_params(decision.terms)),),
        )
    if pause is not None or account.status == "suspended":
        # Already paused or booked: say until when, offer to come back early.
        if pause is None:
            text = Text("selfservice.pause.open")
        elif pause.start > actions.today(account):
            text = Text(
                "selfservice.pause.booked",
                {
                    "from": day_month(pause.start),
                    "to": day_month(pause.end) if pause.end else Raw("—"),
                },
            )
        elif pause.end is None:
            text = Text("selfservice.pause.open")
        else:
            text = Text("selfservice.pause.until", {"to": day_month(pause.end)})
        return ActionResult(replies=(Reply((text,), (resume_button, menu_button())),))
    if mode == "status":
        book = Button(Text("button.pause"), make_payload("suspend_service", {"mode": "book"}))
        return ActionResult(replies=(say("selfservice.pause.none", (book, menu_button())),))
    rules = ctx.catalog.rules.suspension
    terms = Text("selfservice.pause.rules", {"min": rules.min_days, "max": rules.max_days})
    dates = ctx.slots.get("dates")
    if not dates:
        return ActionResult(ask="dates", ask_parts=(terms,))
    decision = actions.decide("suspend", account, {"text": str(dates)})
    if isinstance(decision, Refusal):
        if decision.reason in (
            "suspend_no_end",
            "suspend_in_past",
            "suspend_reversed",
            "suspend_length",
        ):
            problem = Text(f"selfservice.refused.{decision.reason}", term_params(decision.terms))
            return ActionResult(ask="dates", forget=("dates",), ask_parts=(problem,))
        return ActionResult(replies=(refusal_reply(decision),))
    args = {"from": decision.terms["from"], "to": decision.terms["to"]}
    params = term_params(decision.terms)
    parts = [Text("selfservice.suspend.offer", params)]
    if decision.terms.get("fee") not in (None, "0.00"):
        parts.append(Text("selfservice.suspend.fee", params))
    return offer(ctx, "suspend", args, decision, tuple(parts))


# --- tariff change ---------------------------------------------------------------------------
def _tariff_asked(ctx: ActionContext, choices: list[Tariff]) -> Tariff | None:
    """The tariff the customer picked: a button (id), its name, or a speed ("до 1 гигабита")."""
    value = ctx.slots.get("tariff") or ctx.nlu.payload_args.get("tariff")
    if value:
        by_id = next((t for t in choices if t.tariff_id == value), None)
        if by_id is not None:
            return by_id
    text = basic(str(value or ctx.text))
    named = [t for t in choices if basic(t.name) in text]
    if len(named) >= 1:
        return max(named, key=lambda t: len(t.name))
    speed = speed_mbps(text)
    if speed is not None:
        fitting = [t for t in choices if t.speed_mbps == speed]
        if len(fitting) == 1:
            return fitting[0]
    return None


async def change_tariff(ctx: ActionContext) -> ActionResult:
    account = account_of(ctx)
    actions = actions_of(ctx)
    if _mode(ctx, {"cancel": "cancel_markers"}) == "cancel":
        decision = actions.decide("cancel_tariff_change", account, {})
        if isinstance(decision, Refusal):
            return ActionResult(replies=(refusal_reply(decision),))
        cancel = Text("selfservice.cancel_tariff_change.offer", term_params(decision.terms))
        return offer(ctx, "cancel_tariff_change", {}, decision, (cancel,))
    choices = policy.tariff_choices(account, ctx.catalog)
    chosen = _tariff_asked(ctx, choices)
    if chosen is None:
        if not choices:
            return ActionResult(
                replies=(say("selfservice.change_tariff.no_choices", (menu_button(),)),)
            )
        current = ctx.catalog.tariffs.get(account.tariff_id)
        lines: list[Any] = []
        for t in choices:
            diff = t.price_rub - (current.price_rub if current else 0)
            key = "more" if diff > 0 else "less" if diff < 0 else "same"
            # Switching from a tariff with internet to one without is legal but rarely meant.
            loses = current is not None and current.speed_mbps and t.speed_mbps is None
            note = Text("selfservice.change_tariff.no_internet") if loses else Raw("")
            lines.append(
                Text(
                    f"selfservice.change_tariff.line_{key}",
                    {
                        "tariff": Raw(t.name),
                        "price": t.price_rub,
                        "difference": abs(diff),
                        "note": note,
                    },
                )
            )
        parts: list[Text] = [
            Text(
                "selfservice.change_tariff.choices",
                {"current": Raw(current.name if current else account.tariff_id), "items": lines},
            )
        ]
        buttons = [
            Button(Raw(t.name), make_payload("change_tariff", {"tariff": t.tariff_id}))
            for t in choices[:8]
        ]
        if account.pending_tariff is not None:
            pending = ctx.catalog.tariffs.get(account.pending_tariff.tariff_id)
            parts.insert(
                0,
                Text(
                    "selfservice.change_tariff.pending",
                    {
                        "tariff": Raw(
                            pending.name if pending else account.pending_tariff.tariff_id
                        ),
                        "effective": day_month(account.pending_tariff.effective),
                    },
                ),
            )
            buttons.append(
                Button(
                    Text("button.cancel_change"), make_payload("change_tariff", {"mode": "cancel"})
                )
            )
        return ActionResult(
            ask="tariff", forget=("tariff",), ask_parts=tuple(parts), ask_buttons=tuple(buttons)
        )
    decision = actions.decide("change_tariff", account, {"tariff_id": chosen.tariff_id})
    if isinstance(decision, Refusal):
        return ActionResult(replies=(refusal_reply(decision),))
    terms = decision.terms
    difference = Decimal(str(terms["difference"]))
    direction = "more" if difference > 0 else "less" if difference < 0 else "same"
    params = term_params(terms)
    said = (
        Text(f"selfservice.change_tariff.offer_{'now' if terms.get('now') else 'later'}", params),
        Text(f"selfservice.change_tariff.price_{direction}", params),
    )
    return offer(ctx, "change_tariff", {"tariff_id": chosen.tariff_id}, decision, said)
