"""The CRM webhook against a local receiver that fails first (HTTP 500, then a timeout) and then
accepts: every new or changed record arrives, signed, in order per record, and nothing queued is
lost when the sender restarts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import Settings
from bot.requests.model import NewRequest
from bot.requests.sqlite import SqliteRequestBoard
from bot.requests.webhook import RequestWebhook
from bot.services import Services
from tests.conftest import IDENTITY_SECRET, Say
from tests.requests.conftest import leave_connection_lead

SECRET = "crm-shared-secret"
TIMEOUT = 0.4  # the sender's per-call timeout in these tests


@dataclass
class Receiver:
    """The provider's CRM: answers each call by ``script`` (then "ok"), keeps what it accepted."""

    script: list[str] = field(default_factory=list)
    attempts: list[tuple[str, int]] = field(default_factory=list)  # (outcome, delivery id)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Signature", ""), expected):
            self.bad_signatures += 1
            return web.Response(status=401)
        delivery = int(request.headers["X-Delivery-Id"])
        outcome = self.script.pop(0) if self.script else "ok"
        self.attempts.append((outcome, delivery))
        if outcome == "500":
            return web.Response(status=500)
        if outcome == "timeout":
            await asyncio.sleep(TIMEOUT * 3)
            return web.Response(status=200)  # too late: the sender has given up on this call
        data = json.loads(body)
        assert data["delivery_id"] == delivery
        self.accepted.append(data)
        return web.json_response({"ok": True})

    def events_of(self, request_id: int) -> list[tuple[str, str]]:
        return [
            (d["event"], d["request"]["status"])
            for d in self.accepted
            if d["request"]["id"] == request_id
        ]


@pytest.fixture
async def receiver(aiohttp_server: Callable[..., Any]) -> Receiver:
    crm = Receiver()
    app = web.Application()
    app.router.add_post("/crm/requests", crm.handle)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    crm.url = str(server.make_url("/crm/requests"))
    return crm


def sender(board: SqliteRequestBoard, url: str) -> RequestWebhook:
    return RequestWebhook(
        board=board, url=url, secret=SECRET, timeout=TIMEOUT, base_delay=0.05, max_delay=0.2
    )


async def until(check: Callable[[], Any], seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_every_record_arrives_signed_after_failures(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.script = ["500", "timeout"]
    board = SqliteRequestBoard(tmp_path / "requests.sqlite3", webhooks=True)
    crm = sender(board, receiver.url)
    try:
        lead = await board.add(
            NewRequest("connection", "rest:a:a", name="Анна", phone="+79145551234",
                       city_id="bratsk", address="ул. Обручева, 21"),
            by="bot",
        )  # fmt: skip
        call = await board.add(NewRequest("callback", "rest:b:b", phone="+79140000001"), by="bot")
        await board.change(lead.id, by="anna", status="in_progress", assignee="anna")
        await board.change(lead.id, by="anna", status="done", comment="Подключили")
        await crm.start()

        async def all_sent() -> bool:
            return await board.undelivered() == 0

        await until(all_sent)
        outcomes = [outcome for outcome, _ in receiver.attempts]
        assert outcomes[:2] == ["500", "timeout"]
        assert receiver.bad_signatures == 0
        # Each record's calls in order, the full record (phone included) in every one.
        assert receiver.events_of(lead.id) == [
            ("created", "new"), ("updated", "in_progress"), ("updated", "done"),
        ]  # fmt: skip
        assert receiver.events_of(call.id) == [("created", "new")]
        first = receiver.accepted[[d["request"]["id"] for d in receiver.accepted].index(lead.id)]
        assert first["request"]["phone"] == "+79145551234"
        assert first["request"]["name"] == "Анна"
        last = [d for d in receiver.accepted if d["request"]["id"] == lead.id][-1]
        assert last["request"]["comment"] == "Подключили"
        assert {(c["action"], c["to"]) for c in last["changes"]} == {
            ("status", "done"), ("comment", "Подключили"),
        }  # fmt: skip
        # Every delivery was accepted exactly once.
        ids = [d["delivery_id"] for d in receiver.accepted]
        assert len(ids) == len(set(ids)) == 4

        # A record made while the sender idles goes out at once (it is woken, not polled).
        later = await board.add(NewRequest("feedback", "rest:c:c"), by="bot")
        crm.notify()
        await until(all_sent, seconds=2.0)
        assert receiver.events_of(later.id) == [("created", "new")]
    finally:
        await crm.close()
        await board.close()


async def test_nothing_is_lost_across_a_restart_of_the_sender(
    tmp_path: Path, receiver: Receiver
) -> None:
    path = tmp_path / "requests.sqlite3"
    receiver.script = ["500"] * 1000  # the CRM is down for the whole first run
    board = SqliteRequestBoard(path, webhooks=True)
    crm = sender(board, receiver.url)
    await crm.start()
    made = []
    for n in range(5):
        record = await board.add(NewRequest("callback", f"rest:r{n}:r{n}"), by="bot")
        crm.notify()
        made.append(record.id)
    await board.change(made[0], by="anna", status="cancelled")
    crm.notify()

    async def tried() -> bool:
        return len(receiver.attempts) >= 10

    await until(tried)
    await crm.close()  # the process stops with everything still undelivered
    await board.close()
    assert receiver.accepted == []

    receiver.script = []  # back up
    board = SqliteRequestBoard(path, webhooks=True)
    assert await board.undelivered() == 6
    crm = sender(board, receiver.url)
    await crm.start()
    try:

        async def all_sent() -> bool:
            return await board.undelivered() == 0

        await until(all_sent)
        assert receiver.events_of(made[0]) == [("created", "new"), ("updated", "cancelled")]
        for request_id in made[1:]:
            assert receiver.events_of(request_id) == [("created", "new")]
        assert receiver.bad_signatures == 0
    finally:
        await crm.close()
        await board.close()


@pytest.fixture
def settings(tmp_path: Path, receiver: Receiver) -> Settings:
    return replace(
        Settings(),
        var_dir=tmp_path / "var",
        identity_secret=IDENTITY_SECRET,
        requests_webhook_url=receiver.url,
        requests_webhook_secret=SECRET,
    )


async def test_a_lead_from_a_conversation_reaches_the_crm(
    say: Say, services: Services, receiver: Receiver
) -> None:
    assert services.requests_webhook is not None
    await services.requests_webhook.start()  # closed with the services
    conversation = await leave_connection_lead(say, "u-crm")

    async def arrived() -> bool:
        return len(receiver.accepted) == 1

    await until(arrived)
    [call] = receiver.accepted
    assert call["event"] == "created"
    assert call["request"]["kind"] == "connection"
    assert call["request"]["conversation_id"] == conversation
    assert call["request"]["phone"] == "+79145551234"
    assert call["request"]["address"] == "ул. Обручева, 21"


def test_a_url_without_a_secret_is_refused(tmp_path: Path) -> None:
    from bot.config import ConfigError
    from bot.handoff.events import EventHub
    from bot.services import build_requests

    configured = replace(
        Settings(), var_dir=tmp_path, requests_webhook_url="http://127.0.0.1:9/crm"
    )
    with pytest.raises(ConfigError, match="REQUESTS_WEBHOOK_SECRET"):
        build_requests(configured, EventHub())
    assert Settings.from_env({"REQUESTS_WEBHOOK_URL": "http://x", "REQUESTS_WEBHOOK_SECRET": "s"}
                             ).requests_webhook_secret == "s"  # fmt: skip
