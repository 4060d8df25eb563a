"""The invoice in the website widget, in a real browser: a customer signed in on the provider's
site asks for a receipt, sees the bot's answer with a link to the PDF, clicks it and gets the
file; a different visitor cannot fetch it by its address; a reload keeps the link.

Two servers on 127.0.0.1, as in production: the gateway (the real application, widget and bot)
and the provider's personal-account page on another origin that embeds ``widget.js`` with the
signed identity of CONTRACTS.md, so the download runs through CORS like it does for real."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from html import escape
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from aiohttp import web
from PIL import Image
from pypdf import PdfReader

from bot.app import create_app
from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.channels.test_widget import BROWSER_ARGS, CHROMIUM, HAVE_PLAYWRIGHT
from tests.conftest import ROOT, identity

BLOCKED = "750045678924"  # demo ledger: Чита, blocked, −450 ₽, «Интернет 100»
ASK = "пришлите квитанцию на оплату"
FILE_NAME = re.compile(rf"invoice-{BLOCKED}-\d{{6}}\.pdf")
LINK_TEXT = re.compile(rf"^\s*invoice-{BLOCKED}-\d{{6}}\.pdf$")
TIMEOUT_MS = 15000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not HAVE_PLAYWRIGHT,
    reason="needs Debian's chromium at /usr/bin/chromium and the playwright package "
    "(scripts/system-deps.sh and the dev extras install both)",
)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def gateway(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[str]:
    """The whole application as deployed (its own widget channel and file store)."""
    services: Services = build_services(settings, nlu=demo_nlu)
    await services.start()
    runner, url = await _serve(create_app(settings, services=services))
    yield url
    await runner.cleanup()
    await services.close()


@pytest.fixture
async def account_site(gateway: str) -> AsyncIterator[str]:
    """The provider's personal account, on another origin, vouching for the customer."""
    signed = identity(BLOCKED)
    page = f"""<!doctype html>
<html lang="ru">
<head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Личный кабинет</title></head>
<body>
  <h1>Личный кабинет</h1>
  <p>Договор № {BLOCKED}</p>
  <script src="{escape(gateway)}/widget.js" data-locale="ru"
          data-identity-contract="{escape(signed["contract_number"])}"
          data-identity-hash="{escape(signed["hash"])}" async></script>
</body>
</html>
"""

    async def account(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    app = web.Application()
    app.router.add_get("/account", account)
    runner, url = await _serve(app)
    yield f"{url}/account"
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in_page(browser: Any, account_site: str) -> tuple[Any, list[str]]:
    """The customer's account page with the chat open, and the page's script errors."""
    context = await browser.new_context(locale="ru-RU", accept_downloads=True)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    await page.goto(account_site)
    await page.get_by_role("button", name="Чат").click()
    return page, problems


async def ask_for_invoice(page: Any) -> Any:
    """Type the request like a customer; the bot's answer with the file link."""
    from playwright.async_api import expect

    box = page.get_by_role("textbox", name="Напишите сообщение…")
    await box.fill(ASK)
    await box.press("Enter")
    await expect(page.locator(".msg.from-customer .text")).to_have_text([ASK])
    answer = page.locator(".msg.from-bot").filter(has_text="к оплате 900 ₽")
    await expect(answer).to_have_count(1, timeout=TIMEOUT_MS)
    return answer


async def download(page: Any, link: Any, folder: Path) -> tuple[str, bytes]:
    """Click the link as the customer would; the name the browser saves under and the bytes."""
    async with page.expect_download(timeout=TIMEOUT_MS) as info:
        await link.click()
    got = await info.value
    assert await got.failure() is None
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / got.suggested_filename
    await got.save_as(target)
    return got.suggested_filename, target.read_bytes()


def text_of(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"\s+", " ", text)  # NBSP in amounts and line wraps read as plain spaces


def payment_codes(pdf: bytes) -> list[str]:
    found: list[str] = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for image in page.images:
            gray = Image.open(io.BytesIO(image.data)).convert("L")
            codes = zxingcpp.read_barcodes(gray, text_mode=zxingcpp.TextMode.Plain)
            found += [code.text for code in codes]
    return found


async def test_an_identified_customer_downloads_the_invoice_pdf_from_the_widget(
    gateway: str, account_site: str, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    page, problems = await signed_in_page(browser, account_site)
    answer = await ask_for_invoice(page)
    link = answer.get_by_role("link")
    await expect(link).to_have_text(LINK_TEXT)
    offered = await link.get_attribute("download")
    assert offered is not None
    assert FILE_NAME.fullmatch(offered), offered

    name, pdf = await download(page, link, tmp_path / "downloads")
    assert name == offered
    assert pdf.startswith(b"%PDF")
    text = text_of(pdf)
    assert f"Договор (лицевой счёт) {BLOCKED}" in text
    assert re.search(r"Итого к оплате 900\b", text), text
    (payload,) = payment_codes(pdf)
    assert payload.startswith("ST00012|")
    fields = dict(part.split("=", 1) for part in payload.split("|")[1:])
    assert fields["PersAcc"] == BLOCKED
    assert fields["Sum"] == "90000"
    await expect(page.locator(".notice")).to_be_hidden()  # no «не удалось скачать»

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    await page.screenshot(path=str(artifacts / "widget-invoice.png"))
    assert problems == []


async def test_another_visitor_cannot_download_the_invoice_by_its_address(
    gateway: str, account_site: str, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    page, _ = await signed_in_page(browser, account_site)
    link = (await ask_for_invoice(page)).get_by_role("link")
    await expect(link).to_have_text(LINK_TEXT)
    url = await link.evaluate("a => a.href")
    assert url.startswith(f"{gateway}/api/v1/widget/files/")

    # Someone else at another browser opens the chat on the site and tries the address.
    other = await (await browser.new_context(locale="ru-RU")).new_page()
    await other.goto(gateway + "/")
    await other.get_by_role("button", name="Чат").click()
    await expect(other.locator(".msg")).to_have_count(0)  # none of the customer's history
    session = await other.evaluate("() => localStorage.getItem('isp-widget:session')")
    assert session
    refused = await other.evaluate(
        """async ([url, session]) => {
            const r = await fetch(url, {headers: {"X-Widget-Session": session}});
            return {status: r.status, head: (await r.text()).slice(0, 4)};
        }""",
        [url, session],
    )
    assert refused["status"] == 404
    assert refused["head"] != "%PDF"
    opened = await other.goto(url)  # a plain visit carries no session at all
    assert opened is not None
    assert opened.status == 403
    assert not (await opened.body()).startswith(b"%PDF")

    # The owner still gets it.
    _, pdf = await download(page, link, tmp_path / "downloads")
    assert pdf.startswith(b"%PDF")


async def test_the_invoice_link_is_still_there_after_a_reload(
    gateway: str, account_site: str, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    page, problems = await signed_in_page(browser, account_site)
    link = (await ask_for_invoice(page)).get_by_role("link")
    name, first = await download(page, link, tmp_path / "before")

    await page.reload()
    await page.get_by_role("button", name="Чат").click()
    await expect(page.locator(".msg.from-customer .text")).to_have_text([ASK])
    answer = page.locator(".msg.from-bot").filter(has_text="к оплате 900 ₽")
    await expect(answer).to_have_count(1, timeout=TIMEOUT_MS)
    again = answer.get_by_role("link")
    await expect(again).to_have_text(re.compile(rf"^\s*{re.escape(name)}$"))
    assert await download(page, again, tmp_path / "after") == (name, first)
    assert problems == []
