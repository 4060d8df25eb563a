"""Dialog manners through the REST channel: leaving a question, misunderstandings, small talk,
waiting in the queue and nobody online — what the customer sees at each step."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.catalog.opening_hours import OpeningHours
from bot.config import Settings
from bot.handoff.config import Department
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.models import ConversationKey
from bot.services import Services, build_services
from tests.conftest import ROOT, Say, buttons, identity, texts

CANCELLED = "Хорошо, отменил. Чем ещё помочь?"
MENU = {"/tariffs", "/coverage", "/offices", "/balance", "/human_operator"}
ACTIVE = "750012345678"  # Чита, «Интернет 500»
BLOCKED = "750045678924"  # Чита, in debt: a promised payment is offered


def payloads(answer: dict[str, Any]) -> set[str]:
    return {b["payload"] for b in buttons(answer)}


def last_code(settings: Settings) -> str:
    folder = settings.var_dir / "notifications"
    newest = max(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    match = re.search(r"\b(\d{6})\b", json.loads(newest.read_text(encoding="utf-8"))["text"])
    assert match
    return match.group(1)


async def transcript(client: TestClient, sender: str) -> list[dict[str, Any]]:
    resp = await client.get(f"/api/v1/conversations/rest:{sender}:{sender}/messages")
    return (await resp.json())["messages"]  # type: ignore[no-any-return]


# --- "отмена" / "не надо" / "назад" leave any question -----------------------------------------
@pytest.mark.parametrize("word", ["отмена", "Не надо!", "назад", "нет, не надо", "стоп"])
async def test_a_cancel_word_leaves_the_open_question(say: Say, word: str) -> None:
    asked = await say("cx-1", "хочу подключить интернет домой")
    assert "Напишите адрес" in texts(asked)
    left = await say("cx-1", word)
    assert texts(left) == CANCELLED
    assert payloads(left) >= MENU
    # The question is really gone: the next message is answered as a request of its own.
    after = await say("cx-1", "тарифы в Чите")
    assert "Тарифы в городе Чита" in texts(after)


async def test_a_sentence_with_the_same_words_is_a_new_request(say: Say) -> None:
    await say("cx-2", "хочу подключить интернет домой")
    answer = await say("cx-2", "не надо было менять тариф, а что с балансом")
    assert CANCELLED not in texts(answer)
    assert "убедиться, что это вы" in texts(answer)  # the balance question, asked as itself


async def test_a_pending_one_time_code_can_be_cancelled(
    say: Say, settings: Settings, services: Services
) -> None:
    await say("cx-3", "какой у меня баланс")
    await say("cx-3", payload="/identify")
    sent = await say("cx-3", ACTIVE)
    assert "Отправил код" in texts(sent)
    left = await say("cx-3", "отмена")
    assert texts(left) == CANCELLED
    # The code typed afterwards signs nobody in and the balance is not shown.
    late = await say("cx-3", last_code(settings))
    assert "вы вошли" not in texts(late)
    assert "Баланс по договору" not in texts(late)
    link = await services.store.identity(ConversationKey("rest", "cx-3", "cx-3"))
    assert link is None


async def test_no_to_an_open_offer_still_declines_it(say: Say) -> None:
    offer = await say("cx-4", "дайте обещанный платёж", identity=identity(BLOCKED))
    assert "Подтверждаете?" in texts(offer)
    no = await say("cx-4", "отмена", identity=identity(BLOCKED))
    assert "ничего не меняю" in texts(no)
    assert CANCELLED not in texts(no)


# --- two misunderstandings offer a person --------------------------------------------------------
async def test_twice_not_understood_offers_a_person_with_buttons(say: Say) -> None:
    first = await say("mx-1", "ываываыва")
    assert "не понял" in texts(first)
    second = await say("mx-1", "фывапролдж")
    assert second["state"] == "bot"  # not queued behind the customer's back
    assert "Позвать оператора?" in texts(second)
    assert {"/human_operator", "/menu"} <= payloads(second)
    taken = await say("mx-1", payload="/human_operator")
    assert taken["state"] == "queued"


@pytest.fixture
async def handoff_client(
    aiohttp_client: Any, settings: Settings, demo_nlu: Nlu, tmp_path: Path
) -> AsyncIterator[TestClient]:
    """A provider who keeps the old behaviour: ``after_misses: handoff`` in its flows."""
    flows = tmp_path / "flows"
    shutil.copytree(ROOT / "flows", flows)
    dialog = flows / "dialog.yml"
    text = dialog.read_text(encoding="utf-8")
    assert "after_misses: offer" in text
    dialog.write_text(text.replace("after_misses: offer", "after_misses: handoff"), "utf-8")
    custom = replace(settings, flows_dir=flows)
    built = build_services(custom, nlu=demo_nlu)
    yield await aiohttp_client(create_app(custom, services=built))
    await built.close()


async def test_the_handoff_setting_still_queues_after_two_misses(
    handoff_client: TestClient,
) -> None:
    async def say(text: str) -> dict[str, Any]:
        resp = await handoff_client.post("/api/v1/messages", json={"sender": "mx-2", "text": text})
        return await resp.json()  # type: ignore[no-any-return]

    await say("ываываыва")
    second = await say("фывапролдж")
    assert second["state"] == "queued"
    assert "/back_to_bot" in payloads(second)


# --- small talk ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("как дела?", "Чем"),
        ("kak dela", "Чем"),
        ("спасибо, ты молодец", "Спасибо"),
        ("расскажи анекдот", "🙂"),
        ("ты бот?", "Да, я бот"),
        ("ты человек?", "Да, я бот"),
    ],
)
async def test_small_talk_gets_a_friendly_word_and_the_menu(
    say: Say, text: str, expected: str
) -> None:
    answer = await say("sx-1", text)
    assert answer["state"] == "bot"
    assert expected in texts(answer)
    assert "не понял" not in texts(answer)
    assert payloads(answer) >= MENU  # "Позвать оператора" among them


async def test_the_bot_says_honestly_it_is_a_bot_and_a_person_is_a_button_away(say: Say) -> None:
    answer = await say("sx-2", "ты бот или живой человек?")
    assert "я бот" in texts(answer)
    assert "Позвать оператора" in texts(answer)
    assert "/human_operator" in payloads(answer)


async def test_small_talk_never_reaches_the_queue(say: Say) -> None:
    for text in ("как дела", "ты бот?", "расскажи шутку", "ты классный", "как жизнь"):
        answer = await say("sx-3", text)
        assert answer["state"] == "bot", text
        assert "оператору" not in texts(answer), text


async def test_the_same_small_talk_gets_the_same_answer(say: Say) -> None:
    first = await say("sx-4", "как поживаешь")
    again = await say("sx-5", "как поживаешь")
    assert texts(first) == texts(again)


async def test_asking_for_a_person_in_small_talk_words_is_a_handoff(say: Say) -> None:
    answer = await say("sx-6", "ты человек? позови человека")
    assert answer["state"] == "queued"


async def test_small_talk_in_english(say: Say) -> None:
    answer = await say("sx-7", "are you a bot?", locale="en")
    assert "Yes, I'm a bot" in texts(answer)


# --- messages typed while waiting in the queue ---------------------------------------------------
async def test_waiting_customer_gets_one_acknowledgement_not_an_echo(
    client: TestClient, say: Say, services: Services
) -> None:
    now = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
    services.handoff._clock = lambda: now
    queued = await say("qx-1", "позовите оператора")
    assert queued["state"] == "queued"
    first = await say("qx-1", "у меня не работает интернет с утра")
    assert [r["text"] for r in first["replies"]] == [
        "Ваше сообщение передано, оператор увидит его, когда подключится."
    ]
    assert "/back_to_bot" in payloads(first)
    assert (await transcript(client, "qx-1"))[-1]["from"] == "system"  # a notice, not the bot
    second = await say("qx-1", "роутер мигает красным")
    assert second["replies"] == []  # not on every message
    third = await say("qx-1", "тарифы в Чите")
    assert third["replies"] == []  # and the bot does not answer it either
    now += timedelta(seconds=services.handoff.config.queued_ack_seconds + 1)
    later = await say("qx-1", "ау, есть кто?")
    assert "Ваше сообщение передано" in texts(later)
    lines = [m["text"] for m in await transcript(client, "qx-1")]
    assert "роутер мигает красным" in lines  # every message is there for the operator


async def test_the_bot_is_silent_while_an_operator_has_the_chat(
    say: Say, services: Services
) -> None:
    await services.operators.add(Operator("anna", "Анна", departments=("general",)), "secret pw 1")
    await say("qx-2", "позовите оператора")
    anna = await services.operators.get("anna")
    assert anna is not None
    await services.handoff.claim("rest:qx-2:qx-2", anna)
    during = await say("qx-2", "здравствуйте, у меня вопрос")
    assert during["state"] == "operator"
    assert during["replies"] == []


# --- nobody online or the department closed ------------------------------------------------------
async def test_nobody_online_is_told_so_and_offered_a_call_back(
    client: TestClient, say: Say, services: Services
) -> None:
    queued = await say("nx-1", "позовите оператора")
    text = texts(queued)
    assert queued["state"] == "queued"
    assert "нет операторов на связи" in text
    assert "мин" not in text  # no wait estimate nobody can keep
    assert {"/callback_request", "/back_to_bot"} <= payloads(queued)
    await services.handoff.tick()  # later: still no place-in-queue promise
    assert not any("очереди:" in m["text"] for m in await transcript(client, "nx-1"))
    call = await say("nx-1", payload="/callback_request")
    assert call["state"] == "bot"  # out of the queue, the bot takes the call-back request
    assert "По какому вопросу" in texts(call)  # the call-back's first question: its reason
    assert await services.store.queue_get("rest:nx-1:nx-1") is None


async def test_with_an_operator_online_the_wait_is_told(say: Say, services: Services) -> None:
    await services.operators.add(Operator("anna", "Анна", departments=("general",)), "secret pw 1")
    await services.handoff.set_online("anna", True)
    # Anna is busy with as many chats as she takes, so the next customers wait in line.
    anna = await services.operators.get("anna")
    assert anna is not None
    for n in range(anna.max_chats):
        await say(f"busy-{n}", "позовите оператора")
        await services.handoff.claim(f"rest:busy-{n}:busy-{n}", anna)
    await say("nx-2", "позовите оператора")
    queued = await say("nx-3", "позовите оператора")
    assert "Вы в очереди: 2-й" in texts(queued)
    assert "нет операторов на связи" not in texts(queued)


async def test_closed_department_is_told_when_it_opens(say: Say, services: Services) -> None:
    config = services.handoff.config
    closed = Department("general", OpeningHours.parse("Mo-Fr 09:00-18:00"), "Asia/Irkutsk")
    services.handoff.config = replace(config, departments={**config.departments, "general": closed})
    services.handoff._clock = lambda: datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # Sunday 11:00
    answer = await say("nx-4", "позовите оператора")
    assert "в понедельник в 09:00" in texts(answer)
    assert "мин" not in texts(answer)
    assert "/callback_request" in payloads(answer)
