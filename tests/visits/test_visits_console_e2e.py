"""A technician's visit in the console's «Заявки», in headless Chromium against the real
application on a real port, with the visit clock fixed (Tuesday 10 March 2026, 12:00 in Chita):
an identified customer books a visit through the REST channel into a window that is then full;
the operator opens the visit record (the window in the city's time, not the browser's), moves it
to another window (the customer is told; the old window is free again for others), cancels it
after an inline confirmation, and sees a refusal in Russian when a window has begun meanwhile.
Screenshots land in test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from bot.config import Settings
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.conftest import ROOT, identity, texts
from tests.console_browser import WAIT, collect_errors, launch, needs_chromium, serve, sign_in
from tests.visits.conftest import CHITA, CHITA_2, CHITA_3, CHITA_4, NOW, Clock, visit_buttons

pytestmark = needs_chromium

ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery"
SENDER = "visit-e2e"
CONVERSATION = f"rest:{SENDER}:{SENDER}"
PROBLEM = "нужен мастер, роутер не включается"
EXPECTED_ERRORS = re.compile(r"status of (401|400)")  # the first GET /me; the refused move
FIRST = "2026-03-10T15:00:00+09:00"  # Tuesday's 15:00 in Chita: the customer's window


@pytest.fixture
async def live(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[tuple[str, Services, Clock]]:
    services = build_services(settings, nlu=demo_nlu)
    assert services.visits is not None
    clock = Clock(NOW)
    services.visits.clock = clock
    await services.start()
    await services.operators.add(Operator("anna", "Анна", departments=("technical",)), PASSWORD)
    async with serve(settings, services) as base:
        yield base, services, clock
    await services.close()


async def as_customer(
    http: aiohttp.ClientSession, base: str, sender: str, contract: str, **body: Any
) -> dict[str, Any]:
    body = {"sender": sender, "identity": identity(contract), **body}
    async with http.post(base + "/api/v1/messages", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()  # type: ignore[no-any-return]


async def book(base: str, sender: str, contract: str, index: int) -> None:
    """«нужен мастер, …», the index-th window offered, «Да»."""
    async with aiohttp.ClientSession() as http:
        windows = await as_customer(http, base, sender, contract, text=PROBLEM)
        pick = visit_buttons(windows, "pick")[index]
        offer = await as_customer(http, base, sender, contract, payload=pick["payload"])
        yes = visit_buttons(offer, "confirm")[0]
        done = await as_customer(http, base, sender, contract, payload=yes["payload"])
        assert "мастер записан" in texts(done)


async def system_lines(base: str) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base}/api/v1/conversations/{CONVERSATION}/messages") as resp,
    ):
        assert resp.status == 200
        return [m["text"] for m in (await resp.json())["messages"] if m["from"] == "system"]


class OperatorApi:
    """anna's own session beside the browser's, to look at the visits through the API."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def login(self) -> None:
        async with self.http.post(
            self.base + "/api/v1/operator/login", json={"login": "anna", "password": PASSWORD}
        ) as resp:
            assert resp.status == 200, await resp.text()

    async def get(self, path: str) -> Any:
        async with self.http.get(self.base + "/api/v1/operator" + path) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def free_starts(self, visit_id: int) -> list[str]:
        body = await self.get(f"/visits/{visit_id}/windows")
        return [w["starts_at"] for w in body["windows"]]


