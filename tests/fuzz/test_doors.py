"""Every public door of the running gateway, fuzzed over real HTTP and a real WebSocket: the
three messenger webhooks (authentic deliveries of mutated real payloads and arbitrary JSON), the
REST channel and the widget's frames. A webhook is always answered 200 (the platform would
otherwise redeliver forever); the REST channel and the widget refuse with a 400 / an error
frame and record nothing; nothing is ever a 500 or an unhandled error in the log."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from itertools import count
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.app import create_app
from bot.channels.base import RateLimit
from bot.channels.telegram import SECRET_HEADER
from bot.channels.viber import SIGNATURE_HEADER, signature_for
from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.fakes.telegram import FakeTelegram
from tests.fakes.viber import FakeViber
from tests.fakes.vk import FakeVk
from tests.fuzz.conftest import examples
from tests.fuzz.strategies import (
    deep_values,
    hostile_text,
    json_values,
    platform_payloads,
    strings,
)

TG_TOKEN, TG_SECRET = "123456:FUZZ-token", "fuzz-webhook-secret"
VK_SECRET, VK_GROUP = "abc123xyz", "123456"
VIBER_AUTH = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"
REST_TOKEN = "fuzz-rest-token"


@dataclass
class Doors:
    client: TestClient
    services: Services
    settings: Settings

    def count(self, table: str) -> int:
        with sqlite3.connect(self.settings.sqlite_path) as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    async def settle(self) -> None:
        async with asyncio.timeout(30):
            await self.services.ingress.idle()


@pytest.fixture
async def doors(
    aiohttp_server: Any, aiohttp_client: Any, settings: Settings, demo_nlu: Nlu
) -> AsyncIterator[Doors]:
    telegram, vk, viber = (
        FakeTelegram(token=TG_TOKEN),
        FakeVk(group_id=VK_GROUP),
        FakeViber(VIBER_AUTH),
    )
    tg_server = await aiohttp_server(telegram.app())
    vk_server = await aiohttp_server(vk.app())
    viber_server = await aiohttp_server(viber.app())
    configured = replace(
        settings,
        rest_token=REST_TOKEN,
        telegram_token=TG_TOKEN,
        telegram_webhook_secret=TG_SECRET,
        telegram_api_base=str(tg_server.make_url("")).rstrip("/"),
        vk_group_token=vk.token,
        vk_group_id=VK_GROUP,
        vk_secret=VK_SECRET,
        vk_confirmation="4f2a9c1e",
        vk_api_base=str(vk_server.make_url("/method")),
        viber_auth_token=VIBER_AUTH,
        viber_api_base=str(viber_server.make_url("/pa")),
    )
    services = build_services(configured, nlu=demo_nlu)
    for channel in services.channels.values():
        if hasattr(channel, "rate_limit"):
            channel.rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)  # type: ignore[misc]
    client = await aiohttp_client(create_app(configured, services=services))
    await services.start()
    yield Doors(client, services, configured)
    await services.close()


def _no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> None:
    unhandled = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and "unhandled" in r.getMessage()
    ]
    assert not unhandled, unhandled


def _body(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    # Escaped (a lone surrogate stays six ASCII characters), as the platforms send JSON; raw invalid
    # UTF-8 comes from _RAW_BODIES.
    return json.dumps(value).encode()


_RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    st.just(b"[" * 100_000),
    deep_values().map(json.dumps).map(str.encode),
)

_ids = count(10**9)


def _fresh_ids(update: Any) -> Any:
    """A fresh update id, so that a delivery is never skipped as a redelivery of another."""
    if isinstance(update, dict):
        if isinstance(update.get("update_id"), int):
            update = {**update, "update_id": next(_ids)}
        if "event_id" in update:
            update = {**update, "event_id": f"fuzz{next(_ids)}"}
        if isinstance(update.get("message_token"), int):
            update = {**update, "message_token": next(_ids)}
    return update


# --- the messengers' webhooks -----------------------------------------------------------------


@settings(max_examples=examples(60))
@given(st.one_of(platform_payloads("telegram"), _RAW_BODIES))
@example({"update_id": 1, "message": {"message_id": 1, "chat": {"id": 5, "type": "private"},
                                      "from": {"id": 5}, "text": "\ud800"}})  # fmt: skip
@example({"update_id": 2, "message": {"message_id": 1, "chat": {"id": 5, "type": "private"},
                                      "from": {"id": 5}, "text": "1" * 16_000}})  # fmt: skip
async def test_telegram_webhook(
    doors: Doors, caplog: pytest.LogCaptureFixture, update: Any
) -> None:
    resp = await doors.client.post(
        "/webhooks/telegram", data=_body(_fresh_ids(update)), headers={SECRET_HEADER: TG_SECRET}
    )
    assert resp.status == 200, await resp.text()
    await doors.settle()
    _no_unhandled_errors(caplog)


@settings(max_examples=examples(60))
@given(st.one_of(platform_payloads("vk"), _RAW_BODIES))
@example(
    {
        "type": "message_new",
        "group_id": 123456,
        "secret": VK_SECRET,
        "object": {"message": {"from_id": 7, "peer_id": 7, "id": 1, "text": "\ud800"}},
    }
)
async def test_vk_webhook(doors: Doors, caplog: pytest.LogCaptureFixture, event: Any) -> None:
    if isinstance(event, dict) and event.get("type") != "confirmation":
        event = {**_fresh_ids(event), "secret": VK_SECRET}  # authentic: we fuzz what is inside
    resp = await doors.client.post("/webhooks/vk", data=_body(event))
    # The secret is inside the body: a body that is not a JSON object cannot be authentic (400),
    # a mutated group id is not ours (403); whatever is authentic is answered 200.
    allowed = (200, 403) if isinstance(event, dict) else (400, 403)
    assert resp.status in allowed, await resp.text()
    await doors.settle()
    _no_unhandled_errors(caplog)


@settings(max_examples=examples(60))
@given(st.one_of(platform_payloads("viber"), _RAW_BODIES))
@example({"event": "message", "message_token": 1, "sender": {"id": "u"},
          "message": {"type": "text", "text": "\ud800"}})  # fmt: skip
async def test_viber_webhook(doors: Doors, caplog: pytest.LogCaptureFixture, callback: Any) -> None:
    body = _body(_fresh_ids(callback))
    resp = await doors.client.post(
        "/webhooks/viber", data=body, headers={SIGNATURE_HEADER: signature_for(VIBER_AUTH, body)}
    )
    assert resp.status == 200, await resp.text()
    await doors.settle()
    _no_unhandled_errors(caplog)


# --- the REST channel -------------------------------------------------------------------------

_REST = st.fixed_dictionaries(
    {"sender": st.one_of(hostile_text(20).filter(str.strip), json_values(2))},
    optional={
        "text": st.one_of(strings(), json_values(3)),
        "payload": st.one_of(hostile_text(), json_values(2)),
        "locale": hostile_text(8),
        "message_id": st.one_of(hostile_text(), json_values(2)),
        "location": json_values(3),
        "identity": st.one_of(json_values(3), deep_values()),
    },
)


@settings(max_examples=examples(60))
@given(st.one_of(_REST, json_values(), _RAW_BODIES))
@example({"sender": "\ud800", "text": "\ud800"})
@example(b'{"sender": "s", "text": "x", "identity": ' + b"[" * 5000 + b"]" * 5000 + b"}")
async def test_rest_messages(doors: Doors, caplog: pytest.LogCaptureFixture, body: Any) -> None:
    before = doors.count("messages")
    resp = await doors.client.post(
        "/api/v1/messages", data=_body(body),
        headers={"Authorization": f"Bearer {REST_TOKEN}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert resp.status in (200, 400, 403, 429), await resp.text()
    if resp.status != 200:
        assert doors.count("messages") == before, "a refused message changed the transcript"
        assert "error" in await resp.json()
    _no_unhandled_errors(caplog)


@settings(max_examples=examples(40))
@given(
    st.one_of(hostile_text(30), st.integers(min_value=-(10**30), max_value=10**30).map(str)),
    st.one_of(hostile_text(30), st.integers(min_value=-(10**30), max_value=10**30).map(str)),
)
@example("-99999999999999999999999", "1")
async def test_rest_transcript_cursor(
    doors: Doors, caplog: pytest.LogCaptureFixture, after: str, limit: str
) -> None:
    resp = await doors.client.get(
        "/api/v1/conversations/rest:fuzz:fuzz/messages",
        params={"after": after.encode("utf-8", "replace").decode(), "limit": limit},
        headers={"Authorization": f"Bearer {REST_TOKEN}"},
    )
    assert resp.status in (200, 400, 403, 404), await resp.text()
    _no_unhandled_errors(caplog)


# --- the widget's frames ----------------------------------------------------------------------

_sessions = count()

_FRAMES = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["message", "payload", "location", "hello"]),
            "id": st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        },
        optional={
            "text": st.one_of(strings(), json_values(2)),
            "payload": st.one_of(hostile_text(), json_values(2)),
            "title": hostile_text(),
            "lat": json_values(1),
            "lon": json_values(1),
        },
    ),
    json_values(),
    deep_values(),
)


@settings(max_examples=examples(40))
@given(st.one_of(_FRAMES.map(lambda f: json.dumps(f, ensure_ascii=False)), hostile_text(80)))
@example('{"type": "message", "id": "a1", "text": "\\ud800"}')
@example("[" * 60_000)
async def test_widget_frames(doors: Doors, caplog: pytest.LogCaptureFixture, frame: str) -> None:
    session = f"fuzz-session-{next(_sessions):08d}"
    async with doors.client.ws_connect(f"/ws/widget?session={session}") as ws:
        await ws.send_str(json.dumps({"type": "hello", "locale": "ru"}))
        await ws.send_str(frame.encode("utf-8", "replace").decode("utf-8"))
        answer = await _answer_to_frame(ws)
    if answer.get("type") == "error":
        await doors.settle()
        conversation = f"widget:{session}:{session}"
        with sqlite3.connect(doors.settings.sqlite_path) as db:
            rows = db.execute(
                "SELECT count(*) FROM messages WHERE conversation_id = ?", (conversation,)
            ).fetchone()[0]
        assert rows == 0, "a refused frame was recorded"
    else:
        assert answer.get("type") == "ack", answer
    _no_unhandled_errors(caplog)


async def _answer_to_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The ack or error answering our frame (history and typing frames are skipped)."""
    async with asyncio.timeout(20):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, (message.type, message.data)
            data = json.loads(message.data)
            if data.get("type") in ("ack", "error"):
                return data  # type: ignore[no-any-return]
