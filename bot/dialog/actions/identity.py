"""Proving who you are in a messenger: contract number (or phone) and a one-time code sent to
the phone or e-mail on file; a phone the platform vouches for (a Telegram contact of the
sender) identifies at once. The link is stored and can be revoked with /logout.

Against guessing, limits hold across conversations (``bot.abuse``), since a new widget session
or REST sender is a new conversation: look-ups per client (the widget's address, else the
platform user), codes per phone and per contract, wrong codes per contract."""

from __future__ import annotations

import re
from typing import Any

from bot.abuse import requester
from bot.catalog.models import Account
from bot.dialog.actions.one_time_codes import (
    CODES_PER_HOUR,
    check,
    limited_reply,
    limits_of,
    may_guess,
    may_send,
    new_code,
    recent,
    wrong_guess,
)
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.entities import normalize_phone
from bot.models import Raw, Reply, Text
from bot.notify import mask_email, mask_phone

LOOKUPS_PER_HOUR = 6  # contract / phone look-ups by one conversation

OTP = "otp"  # memory key: the pending code (hashed), its contract and limits


def _reply(key: str, **params: Any) -> Reply:
    return Reply((Text(key, params),))


async def _find(ctx: ActionContext, who: str) -> list[Account]:
    phone = normalize_phone(who) if len(re.sub(r"\D", "", who)) in (10, 11) else None
    if phone is not None:
        by_phone = await ctx.billing.find_by_phone(phone)
        if by_phone:
            return by_phone
    account = await ctx.billing.account(re.sub(r"\D", "", who))
    return [account] if account else []


async def identify(ctx: ActionContext) -> ActionResult:
    pending = ctx.memory.get(OTP)
    if pending and ctx.slots.get("code"):
        return await _check_code(ctx, dict(pending), str(ctx.slots["code"]))
    who = ctx.slots.get("who")
    if not who:
        return ActionResult(ask="who")
    lookups = recent(list(ctx.memory.get("id_lookups", [])), ctx.now)
    if len(lookups) >= LOOKUPS_PER_HOUR:
        return ActionResult(replies=(_reply("identity.too_many_attempts"),))
    limits = limits_of(ctx)
    if limits is not None:
        key = ctx.conversation.key
        refusal = await limits.hit(
            "id_lookups_per_client", requester(ctx.inbound.raw, key.channel, key.user_id)
        )
        if refusal is not None:
            return ActionResult(replies=(limited_reply(ctx, refusal),), forget=("who",))
    lookups.append(ctx.now.isoformat())
    accounts = await _find(ctx, str(who))
    if not accounts:
        return ActionResult(
            ask="who",
            forget=("who",),
            ask_replies=(_reply("identity.not_found"),),
            remember={"id_lookups": lookups},
        )
    if len(accounts) > 1:
        return ActionResult(
            ask="who",
            forget=("who",),
            ask_replies=(_reply("identity.several_contracts"),),
            remember={"id_lookups": lookups},
        )
    return await _send_code(ctx, accounts[0], lookups)


async def _send_code(ctx: ActionContext, account: Account, lookups: list[str]) -> ActionResult:
    sent = recent(list(ctx.memory.get("otp_sent", [])), ctx.now)
    if len(sent) >= CODES_PER_HOUR:
        return ActionResult(replies=(_reply("identity.too_many_codes"),))
    kind, destination = ("sms", account.phone) if account.phone else ("email", account.email)
    refusal = await may_send(
        ctx, kind=kind, destination=destination, contract=account.contract_number
    )
    if refusal is not None:
        return ActionResult(
            replies=(limited_reply(ctx, refusal),), remember={"id_lookups": lookups}
        )
    code, kept = new_code(ctx.now)
    text = ctx.render(Text("identity.code_message", {"code": code}))
    await ctx.notifier.send(kind=kind, destination=destination, text=text)
    where = mask_phone(destination) if kind == "sms" else mask_email(destination)
    sent.append(ctx.now.isoformat())
    pending = {"contract": account.contract_number, **kept}
    return ActionResult(
        ask="code",
        forget=("code",),
        ask_replies=(_reply("identity.code_sent", where=Raw(where)),),
        remember={OTP: pending, "otp_sent": sent, "id_lookups": lookups},
    )


async def _check_code(ctx: ActionContext, pending: dict[str, Any], code: str) -> ActionResult:
    contract = str(pending["contract"])
    refusal = await may_guess(ctx, contract)
    if refusal is not None:  # guessed wrong too often from anywhere: this code is void too
        return ActionResult(replies=(limited_reply(ctx, refusal),), forget_memory=(OTP,))
    verdict = check(pending, code, ctx.now)
    if verdict in ("wrong", "locked"):
        await wrong_guess(ctx, contract)
    if verdict == "expired":
        return ActionResult(replies=(_reply("identity.code_expired"),), forget_memory=(OTP,))
    if verdict == "ok":
        await ctx.store.link_identity(ctx.conversation.key, contract, "otp")
        return ActionResult(
            replies=(_reply("identity.linked", contract=Raw(contract)),),
            forget_memory=(OTP,),
            identify=contract,
        )
    if verdict == "locked":
        return ActionResult(replies=(_reply("identity.code_locked"),), forget_memory=(OTP,))
    return ActionResult(
        ask="code",
        forget=("code",),
        ask_replies=(_reply("identity.code_wrong", left=pending["attempts"]),),
        remember={OTP: pending},
    )


async def identify_by_contact(ctx: ActionContext) -> ActionResult:
    """A shared phone: one the platform vouches is the sender's own identifies at once if it is
    on one contract; any other goes through the one-time code."""
    pending = ctx.memory.get(OTP)
    if pending and ctx.slots.get("code"):
        return await _check_code(ctx, dict(pending), str(ctx.slots["code"]))
    contact = ctx.inbound.contact
    if contact is None:
        return ActionResult(replies=(_reply("identity.contact_not_verified"),))
    accounts = await ctx.billing.find_by_phone(contact.phone)
    if not contact.verified:
        # Anyone can share any number: prove it with a code sent to that number on file.
        if len(accounts) != 1:
            key = "identity.not_found" if not accounts else "identity.several_contracts"
            return ActionResult(replies=(_reply(key),))
        lookups = recent(list(ctx.memory.get("id_lookups", [])), ctx.now)
        return await _send_code(ctx, accounts[0], [*lookups, ctx.now.isoformat()])
    if len(accounts) != 1:
        key = "identity.not_found" if not accounts else "identity.several_contracts"
        return ActionResult(replies=(_reply(key),))
    contract = accounts[0].contract_number
    await ctx.store.link_identity(ctx.conversation.key, contract, "verified_phone")
    return ActionResult(
        replies=(_reply("identity.linked", contract=Raw(contract)),), identify=contract
    )


async def logout(ctx: ActionContext) -> ActionResult:
    revoked = await ctx.store.revoke_identity(ctx.conversation.key)
    key = "identity.unlinked" if revoked or ctx.account else "identity.not_linked"
    return ActionResult(replies=(_reply(key),), unidentify=True, forget_memory=(OTP,))
