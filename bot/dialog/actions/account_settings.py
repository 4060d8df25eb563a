"""Extra services, autopay, notification preferences and contact details in the dialog."""

from __future__ import annotations

import secrets
from typing import Any

from bot.billing.base import BillingUnavailable
from bot.catalog.models import (
    DEFAULT_NOTIFICATIONS,
    NOTIFICATION_CHANNELS,
    NOTIFICATION_TOPICS,
    Account,
    Service,
)
from bot.dialog.actions.offers import (
    account_of,
    actions_of,
    billing_down,
    done_parts,
    menu_button,
    offer,
    refusal_reply,
    say,
    term_params,
)
from bot.dialog.actions.one_time_codes import (
    CODES_PER_HOUR,
    check,
    limited_reply,
    may_send,
    new_code,
    recent,
)
from bot.dialog.actions.render import mentions_stem
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.entities import contact_of
from bot.intents.nlu import make_payload
from bot.intents.normalize import basic
from bot.models import Button, Raw, Reply, Text
from bot.notify import mask_email, mask_phone
from bot.selfservice.policy import Refusal

MAX_SERVICE_BUTTONS = 8


def _new_op() -> str:
    return secrets.token_urlsafe(9)


# --- extra services --------------------------------------------------------------------------
def _service_named(ctx: ActionContext, services: list[Service]) -> Service | None:
    """The service the customer means: a button (id), its name, or a kind's words (params)."""
    wanted = ctx.slots.get("service") or ctx.nlu.payload_args.get("service")
    if wanted:
        return next((s for s in services if s.service_id == wanted), None)
    text = basic(ctx.text)
    named = [s for s in services if basic(s.name) in text]
    if named:
        return max(named, key=lambda s: len(s.name))
    kinds: dict[str, list[str]] = dict(ctx.params.get("kind_words", {}))
    for kind, words in kinds.items():
        if mentions_stem(ctx.text, words):
            of_kind = [s for s in services if s.kind == kind]
            if len(of_kind) == 1:
                return of_kind[0]
    return None


def _service_line(service: Service) -> Text:
    return Text(
        f"selfservice.services.line_{service.period}",
        {"service": Raw(service.name), "price": service.price_rub},
    )


