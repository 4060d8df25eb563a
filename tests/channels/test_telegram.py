"""The Telegram channel against a fake Bot API server: the real aiogram client sends over HTTP,
webhooks arrive through the real aiohttp application, updates are the real payloads of
``shared/payloads/telegram`` plus a few built here in the same shape."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.channels.base import OutboundMessage, RateLimit, SendError
from bot.channels.registry import ChannelDeps
from bot.channels.telegram import (
    ALLOWED_UPDATES,
    SECRET_HEADER,
    TelegramChannel,
    Unparsable,
    contact_phone,
    create,
    parse_update,
)
from bot.config import ConfigError, Settings
from bot.intents.nlu import Nlu
from bot.models import ConversationKey, Inbound, RenderedButton
from bot.services import Services, build_services
from tests.conftest import SHARED
from tests.fakes.telegram import FakeTelegram

TOKEN = "123456:TEST-token"
SECRET = "test-webhook-secret"
PAYLOADS = SHARED / "payloads" / "telegram"
FILES = sorted(p.name for p in PAYLOADS.glob("*.json"))

# Payload files the bot answers, and in which chat. Every other file is acknowledged silently:
# edited messages, inline queries and chosen inline results (kinds we do not handle), a
# callback from an inline-mode message (no chat of ours), a Web App's data, a pinned message
# in a supergroup, and the bot being blocked.
ANSWERED = {
    "courier_message_contact.json": 3527065,
    "courier_message_document.json": 3527065,
    "courier_message_location.json": 3527065,
    "courier_message_photo_caption.json": 3527065,
    "courier_message_start_command.json": 3527065,
    "courier_message_sticker.json": 3527065,
    "courier_message_text.json": 3527065,
    "courier_message_venue.json": 3527065,
    "courier_message_video.json": 3527065,
    "courier_message_voice.json": 3527065,
    "filetreck_message_photo_media_group.json": 86815320,
    "filetreck_message_video_forwarded.json": 86815320,
    "litegram_callback_query_with_message.json": 436432850,
    "litegram_message_text_ru.json": 436432850,
    "official_message_audio.json": 1111111,
    "official_message_document.json": 1111111,
    "official_message_entities.json": 1111111,
    "official_message_forwarded.json": 1111111,
    "official_message_reply.json": 1111111,
    "official_message_text.json": 1111111,
    "official_message_text_minimal.json": 1111111,
    "official_message_voice.json": 1111111,
    "telemetree_message_start_entities.json": 714862471,
    "teloxide_message_private_text.json": 408258968,
}


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())  # type: ignore[no-any-return]


# --- updates in the Bot API's shape ----------------------------------------------------------


def user(user_id: int, language: str = "ru") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Анна", "language_code": language}


def chat(chat_id: int, kind: str = "private") -> dict[str, Any]:
    return {"id": chat_id, "type": kind, "first_name": "Анна"}


def message(update_id: int, chat_id: int, **content: Any) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": user(abs(chat_id), content.pop("language", "ru")),
            "chat": chat(chat_id, "private" if chat_id > 0 else "group"),
            "date": 1_700_000_000,
            **content,
        },
    }


def callback(update_id: int, chat_id: int, data: str, query_id: str = "cbq-1") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id,
            "from": user(chat_id),
            "message": {
                "message_id": 77,
                "from": {"id": 123456, "is_bot": True, "first_name": "Fake"},
                "chat": chat(chat_id),
                "date": 1_700_000_000,
                "text": "…",
            },
            "chat_instance": "-42",
            "data": data,
        },
    }


def membership(update_id: int, chat_id: int, status: str) -> dict[str, Any]:
    bot_user = {"id": 123456, "is_bot": True, "first_name": "Fake"}
    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": chat(chat_id),
            "from": user(chat_id),
            "date": 1_700_000_000,
            "old_chat_member": {"user": bot_user, "status": "member"},
            "new_chat_member": {"user": bot_user, "status": status},
        },
    }


# --- a running gateway with the channel and a fake Telegram ----------------------------------


@dataclass
class Rig:
    fake: FakeTelegram
    services: Services
    channel: TelegramChannel
    client: TestClient
    settings: Settings

    async def post(self, update: Any, *, secret: str | None = SECRET) -> int:
        headers = {} if secret is None else {SECRET_HEADER: secret}
        data = update if isinstance(update, str | bytes) else json.dumps(update)
        resp = await self.client.post("/webhooks/telegram", data=data, headers=headers)
        return resp.status

    async def settle(self) -> None:
        async with asyncio.timeout(20):
            await self.services.ingress.idle()
            await self.services.outbox.drain()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.settings.sqlite_path) as db:
            return db.execute(sql).fetchall()

    def inbounds(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self.rows("SELECT inbound FROM inbox ORDER BY id")]

    def buttons(self, sent: dict[str, Any]) -> dict[str, str]:
        """Title -> callback_data of a sent message's inline keyboard (one button per row)."""
        rows = sent.get("reply_markup", {}).get("inline_keyboard", [])
        assert all(len(row) == 1 for row in rows)
        return {row[0]["text"]: row[0]["callback_data"] for row in rows}


