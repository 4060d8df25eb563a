"""Consent to personal-data processing (152-FZ) before a name or a phone is stored.

The flows that store one (a connection request, a call-back) ask it with the slot ``consent``
(question ``consent.ask`` with the provider's policy link from rules.yml, buttons «Согласен» /
«Не согласен»). What the customer agreed to is kept with the record: the wording's version id
from the flow, the SHA-256 of the exact text shown (rendered in their language, link included),
when and in which channel. A refusal stores nothing and says what that means.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final, Literal

from bot.dialog.actions.render import mentions_stem
from bot.dialog.slots import policy_link
from bot.dialog.types import ActionContext, ActionResult
from bot.models import Button, Raw, Reply, Text

SLOT: Final = "consent"
QUESTION: Final = "consent.ask"
# Memory: what the question looked like when it was asked (so the record names the text the
# customer saw, even if the wording is deployed anew before they answer).
SHOWN: Final = "consent_shown"

Answer = Literal["given", "refused", "unclear", "missing"]


def _settings(ctx: ActionContext) -> Mapping[str, Any]:
    value = ctx.params.get("consent")
    return value if isinstance(value, Mapping) else {}


def _shown(ctx: ActionContext) -> dict[str, str]:
    text = ctx.render(Text(QUESTION, policy_link(ctx.catalog)))
    return {
        "version": str(_settings(ctx).get("version", "")),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "locale": ctx.conversation.locale,
    }


def answer(ctx: ActionContext) -> Answer:
    """The customer's answer to the consent question: a button ("yes"/"no") or typed words,
    read with the flow's markers (a refusal first: "не согласен" holds "согласен")."""
    value = ctx.slots.get(SLOT)
    if value is None:
        return "missing"
    said = str(value)
    if said in ("yes", "no"):
        return "given" if said == "yes" else "refused"
    settings = _settings(ctx)
    if mentions_stem(said, list(settings.get("refuse_markers") or ())):
        return "refused"
    if mentions_stem(said, list(settings.get("agree_markers") or ())):
        return "given"
    return "unclear"


def ask(ctx: ActionContext, *, unclear: bool = False) -> ActionResult:
    """Ask for consent (again, when the answer was neither yes nor no)."""
    parts = (Text("consent.unclear"),) if unclear else ()
    return ActionResult(ask=SLOT, forget=(SLOT,), ask_parts=parts, remember={SHOWN: _shown(ctx)})


def record(ctx: ActionContext) -> dict[str, str]:
    """The consent as it is stored in the request's ``details``: flat keys, so the CSV export
    and the CRM read them as they read the rest."""
    shown = ctx.memory.get(SHOWN)
    if not isinstance(shown, Mapping) or not shown.get("sha256"):
        shown = _shown(ctx)
    return {
        "consent_version": str(shown.get("version", "")),
        "consent_text_sha256": str(shown["sha256"]),
        "consent_locale": str(shown.get("locale", ctx.conversation.locale)),
        "consent_at": ctx.now.isoformat(),
        "consent_channel": ctx.conversation.key.channel,
    }


def refused(ctx: ActionContext, city_id: str | None) -> ActionResult:
    """Nothing is stored; the customer hears what that means and how to reach us instead."""
    city = ctx.catalog.city(city_id) if city_id else None
    if city is None and ctx.account is not None:
        city = ctx.catalog.city(ctx.account.city_id)
    if city is None:
        city = next(iter(ctx.catalog.cities.values()), None)
    phone = Raw(city.support_phone if city else "")
    buttons = (
        Button(Text("button.operator"), "/human_operator"),
        Button(Text("button.menu"), "/menu"),
    )
    reply = Reply((Text("consent.refused", {"phone": phone}),), buttons)
    return ActionResult(replies=(reply,), forget_memory=(SHOWN,))
