"""Sessions end everywhere at once: after a logout, a disabled or removed operator or a new
password, the operator's events socket closes (code 4401) and carries no further customer
message, and REST calls with the old cookie are a 401 — also when the change is made by
``python -m bot operators …`` in another process (the socket re-checks its session)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.config import Settings
from bot.handoff.auth import SESSION_RECHECK_SECONDS, SOCKETS
from bot.services import Services
from tests.conftest import ROOT, Say
from tests.handoff.operator_client import PASSWORD, Browser, add_operator

EVENTS = "/api/v1/operator/events"
# Generous: a closed socket is seen at once; this only stops a broken test from hanging.
PATIENCE = 30.0


@pytest.fixture
async def anna(client: TestClient, services: Services) -> AsyncIterator[Browser]:
    await add_operator(services, "anna", name="Анна")
    browser = Browser(client, "anna")
    assert await browser.login() == 200
    yield browser
    await browser.close()


async def _customer_message(ws: aiohttp.ClientWebSocketResponse, text: str) -> dict[str, Any]:
    """The next event carrying the customer's ``text`` (queue updates come and go)."""
    while True:
        frame = await ws.receive(timeout=PATIENCE)
        assert frame.type == aiohttp.WSMsgType.TEXT, frame
        event = frame.json()
        if event.get("type") == "message" and event["message"]["text"] == text:
            return dict(event)


async def _frames_until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """Everything the socket still delivers, up to and including its close."""
    frames = []
    while True:
        frame = await ws.receive(timeout=PATIENCE)
        frames.append(frame)
        if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return frames


def _closed_by_the_server_with(frames: list[Any]) -> int | None:
    """The code in the server's close frame. Not ``ws.close_code``: the client overwrites that
    with 1006 when its own close reply finds the connection already gone, which is a race of the
    test client, not something a browser shows."""
    last = frames[-1]
    return int(last.data) if last.type == aiohttp.WSMsgType.CLOSE else None


def _customer_texts(frames: list[Any]) -> list[str]:
    return [
        f.json()["message"]["text"]
        for f in frames
        if f.type == aiohttp.WSMsgType.TEXT
        and f.json().get("type") == "message"
        and f.json()["message"]["from"] == "customer"
    ]


async def _watching(say: Say, anna: Browser, sender: str) -> aiohttp.ClientWebSocketResponse:
    """anna's console socket, shown to hear a queued customer's messages."""
    ws = await anna.session.ws_connect(anna.url(EVENTS))
    await say(sender, "позовите оператора пожалуйста")
    await say(sender, "алло, вы тут?")
    await _customer_message(ws, "алло, вы тут?")
    return ws


async def test_logout_closes_the_socket_at_once_and_no_message_follows(
    say: Say, anna: Browser, client: TestClient
) -> None:
    other = Browser(client, "anna")  # the same operator in a second browser
    assert await other.login() == 200
    ws = await _watching(say, anna, "s-1")
    other_ws = await other.session.ws_connect(other.url(EVENTS))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await anna.post("/api/v1/operator/logout"))[0] == 200
    frames = await _frames_until_closed(ws)
    closed_after = loop.time() - started
    print(f"closed {closed_after:.3f} s after the logout began")
    await say("s-1", "мой баланс 1500 рублей")  # must not reach the logged-out console
    assert ws.closed
    assert _closed_by_the_server_with(frames) == 4401
    assert _customer_texts(frames) == []
    # Not the periodic re-check: the logout itself closed it.
    assert closed_after < SESSION_RECHECK_SECONDS
    assert (await anna.get("/api/v1/operator/queue"))[0] == 401
    # A logout ends that session only: the other browser still hears the customer.
    assert (await _customer_message(other_ws, "мой баланс 1500 рублей"))["type"] == "message"
    await other_ws.close()
    await other.close()
    assert len(client.app[SOCKETS]) == 0  # nothing left watching


@pytest.mark.parametrize("change", ["disable", "remove", "set_password"])
async def test_an_account_change_in_this_process_closes_the_socket(
    say: Say, anna: Browser, services: Services, change: str
) -> None:
    ws = await _watching(say, anna, f"s-2-{change}")
    reading = asyncio.create_task(_frames_until_closed(ws))
    if change == "set_password":
        await services.operators.set_password("anna", "a brand new password")
    else:
        await getattr(services.operators, change)("anna")
    await say(f"s-2-{change}", "ещё сообщение")  # published right after the change
    frames = await reading
    assert _closed_by_the_server_with(frames) == 4401
    assert _customer_texts(frames) == []
    assert (await anna.get("/api/v1/operator/queue"))[0] == 401


async def _cli(settings: Settings, *argv: str, stdin: str = "") -> None:
    env = {**os.environ, "BOT_VAR_DIR": str(settings.var_dir)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "operators", *argv,
        cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(stdin.encode())
    assert process.returncode == 0, (out, err)


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [(("disable", "anna"), ""), (("passwd", "anna"), "a brand new password\n")],
)
async def test_a_change_by_the_cli_in_another_process_closes_the_socket(
    say: Say, anna: Browser, settings: Settings, argv: tuple[str, ...], stdin: str
) -> None:
    ws = await _watching(say, anna, "s-3")
    reading = asyncio.create_task(_frames_until_closed(ws))
    loop = asyncio.get_running_loop()
    await _cli(settings, *argv, stdin=stdin)
    changed_at = loop.time()
    frames = await reading
    waited = loop.time() - changed_at
    print(f"closed {waited:.2f} s after the CLI change")
    assert _closed_by_the_server_with(frames) == 4401
    assert _customer_texts(frames) == []
    # Found by the re-check: at most one interval after the change, plus the query itself.
    assert waited <= SESSION_RECHECK_SECONDS * 3
    assert (await anna.get("/api/v1/operator/queue"))[0] == 401
    if argv[0] == "passwd":
        assert await anna.login("a brand new password") == 200
        assert await anna.login(PASSWORD) == 401
