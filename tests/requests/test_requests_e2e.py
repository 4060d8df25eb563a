"""The «Заявки» view in headless Chromium against the real application on a real port: a
customer leaves a connection request in the website widget, in another browser (a planned house
in Bratsk, consent, name, phone); it appears in the open view without a reload; the operator opens
the phone, takes the request, moves it to done with a comment; the customer sees the status
message in the widget. Screenshots land in test-artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.config import Settings
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.conftest import ROOT
from tests.console_browser import SIGN_IN_401 as EXPECTED_ERRORS
from tests.console_browser import WAIT, collect_errors, launch, needs_chromium, serve, sign_in

ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"


@pytest.fixture
async def live(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[tuple[str, Services]]:
    services = build_services(settings, nlu=demo_nlu)
    await services.start()
    await services.operators.add(Operator("anna", "Анна", departments=("sales",)), PASSWORD)
    async with serve(settings, services) as base:
        yield base, services
    await services.close()


ASK = "можно подключить Братск, Обручева 21?"


async def open_widget(browser: Any, base: str, problems: list[str]) -> Any:
    """The provider's site (the gateway's demo page) with the chat open, in its own context."""
    context = await browser.new_context(locale="ru-RU", viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"widget: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(f"widget: {m.text}") if m.type == "error" else None,
    )
    await page.goto(base + "/")
    await page.get_by_role("button", name="Чат").click()
    return page


async def type_in_widget(page: Any, text: str) -> None:
    box = page.get_by_role("textbox", name="Напишите сообщение…")
    await box.fill(text)
    await box.press("Enter")


def widget_button(page: Any, title: str) -> Any:
    """A button of the bot's latest answer (older answers lose theirs)."""
    return page.locator(".msg.from-bot .buttons").get_by_role("button", name=title, exact=True)


def bot_said(page: Any, text: str) -> Any:
    return page.locator(".msg.from-bot").filter(has_text=text)


async def leave_a_lead(page: Any) -> None:
    """A planned house → «Оставить заявку» → «Согласен» → name → phone, as a customer types."""
    from playwright.async_api import expect

    await type_in_widget(page, ASK)
    await expect(bot_said(page, "запланировано")).to_have_count(1, timeout=WAIT)
    await widget_button(page, "Оставить заявку").click()
    await expect(widget_button(page, "Не согласен")).to_be_visible(timeout=WAIT)
    await widget_button(page, "Согласен").click()
    await expect(bot_said(page, "Как к вам обращаться")).to_have_count(1, timeout=WAIT)
    await type_in_widget(page, "Анна")
    await expect(bot_said(page, "телефон")).not_to_have_count(0, timeout=WAIT)
    await type_in_widget(page, "+7 914 555-12-34")
    await expect(bot_said(page, "Заявка №")).to_have_count(1, timeout=WAIT)


