"""Files across gateway processes on several machines (issue 11): one real ``redis-server``,
and per "machine" its own data directory, so nothing can pass through the local disk.

A file one process stored is served by another; a public link one process signed opens on
another (the HMAC key is made once in Redis); a customer's widget upload taken by process B is
downloaded by an operator signed in to process A."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiohttp
import pytest

from bot.channels.widget import conversation_key
from bot.config import Settings
from bot.files import FileLinks, link_key
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.serialize import attachments_of
from bot.services import Services, build_services
from bot.storage.health import StoreHealth
from bot.storage.redis.client import connect
from bot.storage.redis.files import RedisFileStore
from tests.console_browser import serve

PDF = b"%PDF-1.4 invoice for May"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PASSWORD = "correct horse battery"
SESSION = "uploadonprocessb0001"
TURN_LIMIT = 20.0  # ends as soon as the turn is recorded; only stops a hang


def machine(settings: Settings, tmp_path: Path, name: str, redis_url: str | None) -> Settings:
    """The settings of one machine: its own var dir, the shared Redis (or none)."""
    return replace(
        settings,
        var_dir=tmp_path / name / "var",
        redis_url=redis_url,
        public_url=f"https://{name}.example.net",
    )


async def test_a_file_stored_by_process_a_is_served_by_process_b(redis_url: str) -> None:
    clients = [connect(redis_url), connect(redis_url)]
    try:
        a, b = (RedisFileStore(client, StoreHealth()) for client in clients)
        ref = await a.put(PDF, "invoice-2024-05.pdf", "application/pdf")
        assert await b.get(ref.file_id) == (ref, PDF)
    finally:
        for client in clients:
            await client.aclose()


async def test_a_link_signed_on_machine_a_opens_on_machine_b(
    settings: Settings, tmp_path: Path, redis_url: str
) -> None:
    a = FileLinks.from_settings(machine(settings, tmp_path, "a", redis_url))
    b = FileLinks.from_settings(machine(settings, tmp_path, "b", redis_url))
    file_id = secrets.token_urlsafe(24)
    url = a.public(file_id)
    assert url is not None
    token = urlsplit(url).path.rsplit("/", 1)[1]
    assert b.verify(file_id, token)
    assert not b.verify(secrets.token_urlsafe(24), token)  # still bound to its file
    # The key is not on either machine's disk: it lives in Redis.
    for name in ("a", "b"):
        assert not (tmp_path / name / "var" / "files" / "link.key").exists()


async def test_without_redis_each_installation_keeps_its_own_key(
    settings: Settings, tmp_path: Path
) -> None:
    """The embedded default is unchanged: the key in var/files, one per installation."""
    a = FileLinks.from_settings(machine(settings, tmp_path, "a", None))
    b = FileLinks.from_settings(machine(settings, tmp_path, "b", None))
    file_id = secrets.token_urlsafe(24)
    token = a.token(file_id, 2_000_000_000)
    assert a.verify(file_id, token, now=1_900_000_000)
    assert not b.verify(file_id, token, now=1_900_000_000)
    assert (tmp_path / "a" / "var" / "files" / "link.key").stat().st_mode & 0o777 == 0o600


async def test_processes_starting_together_agree_on_one_key(
    settings: Settings, tmp_path: Path, redis_url: str
) -> None:
    machines = [machine(settings, tmp_path, f"m{n}", redis_url) for n in range(8)]
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(len(machines)) as pool:  # all at once, as processes starting together
        keys = set(
            await asyncio.gather(*(loop.run_in_executor(pool, link_key, m) for m in machines))
        )
    assert len(keys) == 1
    assert len(keys.pop()) == 32


# --- a widget upload through the real application ----------------------------------------------


@pytest.fixture
async def two_machines(
    settings: Settings, tmp_path: Path, redis_url: str, demo_nlu: Nlu
) -> AsyncIterator[tuple[Services, str, Services, str]]:
    """Services A and B, each with its own var dir, on one Redis, each served on a port."""
    a = build_services(machine(settings, tmp_path, "a", redis_url), nlu=demo_nlu)
    b = build_services(machine(settings, tmp_path, "b", redis_url), nlu=demo_nlu)
    try:
        await a.start()
        await b.start()
        async with serve(a.settings, a) as base_a, serve(b.settings, b) as base_b:
            yield a, base_a, b, base_b
    finally:
        await a.close()
        await b.close()


async def test_an_upload_taken_by_process_b_is_downloaded_by_an_operator_on_process_a(
    two_machines: tuple[Services, str, Services, str],
) -> None:
    a, base_a, b, base_b = two_machines
    await a.operators.add(Operator("anna", "Анна", departments=("general",)), PASSWORD)
    form = aiohttp.FormData()
    form.add_field("session", SESSION)
    form.add_field("id", "f1")
    form.add_field("file", PNG, filename="router.png", content_type="application/octet-stream")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{base_b}/api/v1/widget/upload", data=form) as resp:
            assert resp.status == 200, await resp.text()
        # The file the customer's message carries, once a process has taken the turn.
        conversation_id = conversation_key(SESSION).id
        async with asyncio.timeout(TURN_LIMIT):
            while not (
                customer := [
                    m for m in await b.store.messages(conversation_id) if m.sender == "customer"
                ]
            ):
                await asyncio.sleep(0.05)
        [customer] = customer
        [ref] = attachments_of(customer.meta)
        url = f"/api/v1/operator/files/{ref.file_id}"

        async with http.get(f"{base_a}{url}") as resp:
            assert resp.status == 401  # operators only
        login = {"login": "anna", "password": PASSWORD}
        async with http.post(f"{base_a}/api/v1/operator/login", json=login) as resp:
            assert resp.status == 200
        async with http.get(f"{base_a}{url}") as resp:
            assert resp.status == 200
            assert await resp.read() == PNG
            assert resp.headers["Content-Type"] == "image/png"
        # The console on A lists it under the customer's message (one store on Redis).
        path = f"/api/v1/operator/conversations/{quote(conversation_id, safe='')}"
        async with http.get(f"{base_a}{path}") as resp:
            assert resp.status == 200
            messages = (await resp.json())["messages"]
        assert [f["url"] for m in messages for f in m.get("attachments", ())] == [url]
