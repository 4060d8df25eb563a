"""The website widget: its WebSocket protocol through a real aiohttp test server, uploads, and the
real script driven in headless Chromium against the real application."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.channels.registry import ChannelDeps
from bot.channels.widget import (
    MAX_UPLOAD,
    FrameError,
    WidgetChannel,
    conversation_key,
    create,
    parse_frame,
    sniff,
    widget_strings,
)
from bot.config import Settings
from bot.i18n import load_translator
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.conftest import ROOT, identity

# Re-exported for the other browser tests that still import them from here.
from tests.console_browser import BROWSER_ARGS as BROWSER_ARGS
from tests.console_browser import CHROMIUM as CHROMIUM
from tests.console_browser import HAVE_PLAYWRIGHT as HAVE_PLAYWRIGHT
from tests.console_browser import launch, needs_chromium, serve

SESSION = "s" * 8 + "Session1234"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
Frame = dict[str, Any]


@pytest.fixture
async def widget_services(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[Services]:
    services = build_services(settings, nlu=demo_nlu)
    channel = create(ChannelDeps(settings, services.ingress, services.store, services.translator))
    assert isinstance(channel, WidgetChannel)
    services.channels[channel.name] = channel
    await services.start()
    yield services
    await services.close()


@pytest.fixture
async def wclient(aiohttp_client: Any, settings: Settings, widget_services: Services) -> TestClient:
    return await aiohttp_client(create_app(settings, services=widget_services))  # type: ignore[no-any-return]


async def settle(services: Services) -> None:
    async with asyncio.timeout(20):
        await services.ingress.idle()
        await services.outbox.drain()


async def hello(
    client: TestClient, session: str = SESSION, **fields: Any
) -> tuple[aiohttp.ClientWebSocketResponse, list[Frame]]:
    ws = await client.ws_connect(f"/ws/widget?session={session}")
    await ws.send_json({"type": "hello", "locale": "ru", **fields})
    frame = await ws.receive_json(timeout=10)
    assert frame["type"] == "history", frame
    return ws, frame["messages"]


async def frames_until(
    ws: aiohttp.ClientWebSocketResponse, done: Callable[[Frame], bool]
) -> list[Frame]:
    frames: list[Frame] = []
    async with asyncio.timeout(20):
        while True:
            frame = await ws.receive_json()
            frames.append(frame)
            if done(frame):
                return frames


def bot_reply(frame: Frame) -> bool:
    return frame["type"] == "reply" and frame["message"]["from"] == "bot"


def replies(frames: list[Frame]) -> list[Frame]:
    return [f["message"] for f in frames if f["type"] == "reply"]


async def ask(ws: aiohttp.ClientWebSocketResponse, message_id: str, text: str) -> list[Frame]:
    await ws.send_json({"type": "message", "id": message_id, "text": text})
    return await frames_until(ws, bot_reply)


# --- the protocol ---------------------------------------------------------------------------------
async def test_a_message_is_acknowledged_then_typing_then_the_reply_with_buttons(
    wclient: TestClient,
) -> None:
    ws, history = await hello(wclient)
    assert history == []
    frames = await ask(ws, "m1", "какие тарифы в Чите")
    assert [f["type"] for f in frames[:2]] == ["ack", "typing"]
    assert frames[0] == {"type": "ack", "id": "m1", "duplicate": False}
    mine, answer = replies(frames)
    assert (mine["from"], mine["client_id"]) == ("customer", "m1")
    assert mine["text"] == "какие тарифы в Чите"
    assert "Тарифы в городе Чита" in answer["text"]
    assert "Проверить адрес" in [b["title"] for b in answer["buttons"]]
    await ws.close()


async def test_pressing_a_button_sends_its_payload_and_keeps_its_title(
    wclient: TestClient, widget_services: Services
) -> None:
    ws, _ = await hello(wclient)
    first = replies(await ask(ws, "m1", "какие у вас тарифы?"))[-1]
    chita = next(b for b in first["buttons"] if b["title"] == "Чита")
    await ws.send_json({"type": "payload", "id": "m2", **chita})
    answer = replies(await frames_until(ws, bot_reply))[-1]
    assert "Тарифы в городе Чита" in answer["text"]
    transcript = await widget_services.store.messages(f"widget:{SESSION}:{SESSION}")
    pressed = transcript[2]
    assert (pressed.sender, pressed.text) == ("customer", "Чита")
    assert pressed.meta["payload"] == chita["payload"]
    await ws.close()


async def test_a_reconnect_restores_the_history_in_order(wclient: TestClient) -> None:
    ws, _ = await hello(wclient)
    await ask(ws, "m1", "какие тарифы в Чите")
    await ws.close()

    again, history = await hello(wclient)
    assert [(m["from"], m["client_id"]) for m in history] == [("customer", "m1"), ("bot", None)]
    assert history[0]["text"] == "какие тарифы в Чите"
    assert "Тарифы в городе Чита" in history[1]["text"]
    assert history[1]["buttons"], "the last answer's buttons come back too"
    assert history[0]["id"] < history[1]["id"]
    await again.close()


async def test_a_reply_while_no_tab_is_open_is_shown_on_the_next_connect(
    wclient: TestClient, widget_services: Services, settings: Settings
) -> None:
    ws, _ = await hello(wclient)
    await ws.send_json({"type": "message", "id": "m1", "text": "привет"})
    assert (await ws.receive_json(timeout=10))["type"] == "ack"
    await ws.close()  # the visitor reloads before the answer
    await settle(widget_services)
    db = sqlite3.connect(settings.sqlite_path)
    assert {row[0] for row in db.execute("SELECT status FROM outbox")} == {"sent"}
    again, history = await hello(wclient)
    assert [m["from"] for m in history] == ["customer", "bot"]
    await again.close()


async def test_every_open_tab_of_a_session_gets_the_conversation(wclient: TestClient) -> None:
    first, _ = await hello(wclient)
    second, _ = await hello(wclient)
    await ask(first, "m1", "тарифы в Братске")
    seen = replies(await frames_until(second, bot_reply))
    assert [m["from"] for m in seen] == ["customer", "bot"]
    assert "Братск" in seen[1]["text"]
    await first.close()
    await second.close()


async def test_a_resend_after_reconnect_is_processed_once(
    wclient: TestClient, widget_services: Services
) -> None:
    ws, _ = await hello(wclient)
    await ask(ws, "m1", "тарифы в Чите")
    await ws.close()
    again, _ = await hello(wclient)
    await again.send_json({"type": "message", "id": "m1", "text": "тарифы в Чите"})
    assert await again.receive_json(timeout=10) == {"type": "ack", "id": "m1", "duplicate": True}
    await settle(widget_services)
    transcript = await widget_services.store.messages(f"widget:{SESSION}:{SESSION}")
    assert [m.sender for m in transcript] == ["customer", "bot"]
    await again.close()


async def test_a_malformed_frame_is_answered_with_an_error_and_the_socket_stays(
    wclient: TestClient, widget_services: Services
) -> None:
    ws, _ = await hello(wclient)
    await ws.send_str("not json")
    assert (await ws.receive_json(timeout=10))["code"] == "bad_request"
    await ws.send_json({"type": "message", "id": "m1", "text": "   "})
    error = await ws.receive_json(timeout=10)
    assert (error["type"], error["code"], error["id"]) == ("error", "bad_request", "m1")
    frames = await ask(ws, "m2", "привет")
    assert frames[0]["type"] == "ack"
    await ws.close()


async def test_a_bad_session_id_or_a_missing_hello_is_refused(wclient: TestClient) -> None:
    resp = await wclient.get("/ws/widget?session=short")
    assert resp.status == 400
    ws = await wclient.ws_connect(f"/ws/widget?session={SESSION}")
    await ws.send_json({"type": "message", "id": "m1", "text": "привет"})
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION


def test_frames_are_parsed_strictly() -> None:
    inbound = parse_frame(SESSION, {"type": "location", "id": "a", "lat": 52.03, "lon": 113.5},
                          locale="en")  # fmt: skip
    assert (inbound.kind, inbound.locale, inbound.key.id) == (
        "location", "en", f"widget:{SESSION}:{SESSION}",
    )  # fmt: skip
    for bad in (
        [],
        {"type": "message", "text": "no id"},
        {"type": "message", "id": "has:colon", "text": "x"},
        {"type": "message", "id": "a", "text": "x" * 5000},
        {"type": "payload", "id": "a"},
        {"type": "location", "id": "a", "lat": 91, "lon": 0},
        {"type": "location", "id": "a", "lat": "nan", "lon": 0},
        {"type": "sticker", "id": "a"},
    ):
        with pytest.raises(FrameError):
            parse_frame(SESSION, bad, locale=None)


# --- signed identity ------------------------------------------------------------------------------
async def test_an_invalid_identity_is_refused_and_records_nothing(
    wclient: TestClient, widget_services: Services
) -> None:
    forged = {"contract_number": "750012345678", "hash": "0" * 64}
    ws = await wclient.ws_connect(f"/ws/widget?session={SESSION}")
    await ws.send_json({"type": "hello", "identity": forged})
    assert await ws.receive_json(timeout=10) == {"type": "error", "code": "identity_invalid"}
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE
    assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
    key = conversation_key(SESSION)
    assert await widget_services.store.identity(key) is None
    assert await widget_services.store.messages(key.id) == []


async def test_a_valid_identity_links_the_conversation(
    wclient: TestClient, widget_services: Services
) -> None:
    ws, _ = await hello(wclient, identity=identity("750012345678"))
    link = await widget_services.store.identity(conversation_key(SESSION))
    assert link is not None
    assert (link.contract_number, link.method) == ("750012345678", "signed")
    await ws.close()


async def test_a_session_linked_to_another_contract_is_not_handed_over(
    wclient: TestClient, widget_services: Services
) -> None:
    ws, _ = await hello(wclient, identity=identity("750012345678"))
    await ws.close()
    other = await wclient.ws_connect(f"/ws/widget?session={SESSION}")
    await other.send_json({"type": "hello", "identity": identity("750045678924")})
    assert await other.receive_json(timeout=10) == {"type": "error", "code": "session_conflict"}
    link = await widget_services.store.identity(conversation_key(SESSION))
    assert link is not None
    assert link.contract_number == "750012345678"


async def test_a_valid_identity_shows_the_balance(
    wclient: TestClient, widget_services: Services
) -> None:
    account = await widget_services.billing.account("750045678924")
    assert account is not None
    ws, _ = await hello(wclient, identity=identity("750045678924"))
    answer = replies(await ask(ws, "m1", "какой у меня баланс?"))[-1]
    await ws.close()
    assert "750045678924" in answer["text"]
    assert "приостановлен" in answer["text"]


# --- uploads --------------------------------------------------------------------------------------
def upload_form(data: bytes, *, name: str = "photo.png", client_id: str = "f1") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("session", SESSION)
    form.add_field("id", client_id)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


async def test_an_upload_is_stored_and_the_bot_acknowledges_it(
    wclient: TestClient, widget_services: Services, settings: Settings
) -> None:
    ws, _ = await hello(wclient)
    resp = await wclient.post("/api/v1/widget/upload", data=upload_form(PNG))
    assert resp.status == 200, await resp.text()
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    body = await resp.json()
    assert body == {"id": "f1", "duplicate": False, "file": {"name": "photo.png", "kind": "image"}}
    stored = list((settings.var_dir / "uploads").iterdir())
    assert [p.suffix for p in stored] == [".png"]
    assert stored[0].read_bytes() == PNG
    frames = await frames_until(ws, bot_reply)
    assert frames[0] == {"type": "typing"}
    mine = replies(frames)[0]
    assert (mine["from"], mine["kind"], mine["client_id"]) == ("customer", "attachment", "f1")
    transcript = await widget_services.store.messages(conversation_key(SESSION).id)
    assert [m.sender for m in transcript] == ["customer", "bot"]
    assert transcript[1].text.strip()

    again = await wclient.post("/api/v1/widget/upload", data=upload_form(PNG))
    assert (await again.json())["duplicate"] is True
    assert len(list((settings.var_dir / "uploads").iterdir())) == 1  # the resend is not kept
    await ws.close()


async def test_an_oversize_upload_is_refused_with_413(
    wclient: TestClient, widget_services: Services, settings: Settings
) -> None:
    big = PNG + b"\x00" * MAX_UPLOAD
    resp = await wclient.post("/api/v1/widget/upload", data=upload_form(big))
    assert resp.status == 413
    assert (await resp.json())["error"] == "file_too_large"
    assert not list((settings.var_dir / "uploads").glob("*"))
    assert await widget_services.store.messages(conversation_key(SESSION).id) == []


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"MZ\x90\x00" + b"\x00" * 60, "setup.exe"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "x.png"),
        (b"PK\x03\x04" + b"\x00" * 60, "doc.pdf"),
        (b"%PD", "tiny.pdf"),
    ],
    ids=["exe", "svg-named-png", "zip-named-pdf", "truncated"],
)
async def test_a_disallowed_upload_is_refused_with_415(
    wclient: TestClient, settings: Settings, data: bytes, name: str
) -> None:
    resp = await wclient.post("/api/v1/widget/upload", data=upload_form(data, name=name))
    assert resp.status == 415
    assert (await resp.json())["error"] == "file_type"
    assert not list((settings.var_dir / "uploads").glob("*"))


async def test_an_upload_needs_a_session_and_a_client_id(
    wclient: TestClient, settings: Settings
) -> None:
    form = aiohttp.FormData()
    form.add_field("id", "f1")
    form.add_field("file", PNG, filename="a.png")
    resp = await wclient.post("/api/v1/widget/upload", data=form)
    assert resp.status == 400
    assert not list((settings.var_dir / "uploads").glob("*"))
    resp = await wclient.post("/api/v1/widget/upload", data=b"plain body")
    assert resp.status == 400


def test_file_types_are_told_by_content() -> None:
    assert sniff(b"\xff\xd8\xff\xe0" + b"\x00" * 12) == ("jpg", "image")
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("webp", "image")
    assert sniff(b"GIF89a" + b"\x00" * 10) == ("gif", "image")
    assert sniff(b"%PDF-1.7\n" + b"\x00" * 8) == ("pdf", "document")
    assert sniff(b"<html>" + b"\x00" * 10) is None


# --- the script and the demo page -----------------------------------------------------------------
async def test_the_script_carries_its_texts_and_the_demo_page_embeds_it(
    wclient: TestClient, settings: Settings
) -> None:
    resp = await wclient.get("/widget.js")
    assert resp.status == 200
    assert resp.content_type == "text/javascript"
    script = await resp.text()
    assert "__ISPW_BUILD__" not in script
    strings = widget_strings(load_translator(settings.locales_dir))
    for text in (*strings["ru"].values(), *strings["en"].values()):
        assert text in script
    assert "innerHTML" not in script  # customer text is only ever set as text
    cached = await wclient.get("/widget.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert cached.status == 304

    page = await wclient.get("/")
    assert page.status == 200
    assert '<script src="/widget.js"' in await page.text()


def test_widget_texts_exist_in_every_locale(settings: Settings) -> None:
    strings = widget_strings(load_translator(settings.locales_dir))
    assert strings["ru"]["launcher"] == "Чат"
    assert strings["ru"]["placeholder"] == "Напишите сообщение…"
    assert set(strings["ru"]) == set(strings["en"])


# --- in a real browser ----------------------------------------------------------------------------
@pytest.fixture
async def live_server(widget_services: Services, settings: Settings) -> AsyncIterator[str]:
    async with serve(settings, widget_services) as base:
        yield base


@needs_chromium
async def test_the_widget_in_headless_chromium(live_server: str, widget_services: Services) -> None:
    from playwright.async_api import async_playwright, expect

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await launch(p)
        try:
            page = await browser.new_page(locale="ru-RU")
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            await page.goto(live_server + "/")
            await page.get_by_role("button", name="Чат").click()
            box = page.get_by_role("textbox", name="Напишите сообщение…")
            await box.fill("какие тарифы в Чите")
            await box.press("Enter")
            bot = page.locator(".msg.from-bot")
            await expect(bot.first).to_contain_text("Тарифы в городе Чита", timeout=15000)

            await page.get_by_role("button", name="Проверить адрес").click()
            await expect(bot).to_have_count(2, timeout=15000)
            await expect(page.locator(".typing")).to_be_hidden()

            pdf = {
                "name": "счёт.pdf",
                "mimeType": "application/pdf",
                "buffer": b"%PDF-1.4\n%%EOF\n",
            }
            await page.locator(".composer input[type=file]").set_input_files(files=[pdf])
            await expect(bot).to_have_count(3, timeout=15000)

            await page.reload()
            await page.get_by_role("button", name="Чат").click()
            customer = page.locator(".msg.from-customer .text")  # files keep their names
            await expect(customer).to_have_text(
                ["какие тарифы в Чите", "Проверить адрес", "📎 счёт.pdf"]
            )
            await expect(bot).to_have_count(3)
            await expect(bot.first).to_contain_text("Тарифы в городе Чита")
            await page.screenshot(path=str(artifacts / "widget.png"))
            assert problems == []
        finally:
            await browser.close()


async def test_an_uploaded_file_opens_for_an_operator_from_the_console(
    wclient: TestClient, widget_services: Services
) -> None:
    from bot.handoff.operators import Operator
    from tests.handoff.test_handoff_api import PASSWORD, OperatorClient

    ws, _ = await hello(wclient)
    resp = await wclient.post("/api/v1/widget/upload", data=upload_form(PNG))
    assert resp.status == 200
    await frames_until(ws, bot_reply)
    await ws.close()
    await widget_services.operators.add(Operator("olga", "Ольга"), PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        operator = OperatorClient(wclient, session)
        await operator.login("olga")
        conversation = await operator.get(
            f"/api/v1/operator/conversations/{conversation_key(SESSION).id}"
        )
        files = [a for m in conversation["messages"] for a in m["attachments"]]
        assert [f["name"] for f in files] == ["photo.png"]
        async with session.get(wclient.make_url(files[0]["url"])) as got:
            assert got.status == 200
            assert await got.read() == PNG
    anonymous = await wclient.get(files[0]["url"])
    assert anonymous.status == 401