async def services(ctx: ActionContext) -> ActionResult:
    account = ctx.account
    if account is None:
        # Anyone may see what is offered; connecting needs the contract.
        city = ctx.slots.get("city")
        if not city:
            return ActionResult(ask="city")
        offered = ctx.catalog.offered_services(str(city))
        if not offered:
            return ActionResult(replies=(say("selfservice.services.none", (menu_button(),)),))
        items = [_service_line(s) for s in offered]
        identify = (Button(Text("button.identify"), "/identify"), menu_button())
        return ActionResult(
            replies=(
                Reply(
                    (
                        Text(
                            "selfservice.services.offered",
                            {"city": Raw(ctx.catalog.cities[str(city)].name), "items": items},
                        ),
                        Text("selfservice.services.identify_to_connect"),
                    ),
                    identify,
                ),
            )
        )
    actions = actions_of(ctx)
    on_account = [s for sid in account.services if (s := ctx.catalog.services.get(sid))]
    offered = [
        s
        for s in ctx.catalog.offered_services(account.city_id)
        if s.service_id not in account.services
    ]
    chosen = _service_named(ctx, [*on_account, *offered])
    mode = ctx.slots.get("mode") or ctx.nlu.payload_args.get("mode")
    if not mode and mentions_stem(ctx.text, ctx.params.get("off_markers", [])):
        mode = "off"
    elif not mode and mentions_stem(ctx.text, ctx.params.get("on_markers", [])):
        mode = "on"  # "подключите антивирус" when it is on already: told so, never switched off
    if chosen is not None:
        if mode is None:
            mode = "off" if chosen.service_id in account.services else "on"
        kind = "service_off" if mode == "off" else "service_on"
        decision = actions.decide(kind, account, {"service_id": chosen.service_id})
        if isinstance(decision, Refusal):
            return ActionResult(replies=(refusal_reply(decision),))
        params = term_params(decision.terms)
        key = kind if kind == "service_off" else f"service_on_{chosen.period}"
        said = (Text(f"selfservice.{key}.offer", params),)
        return offer(ctx, kind, {"service_id": chosen.service_id}, decision, said)
    parts: list[Text] = []
    if on_account:
        parts.append(
            Text(
                "selfservice.services.on_account", {"items": [_service_line(s) for s in on_account]}
            )
        )
    else:
        parts.append(Text("selfservice.services.nothing_on"))
    if account.equipment:
        devices = [
            Text(
                "selfservice.services.device_"
                + ("to_return" if e.return_on_termination else e.ownership),
                {"model": Raw(e.model)},
            )
            for e in account.equipment
        ]
        parts.append(Text("selfservice.services.equipment", {"items": devices}))
    if offered:
        parts.append(
            Text("selfservice.services.available", {"items": [_service_line(s) for s in offered]})
        )
    buttons: list[Button] = []
    for s in offered[: MAX_SERVICE_BUTTONS // 2]:
        buttons.append(
            Button(
                Text("button.service_on", {"service": Raw(s.name)}),
                make_payload("add_service", {"service": s.service_id, "mode": "on"}),
            )
        )
    for s in on_account[: MAX_SERVICE_BUTTONS // 2]:
        buttons.append(
            Button(
                Text("button.service_off", {"service": Raw(s.name)}),
                make_payload("add_service", {"service": s.service_id, "mode": "off"}),
            )
        )
    buttons.append(menu_button())
    return ActionResult(replies=(Reply(tuple(parts), tuple(buttons)),))


# --- autopay -----------------------------------------------------------------------------------
async def autopay(ctx: ActionContext) -> ActionResult:
    account = account_of(ctx)
    mode = ctx.slots.get("mode") or ctx.nlu.payload_args.get("mode")
    if not mode:
        if mentions_stem(ctx.text, ctx.params.get("off_markers", [])):
            mode = "off"
        elif mentions_stem(ctx.text, ctx.params.get("on_markers", [])):
            mode = "on"
    if mode == "off":
        decision = actions_of(ctx).decide("autopay_off", account, {})
        if isinstance(decision, Refusal):
            return ActionResult(replies=(refusal_reply(decision),))
        return offer(ctx, "autopay_off", {}, decision, (Text("selfservice.autopay.offer_off"),))
    link = ctx.catalog.rules.payment.autopay_link.replace("{contract}", account.contract_number)
    how = (
        Text("selfservice.autopay.how_to_enable_link", {"link": Raw(link)})
        if link
        else Text("selfservice.autopay.how_to_enable")
    )
    if account.autopay:
        off = Button(Text("button.autopay_off"), make_payload("autopay", {"mode": "off"}))
        return ActionResult(
            replies=(Reply((Text("selfservice.autopay.is_on"),), (off, menu_button())),)
        )
    state = () if mode == "on" else (Text("selfservice.autopay.is_off"),)
    return ActionResult(replies=(Reply((*state, how), (menu_button(),)),))


# --- notification preferences -----------------------------------------------------------------
def _channels_text(channels: tuple[str, ...]) -> Text:
    """ "SMS и мессенджер": one message per combination reads naturally in every language."""
    ordered = [c for c in NOTIFICATION_CHANNELS if c in channels]
    return Text(f"selfservice.notifications.where.{'_'.join(ordered) or 'nowhere'}")


def _preferences(account: Account) -> list[Text]:
    """One list, a line per topic: where its messages go."""
    lines = [
        Text(
            f"selfservice.notifications.topic.{topic}",
            {"where": _channels_text(tuple(account.notifications.get(topic, ())))},
        )
        for topic in NOTIFICATION_TOPICS
    ]
    return [Text("selfservice.notifications.topics", {"items": lines})]


def _wanted_changes(ctx: ActionContext, account: Account) -> dict[str, tuple[str, ...]] | None:
    """What the message asks to change: a button (topic on/off) or words ("надоели ваши смс":
    no more offers; "не присылайте смс": SMS off for everything but the account's own news)."""
    args = {**ctx.nlu.payload_args, **ctx.slots}
    topic = args.get("topic")
    if topic in NOTIFICATION_TOPICS:
        if args.get("on"):
            return {str(topic): DEFAULT_NOTIFICATIONS.get(str(topic)) or ("messenger",)}
        return {str(topic): ()}
    off = mentions_stem(ctx.text, ctx.params.get("off_markers", []))
    if not off:
        return None
    if mentions_stem(ctx.text, ctx.params.get("offer_words", [])):
        return {"offers": ()}
    channel_words: dict[str, list[str]] = dict(ctx.params.get("channel_words", {}))
    for channel, words in channel_words.items():
        if mentions_stem(ctx.text, words):
            # An annoyed "no SMS" stops advertising at once and SMS for the rest.
            return {
                t: tuple(c for c in account.notifications.get(t, ()) if c != channel)
                for t in NOTIFICATION_TOPICS
            } | {"offers": ()}
    return None


async def notifications(ctx: ActionContext) -> ActionResult:
    account = account_of(ctx)
    actions = actions_of(ctx)
    changes = _wanted_changes(ctx, account)
    if changes is not None:
        # Saying what one wants to receive is the consent itself: no "are you sure?".
        try:
            outcome = await actions.carry_out(
                account.contract_number,
                "set_notifications",
                {"notifications": {t: list(c) for t, c in changes.items()}},
                op_id=_new_op(),
                by="bot",
                conversation_id=ctx.conversation.id,
                account=account,
            )
        except BillingUnavailable:
            return billing_down()
        if isinstance(outcome, Refusal) and outcome.reason != "notifications_unchanged":
            return ActionResult(replies=(refusal_reply(outcome),))
        if not isinstance(outcome, Refusal):
            account = outcome.account
        head = Text("selfservice.notifications.saved")
    else:
        head = Text("selfservice.notifications.current")
    buttons = []
    for topic in NOTIFICATION_TOPICS:
        enabled = bool(account.notifications.get(topic))
        buttons.append(
            Button(
                Text(f"button.notifications_{'off' if enabled else 'on'}.{topic}"),
                make_payload("notification_settings", {"topic": topic, "on": not enabled}),
            )
        )
    buttons.append(menu_button())
    return ActionResult(replies=(Reply((head, *_preferences(account)), tuple(buttons)),))


# --- contact details ---------------------------------------------------------------------------
CONTACT_CODE = "contact_code"  # memory: the pending code (hashed) for the new contact


async def change_contacts(ctx: ActionContext) -> ActionResult:
    account = account_of(ctx)
    pending: dict[str, Any] | None = ctx.memory.get(CONTACT_CODE)
    if pending and ctx.slots.get("code"):
        return await _check_contact_code(ctx, account, dict(pending), str(ctx.slots["code"]))
    raw = ctx.slots.get("contact")
    found = contact_of(str(raw)) if raw else None
    if found is None:
        current = Text(
            "selfservice.contacts.current",
            {
                "phone": Raw(mask_phone(account.phone) if account.phone else "—"),
                "email": Raw(mask_email(account.email) if account.email else "—"),
            },
        )
        return ActionResult(ask="contact", forget=("contact",), ask_parts=(current,))
    field_name, value = found
    decision = actions_of(ctx).decide("set_contact", account, {"field": field_name, "value": value})
    if isinstance(decision, Refusal):
        return ActionResult(replies=(refusal_reply(decision),), forget=("contact",))
    sent = recent(ctx.memory.get("contact_codes_sent", []), ctx.now)
    if len(sent) >= CODES_PER_HOUR:
        return ActionResult(replies=(say("identity.too_many_codes"),))
    kind, contract = ("sms" if field_name == "phone" else "email"), account.contract_number
    if refusal := await may_send(ctx, kind=kind, destination=value, contract=contract):
        return ActionResult(replies=(limited_reply(ctx, refusal),), forget=("contact",))
    code, kept = new_code(ctx.now)
    # The code goes to the NEW contact: it proves the customer owns it.
    message = ctx.render(Text("selfservice.contacts.code_message", {"code": code}))
    await ctx.notifier.send(
        kind="sms" if field_name == "phone" else "email", destination=value, text=message
    )
    where = mask_phone(value) if field_name == "phone" else mask_email(value)
    record = {"field": field_name, "value": value, **kept}
    return ActionResult(
        ask="code",
        forget=("code",),
        ask_parts=(Text("selfservice.contacts.code_sent", {"where": Raw(where)}),),
        remember={CONTACT_CODE: record, "contact_codes_sent": [*sent, ctx.now.isoformat()]},
    )


async def _check_contact_code(
    ctx: ActionContext, account: Account, pending: dict[str, Any], code: str
) -> ActionResult:
    verdict = check(pending, code, ctx.now)
    if verdict in ("expired", "locked"):
        said = say(f"selfservice.contacts.code_{verdict}")
        return ActionResult(replies=(said,), forget_memory=(CONTACT_CODE,))
    if verdict == "wrong":
        return ActionResult(
            ask="code",
            forget=("code",),
            remember={CONTACT_CODE: pending},
            ask_parts=(Text("identity.code_wrong", {"left": pending["attempts"]}),),
        )
    try:
        outcome = await actions_of(ctx).carry_out(
            account.contract_number,
            "set_contact",
            {"field": pending["field"], "value": pending["value"]},
            op_id=_new_op(),
            by="bot",
            conversation_id=ctx.conversation.id,
            account=account,
        )
    except BillingUnavailable:
        result = billing_down()
        return ActionResult(replies=result.replies, forget_memory=(CONTACT_CODE,))
    if isinstance(outcome, Refusal):
        return ActionResult(replies=(refusal_reply(outcome),), forget_memory=(CONTACT_CODE,))
    return ActionResult(
        replies=(Reply(done_parts(outcome), (menu_button(),)),), forget_memory=(CONTACT_CODE,)
    )
