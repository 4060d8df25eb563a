"""What every browser test does: find Debian's Chromium and launch it, serve the real application
on a free port, collect the page's errors (less the ones a test expects) and sign an operator in."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from bot.app import create_app

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services import Services

CHROMIUM = Path("/usr/bin/chromium")
HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() or not HAVE_PLAYWRIGHT,
    reason="needs Debian's chromium at /usr/bin/chromium and the playwright package "
    "(scripts/system-deps.sh and the dev extras install both)",
)
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


async def launch(playwright: Any) -> Any:
    """Headless Debian Chromium with the flags every browser test uses."""
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)


@asynccontextmanager
async def serve_app(app: web.Application, shutdown_timeout: float = 2.0) -> AsyncIterator[str]:
    """``app`` on a free port of 127.0.0.1; yields its base URL, cleans up on the way out."""
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve(settings: Settings, services: Services) -> AsyncIterator[str]:
    """The real application with these services on a free port; yields its base URL."""
    async with serve_app(create_app(settings, services=services)) as base:
        yield base
