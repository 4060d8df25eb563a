"""Before any troubleshooting: an outage at the identified customer's address is told (what,
why, until when in the city's time, planned or accident) instead of the troubleshooting tree
(tests/test_troubleshooting.py has the trees and the unidentified customer's address)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient

from bot.catalog.catalog import load_catalog
from bot.config import DEMO_CATALOG
from bot.outages.lookup import outages_at
from bot.outages.matching import Place, covers, place_of, same_street
from bot.outages.model import Outage
from bot.services import Services
from tests.conftest import Say, identity, texts

BUTINA = "750012345678"  # chita, "ул. Бутина, 10, кв. 5", active, internet
CHECKLIST = "Посмотрите на роутер"  # the first step of the no-internet tree
CHITA = ZoneInfo("Asia/Chita")


def outage(**change: Any) -> dict[str, Any]:
    return {
        "outage_id": "d-1",
        "city_id": "chita",
        "street": "Бутина",  # no type word: still ул. Бутина
        "houses": ["8", "10"],
        "services": ["internet", "tv"],
        "kind": "accident",
        "started_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "reason": "Повреждение кабеля при дорожных работах",
        **change,
    }


async def post(client: TestClient, body: dict[str, Any]) -> None:
    resp = await client.post("/api/v1/outages", json=body)
    assert resp.status in (200, 201), await resp.text()


async def test_an_outage_at_the_address_replaces_the_checklist(
    client: TestClient, say: Say
) -> None:
    tomorrow = datetime.now(CHITA).date() + timedelta(days=1)
    end = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 14, 0, tzinfo=CHITA)
    await post(client, outage(expected_end=end.astimezone(UTC).isoformat()))
    text = texts(await say("o-1", "не работает интернет", identity=identity(BUTINA)))
    assert "авария на сети" in text
    assert "не работают интернет и телевидение" in text
    assert "Причина: Повреждение кабеля при дорожных работах." in text
    assert "завтра к 14:00 (время местное)" in text  # Chita time, though posted in UTC
    assert CHECKLIST not in text


async def test_planned_works_and_an_unknown_end(client: TestClient, say: Say) -> None:
    await post(client, outage(kind="planned", houses=[], services=["internet"], reason="Замена"))
    text = texts(await say("o-2", "не работает интернет", identity=identity(BUTINA)))
    assert "идут плановые работы — не работает интернет" in text
    assert "Время восстановления пока уточняется." in text
    assert CHECKLIST not in text


async def test_no_outage_there_keeps_the_checklist(client: TestClient, say: Say) -> None:
    await post(client, outage(outage_id="other-house", houses=["12"]))
    await post(client, outage(outage_id="other-street", street="ул. Ленина", houses=[]))
    await post(client, outage(outage_id="tv-only", services=["tv"]))
    await post(client, outage(outage_id="not-yet", started_at="2099-01-01T00:00:00+09:00"))
    text = texts(await say("o-3", "не работает интернет", identity=identity(BUTINA)))
    assert CHECKLIST in text
    assert "авария" not in text


async def test_a_closed_outage_is_no_longer_told(client: TestClient, say: Say) -> None:
    await post(client, outage())
    assert (await client.delete("/api/v1/outages/d-1")).status == 200
    text = texts(await say("o-4", "не работает интернет", identity=identity(BUTINA)))
    assert CHECKLIST in text


async def test_an_unidentified_customer_is_asked_the_address(client: TestClient, say: Say) -> None:
    await post(client, outage(houses=[]))
    text = texts(await say("o-5", "не работает интернет"))
    assert "Напишите адрес" in text  # where to look: nothing is claimed without it
    assert "авария" not in text
    assert "авария на сети" in texts(await say("o-5", "Чита, Бутина 3"))


async def test_a_blocked_account_is_told_first(
    client: TestClient, say: Say, services: Services
) -> None:
    accounts = await services.billing.accounts_in_city("chita")  # type: ignore[attr-defined]
    accounts += await services.billing.accounts_in_city("bratsk")  # type: ignore[attr-defined]
    blocked = next(a for a in accounts if a.status == "blocked")
    place = place_of(services.catalog, blocked.city_id, blocked.address)
    assert place is not None
    await post(client, outage(city_id=blocked.city_id, street=place.street, houses=[]))
    answer = await say("o-6", "не работает интернет", identity=identity(blocked.contract_number))
    text = texts(answer)
    assert text.index("задолженности") < text.index("авария на сети")
    assert CHECKLIST not in text


async def test_outages_at_for_the_troubleshooting_trees(services: Services) -> None:
    assert services.outages is not None
    catalog = services.catalog
    board = services.outages
    # The demo accident: the whole of ул. Курнатовского in Chita, internet and TV.
    [demo] = await outages_at(catalog, "chita", "курнатовского", "5", board=board)
    assert demo.outage_id == "2026-1130-ch-01"
    assert await outages_at(catalog, "chita", "на улице Курнатовского", "", board=board)
    assert await outages_at(catalog, "chita", "Бутина", "10", board=board) == []
    only = ("phone",)
    phone = await outages_at(catalog, "chita", "курнатовского", "5", services=only, board=board)
    assert phone == []


def test_streets_compare_as_the_coverage_matcher_does() -> None:
    assert same_street("ул. Бутина", "Бутина")
    assert same_street("ул. Карла Маркса", "Маркса Карла улица")
    assert same_street("ул. Журавлёва", "журавлева")
    assert not same_street("ул. Мира", "пер. Мира")
    assert not same_street("ул. Мира", "ул. Мирная")
    catalog = load_catalog(DEMO_CATALOG)
    base = Outage(
        "x", "bratsk", "ул. Мира", ("39А",), ("internet",), "accident",
        datetime(2026, 1, 1, tzinfo=UTC), None, "r",
    )  # fmt: skip
    assert covers(base, Place("bratsk", "ул. Мира", "39а"))
    assert not covers(base, Place("bratsk", "пер. Мира", "39а"))
    assert not covers(base, Place("chita", "ул. Мира", "39а"))
    typed = place_of(catalog, "bratsk", "улица мира д 39 А кв 14")
    assert typed == Place("bratsk", "ул. Мира", "39а")
