"""The operator console on one gateway process, the customer's widget on another (issue 11), in
headless Chromium: two real ``python -m bot run`` processes on one real ``redis-server`` and one
data directory. The operator signs in to process A and goes online; a customer on process B
asks for a person and is told an operator will answer (B sees A's operator online); the chat
reaches A's console and is routed to the operator; her reply reaches the widget on B, and what
the customer writes next shows up on A at once, over the console's event socket.

The console polls its queue every 15 s as a fallback; every wait for something that must come
live is shorter than that, so only the cross-process events can make it pass.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.console_browser import WAIT, collect_errors, launch, needs_chromium, sign_in
from tests.gateway_process import FOREIGN_ENV, ROOT, free_port, start_gateway

PASSWORD = "correct horse battery"
LIVE = 10_000  # ms: anything that must arrive live (the console's fallback poll is 15 s)
STOP_LIMIT = 30.0  # a SIGTERM'd gateway drains and exits; only stops a hang


async def _add_operator(var_dir: Path, redis_url: str) -> None:
    """Through the CLI, as an administrator would: wherever the operators are kept."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(FOREIGN_ENV)}
    env.update(BOT_VAR_DIR=str(var_dir), REDIS_URL=redis_url, NO_PROXY="*")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "operators", "add", "anna", "--name", "Анна",
        "--departments", "general,billing,technical,sales",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    out, err = await process.communicate(f"{PASSWORD}\n".encode())
    assert process.returncode == 0, (out + err).decode()


@pytest.fixture
async def two_gateways(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Processes A and B: one Redis, one var dir (the files both read), a port each."""
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    await _add_operator(var_dir, redis_url)
    settings = {"REDIS_URL": redis_url, "BOT_VAR_DIR": str(var_dir)}
    processes: list[asyncio.subprocess.Process] = []
    async with aiohttp.ClientSession() as http:
        try:
            bases = []
            for name in ("a", "b"):
                port = free_port()
                processes.append(
                    await start_gateway(
                        http,
                        port=port,
                        settings=settings,
                        log=tmp_path / f"{name}.log",
                        name=f"gateway {name}",
                    )
                )
                bases.append(f"http://127.0.0.1:{port}")
            yield bases[0], bases[1]
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
            for process in processes:
                async with asyncio.timeout(STOP_LIMIT):
                    await process.wait()


@needs_chromium
async def test_operator_on_process_a_and_customer_on_process_b_talk_live(
    two_gateways: tuple[str, str],
) -> None:
    from playwright.async_api import async_playwright, expect

    base_a, base_b = two_gateways
    problems: list[str] = []
    async with async_playwright() as p:
        browser = await launch(p)
        try:
            operator = await browser.new_context(locale="ru-RU")
            customer = await browser.new_context(locale="ru-RU")

            # --- the operator signs in to process A and goes online ---------------------------
            console = await operator.new_page()
            collect_errors(console, problems, who="console on A")
            tid = console.get_by_test_id
            await sign_in(console, base_a, "anna", PASSWORD)
            await expect(tid("connection-indicator")).to_have_attribute(
                "data-state", "online", timeout=WAIT
            )
            status = tid("status-toggle")
            await expect(status).to_have_text("Отошёл", timeout=WAIT)
            await status.click()
            await expect(status).to_have_text("На линии", timeout=WAIT)

            # --- the customer, on process B, asks for a person --------------------------------
            site = await customer.new_page()
            collect_errors(site, problems, who="widget on B")
            await site.goto(base_b + "/")
            await site.get_by_role("button", name="Чат").click()
            box = site.get_by_role("textbox", name="Напишите сообщение…")
            chat = site.get_by_role("log")

            async def say(text: str) -> None:
                await box.fill(text)
                await box.press("Enter")

            await say("позовите оператора")
            # B counts Anna, who went online through A: a place in line, not "nobody online".
            await expect(chat).to_contain_text("Вы следующий в очереди", timeout=WAIT)
            await expect(chat).not_to_contain_text("Сейчас нет операторов на связи")

            # --- the chat reaches A's console at once and is routed to Anna -------------------
            shown = tid("queue-item").or_(tid("my-item"))
            await expect(shown).to_have_count(1, timeout=LIVE)
            mine = tid("my-list").get_by_test_id("my-item")
            await expect(mine).to_have_count(1, timeout=WAIT)  # the next routing round
            await mine.click()
            messages = tid("conversation-view").get_by_test_id("message")
            await expect(messages.filter(has_text="позовите оператора")).to_have_attribute(
                "data-from", "customer", timeout=WAIT
            )

            # --- Anna answers on A; the customer sees it on B ---------------------------------
            composer = tid("composer-input")
            await expect(composer).to_be_enabled(timeout=WAIT)
            await composer.fill("Здравствуйте! Меня зовут Анна, чем помочь?")
            await tid("composer-send").click()
            from_operator = chat.locator(".msg.from-operator")
            await expect(from_operator).to_have_count(1, timeout=LIVE)
            await expect(from_operator).to_contain_text("Меня зовут Анна, чем помочь?")
            await expect(chat).to_contain_text("Оператор Анна подключился к диалогу")

            # --- the customer writes again on B; Anna sees it on A at once --------------------
            await say("Не работает интернет с утра")
            answer = messages.filter(has_text="Не работает интернет с утра")
            await expect(answer).to_have_count(1, timeout=LIVE)
            await expect(answer).to_have_attribute("data-from", "customer")
            await expect(from_operator).to_have_count(1)  # nothing shown twice
            assert problems == []
        finally:
            await browser.close()
