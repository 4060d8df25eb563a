"""Abuse limits that hold across conversations (issue 10): one-time codes per phone and per
contract, wrong codes per contract, identification look-ups per client address. Before, each
limit lived in the conversation, so 15 fresh sessions sent 15 codes to one customer's phone.

The REST channel gives a new conversation per sender; the widget gives one per session, every
session from 127.0.0.1 (one address)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from bot.abuse import AbuseLimits, Refusal, SocketLease, requester
from bot.config import Settings
from bot.metrics import Metrics
from bot.models import ConversationKey
from bot.services import Services
from tests.conftest import Say, buttons, identity, texts

CONTRACT = "380300112233"


def codes_sent(settings: Settings) -> list[dict[str, str]]:
    folder = settings.var_dir / "notifications"
    if not folder.exists():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def last_code(settings: Settings) -> str:
    folder = settings.var_dir / "notifications"
    newest = max(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    match = re.search(r"\b(\d{6})\b", json.loads(newest.read_text(encoding="utf-8"))["text"])
    assert match
    return match.group(1)


async def metric(client: TestClient, limit: str) -> float:
    text = await (await client.get("/metrics")).text()
    line = f'isp_bot_abuse_limited_total{{limit="{limit}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


# --- one-time codes ---------------------------------------------------------------------------
async def test_fifteen_conversations_send_at_most_three_codes_to_one_phone(
    say: Say, client: TestClient, services: Services, settings: Settings
) -> None:
    account = await services.billing.account(CONTRACT)
    assert account is not None
    answers = []
    for n in range(15):
        await say(f"otp-{n}", payload="/identify")
        answers.append(await say(f"otp-{n}", CONTRACT))
    sent = codes_sent(settings)
    assert len(sent) == 3
    assert {s["to"] for s in sent} == {account.phone}
    refused = answers[3:]
    for answer in refused:
        said = texts(answer)
        assert "уже отправлялся несколько раз" in said
        assert "мин." in said
        assert any(c.support_phone in said for c in services.catalog.cities.values())
        # Not a dead end: an operator and the menu are offered.
        assert "/human_operator" in {b["payload"] for b in buttons(answer)}
        assert account.phone not in said
    assert await metric(client, "otp_per_phone") == 12


async def test_wrong_codes_are_counted_per_contract_across_conversations(
    say: Say, client: TestClient, services: Services, settings: Settings
) -> None:
    """Before: 3 codes × 3 attempts = 9 guesses in every new conversation. Now six wrong codes
    per contract an hour, from anywhere; then even the right code is refused."""
    for n in range(2):
        await say(f"guess-{n}", payload="/identify")
        await say(f"guess-{n}", CONTRACT)
        wrong = "000000" if last_code(settings) != "000000" else "111111"
        for _ in range(3):
            await say(f"guess-{n}", wrong)
    await say("guess-2", payload="/identify")
    await say("guess-2", CONTRACT)
    right = last_code(settings)
    answer = await say("guess-2", right)
    assert "Слишком много неверных кодов" in texts(answer)
    assert "/human_operator" in {b["payload"] for b in buttons(answer)}
    assert await services.store.identity(ConversationKey("rest", "guess-2", "guess-2")) is None
    assert await metric(client, "otp_guesses_per_contract") == 1
    # The code was voided with the refusal: sending it again does not log in either.
    again = await say("guess-2", right)
    assert "вы вошли" not in texts(again)


async def test_a_customer_within_the_limits_is_not_bothered(
    say: Say, services: Services, settings: Settings
) -> None:
    await say("fine", payload="/identify")
    await say("fine", CONTRACT)
    code = last_code(settings)
    wrong = "000000" if code != "000000" else "111111"
    assert "Осталось попыток: 2" in texts(await say("fine", wrong))
    assert "вы вошли по договору" in texts(await say("fine", code))


async def test_contact_change_codes_to_one_new_number_are_limited_across_conversations(
    say: Say, client: TestClient, settings: Settings
) -> None:
    """An identified customer cannot use the contact change to text a stranger's number again
    and again by opening new conversations."""
    said = []
    for n in range(5):
        signed = identity("750012345678")
        await say(f"ct-{n}", "хочу поменять номер телефона в договоре", identity=signed)
        said.append(texts(await say(f"ct-{n}", "+7 914 555-66-77", identity=signed)))
    assert all("Отправил код" in s for s in said[:3])
    assert all("уже отправлялся несколько раз" in s for s in said[3:])
    assert [r["to"] for r in codes_sent(settings)] == ["+79145556677"] * 3
    assert await metric(client, "otp_per_phone") == 2


# --- identification look-ups per address (widget) -----------------------------------------------
async def widget_turn(ws: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> str:
    """Send a frame; the bot's answer's text."""
    await ws.send_json(frame)
    async with asyncio.timeout(20):
        while True:
            got = await ws.receive_json()
            assert got["type"] != "error", got
            if got["type"] == "reply" and got["message"]["from"] == "bot":
                return str(got["message"]["text"])


async def test_contract_guesses_from_one_address_are_bounded_across_widget_sessions(
    started_client: TestClient, settings: Settings
) -> None:
    said = []
    for n in range(12):  # a new session for every guess, as a script would
        ws = await started_client.ws_connect(f"/ws/widget?session=lookupSession{n:05d}")
        await ws.send_json({"type": "hello", "locale": "ru"})
        assert (await ws.receive_json(timeout=10))["type"] == "history"
        await widget_turn(ws, {"type": "payload", "id": "a", "payload": "/identify"})
        said.append(
            await widget_turn(ws, {"type": "message", "id": "b", "text": f"99999999{n:04d}"})
        )
        await ws.close()
    assert all("Не нашёл договор" in s for s in said[:10])
    assert all("Слишком много попыток" in s for s in said[10:])
    assert await metric(started_client, "id_lookups_per_client") == 2
    # A real contract asked from that address now is refused too, and sends no code.
    ws = await started_client.ws_connect("/ws/widget?session=lookupSessionLast")
    await ws.send_json({"type": "hello", "locale": "ru"})
    await ws.receive_json(timeout=10)
    await widget_turn(ws, {"type": "payload", "id": "a", "payload": "/identify"})
    assert "Слишком много попыток" in await widget_turn(
        ws, {"type": "message", "id": "b", "text": CONTRACT}
    )
    assert codes_sent(settings) == []
    await ws.close()


# --- the limits themselves ----------------------------------------------------------------------
async def test_a_refusal_by_one_limit_uses_up_none_of_the_others() -> None:
    limits = AbuseLimits(rates={"otp_per_phone": "1/hour", "otp_per_contract": "2/hour"})
    pairs = (("otp_per_phone", "+79140000001"), ("otp_per_contract", "750012345678"))
    assert await limits.hit_all(pairs) is None
    refusal = await limits.hit_all(pairs)
    assert isinstance(refusal, Refusal)
    assert refusal.limit == "otp_per_phone"
    assert 1 <= refusal.retry_after <= 3600
    assert refusal.minutes == -(-refusal.retry_after // 60)
    # The contract had one of its two left and still has.
    assert await limits.hit("otp_per_contract", "750012345678") is None
    assert await limits.hit("otp_per_contract", "750012345678") is not None


async def test_what_is_counted_is_kept_only_as_a_keyed_hash() -> None:
    limits = AbuseLimits(metrics=Metrics())
    await limits.hit("otp_per_phone", "+79140000001")
    storage = limits._exact.storage  # the in-memory counters, as Redis would hold them
    keys = " ".join(str(k) for k in vars(storage).get("events", {}))
    assert keys
    assert "79140000001" not in keys
    assert limits.tag("+79140000001") in keys
    # Another process with the same secret counts under the same keys; another secret does not.
    assert AbuseLimits(secret="s").tag("1.2.3.4") == AbuseLimits(secret="s").tag("1.2.3.4")
    assert AbuseLimits(secret="s").tag("1.2.3.4") != AbuseLimits(secret="t").tag("1.2.3.4")


def test_socket_places_come_back_when_released() -> None:
    limits = AbuseLimits(sockets_per_session=2, sockets_per_address=3)
    first = limits.open_socket("s1", "10.0.0.1")
    second = limits.open_socket("s1", "10.0.0.1")
    assert isinstance(first, SocketLease)
    assert isinstance(second, SocketLease)
    assert isinstance(limits.open_socket("s1", "10.0.0.1"), Refusal)
    assert isinstance(limits.open_socket("s2", "10.0.0.1"), SocketLease)
    assert isinstance(limits.open_socket("s3", "10.0.0.1"), Refusal)  # the address is full
    first.release()
    first.release()  # twice is once
    assert limits.open_sockets("s1") == 1
    assert isinstance(limits.open_socket("s1", "10.0.0.1"), SocketLease)


def test_the_requester_is_the_address_when_known_else_the_platform_user() -> None:
    assert requester({"client": "abc"}, "widget", "sess") == "address:abc"
    assert requester({}, "telegram", "42") == "user:telegram:42"
    assert requester({"client": 5}, "vk", "7") == "user:vk:7"
