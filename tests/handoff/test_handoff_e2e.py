"""The handoff end to end in headless Chromium: a customer in the website widget asks for a person,
an operator signs in to the console in a second browser context, takes the chat, both write to
each other live, the operator hands the chat back and the bot answers again. The real
application on a real port; screenshots of both sides land in test-artifacts/ for people."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import create_app
from bot.config import Settings
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
HAVE_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"
WAIT = 15_000  # ms, for every expectation: generous for a slow CI machine, instant when it works
# Expected in the console's log: the first GET /me before signing in answers 401.
EXPECTED_ERRORS = re.compile(r"status of 401")


@pytest.fixture
async def live(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[tuple[str, Services]]:
    """The real application (the widget channel comes from the registry) on a free port."""
    services = build_services(settings, nlu=demo_nlu)
    await services.start()
    await services.operators.add(
        Operator("anna", "Анна", departments=("general", "billing", "technical", "sales")),
        PASSWORD,
    )
    runner = web.AppRunner(create_app(settings, services=services), shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", services
    await runner.cleanup()
    await services.close()


@pytest.mark.skipif(
    not CHROMIUM.exists() or not HAVE_PLAYWRIGHT,
    reason="needs Debian's chromium at /usr/bin/chromium and the playwright package "
    "(scripts/system-deps.sh and the dev extras install both)",
)
async def test_customer_and_operator_talk_then_the_bot_takes_over_again(
    live: tuple[str, Services],
) -> None:
    from playwright.async_api import Page, async_playwright, expect

    base, _ = live
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []

    def watch(page: Page, who: str) -> None:
        page.on("pageerror", lambda exc: problems.append(f"{who}: {exc}"))
        page.on(
            "console",
            lambda m: (
                problems.append(f"{who}: {m.text}")
                if m.type == "error" and not EXPECTED_ERRORS.search(m.text)
                else None
            ),
        )

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            # Two contexts: no shared cookies or storage, as two different people's browsers.
            customer_context = await browser.new_context(
                locale="ru-RU", viewport={"width": 1100, "height": 800}
            )
            operator_context = await browser.new_context(
                locale="ru-RU", viewport={"width": 1400, "height": 850}
            )

            # --- the customer asks for a person -------------------------------------------------
            site = await customer_context.new_page()
            watch(site, "widget")
            await site.goto(base + "/")
            await site.get_by_role("button", name="Чат").click()
            box = site.get_by_role("textbox", name="Напишите сообщение…")
            await box.fill("позовите оператора")
            await box.press("Enter")
            widget_log = site.get_by_role("log")
            await expect(widget_log).to_contain_text(
                "Передаю ваш вопрос оператору", timeout=WAIT
            )

            # --- the operator signs in and sees the chat waiting --------------------------------
            console = await operator_context.new_page()
            watch(console, "console")
            tid = console.get_by_test_id
            await console.goto(base + "/operator/")
            await tid("login-input").fill("anna")
            await tid("password-input").fill(PASSWORD)
            await tid("login-submit").click()
            await expect(tid("login-form")).to_be_hidden(timeout=WAIT)
            await expect(console.get_by_role("banner")).to_contain_text("Анна", timeout=WAIT)

            waiting = tid("queue-list").get_by_test_id("queue-item")
            await expect(waiting).to_have_count(1, timeout=WAIT)
            await expect(waiting).to_contain_text("Сайт")  # the widget's channel
            await console.screenshot(path=str(ARTIFACTS / "console-queue.png"))

            # --- the operator takes it and writes -----------------------------------------------
            await waiting.get_by_test_id("claim-button").click()
            await expect(tid("my-list").get_by_test_id("my-item")).to_have_count(1, timeout=WAIT)
            await expect(waiting).to_have_count(0, timeout=WAIT)
            view = tid("conversation-view")
            messages = view.get_by_test_id("message")
            await expect(messages.filter(has_text="позовите оператора")).to_have_attribute(
                "data-from", "customer", timeout=WAIT
            )
            composer = tid("composer-input")
            await expect(composer).to_be_enabled(timeout=WAIT)
            await composer.fill("Здравствуйте! Меня зовут Анна, чем помочь?")
            await tid("composer-send").click()
            await expect(
                messages.filter(has_text="Меня зовут Анна, чем помочь?")
            ).to_have_attribute("data-from", "operator", timeout=WAIT)
            await expect(composer).to_have_value("")

            # The customer sees the operator join and the reply, without a reload.
            from_operator = widget_log.locator(".msg.from-operator")
            await expect(from_operator).to_have_count(1, timeout=WAIT)
            await expect(from_operator).to_contain_text("Меня зовут Анна, чем помочь?")
            await expect(widget_log).to_contain_text("Анна подключился")

            # The customer answers; the console shows it live.
            await box.fill("Не работает интернет с утра")
            await box.press("Enter")
            answer = messages.filter(has_text="Не работает интернет с утра")
            await expect(answer).to_have_count(1, timeout=WAIT)
            await expect(answer).to_have_attribute("data-from", "customer")
            await expect(tid("customer-card")).to_be_visible()
            await console.screenshot(path=str(ARTIFACTS / "console-conversation.png"))
            await site.screenshot(path=str(ARTIFACTS / "widget-with-operator.png"))

            # --- back to the bot ----------------------------------------------------------------
            await tid("release-button").click()
            await expect(tid("my-list").get_by_test_id("my-item")).to_have_count(0, timeout=WAIT)
            await expect(composer).to_be_disabled(timeout=WAIT)
            await expect(widget_log).to_contain_text(
                "Вы снова общаетесь с ботом", timeout=WAIT
            )
            bot = widget_log.locator(".msg.from-bot")
            before = await bot.count()
            await box.fill("какие тарифы в Чите")
            await box.press("Enter")
            await expect(bot).to_have_count(before + 1, timeout=WAIT)
            await expect(bot.last).to_contain_text("Тарифы в городе Чита")
            # Nothing more from the operator reached the customer.
            await expect(from_operator).to_have_count(1)

            assert problems == []
        finally:
            await browser.close()
