"""The Viber channel against a fake Viber server that the real viberbot client talks to, with
webhooks posted through a real aiohttp test server and the real payloads of
``../shared/payloads/viber``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, unused_port

from bot.app import create_app
from bot.channels.base import OutboundMessage, SendError
from bot.channels.registry import ChannelDeps
from bot.channels.viber import (
    MAX_ACTION_BODY,
    ViberChannel,
    ViberParseError,
    create,
    parse_message,
)
from bot.config import Settings
from bot.i18n import load_translator
from bot.intents.nlu import Nlu
from bot.models import ConversationKey, Inbound, RenderedButton
from bot.services import Services, build_services
from tests.conftest import SHARED
from tests.fakes.viber import FIRST_TOKEN, FakeViber, sign

AUTH = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"
PAYLOADS = SHARED / "payloads" / "viber"
USER = "3SQNc4FPUQmysaM/AQEhXg=="  # real Viber ids carry "/", "+" and "="
CONVERSATION = f"viber:{USER}:{USER}"


@dataclass
class Running:
    services: Services
    channel: ViberChannel
    client: TestClient[Any, Any]
    fake: FakeViber
    settings: Settings

    async def post(
        self, payload: dict[str, Any] | bytes, *, signature: str | None = "valid"
    ) -> Any:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "valid":
            headers["X-Viber-Content-Signature"] = sign(AUTH, body)
        elif signature is not None:
            headers["X-Viber-Content-Signature"] = signature
        return await self.client.post("/webhooks/viber", data=body, headers=headers)

    async def settle(self) -> None:
        async with asyncio.timeout(20):
            await self.services.ingress.idle()
            await self.services.outbox.drain()

    def rows(self, sql: str) -> list[Any]:
        with contextlib.closing(sqlite3.connect(self.settings.sqlite_path)) as db:
            return db.execute(sql).fetchall()


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeViber:
    fake = FakeViber(AUTH)
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("/pa"))
    return fake


def _channel(services: Services, settings: Settings) -> ViberChannel:
    existing = services.channels.get("viber")  # once the registry lists Viber
    channel = existing or create(
        ChannelDeps(settings, services.ingress, services.store, services.translator)
    )
    assert isinstance(channel, ViberChannel)
    return channel


@pytest.fixture
async def running(
    settings: Settings, demo_nlu: Nlu, fake: FakeViber, aiohttp_client: Any
) -> AsyncIterator[Running]:
    settings = replace(settings, viber_auth_token=AUTH, viber_api_base=fake.base)
    services = build_services(settings, nlu=demo_nlu)
    channel = _channel(services, settings)
    services.channels[channel.name] = channel
    client = await aiohttp_client(create_app(settings, services=services))
    await services.start()
    yield Running(services, channel, client, fake, settings)
    await services.close()


def message(text: str, token: int, *, user: str = USER, language: str = "ru") -> dict[str, Any]:
    return {
        "event": "message",
        "timestamp": 1595324652811,
        "chat_hostname": "SN-CHAT-02_",
        "message_token": token,
        "sender": {"id": user, "name": "Покупатель", "language": language, "country": "RU",
                   "api_version": 10},
        "message": {"type": "text", "text": text},
        "silent": False,
    }  # fmt: skip


def located(lat: float, lon: float, token: int) -> dict[str, Any]:
    body = message("", token)
    body["message"] = {"type": "location", "location": {"lat": lat, "lon": lon}}
    return body


def buttons_of(sent: dict[str, Any]) -> list[dict[str, Any]]:
    return list(sent.get("keyboard", {}).get("Buttons", []))


def replies_to(fake: FakeViber, user: str = USER) -> list[dict[str, Any]]:
    return [b for b in fake.delivered if b["receiver"] == user]


# --- authenticity and acknowledgement -----------------------------------------------------
@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.json")), ids=lambda p: p.stem)
async def test_every_real_payload_with_a_valid_signature_is_acknowledged(
    running: Running, path: Path
) -> None:
    body = path.read_bytes()  # the exact bytes: the signature is over the raw body
    resp = await running.post(body)
    assert resp.status == 200, await resp.text()
    event = json.loads(body)["event"]
    if event == "conversation_started":
        welcome = await resp.json()
        assert welcome["type"] == "text"
        assert welcome["keyboard"]["Buttons"]
    await running.settle()
    kept = running.rows("SELECT problem FROM unparsed")
    assert kept == [], kept  # every real shape is understood


@pytest.mark.parametrize(
    "signature",
    [None, "", "0" * 64, sign("another-bots-token", b"x"), "not hex at all ☃"],
    ids=["missing", "empty", "zeros", "other-token", "garbage"],
)
async def test_a_forged_or_missing_signature_is_refused_and_nothing_recorded(
    running: Running, signature: str | None
) -> None:
    for body in (
        message("тарифы в Чите", 7001),
        {"event": "unsubscribed", "timestamp": 1, "user_id": USER, "message_token": 7002},
        {"event": "delivered", "timestamp": 1, "user_id": USER, "message_token": 7003},
    ):
        resp = await running.post(body, signature=signature)
        assert resp.status == 403
    # Signed over other bytes than the ones sent:
    resp = await running.post(
        json.dumps(message("x", 7004)).encode(),
        signature=sign(AUTH, json.dumps(message("y", 7004)).encode()),
    )
    assert resp.status == 403
    await running.settle()
    store = running.services.store
    assert await store.messages(CONVERSATION) == []
    assert await store.is_reachable(CONVERSATION)
    assert await store.receipts("viber", "7003") == []
    assert running.rows("SELECT count(*) FROM inbox") == [(0,)]
    assert running.rows("SELECT count(*) FROM unparsed") == [(0,)]
    assert running.fake.calls_to("send_message") == []


async def test_a_redelivery_is_processed_once(running: Running) -> None:
    for _ in range(3):
        resp = await running.post(message("привет", 5466394919049723652))
        assert resp.status == 200
    await running.settle()
    customer = [m for m in await running.services.store.messages(CONVERSATION)]
    assert [m.sender for m in customer].count("customer") == 1
    assert len(replies_to(running.fake)) == 1


async def test_an_authentic_but_unparsable_delivery_is_acknowledged_and_kept(
    running: Running,
) -> None:
    for body in (
        b"{not json",
        b"[1, 2]",
        json.dumps({"event": "message", "message_token": 1, "message": {"type": "text"}}).encode(),
        json.dumps({"event": "from_the_future", "message_token": 2}).encode(),
    ):
        resp = await running.post(body)
        assert resp.status == 200
    rows = running.rows("SELECT scope, body FROM unparsed ORDER BY id")
    assert [r[0] for r in rows] == ["viber"] * 4
    assert rows[0][1] == "{not json"


# --- conversation_started: the welcome in the response body --------------------------------
async def test_conversation_started_is_answered_with_a_welcome_and_keyboard_in_the_body(
    running: Running,
) -> None:
    translator = load_translator(running.settings.locales_dir)
    body = json.loads((PAYLOADS / "poll_bot_conversation_started_real.json").read_text())
    resp = await running.post(body)  # language "en-CA"
    welcome = await resp.json()
    assert welcome["text"] == translator.message("en", "viber.welcome")
    assert welcome["sender"]["name"] == running.settings.viber_bot_name
    replies = [b for b in welcome["keyboard"]["Buttons"] if b["ActionType"] == "reply"]
    assert [b["ActionBody"] for b in replies] == [
        "/tariffs", "/coverage", "/offices", "/balance", "/human_operator",
    ]  # fmt: skip
    assert [b["Text"] for b in replies] == [
        translator.message("en", f"button.{k}")
        for k in ("tariffs", "check_address", "offices", "balance", "operator")
    ]
    assert any(b["ActionType"] == "location-picker" for b in welcome["keyboard"]["Buttons"])
    assert welcome["min_api_version"] == 3

    body["user"]["language"] = "ru"
    welcome = await (await running.post(body)).json()
    assert welcome["text"] == translator.message("ru", "viber.welcome")
    assert welcome["keyboard"]["Buttons"][0]["Text"] == "Тарифы"

    await running.settle()
    assert running.fake.calls_to("send_message") == []  # only the response body answers it
    assert await running.services.store.messages(CONVERSATION) == []  # not a dialog turn


# --- messages in, answers out ---------------------------------------------------------------
async def test_a_text_is_answered_through_send_message_with_a_keyboard(running: Running) -> None:
    resp = await running.post(message("тарифы в Чите", 5466297467809468529))
    assert resp.status == 200
    await running.settle()
    [sent] = replies_to(running.fake)
    assert sent["type"] == "text"
    assert "Тарифы в городе Чита" in sent["text"]
    assert sent["auth_token"] == AUTH
    assert sent["sender"]["name"] == running.settings.viber_bot_name
    keys = buttons_of(sent)
    assert keys
    assert all(k["Columns"] in (3, 6) for k in keys)
    assert any(k["ActionType"] == "reply" for k in keys)
    assert sent["min_api_version"] == 3  # it carries a location picker
    outbox = running.rows("SELECT status, platform_message_id FROM outbox")
    assert outbox == [("sent", str(FIRST_TOKEN))]


async def test_a_keyboard_button_drives_the_dialog(running: Running) -> None:
    await running.post(message("/tariffs", 1001))  # the main menu's ActionBody
    await running.settle()
    [question] = replies_to(running.fake)
    chita = next(k for k in buttons_of(question) if k.get("Text") == "Чита")
    await running.post(message(chita["ActionBody"], 1002))  # pressing it sends its ActionBody
    await running.settle()
    answer = replies_to(running.fake)[-1]
    assert "Тарифы в городе Чита" in answer["text"]
    lines = await running.services.store.messages(CONVERSATION)
    pressed = [m for m in lines if m.sender == "customer"]
    assert [m.meta["kind"] for m in pressed] == ["payload", "payload"]


async def test_a_long_payload_travels_as_a_token_and_comes_back_as_the_payload(
    running: Running,
) -> None:
    payload = (
        '/coverage{"city":"bratsk","street":"ул. Мира","house":"39а","note":"'
        + ("x" * MAX_ACTION_BODY)
        + '"}'
    )
    await running.channel.send(
        OutboundMessage(USER, "Проверить?", (RenderedButton("Проверить", payload),), "1:0")
    )
    [sent] = replies_to(running.fake)
    body = buttons_of(sent)[0]["ActionBody"]
    assert body.startswith("~")
    assert len(body) <= MAX_ACTION_BODY
    await running.post(message(body, 1003))
    await running.settle()
    [line] = [m for m in await running.services.store.messages(CONVERSATION) if
              m.sender == "customer"]  # fmt: skip
    assert line.meta["payload"] == payload


async def test_a_shared_location_finds_the_nearest_office(running: Running) -> None:
    await running.post(located(52.0337, 113.4990, 1004))  # a few steps from ул. Бутина, 10
    await running.settle()
    [answer] = replies_to(running.fake)
    assert "Бутина" in answer["text"]


async def test_a_share_phone_button_goes_with_an_identification_request(
    running: Running,
) -> None:
    buttons = (RenderedButton("Войти", "/identify"), RenderedButton("Меню", "/menu"))
    await running.channel.send(OutboundMessage(USER, "Кто вы?", buttons, "2:0"))
    await running.channel.send(OutboundMessage(USER, "Ещё?", buttons[1:], "3:0"))
    first, second = replies_to(running.fake)
    actions = [k["ActionType"] for k in buttons_of(first)]
    assert actions == ["reply", "reply", "location-picker", "share-phone"]
    assert [k["Columns"] for k in buttons_of(first)][-2:] == [3, 3]
    assert "share-phone" not in [k["ActionType"] for k in buttons_of(second)]


# --- receipts and subscriptions ------------------------------------------------------------
async def test_delivered_and_seen_receipts_are_recorded_once(running: Running) -> None:
    await running.post(message("привет", 1005))
    await running.settle()
    token = running.rows("SELECT platform_message_id FROM outbox")[0][0]
    for event in ("delivered", "seen", "delivered"):  # the last one is a redelivery
        # Built as text so the 64-bit token is never a Python float on the way.
        body = (
            f'{{"event":"{event}","timestamp":1595324677891,"chat_hostname":"SN-CHAT-02_",'
            f'"message_token":{token},"user_id":"{USER}"}}'
        ).encode()
        assert (await running.post(body)).status == 200
    assert await running.services.store.receipts("viber", token) == ["delivered", "seen"]


async def test_an_unsubscribed_customer_is_not_sent_to_until_they_come_back(
    running: Running,
) -> None:
    store = running.services.store
    await running.post(
        {"event": "unsubscribed", "timestamp": 1, "user_id": USER, "message_token": 1006}
    )
    assert not await store.is_reachable(CONVERSATION)
    # A reply produced meanwhile (an earlier inbound answered late, an operator's message):
    key = ConversationKey("viber", USER, USER)
    await running.services.ingress.accept(
        Inbound(key, "late", "text", text="привет"), scope="viber", platform_id="late"
    )
    await running.settle()
    assert running.fake.calls_to("send_message") == []
    [(status, error)] = running.rows("SELECT status, last_error FROM outbox")
    assert status == "failed"
    assert "unreachable" in error

    subscribed = json.loads((PAYLOADS / "poll_bot_subscribed_doc_example.json").read_text())
    subscribed["user"]["id"] = USER
    await running.post(subscribed)
    assert await store.is_reachable(CONVERSATION)


async def test_writing_to_the_bot_subscribes_again(running: Running) -> None:
    await running.services.store.set_reachable(CONVERSATION, False, "unsubscribed")
    await running.post(message("привет", 1007))
    await running.settle()
    assert len(replies_to(running.fake)) == 1


async def test_receiver_not_subscribed_is_permanent_and_marks_unreachable(
    running: Running,
) -> None:
    running.fake.failures = ["not_subscribed"]
    await running.post(message("привет", 1008))
    await running.settle()
    assert len(running.fake.calls_to("send_message")) == 1  # not retried
    assert running.fake.delivered == []
    assert not await running.services.store.is_reachable(CONVERSATION)
    [(status, error)] = running.rows("SELECT status, last_error FROM outbox")
    assert status == "failed"
    assert "status 6" in error


async def test_too_many_requests_then_ok_is_delivered_once(running: Running) -> None:
    running.fake.failures = ["too_many"]
    await running.post(message("привет", 1009))
    await running.settle()
    assert len(running.fake.calls_to("send_message")) == 2
    assert len(running.fake.delivered) == 1
    rows = running.rows("SELECT status, attempts FROM outbox")
    assert rows == [("sent", 1)]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ("too_many", SendError("", retry_after=1.0)),
        ("http_429", SendError("", retry_after=0.25)),
        ("http_500", SendError("")),
        ("not_registered", SendError("", permanent=True)),
    ],
)
async def test_send_errors_map_to_retry_or_permanent(
    running: Running, failure: Any, expected: SendError
) -> None:
    running.fake.failures = [failure]
    running.fake.retry_after = "0.25"
    with pytest.raises(SendError) as caught:
        await running.channel.send(OutboundMessage(USER, "Привет", (), "4:0"))
    assert (caught.value.retry_after, caught.value.permanent) == (
        expected.retry_after,
        expected.permanent,
    )


async def test_a_network_failure_is_retryable(running: Running) -> None:
    running.channel._api._request_sender._viber_bot_api_url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(SendError) as caught:
        await running.channel.send(OutboundMessage(USER, "Привет", (), "5:0"))
    assert not caught.value.permanent


# --- 64-bit tokens -------------------------------------------------------------------------
async def test_a_message_token_above_2_53_survives_exactly(running: Running) -> None:
    token = 2**63 - 25  # no float can hold it
    assert int(float(token)) != token
    body = json.dumps(message("привет", token)).encode()
    assert str(token).encode() in body
    await running.post(body)
    await running.post(body)  # the same delivery again: same exact id, deduplicated
    await running.settle()
    [line] = [m for m in await running.services.store.messages(CONVERSATION) if
              m.sender == "customer"]  # fmt: skip
    assert line.meta["message_id"] == str(token)
    [(platform_id,)] = running.rows("SELECT platform_id FROM inbox")
    assert platform_id == f"message:{token}"
    sent_token = running.rows("SELECT platform_message_id FROM outbox")[0][0]
    assert sent_token == str(FIRST_TOKEN)
    assert int(float(FIRST_TOKEN)) != FIRST_TOKEN


# --- webhook registration --------------------------------------------------------------------
async def test_start_registers_the_webhook_once_the_server_listens(
    settings: Settings, demo_nlu: Nlu, fake: FakeViber, aiohttp_client: Any
) -> None:
    port = unused_port()
    public = f"http://127.0.0.1:{port}"
    settings = replace(settings, viber_auth_token=AUTH, viber_api_base=fake.base, public_url=public)
    services = build_services(settings, nlu=demo_nlu)
    channel = ViberChannel(
        auth_token=AUTH, ingress=services.ingress, store=services.store,
        translator=services.translator, api_base=fake.base,
        bot_name="Support", public_url=public, webhook_retry_seconds=(0.0, 0.05, 0.1, 0.2),
    )  # fmt: skip
    services.channels[channel.name] = channel
    try:
        await services.start()  # before the server listens, like python -m bot run
        await aiohttp_client(create_app(settings, services=services), server_kwargs={"port": port})
        async with asyncio.timeout(10):
            while fake.webhook_url is None:
                await asyncio.sleep(0.02)
        assert fake.webhook_url == f"{public}/webhooks/viber"
        assert {"delivered", "seen", "conversation_started"} <= set(fake.webhook_events)
    finally:
        await services.close()


def test_the_channel_is_off_without_a_token(settings: Settings) -> None:
    assert create(ChannelDeps(settings, None, None, None)) is None  # type: ignore[arg-type]


# --- parsing ---------------------------------------------------------------------------------
def _fixture(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())  # type: ignore[no-any-return]


def test_parse_kinds_of_real_messages() -> None:
    text = parse_message(_fixture("viberbot_message_text_unicode.json"))
    assert (text.kind, text.key.id) == ("text", "viber:01234567890A=:01234567890A=")
    assert text.message_id == "4912661846655238145"

    where = parse_message(_fixture("courier_message_location.json"))
    assert where.kind == "location"
    assert where.location is not None
    assert (where.location.lat, where.location.lon, where.text) == (1.2, -1.3, None)

    contact = parse_message(_fixture("courier_message_contact.json"))
    assert contact.kind == "contact"
    assert contact.contact is not None
    assert (contact.contact.phone, contact.contact.verified) == ("+12067799191", False)
    assert contact.contact.name == "Alex"

    sticker = parse_message(_fixture("courier_message_sticker.json"))
    assert sticker.kind == "attachment"
    assert sticker.attachments[0].kind == "sticker"

    link = parse_message(_fixture("courier_message_url.json"))
    assert (link.kind, link.text) == ("text", "http://foo.com/")


def test_parse_pictures_files_and_payloads() -> None:
    body = message("", 1)
    body["message"] = {"type": "picture", "text": "роутер мигает", "media": "https://x/p.jpg",
                       "thumbnail": "https://x/t.jpg", "file_name": "p.jpg"}  # fmt: skip
    picture = parse_message(body)
    assert picture.kind == "attachment"
    assert picture.text == "роутер мигает"
    assert (picture.attachments[0].url, picture.attachments[0].name) == ("https://x/p.jpg", "p.jpg")

    body["message"] = {"type": "file", "media": "https://x/d.pdf", "file_name": "договор.pdf",
                       "size": 10240}  # fmt: skip
    file = parse_message(body)
    assert file.attachments[0].kind == "file"
    assert file.attachments[0].name == "договор.pdf"

    pressed = parse_message(message('/offices{"kind":"terminal"}', 2))
    assert (pressed.kind, pressed.payload) == ("payload", '/offices{"kind":"terminal"}')
    typed = parse_message(message("/ интернет не работает", 3))
    assert typed.kind == "text"

    phone = message("", 4)
    phone["message"] = {"type": "contact", "contact": {"phone_number": "8 914 123-45-67"}}
    assert parse_message(phone).contact.phone == "+79141234567"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "broken",
    [
        {"event": "message", "message_token": 1, "message": {"type": "text", "text": "x"}},
        {"event": "message", "message_token": 1.5, "sender": {"id": "u"},
         "message": {"type": "text", "text": "x"}},
        {"event": "message", "message_token": 1, "sender": {"id": "u"},
         "message": {"type": "location", "location": {"lat": "north", "lon": 1}}},
        {"event": "message", "message_token": 1, "sender": {"id": "u"},
         "message": {"type": "location", "location": {"lat": 91, "lon": 1}}},
        {"event": "message", "message_token": 1, "sender": {"id": "u"},
         "message": {"type": "rich_media"}},
    ],
)  # fmt: skip
def test_parse_refuses_what_it_cannot_understand(broken: dict[str, Any]) -> None:
    with pytest.raises(ViberParseError):
        parse_message(broken)
