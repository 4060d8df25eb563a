"""Files sent to customers (an invoice PDF) on every channel.

A reply with a file comes from the real gateway, store and outbox; only the dialog step that
produces it is a test stand-in (the invoice feature builds its own), so everything after the
engine is what runs in production: the transcript, the durable outbox, the channel adapters with
their real client libraries (aiogram, vk-api, viberbot) against the fake platform servers of
``tests/fakes/``, and the HTTP endpoints that hand out the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiogram.client.session.aiohttp import AiohttpSession
from aiohttp.test_utils import TestClient, unused_port

from bot.app import create_app
from bot.channels.base import Capabilities, RateLimit
from bot.channels.fit import fit_message
from bot.config import Settings
from bot.dialog.types import Turn
from bot.files import FileLinks
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.models import (
    Button,
    Conversation,
    ConversationKey,
    FileRef,
    Inbound,
    Raw,
    RenderedButton,
    Reply,
    Text,
)
from bot.serialize import attachments_of
from bot.services import Services, build_services
from bot.storage.base import TranscriptLine, TurnRecord
from bot.storage.files import FilesystemFileStore
from bot.storage.sqlite import SqliteStore
from tests.fakes.telegram import FakeTelegram
from tests.fakes.viber import FakeViber
from tests.fakes.vk import FakeVk

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
NAME = "Счёт за март 2025.pdf"
ASK = "пришлите счёт"
CAPTION = "Счёт за март"
MB = 1024 * 1024

TELEGRAM_TOKEN = "123456:TEST-token"
VIBER_AUTH = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9"
VIBER_USER = "3SQNc4FPUQmysaM/AQEhXg=="
VK_GROUP = "123456"
REST_TOKEN = "rest-token-for-files"
WIDGET_SESSION = "files-session-0123456789"
PASSWORD = "correct horse battery"


# --- a running gateway whose dialog answers ASK with files -------------------------------------


@dataclass
class Rig:
    services: Services
    client: TestClient[Any, Any]
    settings: Settings

    def answer_with(
        self, monkeypatch: pytest.MonkeyPatch, files: list[FileRef], text: str = CAPTION
    ) -> None:
        """The dialog answers ASK with ``text``, a button and ``files``; anything else as usual."""
        engine = self.services.engine
        real = engine.step

        async def step(conversation: Conversation, inbound: Inbound, **kw: Any) -> Turn:
            if inbound.text != ASK:
                return await real(conversation, inbound, **kw)
            reply = Reply((Raw(text),), (Button(Raw("Меню"), "/menu"),), attachments=tuple(files))
            return Turn((reply,), conversation)

        monkeypatch.setattr(engine, "step", step)

    async def ask(self, channel: str, chat: str, n: int = 1) -> None:
        inbound = Inbound(
            ConversationKey(channel, chat, chat), f"files-{n}", "text", text=ASK,
            received_at=datetime.now(UTC),
        )  # fmt: skip
        assert await self.services.ingress.accept(inbound, scope=channel, platform_id=f"f{n}")
        async with asyncio.timeout(30):
            await self.services.ingress.idle()
            await self.services.outbox.drain()

    async def put(self, data: bytes = PDF, name: str = NAME) -> FileRef:
        return await self.services.files.put(data, name, "application/pdf")

    def outbox_errors(self) -> list[tuple[str, str | None]]:
        with sqlite3.connect(self.settings.sqlite_path) as db:
            return db.execute("SELECT status, last_error FROM outbox").fetchall()


Make = Callable[..., Awaitable[Rig]]


async def _close_without_tls_grace(self: AiohttpSession) -> None:
    if self._session is not None and not self._session.closed:
        await self._session.close()


@pytest.fixture
async def make(
    aiohttp_client: Any, settings: Settings, demo_nlu: Nlu, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Make]:
    # aiogram waits 250 ms after closing its session for TLS to wind down; the fake is plain HTTP.
    monkeypatch.setattr(AiohttpSession, "close", _close_without_tls_grace)
    running: list[Services] = []

    async def build(*, public: bool = True, **overrides: Any) -> Rig:
        port = unused_port()
        configured = replace(
            settings, public_url=f"http://127.0.0.1:{port}" if public else None, **overrides
        )
        services = build_services(configured, nlu=demo_nlu)
        for channel in services.channels.values():  # no pacing waits in these tests
            channel.rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)  # type: ignore[misc]
        app = create_app(configured, services=services)
        client = await aiohttp_client(app, server_kwargs={"port": port})
        await services.start()
        running.append(services)
        return Rig(services, client, configured)

    yield build
    for services in running:
        await services.close()


# --- the file store -------------------------------------------------------------------------


async def test_the_file_store_keeps_bytes_and_metadata_under_a_random_id(tmp_path: Path) -> None:
    store = FilesystemFileStore(tmp_path / "files")
    first = await store.put(PDF, "../../etc/Счёт\n.pdf", "application/pdf")
    second = await store.put(b"other", "b.pdf", "application/pdf")
    assert first.file_id != second.file_id
    assert len(first.file_id) == 32
    assert (first.name, first.size) == ("Счёт.pdf", len(PDF))  # no path, no control chars
    assert await store.get(first.file_id) == (first, PDF)
    # A fresh instance (a restart) reads the same file; nothing half-written is left around.
    assert await FilesystemFileStore(tmp_path / "files").get(first.file_id) == (first, PDF)
    assert not [p for p in (tmp_path / "files").iterdir() if p.name.endswith(".tmp")]
    assert await store.get("x" * 32) is None
    assert await store.get("../" + first.file_id) is None


# --- the transcript and the outbox ------------------------------------------------------------


async def test_the_transcript_and_the_outbox_keep_files_across_a_restart(
    settings: Settings,
) -> None:
    files = FilesystemFileStore(settings.var_dir / "files")
    ref = await files.put(PDF, NAME, "application/pdf")
    store = SqliteStore(path=settings.sqlite_path)
    conversation = Conversation(ConversationKey("test", "c1", "c1"))
    line = TranscriptLine("bot", CAPTION, attachments=(ref,))
    entries = await store.commit_turn(TurnRecord(conversation, (line,), deliver=(line,)))
    assert attachments_of(entries[0].meta) == (ref,)
    await store.close()

    again = SqliteStore(path=settings.sqlite_path)
    try:
        [entry] = await again.messages(conversation.id)
        assert attachments_of(entry.meta) == (ref,)
        [item] = await again.outbox_pending()
        assert item.attachments == (ref,)
    finally:
        await again.close()
    assert await FilesystemFileStore(settings.var_dir / "files").get(ref.file_id) == (ref, PDF)


async def test_an_outbox_from_before_files_is_migrated_and_still_sent(settings: Settings) -> None:
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:  # the outbox table as the previous version made it
        db.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT"
            " NULL, channel TEXT NOT NULL, chat_id TEXT NOT NULL, text TEXT NOT NULL, buttons"
            " TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
            " last_error TEXT, platform_message_id TEXT, created_at TEXT NOT NULL,"
            " updated_at TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO outbox (conversation_id, channel, chat_id, text, buttons, status,"
            " created_at, updated_at) VALUES ('test:c:c', 'test', 'c', 'старое', '[]',"
            " 'pending', '2025-01-01T00:00:00+00:00', '2025-01-01T00:00:00+00:00')"
        )
    store = SqliteStore(path=path)
    try:
        [item] = await store.outbox_pending()
        assert (item.text, item.attachments) == ("старое", ())
    finally:
        await store.close()


def test_files_go_with_the_last_part_of_a_split_message() -> None:
    ref = FileRef("f" * 32, NAME, "application/pdf", 10)
    button = RenderedButton("Меню", "/menu")
    parts = fit_message("слово " * 30, (button,), (ref,), Capabilities(max_text=50))
    assert len(parts) > 1
    assert [p.attachments for p in parts] == [()] * (len(parts) - 1) + [(ref,)]
    assert parts[-1].buttons == (button,)
    [only] = fit_message("", (), (ref,), Capabilities(max_text=50))
    assert (only.text, only.attachments) == ("", (ref,))


# --- Telegram ---------------------------------------------------------------------------------


@pytest.fixture
async def telegram(aiohttp_server: Any) -> tuple[FakeTelegram, str]:
    fake = FakeTelegram(token=TELEGRAM_TOKEN)
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


async def test_telegram_gets_the_pdf_as_a_document_with_the_text_as_caption(
    make: Make, telegram: tuple[FakeTelegram, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base = telegram
    rig = await make(telegram_token=TELEGRAM_TOKEN, telegram_api_base=base)
    ref = await rig.put()
    rig.answer_with(monkeypatch, [ref])
    await rig.ask("telegram", "5001")
    [document] = fake.documents
    assert (document.chat_id, document.filename, document.data) == (5001, NAME, PDF)
    assert document.caption == CAPTION
    assert document.reply_markup is not None
    assert document.reply_markup["inline_keyboard"][0][0]["text"] == "Меню"
    assert fake.sent() == []  # one message: the document carries the text


async def test_telegram_sends_a_long_text_then_each_file_once_even_after_a_failure(
    make: Make, telegram: tuple[FakeTelegram, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base = telegram
    rig = await make(telegram_token=TELEGRAM_TOKEN, telegram_api_base=base)
    first, second = await rig.put(), await rig.put(b"%PDF-1.4 second", "акт.pdf")
    rig.answer_with(monkeypatch, [first, second], text="Подробно. " * 150)  # over a caption
    fake.fail("sendDocument", "429", retry_after=1)  # the first document, once
    await rig.ask("telegram", "5002")
    assert len(fake.sent(5002)) == 1  # the text, not repeated by the retry
    assert [(d.filename, d.data, d.caption) for d in fake.documents] == [
        (NAME, PDF, None),
        ("акт.pdf", b"%PDF-1.4 second", None),
    ]
    order = [c.method for c in fake.calls if c.ok and c.method in ("sendMessage", "sendDocument")]
    assert order == ["sendMessage", "sendDocument", "sendDocument"]


async def test_telegram_gets_a_link_for_a_file_above_its_upload_limit(
    make: Make, telegram: tuple[FakeTelegram, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base = telegram
    rig = await make(telegram_token=TELEGRAM_TOKEN, telegram_api_base=base)
    big = b"%PDF-1.4\n" + bytes(50 * MB)  # the Bot API takes 50 MB from bots
    ref = await rig.put(big, "архив.pdf")
    rig.answer_with(monkeypatch, [ref])
    await rig.ask("telegram", "5003")
    assert fake.documents == []
    [sent] = fake.sent(5003)
    assert sent["text"].startswith(CAPTION)
    public = f"{rig.settings.public_url}/files/{ref.file_id}/"
    url = next(word for word in sent["text"].split() if word.startswith(public))
    resp = await rig.client.get(url.removeprefix(str(rig.settings.public_url)))
    assert resp.status == 200
    assert await resp.read() == big


# --- VK -------------------------------------------------------------------------------------


async def test_vk_uploads_the_pdf_and_attaches_the_document(
    make: Make, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeVk(group_id=VK_GROUP)
    server = await aiohttp_server(fake.app())
    rig = await make(
        vk_group_token=fake.token, vk_group_id=VK_GROUP, vk_api_base=str(server.make_url("/method"))
    )
    ref = await rig.put()
    rig.answer_with(monkeypatch, [ref])
    await rig.ask("vk", "777")
    [doc] = fake.saved_docs
    assert (doc.peer_id, doc.title, doc.data) == ("777", NAME, PDF)
    assert doc.filename.endswith(".pdf")
    [delivered] = fake.sent_to(777)
    assert delivered.attachments == (doc.attachment,)
    assert delivered.text.startswith(CAPTION)
    assert [c.method for c in fake.calls][:2] == ["docs.getMessagesUploadServer", "docs.save"]


# --- Viber ----------------------------------------------------------------------------------


@pytest.fixture
async def viber(aiohttp_server: Any) -> FakeViber:
    fake = FakeViber(VIBER_AUTH)
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("/pa"))
    return fake


async def test_viber_sends_a_file_message_whose_signed_link_serves_the_pdf(
    make: Make, viber: FakeViber, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make(viber_auth_token=VIBER_AUTH, viber_api_base=viber.base)
    ref = await rig.put()
    rig.answer_with(monkeypatch, [ref])
    await rig.ask("viber", VIBER_USER)
    sent = [b for b in viber.delivered if b["receiver"] == VIBER_USER]
    assert [b["type"] for b in sent] == ["text", "file"]
    assert sent[0]["text"] == CAPTION
    assert (sent[1]["file_name"], sent[1]["size"]) == (NAME, len(PDF))
    assert sent[1]["media"].startswith(f"{rig.settings.public_url}/files/{ref.file_id}/")
    assert sent[1]["keyboard"]["Buttons"][0]["Text"] == "Меню"  # kept on the latest message
    [fetched] = viber.fetched  # Viber downloaded it from the public link
    assert (fetched.status, fetched.data) == (200, PDF)


async def test_viber_without_a_public_address_gets_the_text_with_a_note(
    make: Make, viber: FakeViber, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make(public=False, viber_auth_token=VIBER_AUTH, viber_api_base=viber.base)
    ref = await rig.put()
    rig.answer_with(monkeypatch, [ref])
    await rig.ask("viber", VIBER_USER)
    [sent] = [b for b in viber.delivered if b["receiver"] == VIBER_USER]
    note = rig.services.translator.render("ru", Text("files.unavailable", {"name": NAME}))
    assert sent["type"] == "text"
    assert sent["text"] == f"{CAPTION}\n\n{note}"
    assert viber.fetched == []


async def test_viber_gets_a_plain_link_for_a_file_above_its_limit(
    make: Make, viber: FakeViber, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make(viber_auth_token=VIBER_AUTH, viber_api_base=viber.base)
    ref = await rig.put(b"%PDF-1.4\n" + bytes(50 * MB), "архив.pdf")
    rig.answer_with(monkeypatch, [ref])
    await rig.ask("viber", VIBER_USER)
    [sent] = [b for b in viber.delivered if b["receiver"] == VIBER_USER]
    assert sent["type"] == "text"
    assert f"{rig.settings.public_url}/files/{ref.file_id}/" in sent["text"]


async def test_the_public_link_needs_a_valid_unexpired_signature_for_that_file(
    make: Make,
) -> None:
    rig = await make()
    ref, other = await rig.put(), await rig.put(b"%PDF other", "other.pdf")
    links = FileLinks.from_settings(rig.settings)
    url = links.public(ref.file_id)
    assert url is not None
    path = url.removeprefix(str(rig.settings.public_url))
    resp = await rig.client.get(path)
    assert resp.status == 200
    assert await resp.read() == PDF
    assert resp.headers["Content-Type"] == "application/pdf"

    expires, _, signature = path.rsplit("/", 1)[1].partition(".")
    forged = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    past = int(time.time()) - 1
    refused = [
        f"/files/{ref.file_id}/{expires}.{forged}",  # a forged signature
        f"/files/{ref.file_id}/{int(expires) + 3600}.{signature}",  # a longer life, same MAC
        f"/files/{ref.file_id}/{links.token(ref.file_id, past)}",  # expired
        f"/files/{other.file_id}/{expires}.{signature}",  # another file's link
        f"/files/{ref.file_id}/nonsense",
    ]
    for bad in refused:
        resp = await rig.client.get(bad)
        assert resp.status == 404, bad
    # Another installation's key signs nothing here.
    stranger = FileLinks(b"k" * 32, rig.settings.public_url)
    stolen = stranger.public(ref.file_id)
    assert stolen is not None
    resp = await rig.client.get(stolen.removeprefix(str(rig.settings.public_url)))
    assert resp.status == 404


# --- the website widget -----------------------------------------------------------------------


async def _widget_history(client: TestClient[Any, Any], session: str) -> list[dict[str, Any]]:
    ws = await client.ws_connect(f"/ws/widget?session={session}")
    try:
        await ws.send_json({"type": "hello", "locale": "ru"})
        frame = await ws.receive_json(timeout=10)
        assert frame["type"] == "history"
        return list(frame["messages"])
    finally:
        await ws.close()


async def test_the_widget_shows_a_link_and_only_that_session_downloads_the_file(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make()
    ref = await rig.put()
    rig.answer_with(monkeypatch, [ref])
    ws = await rig.client.ws_connect(f"/ws/widget?session={WIDGET_SESSION}")
    await ws.send_json({"type": "hello", "locale": "ru"})
    assert (await ws.receive_json(timeout=10))["type"] == "history"
    await ws.send_json({"type": "message", "id": "m1", "text": ASK})
    async with asyncio.timeout(20):
        while True:
            frame = await ws.receive_json()
            if frame["type"] == "reply" and frame["message"]["from"] == "bot":
                break
    await ws.close()
    [shown] = frame["message"]["attachments"]
    url = f"/api/v1/widget/files/{ref.file_id}"
    assert shown == {
        "id": ref.file_id, "name": NAME, "content_type": "application/pdf", "size": len(PDF),
        "url": url,
    }  # fmt: skip
    history = await _widget_history(rig.client, WIDGET_SESSION)  # a reload shows it too
    assert history[-1]["attachments"] == [shown]

    mine = await rig.client.get(url, headers={"X-Widget-Session": WIDGET_SESSION})
    assert mine.status == 200
    assert await mine.read() == PDF
    assert mine.headers["Access-Control-Allow-Origin"] == "*"
    assert "filename*=UTF-8''" + quote(NAME) in mine.headers["Content-Disposition"]
    other = await rig.client.get(url, headers={"X-Widget-Session": "another-session-000000"})
    assert other.status == 404
    nobody = await rig.client.get(url)
    assert nobody.status == 403
    preflight = await rig.client.options(url, headers={"Origin": "https://isp.example"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Headers"] == "X-Widget-Session"


# --- the REST channel -----------------------------------------------------------------------


async def test_rest_replies_carry_the_file_url_and_the_file_downloads_only_with_the_token(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make(rest_token=REST_TOKEN)
    ref = await rig.put()
    rig.answer_with(monkeypatch, [ref])
    auth = {"Authorization": f"Bearer {REST_TOKEN}"}
    resp = await rig.client.post(
        "/api/v1/messages", json={"sender": "site-1", "text": ASK}, headers=auth
    )
    assert resp.status == 200
    [reply] = (await resp.json())["replies"]
    url = f"/api/v1/files/{ref.file_id}?sender=site-1"  # the token is scoped to one sender
    assert reply["attachments"] == [
        {"name": NAME, "content_type": "application/pdf", "size": len(PDF), "url": url}
    ]

    assert (await rig.client.get(url)).status == 401
    wrong = await rig.client.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    ok = await rig.client.get(url, headers=auth)
    assert ok.status == 200
    assert await ok.read() == PDF
    assert ok.headers["Content-Type"] == "application/pdf"
    disposition = ok.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote(NAME) in disposition
    missing = await rig.client.get("/api/v1/files/" + "x" * 32 + "?sender=site-1", headers=auth)
    assert missing.status == 404

    transcript = await rig.client.get(
        "/api/v1/conversations/rest:site-1:site-1/messages?sender=site-1", headers=auth
    )
    messages = (await transcript.json())["messages"]
    assert messages[-1]["attachments"] == reply["attachments"]


# --- the operator console -------------------------------------------------------------------


async def test_operators_see_the_file_in_the_transcript_and_download_it_with_a_session(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = await make(rest_token=REST_TOKEN)  # a public URL: loopback needs the token too
    ref = await rig.put()
    rig.answer_with(monkeypatch, [ref])
    auth = {"Authorization": f"Bearer {REST_TOKEN}"}
    resp = await rig.client.post(
        "/api/v1/messages", json={"sender": "site-2", "text": ASK}, headers=auth
    )
    assert resp.status == 200
    url = f"/api/v1/operator/files/{ref.file_id}"
    assert (await rig.client.get(url)).status == 401

    await rig.services.operators.add(Operator("anna", "Анна", departments=("general",)), PASSWORD)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        login = await browser.post(
            rig.client.make_url("/api/v1/operator/login"),
            json={"login": "anna", "password": PASSWORD},
        )
        assert login.status == 200
        conversation = quote("rest:site-2:site-2", safe="")
        card = await browser.get(
            rig.client.make_url(f"/api/v1/operator/conversations/{conversation}")
        )
        assert card.status == 200
        last = (await card.json())["messages"][-1]
        assert last["attachments"] == [
            {"name": NAME, "content_type": "application/pdf", "size": len(PDF), "url": url}
        ]
        download = await browser.get(rig.client.make_url(url))
        assert download.status == 200
        assert await download.read() == PDF
