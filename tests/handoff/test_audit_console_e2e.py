"""The «Журнал» view of the console in headless Chromium against the real application on a real
port: another operator logs in, takes a chat and reads a customer's card through the API; a
supervisor signs in at 1024 px, sees those entries and their own login newest first in words,
narrows the table by login, action family and date, and downloads the CSV with the same filters
(the export itself is written down). An operator who is not a supervisor has no «Журнал» tab.
Screenshots land in test-artifacts/."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from bot.config import Settings
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.conftest import ROOT, identity
from tests.console_browser import SIGN_IN_401 as EXPECTED_ERRORS
from tests.console_browser import WAIT, collect_errors, launch, needs_chromium, serve, sign_in

ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"
CONTRACT = "380300112233"  # a demo account in Bratsk
SENDER = "site-e2e-audit"
ALL = ("general", "billing", "technical", "sales")
XSS = '<img src=x onerror="window.__xss=1">'
AT_SHOWN = re.compile(r"^\d\d\.\d\d\.\d{4}, \d\d:\d\d:\d\d$")  # ru-RU, local time


@pytest.fixture
async def live(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[tuple[str, Services]]:
    services = build_services(settings, nlu=demo_nlu)
    await services.start()
    await services.operators.add(Operator("anna", "Анна", departments=ALL), PASSWORD)
    await services.operators.add(
        Operator("vera", "Вера", departments=ALL, role="supervisor"), PASSWORD
    )
    async with serve(settings, services) as base:
        yield base, services
    await services.close()


async def anna_works_through_the_api(base: str) -> str:
    """A customer asks for a person; anna logs in, takes the chat and reads the customer's card.
    Returns the conversation id."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        body = {"sender": SENDER, "text": "позовите оператора", "identity": identity(CONTRACT)}
        async with http.post(base + "/api/v1/messages", json=body) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["state"] == "queued"
        operator = base + "/api/v1/operator"
        login = {"login": "anna", "password": PASSWORD}
        async with http.post(operator + "/login", json=login) as resp:
            assert resp.status == 200, await resp.text()
            csrf = (await resp.json())["csrf_token"]
        async with http.get(operator + "/queue") as resp:
            [queued] = (await resp.json())["conversations"]
        conversation_id: str = queued["conversation_id"]
        async with http.post(
            f"{operator}/conversations/{conversation_id}/claim",
            json={},
            headers={"X-CSRF-Token": csrf},
        ) as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(f"{operator}/customers/{CONTRACT}") as resp:
            assert resp.status == 200, await resp.text()
        # The log is for supervisors only.
        async with http.get(operator + "/audit") as resp:
            assert resp.status == 403
    return conversation_id


