"""Signed identity: a site that already knows the customer vouches for a contract number with
``hex(HMAC-SHA256(BOT_IDENTITY_SECRET, contract_number))``."""

from __future__ import annotations

import hashlib
import hmac


def sign_contract(secret: str, contract_number: str) -> str:
    return hmac.new(secret.encode(), contract_number.encode(), hashlib.sha256).hexdigest()


def verify_contract(secret: str | None, contract_number: str, signature: str) -> bool:
    """Constant-time check; with no secret configured nothing verifies."""
    if not secret or not contract_number or not signature:
        return False
    expected = sign_contract(secret, contract_number)
    return hmac.compare_digest(expected, signature.strip().lower())
