"""What every browser test of the operator console does: collect the page's errors (less the
ones a test expects) and sign an operator in."""

from __future__ import annotations

import re
from typing import Any

WAIT = 15_000  # ms for every expectation: room for a slow machine, instant when all is well
SIGN_IN_401 = re.compile(r"status of 401")  # the console's first GET /me, before signing in


def collect_errors(
    page: Any, problems: list[str], expected: re.Pattern[str] = SIGN_IN_401, who: str = ""
) -> None:
    """Page errors and console errors land in ``problems`` (prefixed with ``who``)."""
    prefix = f"{who}: " if who else ""
    page.on("pageerror", lambda exc: problems.append(f"{prefix}{exc}"))
    page.on(
        "console",
        lambda m: (
            problems.append(f"{prefix}{m.text}")
            if m.type == "error" and not expected.search(m.text)
            else None
        ),
    )


async def sign_in(page: Any, base: str, login: str, password: str) -> None:
    """Open the console and sign in; returns when the login form is gone."""
    from playwright.async_api import expect

    tid = page.get_by_test_id
    await page.goto(base + "/operator/")
    await tid("login-input").fill(login)
    await tid("password-input").fill(password)
    await tid("login-submit").click()
    await expect(tid("login-form")).to_be_hidden(timeout=WAIT)
