"""One-time codes sent to a phone or e-mail: made, kept hashed in the dialog memory, checked
with a time limit and a number of attempts. Used to identify a customer and to prove a new
contact is theirs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

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
