"""Conversations through the REST channel on a real aiohttp test server."""

from __future__ import annotations

import re

from bot.catalog.catalog import Catalog
from bot.services import Services
from tests.conftest import Say, buttons, identity, texts


def _catalog(services: Services) -> Catalog:
    return services.catalog


def _price(value: object) -> str:
    return str(value).removesuffix(".00").replace(".", ",")


async def test_greeting_offers_the_main_topics(say: Say) -> None:
    answer = await say("u-greet", "Здравствуйте!")
    assert answer["state"] == "bot"
    assert "Здравствуйте" in texts(answer)
    payloads = {b["payload"] for b in buttons(answer)}
    assert {"/tariffs", "/coverage", "/offices", "/balance"} <= payloads


async def test_tariffs_ask_city_then_list_active_tariffs(say: Say, services: Services) -> None:
    catalog = _catalog(services)
    first = await say("u-tariffs", "какие у вас тарифы?")
    city_buttons = buttons(first)
    assert {b["title"] for b in city_buttons} == {c.name for c in catalog.cities.values()}
    chita = next(b for b in city_buttons if b["title"] == "Чита")

    answer = await say("u-tariffs", payload=chita["payload"])
    text = texts(answer)
    for tariff in catalog.tariffs.values():
        if tariff.city_id != "chita":
            assert tariff.tariff_id.split("-")[0] != "chita"
            continue
        if tariff.archived:
            assert tariff.name not in text, "archived tariffs are never offered"
        else:
            assert tariff.name in text
            assert _price(tariff.price_rub) in text


async def test_context_carries_to_another_city(say: Say, services: Services) -> None:
    await say("u-ctx", "тарифы в Чите")
    answer = await say("u-ctx", "а в Братске?")
    text = texts(answer)
    assert "Братск" in text
    for tariff in _catalog(services).active_tariffs("bratsk"):
        assert f"{tariff.name} —" in text


async def test_tariffs_for_a_city_in_another_grammatical_case(say: Say) -> None:
    answer = await say("u-case", "сколько стоит интернет в Хабаровске")
    assert "Хабаровск" in texts(answer)
    assert "Мбит/с" in texts(answer)


async def test_own_tariff_needs_identity(say: Say, services: Services) -> None:
    anon = await say("u-own-anon", "какой у меня тариф?")
    assert "убедиться, что это вы" in texts(anon)
    assert "Мбит/с" not in texts(anon)

    account = await services.billing.account("750012345678")
    assert account is not None
    tariff = services.catalog.tariffs[account.tariff_id]
    answer = await say("u-own", "какой у меня тариф?", identity=identity("750012345678"))
    assert tariff.name in texts(answer)


async def test_balance_for_identified_customer(say: Say, services: Services) -> None:
    account = await services.billing.account("750045678924")
    assert account is not None
    assert account.status == "blocked"
    answer = await say("u-bal", "какой у меня баланс?", identity=identity("750045678924"))
    text = texts(answer)
    assert "750045678924" in text
    assert _price(account.balance_rub).replace("-", "") in text
    assert "приостановлен" in text  # blocked status explained
    # Service is off now: what brings it back today (the debt), not "pay before the 1st".
    assert f"пополните счёт на {_price(-account.balance_rub)}" in text
    assert "Обещанный платёж" in [b["title"] for b in buttons(answer)]
    recent = await services.billing.transactions("750045678924", limit=3)
    assert recent[0].description in text


async def test_balance_never_shown_to_unidentified(say: Say) -> None:
    answer = await say("u-anon", "баланс 750012345678")
    text = texts(answer)
    assert "убедиться, что это вы" in text
    assert "₽" not in text