MakeRig = Callable[..., Awaitable[Rig]]


async def _close_without_tls_grace(self: AiohttpSession) -> None:
    if self._session is not None and not self._session.closed:
        await self._session.close()


@pytest.fixture
async def make_rig(
    aiohttp_server: Any,
    aiohttp_client: Any,
    settings: Settings,
    demo_nlu: Nlu,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[MakeRig]:
    # aiogram waits 250 ms after closing its session for TLS connections to wind down; the
    # fake speaks plain HTTP, and the wait would be most of this module's run time.
    monkeypatch.setattr(AiohttpSession, "close", _close_without_tls_grace)
    running: list[Services] = []

    async def make(**overrides: Any) -> Rig:
        fake = FakeTelegram(token=TOKEN)
        server = await aiohttp_server(fake.app())
        fields: dict[str, Any] = {
            "telegram_token": TOKEN,
            "telegram_webhook_secret": SECRET,
            "telegram_api_base": str(server.make_url("")).rstrip("/"),
        }
        configured = replace(settings, **{**fields, **overrides})
        services = build_services(configured, nlu=demo_nlu)
        channel = create(
            ChannelDeps(configured, services.ingress, services.store, services.translator)
        )
        assert isinstance(channel, TelegramChannel)
        channel.rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)  # no pacing waits here
        services.channels[channel.name] = channel  # before create_app: it registers routes
        client = await aiohttp_client(create_app(configured, services=services))
        await services.start()
        running.append(services)
        return Rig(fake, services, channel, client, configured)

    yield make
    for services in running:
        await services.close()


@pytest.fixture
async def rig(make_rig: MakeRig) -> Rig:
    return await make_rig()


# --- every real payload ----------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
async def test_every_real_payload_is_acknowledged_and_private_messages_are_answered(
    rig: Rig, name: str
) -> None:
    assert await rig.post(load(name)) == 200
    await rig.settle()
    if name in ANSWERED:
        chat_id = ANSWERED[name]
        assert rig.fake.sent(chat_id), "no reply reached the chat"
        assert len(rig.fake.sent()) == len(rig.fake.sent(chat_id))
        assert len(rig.inbounds()) == 1
    else:
        assert rig.fake.sent() == []
        assert rig.inbounds() == []
    assert rig.rows("SELECT count(*) FROM unparsed") == [(0,)]


def test_the_expectations_name_real_files() -> None:
    assert set(ANSWERED) <= set(FILES)
    assert len(FILES) >= 30


async def test_start_gives_the_greeting_in_the_customers_language(rig: Rig) -> None:
    assert await rig.post(load("telemetree_message_start_entities.json")) == 200  # "en"
    await rig.settle()
    [sent] = rig.fake.sent(714862471)
    assert sent["text"] == rig.services.translator.message("en", "greet.hello")
    assert "/tariffs" in rig.buttons(sent).values()
    [inbound] = rig.inbounds()
    assert (inbound["kind"], inbound["text"], inbound["payload"]) == ("payload", "/start", "/greet")


async def test_message_kinds_become_inbounds() -> None:
    def parsed(name: str) -> Inbound:
        inbound = parse_update(load(name)).inbound
        assert inbound is not None
        return inbound

    text = parsed("litegram_message_text_ru.json")
    assert (text.kind, text.text, text.locale) == ("text", "Test", "ru")
    assert text.key == ConversationKey("telegram", "436432850", "436432850")
    assert text.message_id == "31348350"  # the update_id
    location = parsed("courier_message_venue.json")
    assert location.kind == "location"
    assert location.location is not None
    assert (location.location.lat, location.location.lon) == (-2.898944, -79.006835)
    photo = parsed("courier_message_photo_caption.json")
    assert (photo.kind, photo.text) == ("attachment", "Photo Caption")
    assert photo.attachments[0].kind == "photo"
    # The largest size's file_id, for getFile once the webhook has been answered.
    assert photo.attachments[0].ref == "AgADAQADtKcxG4LRUUQSQVUjfJIiiF8G6C8ABA9NJzFdXskaincBAAEC"
    document = parsed("official_message_document.json")
    assert (document.attachments[0].kind, document.attachments[0].name) == (
        "document",
        "Testfile.pdf",
    )
    minimal = parsed("official_message_text_minimal.json")  # no chat.type: a positive id
    assert minimal.key.chat_id == "1111111"


