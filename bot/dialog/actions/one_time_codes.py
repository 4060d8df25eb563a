"""One-time codes sent to a phone or e-mail: made, kept hashed in the dialog memory, checked
with a time limit and a number of attempts. Used to identify a customer and to prove a new
contact is theirs.

The per-conversation limits here stop a customer's own repeats; the limits that matter against
abuse hold across conversations (``bot.abuse``): codes per phone (or e-mail) and per contract,
wrong guesses per contract, whichever channel or session asks. A refusal is polite, says when
to try again, and offers the phone line and an operator instead of a dead end."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.abuse import EXTRA as ABUSE
from bot.abuse import AbuseLimits, Refusal
from bot.dialog.types import ActionContext
from bot.models import Button, Raw, Reply, Text

CODE_TTL = timedelta(minutes=10)
CODE_ATTEMPTS = 3  # wrong codes before the code is void
CODES_PER_HOUR = 3  # codes sent to one conversation

Verdict = Literal["ok", "expired", "wrong", "locked"]


def _hash(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def recent(stamps: Iterable[str], now: datetime) -> list[str]:
    """The ISO time stamps of the last hour (for the per-hour limits)."""
    return [s for s in stamps if now - datetime.fromisoformat(s) < timedelta(hours=1)]


def new_code(now: datetime) -> tuple[str, dict[str, Any]]:
    """A six-digit code and what to remember of it (never the code itself)."""
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(8)
    kept = {
        "hash": _hash(code, salt),
        "salt": salt,
        "expires": (now + CODE_TTL).isoformat(),
        "attempts": CODE_ATTEMPTS,
    }
    return code, kept


def check(pending: dict[str, Any], code: str, now: datetime) -> Verdict:
    """Compare in constant time; a wrong code uses up an attempt (``pending`` is updated)."""
    if now > datetime.fromisoformat(pending["expires"]):
        return "expired"
    if hmac.compare_digest(_hash(code, pending["salt"]), pending["hash"]):
        return "ok"
    pending["attempts"] = int(pending["attempts"]) - 1
    return "locked" if pending["attempts"] <= 0 else "wrong"


def limits_of(ctx: ActionContext) -> AbuseLimits | None:
    found = ctx.extras.get(ABUSE)
    return found if isinstance(found, AbuseLimits) else None


async def may_send(
    ctx: ActionContext, *, kind: str, destination: str, contract: str
) -> Refusal | None:
    """Count a code about to go to ``destination`` for ``contract``, or refuse it."""
    limits = limits_of(ctx)
    if limits is None:
        return None
    per_destination = "otp_per_phone" if kind == "sms" else "otp_per_email"
    return await limits.hit_all(((per_destination, destination), ("otp_per_contract", contract)))


async def may_guess(ctx: ActionContext, contract: str) -> Refusal | None:
    """Refused when this contract's codes were guessed wrong too often (any session)."""
    limits = limits_of(ctx)
    return None if limits is None else await limits.check("otp_guesses_per_contract", contract)


async def wrong_guess(ctx: ActionContext, contract: str) -> None:
    limits = limits_of(ctx)
    if limits is not None:
        await limits.hit("otp_guesses_per_contract", contract)


def support_phones(ctx: ActionContext) -> str:
    """The hotline of the customer's city when known, otherwise every distinct number."""
    city_id = ctx.account.city_id if ctx.account else ctx.memory.get("city")
    city = ctx.catalog.city(str(city_id)) if city_id else None
    if city is not None:
        return city.support_phone
    return ", ".join(sorted({c.support_phone for c in ctx.catalog.cities.values()}))


def limited_reply(ctx: ActionContext, refusal: Refusal) -> Reply:
    """«Слишком много попыток…»: when to try again, the phone line, and an operator's button."""
    key = {
        "otp_per_phone": "limits.too_many_codes",
        "otp_per_email": "limits.too_many_codes",
        "otp_per_contract": "limits.too_many_codes",
        "otp_guesses_per_contract": "limits.too_many_guesses",
    }.get(refusal.limit, "limits.too_many_attempts")
    if refusal.unavailable:  # the shared counters are unreachable: no code goes out uncounted
        key = "limits.cannot_send_code"
    params = {"minutes": refusal.minutes, "phone": Raw(support_phones(ctx))}
    buttons = (
        Button(Text("button.operator"), "/human_operator"),
        Button(Text("button.menu"), "/menu"),
    )
    return Reply((Text(key, params),), buttons)
