"""Offers the customer confirms: the shared mechanics of every account action in the dialog.

An action asks the rules (``AccountActions.decide``); a refusal is told with its reason, a
proposal becomes an *offer*: its terms, "Подтверждаете?" and the buttons "Да" / "Нет", each
carrying the offer's operation id. The offer waits in the dialog memory for one message. "Да"
(pressed, typed, or "да, подтверждаю") carries it out under that id, so pressing it twice or a
redelivered webhook does it once; a stale "Да" after the talk moved on is told the offer expired.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from bot.billing.base import BillingUnavailable
from bot.catalog.models import Account
from bot.dialog.actions.render import day_month
from bot.dialog.engine import LAST_DONE, OFFER
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.nlu import make_payload
from bot.models import Button, Plural, Raw, Reply, Text
from bot.selfservice.policy import Proposal, Refusal
from bot.selfservice.service import AccountActions, Done

_DATES = {"until", "from", "to", "effective", "again", "since", "resume_on", "last_payment"}
_MONEY = {
    "amount",
    "fee",
    "price",
    "debt",
    "limit",
    "balance",
    "to_unblock",
    "to_stay_on",
    "monthly_total",
}
_NAMES = {"tariff", "service", "current", "link"}


def term_params(terms: Mapping[str, Any]) -> dict[str, Any]:
    """Offer terms (JSON: ISO dates, amounts as strings) as message parameters."""
    out: dict[str, Any] = {}
    for key, value in terms.items():
        if value is None:
            continue
        if key in _DATES:
            out[key] = day_month(date.fromisoformat(str(value)))
        elif key in _MONEY:
            out[key] = Decimal(str(value))
        elif key == "difference":  # said as "дороже/дешевле на …": its size
            out[key] = abs(Decimal(str(value)))
        elif key in _NAMES:
            out[key] = Raw(str(value))
        elif key == "days" and isinstance(value, int):
            out[key] = Plural("unit.days", value)
        else:
            out[key] = value
    return out


def actions_of(ctx: ActionContext) -> AccountActions:
    if ctx.actions is None:
        raise LookupError("account actions are not configured")
    return ctx.actions


def account_of(ctx: ActionContext) -> Account:
    if ctx.account is None:  # the flow's requires_identity guarantees this
        raise LookupError("account action without an identified customer")
    return ctx.account


def say(key: str, buttons: tuple[Button, ...] = (), **params: Any) -> Reply:
    return Reply((Text(key, params),), buttons)


def menu_button() -> Button:
    return Button(Text("button.menu"), "/menu")


def operator_button() -> Button:
    return Button(Text("button.operator"), "/human_operator")


def refusal_reply(refusal: Refusal, extra: tuple[Button, ...] = ()) -> Reply:
    return Reply(
        (Text(f"selfservice.refused.{refusal.reason}", term_params(refusal.terms)),),
        (*extra, menu_button()),
    )


def billing_down() -> ActionResult:
    """The billing did not answer: nothing was changed (or it will be done once on a retry);
    the customer hears so and may go to a person."""
    return ActionResult(
        replies=(say("selfservice.billing_down", (operator_button(), menu_button())),)
    )


def offer(
    ctx: ActionContext,
    kind: str,
    args: Mapping[str, Any],
    proposal: Proposal,
    parts: tuple[Text, ...],
) -> ActionResult:
    """Show the terms and ask to confirm; remember the offer for the next message."""
    op = secrets.token_urlsafe(9)
    record = {
        "op": op,
        "kind": kind,
        "args": dict(args),
        "terms": dict(proposal.terms),
        "at": ctx.now.isoformat(),
    }
    buttons = (
        Button(Text("button.yes"), make_payload("confirm", {"op": op})),
        Button(Text("button.no"), make_payload("decline", {"op": op})),
    )
    reply = Reply((*parts, Text("selfservice.confirm")), buttons)
    return ActionResult(replies=(reply,), remember={OFFER: record})


def done_parts(done: Done) -> tuple[Text, ...]:
    """What to say once an action is carried out."""
    proposal = done.proposal
    kind = proposal.kind
    terms = dict(proposal.terms)
    params = term_params(terms)
    parts: list[Text] = []
    if kind == "change_tariff":
        parts.append(
            Text(
                "selfservice.change_tariff.done_now"
                if terms.get("now")
                else "selfservice.change_tariff.done_later",
                params,
            )
        )
    elif kind == "resume":
        parts.append(
            Text(
                "selfservice.resume.done"
                if terms.get("started")
                else "selfservice.resume.done_booked",
                params,
            )
        )
    elif kind == "set_contact":
        parts.append(Text(f"selfservice.set_contact.done_{terms.get('field', 'phone')}"))
    else:
        parts.append(Text(f"selfservice.{kind}.done", params))
    if kind == "promised_payment" and terms.get("unblocks") and done.account.status == "active":
        parts.append(Text("selfservice.promised_payment.unblocked"))
    if done.repeat:
        parts.insert(0, Text("selfservice.already_done"))
    return tuple(parts)


async def confirm_operation(ctx: ActionContext) -> ActionResult:
    op = str(ctx.nlu.payload_args.get("op") or ctx.slots.get("op") or "")
    pending = ctx.memory.get(OFFER)
    account = account_of(ctx)
    actions = actions_of(ctx)
    fresh: Account | None = account  # read in this very turn: no second billing call
    if not (isinstance(pending, Mapping) and pending.get("op") == op):
        # Not the open offer: a repeat of one done or unanswered before, or a stale button.
        record = await actions.oplog.get(op) if op else None
        if record is None or record.contract != account.contract_number:
            return ActionResult(replies=(say("selfservice.offer_expired", (menu_button(),)),))
        pending = {"op": op, "kind": _action_kind(record.kind), "args": {}}
        fresh = None
    try:
        outcome = await actions.carry_out(
            account.contract_number,
            str(pending["kind"]),
            dict(pending.get("args") or {}),
            op_id=op,
            by="bot",
            conversation_id=ctx.conversation.id,
            account=fresh,
        )
    except BillingUnavailable:
        result = billing_down()
        return ActionResult(replies=result.replies, forget_memory=(OFFER,))
    if isinstance(outcome, Refusal):
        if outcome.reason == "offer_expired":
            expired = say("selfservice.offer_expired", (menu_button(),))
            return ActionResult(replies=(expired,), forget_memory=(OFFER,))
        return ActionResult(replies=(refusal_reply(outcome),), forget_memory=(OFFER,))
    reply = Reply(done_parts(outcome), (menu_button(),))
    return ActionResult(replies=(reply,), forget_memory=(OFFER,), remember={LAST_DONE: {"op": op}})


async def decline_operation(ctx: ActionContext) -> ActionResult:
    op = str(ctx.nlu.payload_args.get("op") or "")
    pending = ctx.memory.get(OFFER)
    if isinstance(pending, Mapping) and pending.get("op") == op:
        return ActionResult(
            replies=(say("selfservice.declined", (menu_button(),)),), forget_memory=(OFFER,)
        )
    record = await actions_of(ctx).oplog.get(op) if op and ctx.actions else None
    if record is not None and record.status == "done":
        # "Нет" pressed after "Да" went through: say what is in force, do not pretend to undo.
        return ActionResult(replies=(say("selfservice.too_late", (menu_button(),)),))
    return ActionResult(replies=(say("selfservice.declined", (menu_button(),)),))


def _action_kind(operation_kind: str) -> str:
    """The action name of a logged billing operation (only autopay differs)."""
    return "autopay_off" if operation_kind == "autopay" else operation_kind