# --- authenticity ----------------------------------------------------------------------------


@pytest.mark.parametrize(("secret", "status"), [("wrong-secret", 403), (None, 401), ("", 403)])
async def test_a_forged_update_is_refused_and_changes_nothing(
    rig: Rig, secret: str | None, status: int
) -> None:
    assert await rig.post(load("teloxide_message_private_text.json"), secret=secret) == status
    assert await rig.post(load("teloxide_my_chat_member_kicked.json"), secret=secret) == status
    assert await rig.post("not json at all", secret=secret) == status
    await rig.settle()
    assert rig.fake.calls == []
    assert rig.inbounds() == []
    assert rig.rows("SELECT count(*) FROM unparsed") == [(0,)]
    assert rig.rows("SELECT count(*) FROM unreachable") == [(0,)]


async def test_without_a_configured_secret_every_webhook_call_is_refused(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig(telegram_webhook_secret=None, public_url="https://bot.example.org")
    assert await rig.post(load("teloxide_message_private_text.json")) == 403
    assert await rig.post(load("teloxide_message_private_text.json"), secret=None) == 403
    await rig.settle()
    assert rig.fake.calls == []  # nothing sent, and no webhook registered without a secret
    assert rig.inbounds() == []


# --- delivery semantics ----------------------------------------------------------------------


async def test_a_redelivered_update_is_answered_once(rig: Rig) -> None:
    update = load("teloxide_message_private_text.json")
    assert await rig.post(update) == 200
    assert await rig.post(update) == 200
    await rig.settle()
    assert await rig.post(update) == 200
    await rig.settle()
    assert len(rig.fake.sent(408258968)) == 1
    assert len(rig.inbounds()) == 1


async def test_an_authentic_but_unreadable_update_is_acknowledged_and_kept(rig: Rig) -> None:
    assert await rig.post("{not json") == 200
    assert await rig.post({"message": {"text": "no update_id"}}) == 200
    assert await rig.post(message(7, 42, location={"latitude": "north", "longitude": 1})) == 200
    broken_callback = {"update_id": 8, "callback_query": {"id": "cbq-broken", "from": "?"}}
    assert await rig.post(broken_callback) == 200
    await rig.fake.wait_for("answerCallbackQuery")  # the spinner stops all the same
    await rig.settle()
    assert rig.rows("SELECT count(*) FROM unparsed") == [(4,)]
    assert rig.inbounds() == []
    assert rig.fake.sent() == []


async def test_group_chats_are_not_answered(rig: Rig) -> None:
    assert await rig.post(message(11, -1001, text="тарифы в Чите")) == 200
    await rig.settle()
    assert rig.fake.sent() == []
    assert rig.inbounds() == []


# --- buttons ---------------------------------------------------------------------------------


async def test_a_pressed_city_button_is_answered_and_shows_that_citys_tariffs(rig: Rig) -> None:
    assert await rig.post(message(21, 5001, text="тарифы")) == 200
    await rig.settle()
    [question] = rig.fake.sent(5001)
    cities = rig.buttons(question)
    assert "Братск" in cities
    assert await rig.post(callback(22, 5001, cities["Братск"], query_id="cbq-bratsk")) == 200
    await rig.fake.wait_for("answerCallbackQuery")
    await rig.settle()
    assert rig.fake.calls_to("answerCallbackQuery") == [{"callback_query_id": "cbq-bratsk"}]
    answer = rig.fake.sent(5001)[-1]
    assert "Братск" in answer["text"]
    assert "₽" in answer["text"]


async def test_a_long_payload_travels_as_a_token_and_comes_back_whole(rig: Rig) -> None:
    assert await rig.post(message(31, 5002, text="Братск, Мира 39а")) == 200
    await rig.settle()
    answer = rig.fake.sent(5002)[-1]
    buttons = rig.buttons(answer)
    offered = {
        b["title"]: b["payload"]
        for b in json.loads(rig.rows("SELECT buttons FROM outbox ORDER BY id DESC LIMIT 1")[0][0])
    }
    long_ones = {t: p for t, p in offered.items() if len(p.encode()) > 64}
    assert long_ones, "the coverage answer should offer a request button with the address"
    title, payload = next(iter(long_ones.items()))
    token = buttons[title]
    assert token != payload
    assert len(token.encode()) <= 64
    assert all(len(data.encode()) <= 64 for data in buttons.values())

    assert await rig.post(callback(32, 5002, token)) == 200
    await rig.settle()
    assert rig.inbounds()[-1]["payload"] == payload
    assert len(rig.fake.sent(5002)) == 2  # the request flow asks for a name


# --- contacts and reachability ---------------------------------------------------------------


async def test_a_shared_contact_is_verified_only_when_it_is_the_senders_own(rig: Rig) -> None:
    own = {"phone_number": "79001234567", "first_name": "Анна", "user_id": 5003}
    other = {"phone_number": "+7 (914) 555-12-34", "first_name": "Борис", "user_id": 999}
    assert await rig.post(message(41, 5003, contact=own)) == 200
    assert await rig.post(message(42, 5003, contact=other)) == 200
    assert await rig.post(load("courier_message_contact.json")) == 200  # no user_id at all
    await rig.settle()
    contacts = [i["contact"] for i in rig.inbounds()]
    assert [i["kind"] for i in rig.inbounds()] == ["contact"] * 3
    assert contacts[0] == {"phone": "+79001234567", "verified": True, "name": "Анна"}
    assert contacts[1] == {"phone": "+79145551234", "verified": False, "name": "Борис"}
    assert contacts[2]["verified"] is False


def test_phone_numbers_are_normalised() -> None:
    assert contact_phone("89001234567") == "+79001234567"
    assert contact_phone("9001234567") == "+79001234567"
    assert contact_phone("+7 900 123-45-67") == "+79001234567"
    assert contact_phone("250788531373") == "+250788531373"
    assert contact_phone("0788531373") == "0788531373"  # a country we cannot tell


async def test_a_customer_who_blocked_the_bot_gets_nothing_until_they_come_back(rig: Rig) -> None:
    conversation = "telegram:5004:5004"
    assert await rig.post(membership(51, 5004, "kicked")) == 200
    assert not await rig.services.store.is_reachable(conversation)
    # A reply produced for them meanwhile (a late turn, an operator) is not sent.
    late = Inbound(ConversationKey("telegram", "5004", "5004"), "late", "text", text="привет")
    await rig.services.ingress.accept(late, scope="test", platform_id="late-1")
    await rig.settle()
    assert rig.fake.sent(5004) == []
    assert rig.rows("SELECT status, last_error FROM outbox") == [
        ("failed", "customer unreachable (blocked the bot)")
    ]
    assert await rig.post(membership(52, 5004, "member")) == 200
    assert await rig.services.store.is_reachable(conversation)
    assert await rig.post(message(53, 5004, text="привет")) == 200
    await rig.settle()
    assert len(rig.fake.sent(5004)) == 1


async def test_the_real_kicked_update_marks_the_customer_unreachable(rig: Rig) -> None:
    assert await rig.post(load("teloxide_my_chat_member_kicked.json")) == 200
    assert not await rig.services.store.is_reachable("telegram:0:0")


async def test_a_blocked_send_is_final_and_marks_the_customer_unreachable(rig: Rig) -> None:
    rig.fake.fail("sendMessage", "403")
    assert await rig.post(message(61, 5005, text="привет")) == 200
    await rig.settle()
    assert len(rig.fake.calls_to("sendMessage")) == 1  # not retried
    [(status, error)] = rig.rows("SELECT status, last_error FROM outbox")
    assert status == "failed"
    assert "blocked" in error
    assert not await rig.services.store.is_reachable("telegram:5005:5005")


# --- rate limits and errors ------------------------------------------------------------------


async def test_429_is_retried_after_retry_after_and_delivered_once(rig: Rig) -> None:
    rig.fake.fail("sendMessage", "429", retry_after=1)
    assert await rig.post(message(71, 5006, text="привет")) == 200
    await rig.settle()
    calls = [c for c in rig.fake.calls if c.method == "sendMessage"]
    assert [c.ok for c in calls] == [False, True]
    assert calls[1].at - calls[0].at >= 0.95
    assert len(rig.fake.sent(5006)) == 1
    assert rig.rows("SELECT status, attempts FROM outbox") == [("sent", 1)]


@pytest.mark.parametrize(
    ("failure", "permanent", "retry_after"),
    [("429", False, 3.0), ("500", False, None), ("403", True, None), ("400", True, None)],
)
async def test_send_errors_say_whether_to_retry(
    rig: Rig, failure: str, permanent: bool, retry_after: float | None
) -> None:
    rig.fake.fail("sendMessage", failure, retry_after=3)
    with pytest.raises(SendError) as caught:
        await rig.channel.send(OutboundMessage("5007", "привет", (), "1:0"))
    assert (caught.value.permanent, caught.value.retry_after) == (permanent, retry_after)
    assert TOKEN not in str(caught.value)


async def test_send_returns_the_message_id_and_one_button_per_row(rig: Rig) -> None:
    buttons = (RenderedButton("Тарифы", "/tariffs"), RenderedButton("Офисы", "/offices"))
    message_id = await rig.channel.send(OutboundMessage("5008", "Чем помочь?", buttons, "1:0"))
    [sent] = rig.fake.sent(5008)
    assert message_id == "501"
    assert sent["text"] == "Чем помочь?"
    assert rig.buttons(sent) == {"Тарифы": "/tariffs", "Офисы": "/offices"}


async def test_a_network_failure_is_retryable(rig: Rig) -> None:
    channel = TelegramChannel(
        token=TOKEN,
        ingress=rig.services.ingress,
        store=rig.services.store,
        api_base="http://127.0.0.1:9",  # nothing listens there
    )
    try:
        with pytest.raises(SendError) as caught:
            await channel.send(OutboundMessage("5009", "привет", (), "1:0"))
        assert not caught.value.permanent
        assert TOKEN not in str(caught.value)
    finally:
        await channel.close()


# --- long polling and webhook registration ---------------------------------------------------


async def test_long_polling_feeds_the_same_handler(make_rig: MakeRig) -> None:
    rig = await make_rig(telegram_polling=True)
    update = message(81, 5010, text="тарифы в Чите")
    rig.fake.push(update, update)  # a redelivery in the same batch
    rig.fake.push(callback(82, 5010, "/offices", query_id="cbq-poll"))
    async with asyncio.timeout(10):
        while len(rig.fake.sent(5010)) < 2:
            await asyncio.sleep(0.02)
    await rig.fake.wait_for("answerCallbackQuery")
    await rig.settle()
    methods = [c.method for c in rig.fake.calls]
    assert methods[0] == "deleteWebhook"
    assert "setWebhook" not in methods
    assert "Чита" in rig.fake.sent(5010)[0]["text"]
    assert len(rig.fake.sent(5010)) == 2
    assert [i["message_id"] for i in rig.inbounds()] == ["81", "82"]
    async with asyncio.timeout(10):  # the next poll confirms everything handled
        while not any(p.get("offset") == "83" for p in rig.fake.calls_to("getUpdates")):
            await asyncio.sleep(0.02)
    polls = rig.fake.calls_to("getUpdates")
    assert all(p["allowed_updates"] == list(ALLOWED_UPDATES) for p in polls)


async def test_long_polling_keeps_going_after_telegram_errors(make_rig: MakeRig) -> None:
    rig = await make_rig(telegram_polling=True)
    await rig.fake.wait_for("getUpdates")
    rig.fake.fail("getUpdates", "500")
    async with asyncio.timeout(10):
        while all(c.ok for c in rig.fake.calls):
            await asyncio.sleep(0.02)
    rig.fake.push(message(91, 5011, text="привет"))
    async with asyncio.timeout(10):
        while not rig.fake.sent(5011):
            await asyncio.sleep(0.02)
    assert len(rig.inbounds()) == 1


async def test_the_webhook_is_registered_with_its_secret(make_rig: MakeRig) -> None:
    rig = await make_rig(public_url="https://bot.example.org")
    await rig.fake.wait_for("setWebhook")
    [registered] = rig.fake.calls_to("setWebhook")
    assert registered["url"] == "https://bot.example.org/webhooks/telegram"
    assert registered["secret_token"] == SECRET
    assert registered["allowed_updates"] == ["message", "callback_query", "my_chat_member"]


# --- configuration ---------------------------------------------------------------------------


def test_the_channel_is_on_only_with_a_token(settings: Settings, demo_nlu: Nlu) -> None:
    services = build_services(settings, nlu=demo_nlu)
    deps = ChannelDeps(settings, services.ingress, services.store, services.translator)
    assert create(deps) is None
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        create(replace(deps, settings=replace(settings, telegram_token="not a token")))
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        create(
            replace(
                deps,
                settings=replace(
                    settings, telegram_token=TOKEN, telegram_webhook_secret="has spaces"
                ),
            )
        )


def test_unhandled_kinds_come_back_empty_and_broken_ones_raise() -> None:
    for name in ("official_inline_query.json", "telemetree_edited_message.json"):
        parsed = parse_update(load(name))
        assert (parsed.inbound, parsed.callback_id, parsed.reachable) == (None, None, None)
    with pytest.raises(Unparsable):
        parse_update([1, 2, 3])
    with pytest.raises(Unparsable):
        parse_update({"update_id": "1", "message": {}})