async def test_the_operator_moves_and_cancels_a_visit_in_the_console(
    live: tuple[str, Services, Clock],
) -> None:
    from playwright.async_api import async_playwright, expect

    base, services, clock = live
    visits = services.visits
    assert visits is not None
    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []

    # Another customer at 17:00 (index 1: 15:00 is still open for them), then three in 15:00:
    # the customer's and two more fill Chita's three crews.
    await book(base, "visit-probe", CHITA_4, 1)
    await book(base, SENDER, CHITA, 0)
    await book(base, "visit-b", CHITA_2, 0)
    await book(base, "visit-c", CHITA_3, 0)
    [probe] = await visits.store.booked_of(CHITA_4)
    [mine] = await visits.store.booked_of(CHITA)
    [other] = await visits.store.booked_of(CHITA_2)
    assert probe.starts_at.isoformat() == "2026-03-10T08:00:00+00:00"  # 17:00 in Chita
    assert mine.starts_at.isoformat() == "2026-03-10T06:00:00+00:00"  # 15:00 in Chita
    assert mine.request_id is not None
    assert other.request_id is not None

    anna = OperatorApi(base)
    try:
        await anna.login()
        assert FIRST not in await anna.free_starts(probe.id)  # full

        async with async_playwright() as p:
            browser = await launch(p)
            try:
                # The operator sits in Moscow: the window is still shown in Chita's time.
                context = await browser.new_context(
                    locale="ru-RU", timezone_id="Europe/Moscow",
                    viewport={"width": 1400, "height": 950},
                )  # fmt: skip
                page = await context.new_page()
                collect_errors(page, problems, EXPECTED_ERRORS)
                tid = page.get_by_test_id
                await sign_in(page, base, "anna", PASSWORD)
                await expect(tid("connection-indicator")).to_have_attribute(
                    "data-state", "online", timeout=WAIT
                )
                await tid("view-requests").click()
                listing = tid("requests-list")
                items = listing.get_by_test_id("request-item")
                await expect(items).to_have_count(4, timeout=WAIT)

                # --- the visit record: the visit itself ----------------------------------------
                old_item = listing.locator(f'li[data-id="{mine.request_id}"]')
                await expect(old_item).to_contain_text("Выезд мастера")
                await old_item.locator("button").click()
                detail = tid("request-detail")
                await expect(detail).to_contain_text(f"№ {mine.request_id} · Выезд мастера")
                visit = tid("request-visit")
                await expect(visit).to_be_visible()
                await expect(visit).to_have_attribute("data-visit-id", str(mine.id))
                facts = tid("visit-facts")
                await expect(facts.locator('dd[data-field="window"]')).to_have_text(
                    "вт, 10 марта 2026, 15:00–17:00 (Asia/Chita)"
                )
                await expect(facts.locator('dd[data-field="problem"]')).to_have_text(PROBLEM)
                await expect(facts.locator('dd[data-field="address"]')).to_have_text(
                    "ул. Бутина, 10, кв. 5"
                )
                await expect(facts.locator('dd[data-field="fee"]')).to_have_text("бесплатно")
                await expect(tid("visit-panel")).to_be_hidden()

                # --- «Перенести…»: the free windows, in Chita's time; the next one chosen -------
                await tid("visit-move").click()
                pick = tid("visit-window")
                await expect(pick).to_be_visible(timeout=WAIT)
                labels = [o.strip() for o in await pick.locator("option").all_inner_texts()]
                assert labels[:2] == ["вт, 10 марта, 17:00–19:00", "ср, 11 марта, 09:00–11:00"]
                assert not any(label.startswith("вт, 10 марта, 15:00") for label in labels)
                await pick.select_option(label="вт, 10 марта, 17:00–19:00")
                await tid("visit-move-confirm").click()

                # The new record is opened; the old one is closed.
                result = tid("visit-result")
                await expect(result).to_have_text(
                    "Визит перенесён: вт, 10 марта, 17:00–19:00. Клиенту отправлено сообщение.",
                    timeout=WAIT,
                )
                await expect(items).to_have_count(5, timeout=WAIT)
                await expect(old_item).to_have_attribute("data-status", "cancelled")
                [moved] = await visits.store.booked_of(CHITA)
                assert moved.id == mine.id
                assert moved.request_id not in (None, mine.request_id)
                await expect(detail).to_have_attribute("data-id", str(moved.request_id))
                await expect(detail).to_have_attribute("data-status", "new")
                await expect(facts.locator('dd[data-field="window"]')).to_have_text(
                    "вт, 10 марта 2026, 17:00–19:00 (Asia/Chita)"
                )
                await expect(tid("visit-note")).to_have_text(
                    f"Перенесён из заявки № {mine.request_id}"
                )
                await expect(tid("visit-panel")).to_be_hidden()
                await page.screenshot(path=str(ARTIFACTS / "console-visit-moved.png"))

                # The customer is told; the old window is free again for others.
                told = await system_lines(base)
                assert len(told) == 1
                assert told[0].startswith(
                    "Визит мастера перенесён оператором: сегодня, 17:00–19:00."
                ), told
                assert FIRST in await anna.free_starts(probe.id)

                # --- «Отменить визит»: an inline confirmation; «Не отменять» keeps it ----------
                await tid("visit-cancel").click()
                await expect(tid("visit-cancel-question")).to_have_text(
                    "Отменить визит мастера? Клиенту придёт сообщение об отмене."
                )
                await tid("visit-cancel-back").click()
                await expect(tid("visit-panel")).to_be_hidden()
                assert len(await visits.store.booked_of(CHITA)) == 1
                await tid("visit-cancel").click()
                await page.screenshot(path=str(ARTIFACTS / "console-visit-cancel-confirm.png"))
                await tid("visit-cancel-confirm").click()
                await expect(result).to_have_text(
                    "Визит отменён. Клиенту отправлено сообщение.", timeout=WAIT
                )
                await expect(detail).to_have_attribute("data-status", "cancelled", timeout=WAIT)
                await expect(tid("visit-move")).to_be_hidden()
                await expect(tid("visit-cancel")).to_be_hidden()
                await expect(tid("visit-note")).to_contain_text("Визит уже не действует")
                await page.screenshot(path=str(ARTIFACTS / "console-visit-cancelled.png"))
                assert await visits.store.booked_of(CHITA) == []
                booked = (await anna.get("/visits"))["visits"]
                assert mine.id not in [v["id"] for v in booked]
                assert (await system_lines(base))[1:] == [
                    "Оператор отменил визит мастера (сегодня, 17:00–19:00). Если мастер всё ещё "
                    "нужен, напишите «вызвать мастера»."
                ]

                # --- a refusal in Russian: the chosen window begins before the operator confirms
                await listing.locator(f'li[data-id="{other.request_id}"] button').click()
                await expect(detail).to_have_attribute("data-id", str(other.request_id))
                await tid("visit-move").click()
                await expect(pick).to_be_visible(timeout=WAIT)
                await pick.select_option(label="вт, 10 марта, 17:00–19:00")
                clock.at = datetime(2026, 3, 10, 8, 30, tzinfo=UTC)  # 17:30 in Chita
                await tid("visit-move-confirm").click()
                error = tid("visit-error")
                await expect(error).to_have_text(
                    "Это время уже началось или прошло. Выберите другое.", timeout=WAIT
                )
                await expect(error).to_have_attribute("data-reason", "past")
                # Fresh windows under it: Tuesday is over (an hour's lead), Wednesday first.
                await expect(pick.locator("option").first).to_have_text(
                    "ср, 11 марта, 09:00–11:00", timeout=WAIT
                )
                await page.screenshot(path=str(ARTIFACTS / "console-visit-refused.png"))
                [still] = await visits.store.booked_of(CHITA_2)
                assert still.starts_at == other.starts_at
            finally:
                await browser.close()
    finally:
        await anna.http.close()
    assert problems == []
