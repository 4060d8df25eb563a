"""Operators with their own cookie jars, and a connection lead left through the REST channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.handoff.operators import Operator
from bot.services import Services
from tests.conftest import Say, buttons, texts

PASSWORD = "correct horse battery"
ALL = ("general", "billing", "technical", "sales")


class OperatorClient:
    """An operator's browser: its own cookie jar and the CSRF token from the login."""

    def __init__(self, client: TestClient, session: aiohttp.ClientSession) -> None:
        self._client = client
        self.session = session
        self.csrf = ""

    def url(self, path: str) -> str:
        return str(self._client.make_url(path))

    async def login(self, login: str) -> None:
        async with self.session.post(
            self.url("/api/v1/operator/login"), json={"login": login, "password": PASSWORD}
        ) as resp:
            assert resp.status == 200, await resp.text()
            self.csrf = (await resp.json())["csrf_token"]

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.url(path)) as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, body: Any, *, csrf: bool = True) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        async with self.session.post(self.url(path), json=body, headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def operators(
    client: TestClient, services: Services
) -> AsyncIterator[dict[str, OperatorClient]]:
    """anna and boris are operators, sveta a supervisor."""
    people = (("anna", "Анна", "operator"), ("boris", "Борис", "operator"),
              ("sveta", "Света", "supervisor"))  # fmt: skip
    out: dict[str, OperatorClient] = {}
    for login, name, role in people:
        await services.operators.add(Operator(login, name, departments=ALL, role=role), PASSWORD)
        jar = aiohttp.CookieJar(unsafe=True)
        out[login] = OperatorClient(client, aiohttp.ClientSession(cookie_jar=jar))
        await out[login].login(login)
    yield out
    for operator in out.values():
        await operator.session.close()


async def leave_connection_lead(say: Say, sender: str, name: str = "Анна") -> str:
    """A planned house in Bratsk: the customer leaves name and phone; the conversation id."""
    first = await say(sender, "подключение Братск Обручева 21")
    assert "запланировано" in texts(first)
    request = next(b for b in buttons(first) if b["payload"].startswith("/coverage_request"))
    consent = await say(sender, payload=request["payload"])
    agree = next(b for b in buttons(consent) if b["title"] == "Согласен")
    await say(sender, payload=agree["payload"])
    await say(sender, name)
    done = await say(sender, "8 (914) 555-12-34")
    assert "Заявка" in texts(done)
    return f"rest:{sender}:{sender}"
