"""The VK channel against a fake VK API server (the real vk-api client talks HTTP to it), with
real Callback API bodies and Bots Long Poll updates from ../shared/payloads/vk as fixtures."""

from __future__ import annotations

import asyncio
import copy
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.channels.base import OutboundMessage, RateLimit
from bot.channels.registry import ChannelDeps
from bot.channels.vk import (
    MAX_PAYLOAD_BYTES,
    RebasedSession,
    VkChannel,
    create,
    decode_payload,
    parse_event,
    random_id,
)
from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.models import RenderedButton
from bot.services import Services, build_services
from tests.conftest import SHARED
from tests.fakes.vk import Failure, FakeVk

PAYLOADS = SHARED / "payloads" / "vk"
SECRET = "abc123xyz"  # the secret the documentation examples carry
CONFIRMATION = "4f2a9c1e"
GROUP_ID = "123456"  # the group of the confirmation examples
CHITA = (52.0336, 113.4994)  # next to the demo catalog's office on Butina street


def load(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def first_update(name: str) -> dict[str, Any]:
    return copy.deepcopy(load(name)["updates"][0])  # type: ignore[no-any-return]


def message_new(
    text: str = "",
    *,
    event_id: str,
    peer: int = 222,
    user: int = 111,
    payload: str | None = None,
    client_info: dict[str, Any] | bool | None = True,
    lang_id: int = 0,
) -> dict[str, Any]:
    """A message_new like VK sends it (the long-poll text sample, adjusted)."""
    event = first_update("longpoll_message_new_text.json")
    message = event["object"]["message"]
    message.update(text=text, peer_id=peer, from_id=user)
    if payload is not None:
        message["payload"] = payload
    if client_info is None:
        del event["object"]["client_info"]
    elif isinstance(client_info, dict):
        event["object"]["client_info"] = client_info
    else:
        event["object"]["client_info"]["lang_id"] = lang_id
    event["event_id"] = event_id
    return event


def signed(event: dict[str, Any], secret: str = SECRET) -> dict[str, Any]:
    return {**event, "secret": secret}


def actions(keyboard: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The buttons of a sent keyboard, row by row."""
    assert keyboard is not None
    return [button["action"] for row in keyboard["buttons"] for button in row]


@dataclass
class Vk:
    fake: FakeVk
    services: Services
    channel: VkChannel
    client: TestClient
    settings: Settings

    async def post(self, body: Any) -> tuple[int, str]:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        resp = await self.client.post(
            "/webhooks/vk", data=data, headers={"Content-Type": "application/json"}
        )
        return resp.status, await resp.text()

    async def settle(self) -> None:
        async with asyncio.timeout(15):
            await self.services.ingress.idle()
            await self.services.outbox.drain()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.settings.sqlite_path)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()


MakeVk = Callable[..., Awaitable[Vk]]


@pytest.fixture
async def make_vk(
    aiohttp_server: Any, aiohttp_client: Any, settings: Settings, demo_nlu: Nlu
) -> AsyncIterator[MakeVk]:
    made: list[Services] = []

    async def make(*, longpoll: bool = False, **options: Any) -> Vk:
        fake = FakeVk(group_id=GROUP_ID)
        server = await aiohttp_server(fake.app())
        vk_settings = replace(
            settings,
            vk_group_token=fake.token,
            vk_group_id=GROUP_ID,
            vk_secret=SECRET,
            vk_confirmation=CONFIRMATION,
            vk_api_base=str(server.make_url("/method")),
            vk_longpoll=longpoll,
        )
        services = build_services(vk_settings, nlu=demo_nlu)
        channel = VkChannel(
            settings=vk_settings, ingress=services.ingress, store=services.store, **options
        )
        channel.rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)  # type: ignore[misc]
        services.channels[channel.name] = channel
        client = await aiohttp_client(create_app(vk_settings, services=services))
        await services.start()
        made.append(services)
        return Vk(fake, services, channel, client, vk_settings)

    yield make
    for services in made:
        await services.close()


@pytest.fixture
async def vk(make_vk: MakeVk) -> Vk:
    return await make_vk()


# --- configuration and pure parts ------------------------------------------------------------


def test_on_only_with_token_and_group(settings: Settings) -> None:
    ingress = SimpleNamespace(add_preparer=lambda channel, prepare: None)  # files are fetched
    deps = ChannelDeps(settings, ingress=ingress, store=None, translator=None)  # type: ignore[arg-type]
    assert create(deps) is None
    assert create(replace(deps, settings=replace(settings, vk_group_token="t"))) is None
    on = replace(settings, vk_group_token="t", vk_group_id="1")
    channel = create(replace(deps, settings=on))
    assert isinstance(channel, VkChannel)
    assert channel.name == "vk"


def test_random_id_is_stable_per_outbound_and_fits_31_bits() -> None:
    first = random_id("222", "17:0")
    assert first == random_id("222", "17:0")
    assert first != random_id("222", "17:1")
    assert first != random_id("333", "17:0")
    assert 0 < first < 2**31


def test_vk_api_calls_are_rebased_onto_the_configured_host() -> None:
    session = RebasedSession("http://127.0.0.1:9/method")
    seen: list[str] = []
    session.get_adapter = lambda url: _Recorder(seen)  # type: ignore[method-assign]
    session.post("https://api.vk.ru/method/messages.send", {"a": "1"})
    session.post("https://api.vk.com/method/users.get", {"a": "1"})
    assert seen == [
        "http://127.0.0.1:9/method/messages.send",
        "http://127.0.0.1:9/method/users.get",
    ]


class _Recorder:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def send(self, request: Any, **kwargs: Any) -> Any:
        assert kwargs["timeout"]  # vk-api passes none; we never wait forever
        self.seen.append(request.url)
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"response": 1}'
        return response


def test_payloads_of_all_kinds() -> None:
    assert decode_payload('{"p":"/tariffs"}') == ("/tariffs", None)
    assert decode_payload({"t": "~abc"}) == (None, "~abc")
    assert decode_payload('{"command":"start"}') == ("/greet", None)  # VK's Start button
    assert decode_payload('"Yes"') == (None, None)  # someone else's button: its text counts
    assert decode_payload("not json") == (None, None)


def test_attachments_geo_and_legacy_shapes_parse() -> None:
    photo = parse_event(first_update("longpoll_message_new_photo.json")).inbound
    assert photo is not None
    assert photo.kind == "attachment"
    assert photo.attachments[0].kind == "photo"
    assert photo.attachments[0].url
    assert photo.attachments[0].url.endswith("eBjFGonNLMg.jpg")
    voice = parse_event(first_update("longpoll_message_new_audio_message.json")).inbound
    assert voice is not None
    assert voice.attachments[0].kind == "audio_message"
    assert voice.attachments[0].url
    assert voice.attachments[0].url.endswith(".mp3")
    doc = parse_event(first_update("longpoll_message_new_doc.json")).inbound
    assert doc is not None
    assert doc.attachments[0].name == "x_fc4.png"
    courier = parse_event(load("callback_message_new_photo_graffiti_with_secret.json")).inbound
    assert courier is not None
    assert courier.key.id == "vk:123456:123456"
    assert [a.kind for a in courier.attachments] == ["photo", "graffiti"]
    assert courier.attachments[0].url == "https://foo.bar/y-photo.jpg"
    assert "secret" not in courier.raw
    geo = parse_event(first_update("longpoll_message_new_geo.json")).inbound
    assert geo is not None
    assert geo.kind == "location"
    assert geo.location is not None
    assert (geo.location.lat, geo.location.lon) == (
        23.431881,
        7.031246,
    )
    chat = parse_event(first_update("anton3_longpoll_message_new_photo_chat_real.json")).inbound
    assert chat is not None
    assert chat.key.id == "vk:2000000279:555644284"
    assert chat.kind == "text"
    assert chat.attachments[0].kind == "photo"
    kick = parse_event(load("callback_message_new_legacy_pre_5_103_chat_kick.json"))
    assert kick.inbound is None  # a chat service message: nothing to answer
    mention = message_new("[club123456|@support], привет", event_id="m")
    inbound = parse_event(mention).inbound
    assert inbound is not None
    assert inbound.text == "привет"


# --- Callback API ----------------------------------------------------------------------------


def _callback_bodies() -> list[tuple[str, dict[str, Any]]]:
    """Every Callback API body of the corpus, and every long-poll update as a callback body.
    Documentation examples share event ids ("aaa") or have none: each gets its own here."""
    bodies: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(PAYLOADS.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "updates" in data:
            for n, update in enumerate(data["updates"]):
                bodies.append((f"{path.stem}#{n}", {**update, "event_id": f"{path.stem}-{n}"}))
        elif "type" in data:
            bodies.append((path.stem, data))
    return bodies


async def test_every_callback_body_of_the_corpus_is_acknowledged(vk: Vk) -> None:
    bodies = _callback_bodies()
    assert len(bodies) >= 30
    for name, body in bodies:
        plain_confirmation = body["type"] == "confirmation" and "secret" not in body
        status, text = await vk.post(body if plain_confirmation else signed(body))
        expected = CONFIRMATION if body["type"] == "confirmation" else "ok"
        assert (status, text) == (200, expected), name
    await vk.settle()
    # Customers who wrote were answered; nothing stayed pending or failed.
    assert vk.rows("SELECT count(*) FROM inbox WHERE status != 'done'") == [(0,)]
    assert vk.rows("SELECT count(*) FROM outbox WHERE status != 'sent'") == [(0,)]
    peers = {d.peer_id for d in vk.fake.delivered}
    assert {"123456", "222", "918650328", "2000000279", "578716413"} <= peers
    # The documentation examples of events that ask for no answer got none.
    assert "333" not in peers  # message_reply's peer
    # message_event presses were answered so the button stops spinning.
    assert [a["event_id"] for a in vk.fake.event_answers] == ["5bba1af2abf1"]


async def test_confirmation_answers_the_code_for_our_group_only(vk: Vk) -> None:
    assert await vk.post(load("callback_confirmation.json")) == (200, CONFIRMATION)
    assert await vk.post(signed(load("callback_confirmation.json"))) == (200, CONFIRMATION)
    other_group = {"type": "confirmation", "group_id": 654321}
    assert (await vk.post(other_group))[0] == 403
    forged = load("callback_confirmation_with_secret.json")  # secret "secret_123456"
    assert (await vk.post(forged))[0] == 403


async def test_a_forged_or_missing_secret_is_refused_and_nothing_recorded(vk: Vk) -> None:
    event = message_new("привет", event_id="forged-1")
    assert (await vk.post(signed(event, "wrong")))[0] == 403
    assert (await vk.post(event))[0] == 403
    assert (await vk.post(signed(event, SECRET + "x")))[0] == 403
    assert (await vk.post(b"not json"))[0] == 400
    await vk.settle()
    assert vk.rows("SELECT count(*) FROM inbox") == [(0,)]
    assert vk.fake.calls == []


async def test_a_redelivery_is_acknowledged_and_processed_once(vk: Vk) -> None:
    event = signed(message_new("привет", event_id="replayed"))
    assert await vk.post(event) == (200, "ok")
    assert await vk.post(event) == (200, "ok")
    # A documentation example without event_id: the body itself identifies the delivery.
    courier = load("callback_message_new_text_with_secret.json")
    assert await vk.post(courier) == (200, "ok")
    assert await vk.post(courier) == (200, "ok")
    await vk.settle()
    assert len(vk.fake.sent_to(222)) == 1
    assert len(vk.fake.sent_to(123456)) == 1
    assert len(await vk.services.store.messages("vk:222:111")) == 2


async def test_text_is_answered_with_an_inline_keyboard_where_the_client_shows_one(
    vk: Vk,
) -> None:
    assert await vk.post(signed(message_new("привет", event_id="k1"))) == (200, "ok")
    await vk.settle()
    [reply] = vk.fake.sent_to(222)
    assert reply.text.startswith("Здравствуйте")
    assert reply.keyboard is not None
    assert reply.keyboard["inline"] is True
    buttons = actions(reply.keyboard)
    assert {b["type"] for b in buttons} == {"text"}
    assert {"label": "Тарифы", "payload": '{"p":"/tariffs"}'}.items() <= buttons[0].items()
    [call] = vk.fake.calls_of("messages.send")
    assert call.params["v"] == "5.199"
    assert call.params["random_id"] == reply.random_id != "0"


async def test_no_keyboard_where_the_client_cannot_show_one(vk: Vk) -> None:
    no_keyboards = {"button_actions": [], "keyboard": False, "inline_keyboard": False}
    await vk.post(
        signed(
            message_new(
                "привет",
                event_id="n1",
                peer=301,
                user=301,
                client_info={**no_keyboards, "lang_id": 0},
            )
        )
    )
    await vk.post(
        signed(message_new("привет", event_id="n2", peer=302, user=302, client_info=None))
    )
    standard = {"button_actions": ["text"], "keyboard": True, "inline_keyboard": False}
    await vk.post(
        signed(message_new("привет", event_id="n3", peer=303, user=303, client_info=standard))
    )
    await vk.settle()
    for peer in (301, 302):
        [reply] = vk.fake.sent_to(peer)
        assert reply.keyboard is None
        assert "\n\n1. Тарифы\n2. " in reply.text  # the buttons as a numbered list
    [reply] = vk.fake.sent_to(303)
    assert reply.keyboard is not None
    assert reply.keyboard["inline"] is False
    assert reply.keyboard["one_time"] is True
    # A typed number presses the listed button.
    await vk.post(signed(message_new("1", event_id="n4", peer=302, user=302, client_info=None)))
    await vk.settle()
    assert "\n\n1. Братск\n" in vk.fake.sent_to(302)[-1].text  # the tariffs' city question


async def test_button_payloads_drive_the_dialog(vk: Vk) -> None:
    await vk.post(signed(message_new("привет", event_id="b1")))
    await vk.settle()
    tariffs = next(b for b in actions(vk.fake.sent_to(222)[-1].keyboard) if b["label"] == "Тарифы")
    pressed = message_new(tariffs["label"], event_id="b2", payload=tariffs["payload"])
    await vk.post(signed(pressed))
    await vk.settle()
    transcript = await vk.services.store.messages("vk:222:111")
    assert transcript[-2].meta["payload"] == "/tariffs"
    asked = vk.fake.sent_to(222)[-1]
    chita = next(b for b in actions(asked.keyboard) if b["label"] == "Чита")
    await vk.post(signed(message_new("Чита", event_id="b3", payload=chita["payload"])))
    await vk.settle()
    assert "Тарифы в городе Чита" in vk.fake.sent_to(222)[-1].text


async def test_vk_start_button_greets(vk: Vk) -> None:
    start = first_update("longpoll_message_new_start_button.json")
    assert await vk.post(signed(start)) == (200, "ok")
    await vk.settle()
    [reply] = vk.fake.sent_to(222222222)
    assert reply.text.startswith("Здравствуйте")


async def test_a_long_payload_travels_as_a_token(vk: Vk) -> None:
    await vk.post(signed(message_new("привет", event_id="t1")))
    await vk.settle()
    long = '/coverage{"city":"bratsk","street":"' + "очень длинная улица " * 10 + '","house":"39а"}'
    assert len(json.dumps({"p": long}, ensure_ascii=False).encode()) > MAX_PAYLOAD_BYTES
    sent = await vk.channel.send(
        OutboundMessage("222", "Проверить?", (RenderedButton("Да", long),), "900:0")
    )
    assert sent is not None
    [button] = actions(vk.fake.sent_to(222)[-1].keyboard)
    assert len(button["payload"]) <= MAX_PAYLOAD_BYTES
    await vk.post(signed(message_new("Да", event_id="t2", payload=button["payload"])))
    await vk.settle()
    transcript = await vk.services.store.messages("vk:222:111")
    assert transcript[-2].meta["payload"] == long


async def test_a_callback_button_press_is_answered_and_drives_the_dialog(vk: Vk) -> None:
    press = first_update("longpoll_message_event_callback_button.json")
    press["object"]["payload"] = {"p": "/offices"}
    assert await vk.post(signed(press)) == (200, "ok")
    await vk.settle()
    [answer] = vk.fake.event_answers
    assert (answer["event_id"], answer["user_id"], answer["peer_id"]) == (
        "5bba1af2abf1",
        "918650328",
        "918650328",
    )
    [reply] = vk.fake.sent_to(918650328)
    transcript = await vk.services.store.messages("vk:918650328:918650328")
    assert transcript[0].meta["payload"] == "/offices"
    assert reply.text
    # Someone else's callback button: its spinner stops, the dialog does not hear it.
    foreign = first_update("longpoll_message_event_callback_button.json")
    foreign["object"]["event_id"] = "0a0b0c0d"
    foreign["event_id"] = "foreign-press"
    assert await vk.post(signed(foreign)) == (200, "ok")
    assert await vk.post(signed(foreign)) == (200, "ok")  # redelivered: answered once
    await vk.settle()
    await asyncio.sleep(0.2)  # the answer is sent in the background
    assert [a["event_id"] for a in vk.fake.event_answers] == ["5bba1af2abf1", "0a0b0c0d"]
    assert len(vk.fake.sent_to(918650328)) == 1


async def test_callback_buttons_are_sent_to_clients_that_support_them(make_vk: MakeVk) -> None:
    vk = await make_vk(button_action="callback")
    event = first_update("longpoll_message_new_button_payload.json")  # client lists "callback"
    event["object"]["message"]["text"] = "привет"
    del event["object"]["message"]["payload"]  # someone else's button
    assert await vk.post(signed(event)) == (200, "ok")
    await vk.post(signed(message_new("привет", event_id="c2")))  # a client without callbacks
    await vk.settle()
    [reply] = vk.fake.sent_to(918650328)
    assert {b["type"] for b in actions(reply.keyboard)} == {"callback"}
    [plain] = vk.fake.sent_to(222)
    assert {b["type"] for b in actions(plain.keyboard)} == {"text"}


async def test_a_shared_location_finds_the_nearest_office(vk: Vk) -> None:
    event = first_update("longpoll_message_new_geo.json")
    event["object"]["message"]["geo"]["coordinates"] = {"latitude": CHITA[0], "longitude": CHITA[1]}
    event["event_id"] = "geo-1"
    assert await vk.post(signed(event)) == (200, "ok")
    await vk.settle()
    [reply] = vk.fake.sent_to(222)
    assert "Бутина" in reply.text


async def test_locale_comes_from_the_client_language(vk: Vk) -> None:
    await vk.post(signed(message_new("привет", event_id="en-1", lang_id=3)))
    await vk.settle()
    assert vk.fake.sent_to(222)[0].text.startswith("Hello")


async def test_events_that_need_no_answer_are_acknowledged_silently(vk: Vk) -> None:
    for name in (
        "longpoll_message_reply.json",
        "longpoll_message_edit.json",
        "longpoll_message_typing_state.json",
    ):
        event = first_update(name)
        event["event_id"] = name
        assert await vk.post(signed(event)) == (200, "ok")
    assert await vk.post(signed(load("vkwave_group_join.json"))) == (200, "ok")
    assert await vk.post(signed(load("callback_message_new_legacy_pre_5_103_chat_kick.json"))) == (
        200,
        "ok",
    )
    await vk.settle()
    assert vk.fake.calls == []
    assert vk.rows("SELECT count(*) FROM inbox") == [(0,)]


async def test_an_authentic_unparsable_delivery_is_kept_and_acknowledged(vk: Vk) -> None:
    broken = signed(
        {
            "type": "message_new",
            "object": {"message": {"text": "hi"}},
            "group_id": 123456,
            "event_id": "broken-1",
        }
    )
    assert await vk.post(broken) == (200, "ok")
    assert await vk.post(signed({"type": "message_new", "event_id": "broken-2"})) == (200, "ok")
    await vk.settle()
    kept = vk.rows("SELECT scope, body, problem FROM unparsed ORDER BY id")
    assert [(scope, "from_id" in problem) for scope, _, problem in kept] == [
        ("vk", True),
        ("vk", False),
    ]
    assert all(SECRET not in body for _, body, _ in kept)
    assert vk.fake.calls == []


async def test_message_deny_and_allow_switch_reachability(vk: Vk) -> None:
    store = vk.services.store
    assert await vk.post(signed(load("vkwave_message_deny.json"))) == (200, "ok")
    assert not await store.is_reachable("vk:578716413:578716413")
    assert await vk.post(signed(load("vkwave_message_allow.json"))) == (200, "ok")
    assert await store.is_reachable("vk:578716413:578716413")
    await vk.settle()
    assert vk.fake.calls == []


# --- sending -------------------------------------------------------------------------------


async def test_a_rate_limited_send_is_retried_with_the_same_random_id(vk: Vk) -> None:
    vk.fake.fail("messages.send", Failure(error=6))
    await vk.post(signed(message_new("привет", event_id="r1")))
    await vk.settle()
    calls = vk.fake.calls_of("messages.send")
    assert len(calls) == 2
    assert calls[0].params["random_id"] == calls[1].params["random_id"]
    assert len(vk.fake.sent_to(222)) == 1
    assert vk.rows("SELECT status, attempts FROM outbox") == [("sent", 1)]


async def test_a_send_whose_answer_was_lost_is_not_delivered_twice(vk: Vk) -> None:
    vk.fake.fail("messages.send", Failure(lost=True))  # VK delivered, we saw HTTP 500
    await vk.post(signed(message_new("привет", event_id="l1")))
    await vk.settle()
    assert len(vk.fake.calls_of("messages.send")) == 2
    assert len(vk.fake.sent_to(222)) == 1  # VK de-duplicated by random_id
    assert vk.rows("SELECT status FROM outbox") == [("sent",)]


async def test_a_customer_without_permission_is_failed_and_unreachable_until_they_write(
    vk: Vk,
) -> None:
    vk.fake.fail("messages.send", Failure(error=901))
    await vk.post(signed(message_new("привет", event_id="u1")))
    await vk.settle()
    [(status, error)] = vk.rows("SELECT status, last_error FROM outbox")
    assert status == "failed"
    assert "901" in error
    assert not await vk.services.store.is_reachable("vk:222:111")
    assert vk.fake.sent_to(222) == []
    # Writing to the community lets it answer again.
    await vk.post(signed(message_new("тарифы в Чите", event_id="u2")))
    await vk.settle()
    assert await vk.services.store.is_reachable("vk:222:111")
    assert "Тарифы в городе Чита" in vk.fake.sent_to(222)[0].text


# --- Bots Long Poll ------------------------------------------------------------------------


async def test_long_poll_answers_queued_updates_and_recovers_from_failures(
    make_vk: MakeVk,
) -> None:
    vk = await make_vk(longpoll=True, longpoll_wait=1)
    fake = vk.fake
    fake.lp_answers.append({**load("longpoll_failed_1.json"), "ts": fake.ts})
    fake.push(message_new("привет", event_id="lp-1"))
    async with asyncio.timeout(10):
        while not fake.sent_to(222):
            await asyncio.sleep(0.02)
    fake.expire_key()  # failed 2: a new key, the same ts
    fake.push(message_new("тарифы в Чите", event_id="lp-2"))
    async with asyncio.timeout(10):
        while len(fake.sent_to(222)) < 2:
            await asyncio.sleep(0.02)
    servers = len(fake.calls_of("groups.getLongPollServer"))
    fake.lp_answers.append({"failed": 3})  # a new key and ts
    async with asyncio.timeout(10):
        while len(fake.calls_of("groups.getLongPollServer")) == servers:
            await asyncio.sleep(0.02)
    fake.push(message_new("спасибо", event_id="lp-3"), message_new("x", event_id="lp-1"))
    async with asyncio.timeout(10):
        while len(fake.sent_to(222)) < 3:
            await asyncio.sleep(0.02)
    await vk.settle()
    assert len(fake.calls_of("groups.getLongPollServer")) >= 3
    assert {c["wait"] for c in fake.lp_checks} == {"1"}
    texts = [d.text for d in fake.sent_to(222)]
    assert texts[0].startswith("Здравствуйте")
    assert "Тарифы в городе Чита" in texts[1]
    assert len(texts) == 3  # the redelivered lp-1 was not answered again
    # Long-poll updates carry no secret; the webhook still wants one.
    assert (await vk.post(message_new("привет", event_id="lp-4")))[0] == 403
