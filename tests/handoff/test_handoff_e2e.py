"""The handoff end to end in headless Chromium: a customer in the website widget asks for a person,
an operator signs in to the console in a second browser context, takes the chat, both write to
each other live, the operator hands the chat back and the bot answers again. The real
application on a real port; screenshots land in test-artifacts/ for people to look at."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

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
CONTRACT = "380300112233"  # a demo account in Bratsk


@pytest.fixture
async def live(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[tuple[str, Services]]:
    """The real application on a free port; the widget channel comes from the registry."""
    services = build_services(settings, nlu=demo_nlu)
    await services.start()
    await services.operators.add(
        Operator("anna", "Анна", departments=("general", "billing", "technical", "sales")),
        PASSWORD,
    )
    async with serve(settings, services) as base:
        yield base, services
    await services.close()


def sms_code(settings: Settings) -> str:
    """The one-time code the demo notifier 'sent' to the customer's phone."""
    folder = settings.var_dir / "notifications"
    [sms] = folder.glob("*.sms.json")
    match = re.search(r"\b(\d{6})\b", json.loads(sms.read_text(encoding="utf-8"))["text"])
    assert match, sms
    return match.group(1)


@needs_chromium
async def test_customer_and_operator_talk_then_the_bot_takes_over_again(
    live: tuple[str, Services], settings: Settings
) -> None:
    from playwright.async_api import Page, async_playwright, expect

    base, services = live
    account = await services.billing.account(CONTRACT)
    assert account is not None
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    sockets: dict[str, list[str]] = {"widget": [], "console": []}
    loads: dict[str, list[str]] = {"widget": [], "console": []}

    def watch(page: Page, who: str) -> None:
        collect_errors(page, problems, EXPECTED_ERRORS, who)
        page.on("websocket", lambda ws: sockets[who].append(ws.url))
        page.on("load", lambda p: loads[who].append(p.url))

    async with async_playwright() as p:
        browser = await launch(p)
        try:
            # Two contexts: no cookies or storage shared, as two people's browsers.
            customer = await browser.new_context(
                locale="ru-RU", viewport={"width": 1100, "height": 800}
            )
            operator = await browser.new_context(
                locale="ru-RU", viewport={"width": 1400, "height": 850}
            )

            # --- the customer signs in through the chat, then asks for a person ---------------
            site = await customer.new_page()
            watch(site, "widget")
            await site.goto(base + "/")
            await site.get_by_role("button", name="Чат").click()
            box = site.get_by_role("textbox", name="Напишите сообщение…")
            chat = site.get_by_role("log")
            bot = chat.locator(".msg.from-bot")

            async def say(text: str) -> None:
                await box.fill(text)
                await box.press("Enter")

            await say("какой у меня баланс")
            await chat.get_by_role("button", name="Войти по номеру договора").click(timeout=WAIT)
            await expect(bot.last).to_contain_text("Напишите номер договора", timeout=WAIT)
            await say(CONTRACT)
            await expect(bot.last).to_contain_text("Введите код из сообщения", timeout=WAIT)
            await say(sms_code(settings))
            await expect(chat).to_contain_text(f"вы вошли по договору {CONTRACT}", timeout=WAIT)

            await say("позовите оператора")
            await expect(bot.last).to_contain_text(
                "Передаю ваш вопрос оператору. Пожалуйста, оставайтесь в чате", timeout=WAIT
            )
            # No operator has signed in yet: told so, with a call back offered, not a wait.
            await expect(chat).to_contain_text("Сейчас нет операторов на связи", timeout=WAIT)

            # --- the operator signs in and finds the chat waiting -----------------------------
            console = await operator.new_page()
            watch(console, "console")
            tid = console.get_by_test_id
            await sign_in(console, base, "anna", PASSWORD)
            await expect(console.get_by_role("banner")).to_contain_text("Анна", timeout=WAIT)

            waiting = tid("queue-list").get_by_test_id("queue-item")
            await expect(waiting).to_have_count(1, timeout=WAIT)
            await expect(waiting).to_contain_text("Сайт")  # the widget's channel
            await expect(waiting).to_contain_text(account.holder_name)
            await expect(tid("my-list").get_by_test_id("my-item")).to_have_count(0)
            await console.screenshot(path=str(ARTIFACTS / "console-queue.png"))

            # --- the operator takes it, sees who it is, and writes ----------------------------
            await waiting.get_by_test_id("claim-button").click()
            mine = tid("my-list").get_by_test_id("my-item")
            await expect(mine).to_have_count(1, timeout=WAIT)
            await expect(waiting).to_have_count(0, timeout=WAIT)
            messages = tid("conversation-view").get_by_test_id("message")
            await expect(messages.filter(has_text="позовите оператора")).to_have_attribute(
                "data-from", "customer", timeout=WAIT
            )
            card = tid("customer-card")
            await expect(card).to_be_visible()
            await expect(card).to_contain_text(CONTRACT)
            await expect(card).to_contain_text(account.holder_name)
            await expect(card).to_contain_text("Братск")
            composer = tid("composer-input")
            await expect(composer).to_be_enabled(timeout=WAIT)
            await composer.fill("Здравствуйте, Андрей! Меня зовут Анна, чем помочь?")
            await tid("composer-send").click()
            await expect(messages.filter(has_text="Меня зовут Анна")).to_have_attribute(
                "data-from", "operator", timeout=WAIT
            )
            await expect(composer).to_have_value("")

            # The customer sees the operator join and the reply appear, with no reload.
            from_operator = chat.locator(".msg.from-operator")
            await expect(from_operator).to_have_count(1, timeout=WAIT)
            await expect(from_operator).to_contain_text("Меня зовут Анна, чем помочь?")
            await expect(chat).to_contain_text("Оператор Анна подключился к диалогу")

            # The customer answers; the console shows it as it comes, over its WebSocket.
            await say("С утра не работает интернет")
            answer = messages.filter(has_text="С утра не работает интернет")
            await expect(answer).to_have_count(1, timeout=WAIT)
            await expect(answer).to_have_attribute("data-from", "customer")
            await expect(mine).to_contain_text("С утра не работает интернет")

            await composer.fill("Вижу ваш договор, проверяю линию. Минуту, пожалуйста.")
            await composer.press("Enter")
            await expect(from_operator).to_have_count(2, timeout=WAIT)
            await expect(from_operator.last).to_contain_text("проверяю линию")
            await expect(messages.filter(has_text="проверяю линию")).to_have_count(1)
            await console.screenshot(path=str(ARTIFACTS / "console-conversation.png"))
            await site.screenshot(path=str(ARTIFACTS / "widget-with-operator.png"))

            # --- back to the bot --------------------------------------------------------------
            await tid("release-button").click()
            await expect(mine).to_have_count(0, timeout=WAIT)
            await expect(composer).to_be_disabled(timeout=WAIT)
            await expect(tid("conversation-view")).to_contain_text("Диалог ведёт бот.")
            await expect(chat).to_contain_text(
                "Оператор завершил работу с вашим вопросом. Вы снова общаетесь с ботом",
                timeout=WAIT,
            )
            before = await bot.count()
            await say("какие тарифы в Чите")
            await expect(bot).to_have_count(before + 1, timeout=WAIT)
            await expect(bot.last).to_contain_text("Тарифы в городе Чита")
            await expect(from_operator).to_have_count(2)  # nothing more from the operator

            # Everything above arrived live: each page loaded once and kept one socket.
            assert loads == {"widget": [base + "/"], "console": [base + "/operator/"]}
            assert len(sockets["widget"]) == 1, sockets
            assert len(sockets["console"]) == 1, sockets
            assert problems == []
        finally:
            await browser.close()
