"""Troubleshooting by symptom through the REST channel: the account and outages first, then the
tree of the symptom (flows/troubleshooting.yml) to «Заработало», a technician visit or the
technical department."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.dialog.actions.troubleshoot import TreeError, load_trees
from bot.i18n import load_translator
from bot.intents.nlu import parse_payload
from bot.services import Services
from tests.conftest import ROOT, Say, buttons, identity, texts

BUTINA = "750012345678"  # Chita, ул. Бутина, 10 — active, internet
BLOCKED = "750045678924"  # Chita, blocked for debt
PAUSED = "750067890146"  # Chita, on a voluntary pause
SOLVED = "Отлично, рад, что всё заработало!"
TECHNICAL = "Передаю вопрос специалисту технической поддержки"
VISIT = "нужен мастер"
ACCIDENT = "авария на сети"


def outage(**change: Any) -> dict[str, Any]:
    return {
        "outage_id": "t-1",
        "city_id": "chita",
        "street": "Бутина",
        "houses": ["10"],
        "services": ["internet", "tv"],
        "kind": "accident",
        "started_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "reason": "Повреждение кабеля при дорожных работах",
        **change,
    }


async def post_outage(client: TestClient, body: dict[str, Any]) -> None:
    resp = await client.post("/api/v1/outages", json=body)
    assert resp.status in (200, 201), await resp.text()


def titles(answer: dict[str, Any]) -> list[str]:
    return [b["title"] for b in buttons(answer)]


def payload_of(answer: dict[str, Any], title: str) -> str:
    found = [b["payload"] for b in buttons(answer) if b["title"] == title]
    assert found, f"no button {title!r} in {titles(answer)}"
    return found[0]


class Customer:
    """One REST conversation: say things, press buttons by their titles."""

    def __init__(self, say: Say, sender: str, contract: str | None = BUTINA) -> None:
        self._say, self.sender = say, sender
        self.extra = {"identity": identity(contract)} if contract else {}
        self.last: dict[str, Any] = {}

    async def says(self, text: str) -> dict[str, Any]:
        self.last = await self._say(self.sender, text, **self.extra)
        return self.last

    async def presses(self, title: str) -> dict[str, Any]:
        payload = payload_of(self.last, title)
        self.last = await self._say(self.sender, payload=payload, **self.extra)
        return self.last


# --- each tree, to «Заработало» -------------------------------------------------------------------
HAPPY = [
    ("не работает интернет", "Посмотрите на роутер", ["Всё горит как обычно", "Заработало"]),
    ("интернет медленно работает", "Медленно везде", ["Только по Wi-Fi", "Стало быстрее"]),
    ("интернет постоянно обрывается", "Связь пропадает", ["Везде, и по кабелю тоже",
                                                          "Больше не обрывается"]),
    ("вай фай не работает", "Видна ли ваша сеть", ["Сеть есть, не подключается", "Заработало"]),
    ("телевизор пишет нет сигнала", "Что показывает телевизор", ["Нет сигнала", "Заработало"]),
    ("нет гудка в телефоне", "Снимите трубку", ["Гудка нет", "Гудок появился"]),
]  # fmt: skip


@pytest.mark.parametrize(("message", "first", "path"), HAPPY)
async def test_each_tree_to_solved(say: Say, message: str, first: str, path: list[str]) -> None:
    customer = Customer(say, f"h-{abs(hash(message))}")
    answer = await customer.says(message)
    assert first in texts(answer)
    assert "Выберите вариант ниже." in texts(answer)
    for title in path:
        answer = await customer.presses(title)
    assert SOLVED in texts(answer)
    assert answer["state"] == "bot"


async def test_a_longer_path_and_the_step_payloads(say: Say) -> None:
    customer = Customer(say, "h-long")
    await customer.says("интернет тормозит")
    answer = await customer.presses("По кабелю тоже")
    name, args = parse_payload(payload_of(answer, "Всё равно медленно"))
    assert (name, args) == ("internet_down", {"tree": "slow", "step": "speedtest",
                                              "path": "where>reboot_router"})  # fmt: skip
    await customer.presses("Всё равно медленно")
    answer = await customer.presses("Примерно как в тарифе")
    assert "скорость вашего тарифа" in texts(answer)
    answer = await customer.presses("Понятно, спасибо")
    assert SOLVED in texts(answer)


# --- the other ends -------------------------------------------------------------------------------
async def test_a_path_ending_in_a_technician_visit(say: Say) -> None:
    customer = Customer(say, "v-1")
    await customer.says("у меня нет интернета")
    await customer.presses("Не горит ничего")
    answer = await customer.presses("Роутер не включается")
    assert VISIT in texts(answer)
    name, args = parse_payload(payload_of(answer, "Записаться на визит мастера"))
    assert name == "technician_visit"
    assert args == {"problem": "Нет интернета", "troubleshooting": "no_internet:lights>power"}
    assert answer["state"] == "bot"


async def test_a_path_ending_with_the_technical_department(say: Say, services: Services) -> None:
    customer = Customer(say, "t-1")
    await customer.says("очень медленный интернет по вечерам")
    await customer.presses("По кабелю тоже")
    await customer.presses("Всё равно медленно")
    answer = await customer.presses("Намного ниже тарифа")
    assert TECHNICAL in texts(answer)
    assert answer["state"] == "queued"
    entry = await services.store.queue_get("rest:t-1:t-1")
    assert entry is not None
    assert entry.department == "technical"
    assert entry.reason == "troubleshooting:slow:where>reboot_router>speedtest"


# --- the account and outages first ---------------------------------------------------------------
async def test_a_blocked_account_is_told_first_and_no_tree(say: Say) -> None:
    customer = Customer(say, "b-1", BLOCKED)
    answer = await customer.says("не работает интернет")
    text = texts(answer)
    assert "из-за задолженности" in text
    assert "Посмотрите на роутер" not in text
    assert {"Обещанный платёж", "Проверить дальше"} <= set(titles(answer))
    # "I've paid, it is something else": the tree, without telling the debt again.
    answer = await customer.presses("Проверить дальше")
    assert "Посмотрите на роутер" in texts(answer)
    assert "задолженности" not in texts(answer)


async def test_a_paused_account_is_told_first(say: Say) -> None:
    answer = await Customer(say, "b-2", PAUSED).says("телевизор не показывает")
    assert "добровольной паузе" in texts(answer)
    assert "Что показывает телевизор" not in texts(answer)


async def test_an_outage_at_the_customers_address_means_no_tree(
    client: TestClient, say: Say
) -> None:
    await post_outage(client, outage())
    answer = await Customer(say, "o-1").says("интернет обрывается")
    text = texts(answer)
    assert ACCIDENT in text
    assert "Повреждение кабеля" in text
    assert "Связь пропадает" not in text
    assert "Выберите вариант" not in text


async def test_an_outage_of_another_service_does_not_stop_the_tree(
    client: TestClient, say: Say
) -> None:
    await post_outage(client, outage(services=["phone"]))
    answer = await Customer(say, "o-2").says("медленно грузит интернет")
    assert "Медленно везде" in texts(answer)
    assert ACCIDENT not in texts(answer)


async def test_an_outage_posted_mid_conversation_is_told_at_the_next_step(
    client: TestClient, say: Say
) -> None:
    customer = Customer(say, "o-3")
    await customer.says("не работает интернет")
    await post_outage(client, outage())
    answer = await customer.presses("Всё горит как обычно")
    text = texts(answer)
    assert "появилась информация об аварии" in text
    assert ACCIDENT in text
    assert "Выключите роутер" not in text  # the next step is not shown
    assert answer["state"] == "bot"


# --- an unidentified customer --------------------------------------------------------------------
async def test_unidentified_address_asked_and_an_outage_found_there(
    client: TestClient, say: Say
) -> None:
    await post_outage(client, outage())
    customer = Customer(say, "u-1", contract=None)
    answer = await customer.says("не работает интернет")
    assert "Напишите адрес" in texts(answer)
    assert "Пропустить" in titles(answer)
    answer = await customer.says("Чита, Бутина 10")
    assert ACCIDENT in texts(answer)
    assert "Посмотрите на роутер" not in texts(answer)


async def test_unidentified_no_outage_at_the_address_then_the_tree(say: Say) -> None:
    customer = Customer(say, "u-2", contract=None)
    await customer.says("телевизор пишет нет сигнала")
    answer = await customer.says("Чита, ул. Ленина 10")
    assert "аварий и работ сейчас нет" in texts(answer)
    assert "Что показывает телевизор" in texts(answer)  # the symptom of the first message
    answer = await customer.presses("Нет сигнала")
    assert "Source" in texts(answer)


async def test_unidentified_skip_goes_straight_to_the_tree(say: Say) -> None:
    customer = Customer(say, "u-3", contract=None)
    await customer.says("вай фай не работает")
    answer = await customer.presses("Пропустить")
    assert "Видна ли ваша сеть" in texts(answer)


async def test_unidentified_skip_typed_and_a_bad_address_asked_again(say: Say) -> None:
    customer = Customer(say, "u-4", contract=None)
    await customer.says("интернет тормозит")
    answer = await customer.says("где-то в центре")
    assert "Не получилось разобрать адрес" in texts(answer)
    assert "Пропустить" in titles(answer)
    answer = await customer.says("пропустить")  # typed: the button's title
    assert "Медленно везде" in texts(answer)


async def test_unidentified_address_without_a_city_asks_the_city(
    client: TestClient, say: Say
) -> None:
    await post_outage(client, outage(street="ул. Ленина", houses=["10"]))
    customer = Customer(say, "u-5", contract=None)
    await customer.says("нет интернета")
    answer = await customer.says("Ленина 10")  # in four cities
    assert "В каком это городе" in texts(answer)
    assert {"Чита", "Братск", "Пропустить"} <= set(titles(answer))
    answer = await customer.presses("Чита")
    assert ACCIDENT in texts(answer)


async def test_unidentified_city_typed_and_the_street_alone_placed(say: Say) -> None:
    customer = Customer(say, "u-7", contract=None)
    await customer.says("нет интернета")
    await customer.says("Ленина 10")
    answer = await customer.says("в Иркутске")
    assert "аварий и работ сейчас нет" in texts(answer)
    assert "Посмотрите на роутер" in texts(answer)
    customer = Customer(say, "u-8", contract=None)
    await customer.says("нет интернета")
    answer = await customer.says("Бутина 10")  # a street of one city: Chita, nothing asked
    assert "аварий и работ сейчас нет" in texts(answer)


async def test_an_outage_mid_tree_at_a_typed_address(client: TestClient, say: Say) -> None:
    customer = Customer(say, "u-6", contract=None)
    await customer.says("интернет пропадает")
    answer = await customer.says("Чита, Бутина 10")
    assert "Связь пропадает" in texts(answer)
    await post_outage(client, outage())
    answer = await customer.presses("Только по Wi-Fi")
    assert ACCIDENT in texts(answer)
    assert "Поставьте роутер повыше" not in texts(answer)


# --- symptoms, typed answers, leaving -------------------------------------------------------------
DETECTED = [
    ("тормозит интернет", "Медленно везде"),
    ("вечером падает скорость", "Медленно везде"),
    ("интернет обрывается каждые полчаса", "Связь пропадает"),
    ("пропадает интернет", "Связь пропадает"),
    ("роутер не раздаёт wi-fi", "Видна ли ваша сеть"),
    ("не работает вай-фай", "Видна ли ваша сеть"),
    ("тв не показывает", "Что показывает телевизор"),
    ("не работают каналы", "Что показывает телевизор"),
    ("домашний телефон не работает", "Снимите трубку"),
    ("на телефоне не работает интернет", "Посмотрите на роутер"),  # a mobile, not the landline
    ("с утра нет интернета во всём доме", "Посмотрите на роутер"),
]


@pytest.mark.parametrize(("message", "first"), DETECTED)
async def test_the_symptom_comes_from_the_message(say: Say, message: str, first: str) -> None:
    answer = await Customer(say, f"s-{abs(hash(message))}").says(message)
    assert first in texts(answer)


async def test_an_unclear_symptom_is_asked_with_buttons(say: Say) -> None:
    customer = Customer(say, "s-unclear")
    answer = await customer.says("помогите, ничего не работает")
    assert "что именно не работает" in texts(answer)
    assert titles(answer) == ["Нет интернета", "Медленный интернет", "Интернет обрывается",
                              "Проблемы с Wi-Fi", "Телевидение", "Домашний телефон"]  # fmt: skip
    answer = await customer.says("телевизор")  # typed instead of pressed, not a title
    assert "Что показывает телевизор" in texts(answer)


async def test_typed_button_titles_and_numbers(say: Say) -> None:
    customer = Customer(say, "k-1")
    await customer.says("не работает интернет")
    answer = await customer.says("всё горит как обычно")
    assert "Выключите роутер из розетки" in texts(answer)
    answer = await customer.says("2")  # «Не помогло», as numbered in a messenger's list
    assert "на другом устройстве" in texts(answer)
    answer = await customer.says("Заработало!")
    assert SOLVED in texts(answer)


async def test_solved_in_own_words_and_not_solved(say: Say) -> None:
    customer = Customer(say, "k-2")
    await customer.says("тв зависает")
    answer = await customer.says("нет, так и не заработало")
    assert "Не понял ответ" in texts(answer)
    assert "Что показывает телевизор" in texts(answer)
    assert "Нет сигнала" in titles(answer)  # the step's buttons again
    answer = await customer.says("решено, всё работает, спасибо")
    assert SOLVED in texts(answer)


async def test_a_new_symptom_typed_mid_tree_starts_its_tree(say: Say) -> None:
    customer = Customer(say, "k-3")
    await customer.says("не работает интернет")
    answer = await customer.says("а ещё телевизор пишет нет сигнала")
    assert "Что показывает телевизор" in texts(answer)


@pytest.mark.parametrize("word", ["отмена", "не надо", "назад"])
async def test_cancel_leaves_the_tree(say: Say, word: str) -> None:
    customer = Customer(say, f"c-{word}")
    await customer.says("не работает интернет")
    await customer.presses("Всё горит как обычно")
    answer = await customer.says(word)
    assert "Хорошо, отменил" in texts(answer)
    answer = await customer.says("заработало")  # no tree open any more
    assert SOLVED not in texts(answer)


async def test_english(say: Say) -> None:
    answer = await say("en-1", "internet is slow", identity=identity(BUTINA), locale="en")
    assert "Is it slow everywhere" in texts(answer)
    assert "Only on Wi-Fi" in titles(answer)


# --- the trees are checked at start-up -----------------------------------------------------------
def _messages() -> set[str]:
    return set(load_translator(ROOT / "locales").catalogs["ru"])


def test_the_shipped_trees_load() -> None:
    trees = load_trees(ROOT / "flows" / "troubleshooting.yml", messages=_messages())
    assert set(trees.trees) == {"no_internet", "slow", "drops", "wifi", "tv", "phone"}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["trees"]["slow"]["steps"]["where"]["buttons"][0].update(next="nowhere"),
         "unknown step 'nowhere'"),
        (lambda d: d["trees"]["tv"]["steps"]["screen"].update(say="troubleshooting.tv.nope"),
         "unknown message 'troubleshooting.tv.nope'"),
        (lambda d: d["trees"]["tv"].update(start="missing"), "unknown start step 'missing'"),
        (lambda d: d["trees"]["phone"]["steps"]["wires"]["buttons"][0].update(end="later"),
         "unknown end 'later'"),
        (lambda d: d["trees"]["phone"]["steps"]["tone"]["buttons"].pop(0),
         "step 'wires' is never reached"),
    ],
)  # fmt: skip
def test_a_broken_tree_is_refused_naming_the_file(
    tmp_path: Path, change: Any, problem: str
) -> None:
    import yaml

    data = yaml.safe_load((ROOT / "flows" / "troubleshooting.yml").read_text("utf-8"))
    change(data)
    broken = tmp_path / "troubleshooting.yml"
    broken.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    with pytest.raises(TreeError) as caught:
        load_trees(broken, messages=_messages())
    assert str(broken) in str(caught.value)
    assert problem in str(caught.value)


async def test_a_clear_new_request_leaves_a_step(say: Say) -> None:
    asked = await say("ts-switch", "интернет медленно работает")
    skip = next(b["payload"] for b in buttons(asked) if b["title"] == "Пропустить")
    step = await say("ts-switch", payload=skip)
    assert buttons(step)  # a step of the tree is open
    answer = await say("ts-switch", "какой у меня баланс?")
    assert "убедиться, что это вы" in texts(answer)  # answered as a balance question
