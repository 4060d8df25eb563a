"""Where to pay when no terminal is near: never a terminal hundreds of kilometres away — an
office that takes payments in the customer's city, then paying online."""

from __future__ import annotations

import csv
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.config import DEMO_CATALOG, Settings
from bot.intents.nlu import Nlu
from bot.services import Services, build_services
from tests.conftest import Say, texts

BRATSK_CENTRE = {"lat": 56.1517, "lon": 101.634}


async def test_terminal_far_away_is_never_offered(say: Say) -> None:
    await say("pay-far", "где ближайший терминал оплаты?")
    answer = await say("pay-far", location={"lat": 55.75, "lon": 37.61})  # Moscow
    text = texts(answer)
    assert "оплатить онлайн" in text
    assert "💳" not in text  # no terminal block at all
    for city in ("Чита", "Братск", "Иркутск", "Хабаровск"):
        assert city not in text


@pytest.fixture
def no_bratsk_terminals(tmp_path: Path) -> Path:
    """The demo catalog with Bratsk's payment terminals taken away."""
    target = tmp_path / "catalog"
    shutil.copytree(DEMO_CATALOG, target)
    path = target / "offices.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    kept = [r for r in rows if not (r[1] == "bratsk" and r[2] == "terminal")]
    assert len(kept) < len(rows)
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(kept)
    return target


@pytest.fixture
async def bratsk_client(
    aiohttp_client: Any, settings: Settings, demo_nlu: Nlu, no_bratsk_terminals: Path
) -> AsyncIterator[TestClient]:
    settings = replace(settings, data_dir=no_bratsk_terminals)
    services: Services = build_services(settings, nlu=demo_nlu)
    yield await aiohttp_client(create_app(settings, services=services))
    await services.close()


async def _say(client: TestClient, sender: str, **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/messages", json={"sender": sender, **body})
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_no_terminal_in_the_city_points_to_an_office_that_takes_payments(
    bratsk_client: TestClient,
) -> None:
    answer = await _say(bratsk_client, "pay-city", text="терминалы оплаты в Братске")
    text = texts(answer)
    assert "В городе Братск нет терминалов, но оплатить можно в офисе" in text
    assert "🏢" in text
    assert "💳" not in text


async def test_no_terminal_near_a_location_points_to_an_office_nearby(
    bratsk_client: TestClient,
) -> None:
    await _say(bratsk_client, "pay-geo", text="где ближайший терминал?")
    answer = await _say(bratsk_client, "pay-geo", location=BRATSK_CENTRE)
    text = texts(answer)
    assert "оплатить можно в офисе поблизости" in text
    assert "м от вас" in text or "км от вас" in text
    assert "Чита" not in text
