"""An operator's browser for tests through the whole app: its own cookie jar, the CSRF token of
its login, and raw bodies for hostile-input tests."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from bot.handoff.operators import Operator
from bot.services import Services

PASSWORD = "correct horse battery"
ALL = ("general", "billing", "technical", "sales")


class Browser:
    def __init__(self, client: TestClient, login: str) -> None:
        self.client = client
        self.login_name = login
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    async def login(self, password: str = PASSWORD, **kwargs: Any) -> int:
        async with self.session.post(
            self.url("/api/v1/operator/login"),
            json={"login": self.login_name, "password": password},
            **kwargs,
        ) as resp:
            if resp.status == 200:
                self.csrf = (await resp.json())["csrf_token"]
            return resp.status

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.url(path)) as resp:
            body = (
                await resp.json() if resp.content_type == "application/json" else await resp.text()
            )
            return resp.status, body

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.post(
            self.url(path),
            json=body if body is not None else {},
            headers={"X-CSRF-Token": self.csrf},
        ) as resp:
            return resp.status, await resp.json()

    async def post_raw(self, path: str, raw: bytes | str) -> tuple[int, Any]:
        """A body exactly as given (lone surrogates as JSON escapes, deep nesting …)."""
        headers = {"X-CSRF-Token": self.csrf, "Content-Type": "application/json"}
        data = raw.encode() if isinstance(raw, str) else raw
        async with self.session.post(self.url(path), data=data, headers=headers) as resp:
            return resp.status, await resp.json()

    async def close(self) -> None:
        await self.session.close()


async def add_operator(
    services: Services, login: str, *, role: str = "operator", name: str | None = None
) -> None:
    await services.operators.add(
        Operator(login, name or login.title(), departments=ALL, role=role),  # type: ignore[arg-type]
        PASSWORD,
    )