@needs_chromium
async def test_a_lead_appears_live_and_is_done_and_the_customer_is_told(
    live: tuple[str, Services],
) -> None:
    from playwright.async_api import async_playwright, expect

    base, services = live
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
            await expect(tid("connection-indicator")).to_have_attribute(
                "data-state", "online", timeout=WAIT
            )

            await tid("view-requests").click()
            view = tid("requests-view")
            await expect(view).to_be_visible()
            await expect(view).to_contain_text("Заявок нет", timeout=WAIT)

            # --- the customer leaves a lead in the widget; the view shows it without a reload
            widget = await open_widget(browser, base, problems)
            await leave_a_lead(widget)
            await widget.screenshot(path=str(ARTIFACTS / "widget-lead.png"))
            items = tid("requests-list").get_by_test_id("request-item")
            await expect(items).to_have_count(1, timeout=WAIT)
            item = items.first
            await expect(item).to_have_attribute("data-status", "new")
            await expect(item).to_contain_text("Подключение")
            await expect(item).to_contain_text("Новая")
            await expect(item).to_contain_text("Анна")
            await expect(item).to_contain_text("+7 914 ***-**-34")  # masked
            await expect(item).to_contain_text("ул. Обручева, 21")
            await expect(item).not_to_contain_text("5551234")
            [record] = await services.requests.board.find()
            assert record.conversation_id.startswith("widget:")
            assert record.details["consent_channel"] == "widget"
            await expect(bot_said(widget, f"Заявка № {record.id}")).to_have_count(1)
            await expect(tid("requests-export")).to_have_attribute(
                "href", "/api/v1/operator/requests.csv"
            )

            # Filters: another kind hides it, the city keeps it.
            await tid("requests-filter-kind").select_option("callback")
            await expect(items).to_have_count(0)
            await expect(view).to_contain_text("Нет заявок с такими условиями")
            await tid("requests-filter-kind").select_option("")
            await tid("requests-filter-city").select_option("bratsk")
            await expect(items).to_have_count(1)
            await expect(tid("requests-export")).to_have_attribute(
                "href", "/api/v1/operator/requests.csv?city_id=bratsk"
            )

            # --- open it: the phone on request, the request taken ---------------------------
            await item.locator("button").click()
            detail = tid("request-detail")
            await expect(detail).to_contain_text(f"№ {record.id} · Подключение")
            # The consent the lead was left with follows the house's status.
            await expect(tid("request-facts").locator('dd[data-field="details"]')).to_contain_text(
                "Дом в реестре: подключение запланировано"
            )
            phone = tid("request-facts").locator('dd[data-field="phone"]')
            await expect(phone).to_have_text("+7 914 ***-**-34")
            await tid("request-show-phone").click()
            await expect(phone).to_have_text("+79145551234", timeout=WAIT)
            await expect(tid("request-show-phone")).to_be_hidden()
            history = tid("request-history").get_by_test_id("request-history-entry")
            await expect(history.last).to_have_attribute("data-action", "opened")
            await expect(history.last).to_contain_text("anna")

            await tid("request-take").click()
            assignee = tid("request-facts").locator('dd[data-field="assignee"]')
            await expect(assignee).to_have_text("anna", timeout=WAIT)
            await expect(tid("request-take")).to_be_hidden()
            await expect(item).to_contain_text("anna")

            # --- done, with a comment -------------------------------------------------------
            await tid("request-status").select_option("done")
            await tid("request-comment").fill("Подключено, договор 7512")
            await tid("request-save").click()
            await expect(item).to_have_attribute("data-status", "done", timeout=WAIT)
            await expect(item).to_contain_text("Выполнена")
            await expect(detail).to_have_attribute("data-status", "done")
            actions = [await h.get_attribute("data-action") for h in await history.all()]
            assert actions == ["created", "opened", "assignee", "status", "comment"]
            await expect(history.nth(3)).to_contain_text("Новая → Выполнена")
            await expect(history.nth(4)).to_contain_text("Подключено, договор 7512")
            await page.screenshot(path=str(ARTIFACTS / "console-requests-done.png"))

            # The customer sees it in the widget they left the request in (no reload).
            done = f"Заявка № {record.id} на подключение выполнена. Спасибо, что выбрали нас!"
            await expect(widget.locator(".msg.from-system .text")).to_have_text(
                [done], timeout=WAIT
            )
            await widget.screenshot(path=str(ARTIFACTS / "widget-lead-done.png"))

            # A reload shows the same (the page holds nothing the server does not).
            await page.reload()
            await tid("view-requests").click()
            await expect(items).to_have_count(1, timeout=WAIT)
            await expect(items.first).to_have_attribute("data-status", "done")
        finally:
            await browser.close()

    stored = await services.requests.board.get(record.id)
    assert stored is not None
    assert (stored.status, stored.assignee, stored.comment) == (
        "done", "anna", "Подключено, договор 7512",
    )  # fmt: skip
    messages = await services.store.messages(record.conversation_id)
    assert [m.text for m in messages if m.sender == "system"] == [done]
    assert problems == []