async def test_forged_identity_is_refused_and_changes_nothing(client, say: Say) -> None:  # type: ignore[no-untyped-def]
    await say("u-forge", "привет")
    forged = {"contract_number": "750012345678", "hash": "0" * 64}
    resp = await client.post(
        "/api/v1/messages", json={"sender": "u-forge", "text": "баланс", "identity": forged}
    )
    assert resp.status == 403
    history = await client.get("/api/v1/conversations/rest:u-forge:u-forge/messages")
    messages = (await history.json())["messages"]
    assert [m["from"] for m in messages] == ["customer", "bot"]  # only the greeting turn
    after = await say("u-forge", "баланс")
    assert "₽" not in texts(after)


async def test_payment_history_and_bonus(say: Say, services: Services) -> None:
    who = identity("270000222333")
    history = await say("u-hist", "история платежей", identity=who)
    txs = await services.billing.transactions("270000222333", limit=10)
    for tx in txs:
        assert tx.description in texts(history)
    bonus = await say("u-hist", "сколько у меня бонусов", identity=who)
    assert "2000 бонусных баллов" in texts(bonus)


async def test_coverage_connected_house_lists_tariffs(say: Say, services: Services) -> None:
    answer = await say("u-cov", "можно подключить Братск, Мира 39а?")
    text = texts(answer)
    assert "ул. Мира, 39а" in text
    assert "подключён" in text
    for tariff in services.catalog.active_tariffs("bratsk"):
        assert tariff.name in text
    assert any(b["payload"].startswith("/coverage_request") for b in buttons(answer))


async def test_coverage_free_text_variants(say: Say) -> None:
    await say("u-cov2", "тарифы в Братске")  # the city is now known
    variants = ("улица мира д 39 А", "пр-т Ленина 22", "ленина проспект дом 22", "МИРА 39А")
    for variant in variants:
        answer = await say("u-cov2", f"подключите пожалуйста {variant}")
        assert "подключён" in texts(answer), (variant, texts(answer))


async def test_coverage_asks_city_when_street_is_in_several(say: Say) -> None:
    first = await say("u-cov3", "хочу проверить подключение по адресу Ленина 10")
    assert "В каком городе" in texts(first)
    answer = await say("u-cov3", "Чита")
    assert "Чита, ул. Ленина, 10" in texts(answer)


async def test_coverage_ambiguous_street_offers_choice(say: Say) -> None:
    first = await say("u-cov4", "Братск Мира 3 можно подключить?")
    choices = buttons(first)
    titles = [b["title"] for b in choices]
    assert "ул. Мира, 3" in titles
    assert "пер. Мира, 3" in titles
    pick = next(b for b in choices if b["title"] == "пер. Мира, 3")
    answer = await say("u-cov4", payload=pick["payload"])
    assert "пер. Мира, 3" in texts(answer)


async def test_coverage_planned_house_takes_a_request(say: Say, services: Services) -> None:
    first = await say("u-lead", "подключение Братск Обручева 21")
    assert "запланировано" in texts(first)
    request = next(b for b in buttons(first) if b["payload"].startswith("/coverage_request"))
    consent = await say("u-lead", payload=request["payload"])
    assert "согласие на обработку персональных данных" in texts(consent)  # asked first (152-FZ)
    agree = next(b for b in buttons(consent) if b["title"] == "Согласен")
    ask_name = await say("u-lead", payload=agree["payload"])
    assert "Как к вам обращаться" in texts(ask_name)
    ask_phone = await say("u-lead", "Анна")
    assert "телефон" in texts(ask_phone)
    retry = await say("u-lead", "не скажу")
    assert "телефон" in texts(retry)  # invalid answer: the question is asked again
    done = await say("u-lead", "8 (914) 555-12-34")
    assert "Заявка" in texts(done)
    stored = await services.requests.board.find(kind="connection")
    assert len(stored) == 1
    assert stored[0].phone == "+79145551234"
    assert stored[0].name == "Анна"
    assert stored[0].address == "ул. Обручева, 21"
    assert stored[0].city_id == "bratsk"