@needs_chromium
async def test_a_supervisor_reads_filters_and_exports_the_audit_log(
    live: tuple[str, Services],
) -> None:
    from playwright.async_api import async_playwright, expect

    base, services = live
    assert services.audit is not None
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    conversation_id = await anna_works_through_the_api(base)
    # Whatever lands in the log is shown as text; an unknown code as it is.
    await services.audit.record("customer.card", login="anna", target=XSS, details={"note": XSS})
    await services.audit.record("something.new", login="anna", details={"flag": True})

    async with async_playwright() as p:
        browser = await launch(p)
        try:
            context = await browser.new_context(
                locale="ru-RU", viewport={"width": 1024, "height": 768}, accept_downloads=True
            )
            page = await context.new_page()
            collect_errors(page, problems, EXPECTED_ERRORS, who="vera")
            tid = page.get_by_test_id
            await sign_in(page, base, "vera", PASSWORD)
            await expect(tid("view-audit")).to_be_visible(timeout=WAIT)
            await expect(tid("view-audit")).to_have_text("Журнал")
            await tid("view-audit").click()
            view = tid("audit-view")
            await expect(view).to_be_visible()
            await expect(tid("conversation-view")).to_be_hidden()
            rows = tid("audit-rows").get_by_test_id("audit-row")

            # Newest first: vera's own login, the two planted entries, anna's card, claim, login.
            await expect(rows).to_have_count(6, timeout=WAIT)
            actions = [await r.get_attribute("data-action") for r in await rows.all()]
            assert actions == [
                "login", "something.new", "customer.card", "customer.card",
                "conversation.claim", "login",
            ]  # fmt: skip
            logins = [await r.get_attribute("data-login") for r in await rows.all()]
            assert logins == ["vera"] + ["anna"] * 5
            first = rows.first
            await expect(first.locator(".col-action")).to_have_text("вход")
            await expect(first.locator(".col-login")).to_have_text("vera")
            await expect(first.locator(".col-address")).to_have_text("127.0.0.1")
            await expect(first.locator(".col-at")).to_have_text(AT_SHOWN)
            await expect(rows.nth(1).locator(".col-action")).to_have_text("something.new")
            await expect(rows.nth(1).locator(".col-details")).to_have_text("flag: да")
            await expect(rows.nth(2).locator(".col-target")).to_have_text(XSS)
            await expect(rows.nth(2).locator(".col-details")).to_have_text(f"note: {XSS}")
            card = rows.nth(3)
            await expect(card.locator(".col-action")).to_have_text("открыта карточка клиента")
            await expect(card.locator(".col-target")).to_have_text(CONTRACT)
            claim = rows.nth(4)
            await expect(claim.locator(".col-action")).to_have_text("взят диалог")
            await expect(claim.locator(".col-target")).to_have_text(conversation_id)
            await expect(rows.nth(5).locator(".col-details")).to_have_text("—")
            assert await page.evaluate("window.__xss") is None
            assert await page.locator("img").count() == 0
            # Usable at 1024 px: the table fits, nothing scrolls sideways.
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0
            box = await tid("audit-table").bounding_box()
            assert box is not None
            assert box["width"] <= 1024
            await page.screenshot(path=str(ARTIFACTS / "console-audit.png"))

            # --- filters: the login, then the family «Карточки клиентов» ---------------------
            await tid("audit-filter-login").fill("anna")
            await expect(rows).to_have_count(5, timeout=WAIT)
            await tid("audit-filter-action").select_option("customers")
            await expect(rows).to_have_count(2, timeout=WAIT)
            assert {await r.get_attribute("data-action") for r in await rows.all()} == {
                "customer.card"
            }
            export = tid("audit-export")
            await expect(export).to_have_count(1)
            await expect(export).to_have_text("Выгрузить CSV")
            href = await export.get_attribute("href")
            assert href is not None
            url = urlsplit(href)
            assert url.path == "/api/v1/operator/audit.csv"
            assert parse_qs(url.query) == {
                "action": ["customer.*"], "login": ["anna"], "limit": ["100000"],
            }  # fmt: skip

            async with page.expect_download() as info:
                await export.click()
            download = await info.value
            saved = await download.path()
            text = Path(saved).read_text(encoding="utf-8-sig")
            table = list(csv.reader(io.StringIO(text), delimiter=";"))
            assert download.suggested_filename.startswith("audit-")
            assert table[0] == ["at", "login", "action", "target", "address", "details"]
            assert sorted(row[3] for row in table[1:]) == sorted([CONTRACT, XSS])
            assert {(row[1], row[2]) for row in table[1:]} == {("anna", "customer.card")}

            # A date in the future leaves nothing; today brings the entries back.
            tomorrow = (date.today() + timedelta(days=1)).isoformat()
            await tid("audit-filter-since").fill(tomorrow)
            await expect(rows).to_have_count(0, timeout=WAIT)
            await expect(tid("audit-empty")).to_have_text("Нет записей с такими условиями")
            await expect(tid("audit-empty")).to_be_visible()
            href = await export.get_attribute("href")
            assert href is not None
            assert "since=" in href
            await tid("audit-filter-since").fill(date.today().isoformat())
            await expect(rows).to_have_count(2, timeout=WAIT)

            # «Входы» is four codes: one query, one CSV link.
            await tid("audit-filter-since").fill("")
            await tid("audit-filter-login").fill("")
            await tid("audit-filter-action").select_option("logins")
            await expect(rows.first).to_have_attribute("data-login", "vera", timeout=WAIT)
            await expect(rows).to_have_count(2)
            await expect(rows.nth(1)).to_have_attribute("data-login", "anna")
            await expect(rows.nth(1)).to_have_attribute("data-action", "login")
            await expect(export).to_have_count(1)
            href = await export.get_attribute("href")
            assert href is not None
            assert parse_qs(urlsplit(href).query)["action"] == [
                "login,login_failed,login_throttled,logout"
            ]
            # The export vera made is in the log now, under «Выгрузки».
            await tid("audit-filter-action").select_option("exports")
            await expect(rows).to_have_count(1, timeout=WAIT)
            await expect(rows.first.locator(".col-action")).to_have_text("выгрузка журнала")
            await expect(rows.first.locator(".col-details")).to_contain_text("строк: 2")
            await expect(rows.first.locator(".col-details")).to_contain_text(
                "действия: Карточки клиентов"
            )
            await page.screenshot(path=str(ARTIFACTS / "console-audit-exports.png"))

            # A page at a time: «Показать ещё» asks for the next hundred.
            for n in range(120):
                await services.audit.record("request.open", login="bulk", target=str(n))
            await tid("audit-filter-action").select_option("")
            await tid("audit-filter-login").fill("bulk")
            await tid("audit-filter-login").press("Enter")
            await expect(rows).to_have_count(100, timeout=WAIT)
            await expect(rows.first.locator(".col-target")).to_have_text("119")
            await expect(rows.first.locator(".col-action")).to_have_text("открыт телефон в заявке")
            await tid("audit-more").click()
            await expect(rows).to_have_count(120, timeout=WAIT)
            await expect(rows.last.locator(".col-target")).to_have_text("0")
            await expect(tid("audit-more")).to_be_hidden()

            # --- an operator who is not a supervisor has no «Журнал» ------------------------
            other = await browser.new_context(
                locale="ru-RU", viewport={"width": 1024, "height": 768}
            )
            anna = await other.new_page()
            collect_errors(anna, problems, EXPECTED_ERRORS, who="anna")
            await sign_in(anna, base, "anna", PASSWORD)
            await expect(anna.get_by_test_id("view-requests")).to_be_visible(timeout=WAIT)
            await expect(anna.get_by_test_id("view-audit")).to_have_count(0)
            await expect(anna.get_by_test_id("audit-view")).to_be_hidden()

            # Signing out hides the log from whoever signs in next in the same page.
            await tid("logout-button").click()
            await sign_in(page, base, "anna", PASSWORD)
            await expect(tid("view-requests")).to_be_visible(timeout=WAIT)
            await expect(tid("view-audit")).to_have_count(0)
            await expect(tid("audit-view")).to_be_hidden()
            await expect(tid("audit-rows").get_by_test_id("audit-row")).to_have_count(0)
        finally:
            await browser.close()

    [exported] = await services.audit.find(action="audit.export")
    assert exported.login == "vera"
    assert exported.details["filter_action"] == "customer.*"
    assert exported.details["filter_login"] == "anna"
    assert problems == []
