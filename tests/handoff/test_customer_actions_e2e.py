"""An account action from the console in headless Chromium: a blocked customer, signed in by the
site (REST channel, signed identity), asks for a person; the operator takes the chat, previews a
promised payment from the customer card, confirms it in the page, and sees the card come back
active with the promised payment and a log entry under their login. The real application on a
real port with the embedded ledger; screenshots land in test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal

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
BLOCKED = "750045678924"  # a demo account in Chita, -450 ₽, blocked
SENDER = "site-e2e-actions"


@pytest.fixture
async def live(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[tuple[str, Services]]:
    services = build_services(settings, nlu=demo_nlu)
    await services.start()
    await services.operators.add(
        Operator("anna", "Анна", departments=("general", "billing", "technical", "sales")),
        PASSWORD,
    )
    async with serve(settings, services) as base:
        yield base, services
    await services.close()


async def customer_asks_for_a_person(base: str) -> None:
    """The provider's site passes who the customer is (HMAC of the contract) with the message."""
    async with aiohttp.ClientSession() as http:
        body = {"sender": SENDER, "text": "позовите оператора", "identity": identity(BLOCKED)}
        async with http.post(base + "/api/v1/messages", json=body) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["state"] == "queued"


@needs_chromium
async def test_operator_gives_a_promised_payment_from_the_card(
    live: tuple[str, Services],
) -> None:
    from playwright.async_api import async_playwright, expect

    base, services = live
    before = await services.billing.account(BLOCKED)
    assert before is not None
    assert before.status == "blocked"
    await customer_asks_for_a_person(base)
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []

    async with async_playwright() as p:
        browser = await launch(p)
        try:
            context = await browser.new_context(
                locale="ru-RU", viewport={"width": 1400, "height": 950}
            )
            page = await context.new_page()
            collect_errors(page, problems, EXPECTED_ERRORS)
            tid = page.get_by_test_id
            await sign_in(page, base, "anna", PASSWORD)

            waiting = tid("queue-list").get_by_test_id("queue-item")
            await expect(waiting).to_have_count(1, timeout=WAIT)
            await waiting.get_by_test_id("claim-button").click()
            card = tid("customer-card")
            await expect(card).to_contain_text(BLOCKED, timeout=WAIT)
            status = card.locator('dd[data-field="status"]')
            await expect(status).to_have_text("Заблокирован")
            await expect(tid("operations-log")).to_contain_text("Операций по договору пока не было")
            # Nothing to take off a pause, no planned change: those buttons are off.
            await expect(tid("action-resume")).to_be_disabled()
            await expect(tid("action-cancel_tariff_change")).to_be_disabled()

            # --- preview: the terms, and a confirm step in the page -------------------------
            await tid("action-promised_payment").click()
            panel = tid("action-panel")
            await expect(panel).to_contain_text("Подключить обещанный платёж?", timeout=WAIT)
            terms = tid("action-terms")
            amount_text = await terms.locator('dd[data-field="amount"]').inner_text()
            amount = Decimal(re.sub(r"[^\d,]", "", amount_text).replace(",", "."))
            assert amount >= -before.balance_rub
            await expect(terms.locator('dd[data-field="unblocks"]')).to_have_text("да")
            # Previewing changed nothing.
            after_preview = await services.billing.account(BLOCKED)
            assert after_preview is not None
            assert after_preview.status == "blocked"
            await page.screenshot(path=str(ARTIFACTS / "console-action-preview.png"))

            # --- confirm: done, the card is fresh ------------------------------------------
            await tid("action-confirm").click()
            await expect(tid("action-result")).to_have_text(
                "Обещанный платёж подключён.", timeout=WAIT
            )
            await expect(status).to_have_text("Активен", timeout=WAIT)
            await expect(card.locator('dd[data-field="promised_payment"]')).to_contain_text("до")
            entries = tid("operations-list").get_by_test_id("operation-item")
            await expect(entries).to_have_count(1, timeout=WAIT)
            await expect(entries.first).to_have_attribute("data-status", "done")
            await expect(entries.first).to_contain_text("Обещанный платёж")
            await expect(entries.first).to_contain_text("anna")
            await expect(entries.first).to_contain_text("выполнено")
            await expect(tid("action-promised_payment")).to_be_enabled()
            await page.screenshot(path=str(ARTIFACTS / "console-action-done.png"))

            # The billing agrees with the page, and the log names the operator.
            after = await services.billing.account(BLOCKED)
            assert after is not None
            assert after.status == "active"
            assert after.promised_payment is not None
            assert after.promised_payment.amount_rub == amount
            [record] = await services.account_actions.oplog.for_contract(BLOCKED)
            assert (record.by, record.status) == ("anna", "done")
            assert record.conversation_id == f"rest:{SENDER}:{SENDER}"

            # A second promised payment is refused, in Russian, in the panel.
            await tid("action-close").click()
            await expect(panel).to_be_hidden()
            await tid("action-promised_payment").click()
            error = tid("action-error")
            await expect(error).to_contain_text("обещанный платёж уже действует", timeout=WAIT)
            await expect(error).to_have_attribute("data-reason", "promised_active")
            await tid("action-close").click()

            # A pause asks for dates first; the preview shows them, «Отмена» leaves it undone.
            await tid("action-suspend").click()
            await tid("action-to").fill("")
            await tid("action-preview").click()
            await expect(tid("action-error")).to_have_text("Укажите даты начала и окончания паузы.")
            start, end = date.today() + timedelta(days=3), date.today() + timedelta(days=12)
            await tid("action-from").fill(start.isoformat())
            await tid("action-to").fill(end.isoformat())
            await tid("action-preview").click()
            await expect(panel).to_contain_text("Поставить договор на паузу?", timeout=WAIT)
            await expect(tid("action-terms").locator('dd[data-field="days"]')).to_have_text("10")
            await expect(tid("action-terms").locator('dd[data-field="to"]')).to_have_text(
                end.strftime("%d.%m.%Y")
            )
            await tid("action-cancel").click()
            await expect(panel).to_be_hidden()

            # A tariff is picked from what the card offers; the preview names it.
            await tid("action-change_tariff").click()
            choice = tid("action-choice")
            await choice.select_option(index=1)
            picked = (await choice.locator("option:checked").inner_text()).split(" · ")[0]
            await tid("action-preview").click()
            await expect(panel).to_contain_text("Сменить тариф?", timeout=WAIT)
            await expect(tid("action-terms").locator('dd[data-field="tariff"]')).to_have_text(
                picked
            )
            await tid("action-cancel").click()
            await expect(panel).to_be_hidden()
            # Neither the refused preview nor the cancelled ones left anything in the log.
            await expect(entries).to_have_count(1)
            paused = await services.billing.account(BLOCKED)
            assert paused is not None
            assert paused.suspension is None
        finally:
            await browser.close()
    # The 409 of the refused preview is the one error the browser reports, by design.
    assert [m for m in problems if "409" not in m] == []