async def test_coverage_not_covered(say: Say) -> None:
    answer = await say("u-nocov", "можно подключить Чита, Бутина 999")
    assert "нет в зоне" in texts(answer)


async def test_offices_by_city_with_hours(say: Say, services: Services) -> None:
    answer = await say("u-off", "где ваш офис в Иркутске?")
    text = texts(answer)
    for office in services.catalog.offices_in("irkutsk", "office"):
        assert office.address in text
    assert re.search(r"сейчас (открыто|закрыто)", text)


async def test_offices_by_street(say: Say) -> None:
    answer = await say("u-off2", "офис на Бутина в Чите работает?")
    text = texts(answer)
    assert "Бутина" in text
    assert text.count("🏢") == 1


async def test_nearest_terminal_by_location(say: Say, services: Services) -> None:
    asked = await say("u-geo", "где терминал оплаты?")  # asks for the city or a location
    assert "геопозицию" in texts(asked)
    here = {"lat": 56.1517, "lon": 101.634}  # central Bratsk
    answer = await say("u-geo", location=here)
    text = texts(answer)
    nearest = services.catalog.nearest(here["lat"], here["lon"], kind="terminal", limit=3)
    positions = [text.index(n.office.address) for n in nearest]
    assert positions == sorted(positions), "nearest first"
    assert "💳" in text
    assert "🏢" not in text
    assert "м от вас" in text
    offices = next(b for b in buttons(answer) if "офис" in b["title"].lower())
    shown = await say("u-geo", payload=offices["payload"])
    first = services.catalog.nearest(here["lat"], here["lon"], kind="office", limit=1)[0]
    assert first.office.address in texts(shown)
    assert "🏢" in texts(shown)


async def test_location_far_from_every_office(say: Say) -> None:
    answer = await say("u-far", location={"lat": 55.75, "lon": 37.61})  # Moscow
    text = texts(answer)
    assert "Рядом с вами наших офисов нет" in text
    assert text.count("🏢") == 1


async def test_twice_not_understood_offers_an_operator(say: Say) -> None:
    first = await say("u-fb", "ываываыва")
    assert "не понял" in texts(first)
    second = await say("u-fb", "фывапролдж")
    assert second["state"] == "bot"  # offered, not queued behind the customer's back
    assert "/human_operator" in {b["payload"] for b in buttons(second)}


async def test_handoff_silences_the_bot_until_returned(say: Say) -> None:
    queued = await say("u-op", "позовите живого человека")
    assert queued["state"] == "queued"
    silent = await say("u-op", "тарифы в Чите")
    assert silent["state"] == "queued"
    assert "Интернет" not in texts(silent)  # not answered by the bot ...
    assert "Ваше сообщение передано" in texts(silent)  # ... only acknowledged for the operator
    back = await say("u-op", payload="/back_to_bot")
    assert back["state"] == "bot"
    answered = await say("u-op", "тарифы в Чите")
    assert "Интернет" in texts(answered)


async def test_english_locale(say: Say) -> None:
    answer = await say("u-en", "what tariffs do you have in Chita?", locale="en")
    assert "Tariffs in Чита" in texts(answer)
    assert "Mbit/s" in texts(answer)


async def test_transcript_has_every_turn_in_order(client, say: Say) -> None:  # type: ignore[no-untyped-def]
    await say("u-tr", "привет")
    await say("u-tr", "тарифы в Чите")
    resp = await client.get("/api/v1/conversations/rest:u-tr:u-tr/messages")
    body = await resp.json()
    assert [m["from"] for m in body["messages"]] == ["customer", "bot", "customer", "bot"]
    assert body["messages"][2]["text"] == "тарифы в Чите"
    more = await client.get(
        f"/api/v1/conversations/rest:u-tr:u-tr/messages?after={body['messages'][1]['id']}"
    )
    assert len((await more.json())["messages"]) == 2
    assert (await more.json())["cursor"] == body["cursor"]
