"""Operators and customers' files, end to end: a customer sends a photo and a PDF in Telegram
(the real aiogram client fetches them from the fake Telegram), asks for a person; an operator
opens the files from the console's API (session required; a safe image inline with nosniff,
anything else as a download), sends a PDF back (multipart, CSRF, size and type checked) and it
reaches the fake Telegram as a document; and the same through the console's upload control in
headless Chromium. The real application on a real port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiogram.client.session.aiohttp import AiohttpSession

from bot.channels.base import RateLimit
from bot.channels.telegram import SECRET_HEADER
from bot.config import Settings
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.conftest import ROOT
from tests.console_browser import SIGN_IN_401 as EXPECTED_ERRORS
from tests.console_browser import WAIT, collect_errors, launch, needs_chromium, serve, sign_in
from tests.fakes.telegram import FakeTelegram

ARTIFACTS = ROOT / "test-artifacts"

TOKEN = "123456:TEST-token"
SECRET = "operator-files-secret"
PASSWORD = "correct horse battery"
CHAT = 6100
CONVERSATION = f"telegram:{CHAT}:{CHAT}"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 20 + b"\xff\xd9"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 32 + b"\n%%EOF\n"
REPLY_PDF = b"%PDF-1.7\n" + b"operator's answer " * 100 + b"\n%%EOF\n"


@dataclass
class Live:
    base: str
    services: Services
    telegram: FakeTelegram

    async def customer(self, update_id: int, **message: Any) -> None:
        update = {
            "update_id": update_id,
            "message": {
                "message_id": update_id, "date": 1700000000,
                "chat": {"id": CHAT, "type": "private"},
                "from": {"id": CHAT, "is_bot": False, "first_name": "Ира", "language_code": "ru"},
                **message,
            },
        }  # fmt: skip
        async with aiohttp.ClientSession() as http:
            resp = await http.post(
                f"{self.base}/webhooks/telegram", json=update, headers={SECRET_HEADER: SECRET}
            )
            assert resp.status == 200
        async with asyncio.timeout(30):
            await self.services.ingress.idle()
            await self.services.outbox.drain()


async def _close_without_tls_grace(self: AiohttpSession) -> None:
    if self._session is not None and not self._session.closed:
        await self._session.close()


@pytest.fixture
async def live(
    settings: Settings, demo_nlu: Nlu, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Live]:
    monkeypatch.setattr(AiohttpSession, "close", _close_without_tls_grace)
    fake = FakeTelegram(token=TOKEN)
    server = await aiohttp_server(fake.app())
    configured = replace(
        settings,
        telegram_token=TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_api_base=str(server.make_url("")).rstrip("/"),
    )
    services = build_services(configured, nlu=demo_nlu)
    for channel in services.channels.values():
        channel.rate_limit = RateLimit(per_chat=1000.0, overall=1000.0)  # type: ignore[misc]
    await services.start()
    await services.operators.add(
        Operator("anna", "Анна", departments=("general", "billing", "technical", "sales")),
        PASSWORD,
    )
    async with serve(configured, services) as base:
        live = Live(base, services, fake)
        # The customer: a photo, a PDF, then a person is asked for.
        fake.add_file("PHOTO", JPEG, "photos/file_7.jpg")
        fake.add_file("SCAN", PDF, "documents/file_8.pdf")
        photo = [{"file_id": "PHOTO", "file_unique_id": "p", "width": 640, "height": 480}]
        await live.customer(1, photo=photo)
        document = {"file_id": "SCAN", "file_unique_id": "s", "file_name": "договор.pdf"}
        await live.customer(2, document=document)
        await live.customer(3, text="позовите оператора")
        assert await services.store.queue_get(CONVERSATION) is not None
        yield live
    await services.close()


async def _login(http: aiohttp.ClientSession, base: str) -> str:
    resp = await http.post(
        f"{base}/api/v1/operator/login", json={"login": "anna", "password": PASSWORD}
    )
    assert resp.status == 200
    return str((await resp.json())["csrf_token"])


def _upload(data: bytes, name: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


async def test_an_operator_opens_the_customers_files_and_sends_a_pdf_back(live: Live) -> None:
    conversation_url = f"{live.base}/api/v1/operator/conversations/{quote(CONVERSATION, safe='')}"
    async with aiohttp.ClientSession() as anonymous:
        assert (await anonymous.get(conversation_url)).status == 401

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await _login(http, live.base)
        body = await (await http.get(conversation_url)).json()
        sent = [m for m in body["messages"] if m["from"] == "customer" and m["attachments"]]
        [photo], [scan] = sent[0]["attachments"], sent[1]["attachments"]
        assert (photo["content_type"], photo["size"]) == ("image/jpeg", len(JPEG))
        assert (scan["name"], scan["content_type"]) == ("договор.pdf", "application/pdf")

        # Without a session: nothing, whatever the id.
        async with aiohttp.ClientSession() as anonymous:
            assert (await anonymous.get(live.base + photo["url"])).status == 401

        image = await http.get(live.base + photo["url"])
        assert image.status == 200
        assert await image.read() == JPEG
        assert image.headers["Content-Type"] == "image/jpeg"
        assert image.headers["Content-Disposition"].startswith("inline;")
        assert image.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in image.headers["Content-Security-Policy"]

        pdf = await http.get(live.base + scan["url"])
        assert pdf.status == 200
        assert await pdf.read() == PDF
        assert pdf.headers["Content-Disposition"].startswith("attachment;")
        assert pdf.headers["X-Content-Type-Options"] == "nosniff"

        # Sending a file back: CSRF, the conversation taken, size and type checked first.
        files_url = f"{conversation_url}/files"
        no_csrf = await http.post(files_url, data=_upload(REPLY_PDF, "ответ.pdf"))
        assert no_csrf.status == 403
        headers = {"X-CSRF-Token": csrf}
        unclaimed = await http.post(
            files_url, data=_upload(REPLY_PDF, "ответ.pdf"), headers=headers
        )
        assert unclaimed.status == 409
        assert (await http.post(f"{conversation_url}/claim", headers=headers)).status == 200
        program = await http.post(
            files_url, data=_upload(b"MZ\x90\x00" + bytes(100), "ответ.pdf"), headers=headers
        )
        assert program.status == 415
        huge = await http.post(
            files_url, data=_upload(b"%PDF-" + bytes(21 * 1024 * 1024), "big.pdf"), headers=headers
        )
        assert huge.status == 413
        assert live.telegram.documents == []

        ok = await http.post(files_url, data=_upload(REPLY_PDF, "ответ.pdf"), headers=headers)
        assert ok.status == 200
        message = (await ok.json())["message"]
        assert message["from"] == "operator"
        [attachment] = message["attachments"]
        assert (attachment["name"], attachment["size"]) == ("ответ.pdf", len(REPLY_PDF))
        await live.services.outbox.drain()
        [document] = live.telegram.documents
        assert (document.chat_id, document.filename, document.data) == (
            CHAT,
            "ответ.pdf",
            REPLY_PDF,
        )


@needs_chromium
async def test_the_console_shows_customer_files_and_sends_one_with_the_upload_control(
    live: Live, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    problems: list[str] = []
    upload = tmp_path / "Акт сверки.pdf"
    upload.write_bytes(REPLY_PDF)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await launch(p)
        try:
            context = await browser.new_context(
                locale="ru-RU", viewport={"width": 1400, "height": 850}
            )
            console = await context.new_page()
            collect_errors(console, problems, EXPECTED_ERRORS)
            tid = console.get_by_test_id
            await sign_in(console, live.base, "anna", PASSWORD)

            waiting = tid("queue-list").get_by_test_id("queue-item")
            await expect(waiting).to_have_count(1, timeout=WAIT)
            await waiting.get_by_test_id("claim-button").click()
            view = tid("conversation-view")
            links = view.get_by_test_id("attachment")
            await expect(links).to_have_count(2, timeout=WAIT)  # the photo and the scan
            await expect(links.nth(1)).to_contain_text("договор.pdf")
            href = await links.first.get_attribute("href")
            assert href is not None
            assert href.startswith("/api/v1/operator/files/")

            # The upload control: pick a file, it goes to the customer at once.
            await expect(tid("composer-file")).to_be_enabled(timeout=WAIT)
            await tid("composer-file").set_input_files(str(upload))
            mine = view.locator('[data-testid="message"][data-from="operator"]')
            await expect(mine.get_by_test_id("attachment")).to_contain_text(
                "Акт сверки.pdf", timeout=WAIT
            )
            await console.screenshot(path=str(ARTIFACTS / "console-operator-file.png"))
        finally:
            await browser.close()
    await live.services.outbox.drain()
    [document] = live.telegram.documents
    assert (document.chat_id, document.filename, document.data) == (
        CHAT,
        "Акт сверки.pdf",
        REPLY_PDF,
    )
    assert problems == []
