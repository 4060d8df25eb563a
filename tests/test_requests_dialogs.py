"""Dialogs that leave a request for people, through the REST channel: consent before a name or
phone is stored, call-backs in the department's hours, complaints with files, terminations."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.catalog.opening_hours import OpeningHours
from bot.dialog.slots import policy_link
from bot.handoff.config import Department
from bot.models import Attachment, ConversationKey, Inbound, Text
from bot.requests.model import RequestRecord
from bot.services import Services
from tests.conftest import Say, buttons, identity, texts

PETROVA = "750012345691"  # Chita, a rented router to return, ул. Ленина
CONSENT = "согласие на обработку персональных данных"


def pressed(answer: dict[str, Any], title: str) -> str:
    return next(b["payload"] for b in buttons(answer) if b["title"] == title)


def args(payload: str) -> dict[str, Any]:
    return json.loads(payload[payload.index("{") :])  # type: ignore[no-any-return]


async def board(services: Services, kind: str | None = None) -> list[RequestRecord]:
    return await services.requests.board.find(kind=kind)


async def open_lead(say: Say, sender: str) -> dict[str, Any]:
    first = await say(sender, "подключение Братск Обручева 21")
    request = next(b for b in buttons(first) if b["payload"].startswith("/coverage_request"))
    return await say(sender, payload=request["payload"])


# --- consent on a connection lead ----------------------------------------------------------------
async def test_lead_stores_the_consent_that_was_given(say: Say, services: Services) -> None:
    asked = await open_lead(say, "c-lead")
    assert CONSENT in texts(asked)
    assert not await board(services)  # nothing asked yet, nothing stored
    name = await say("c-lead", payload=pressed(asked, "Согласен"))
    assert "Как к вам обращаться" in texts(name)
    await say("c-lead", "Анна")
    done = await say("c-lead", "8 (914) 555-12-34")
    assert "Заявка" in texts(done)
    [lead] = await board(services, "connection")
    assert (lead.name, lead.phone) == ("Анна", "+79145551234")
    shown = services.translator.render("ru", Text("consent.ask", policy_link(services.catalog)))
    assert shown in texts(asked)  # the hash is of the very text the customer saw
    assert lead.details["consent_text_sha256"] == hashlib.sha256(shown.encode()).hexdigest()
    assert lead.details["consent_version"] == "pd-consent-2025-1"
    assert lead.details["consent_channel"] == "rest"
    given = datetime.fromisoformat(lead.details["consent_at"])
    assert abs((datetime.now(UTC) - given).total_seconds()) < 60


async def test_lead_typed_consent_and_policy_link(say: Say, services: Services) -> None:
    services.catalog.rules = replace(
        services.catalog.rules, privacy_policy_url="https://isp.example.ru/privacy"
    )
    asked = await open_lead(say, "c-lead2")
    assert "https://isp.example.ru/privacy" in texts(asked)
    unclear = await say("c-lead2", "а зачем?")
    assert "Согласен" in texts(unclear)  # asked again, nothing decided
    name = await say("c-lead2", "да, согласна")
    assert "Как к вам обращаться" in texts(name)


async def test_lead_refused_consent_stores_nothing(say: Say, services: Services) -> None:
    asked = await open_lead(say, "c-lead3")
    refused = await say("c-lead3", payload=pressed(asked, "Не согласен"))
    text = texts(refused)
    assert "ничего не записано" in text
    assert services.catalog.cities["bratsk"].support_phone in text  # the hotline instead
    assert "/human_operator" in [b["payload"] for b in buttons(refused)]
    assert await board(services) == []
    after = await say("c-lead3", "Анна")  # the flow is over: a name is not taken any more
    assert "Заявка" not in texts(after)
    assert await board(services) == []


async def test_lead_typed_refusal(say: Say, services: Services) -> None:
    await open_lead(say, "c-lead4")
    refused = await say("c-lead4", "нет, не согласен")
    assert "ничего не записано" in texts(refused)
    assert await board(services) == []


# --- call-backs ----------------------------------------------------------------------------------
async def start_callback(say: Say, sender: str, **fields: Any) -> dict[str, Any]:
    reason = await say(sender, "перезвоните мне пожалуйста", **fields)
    assert "По какому вопросу" in texts(reason)
    assert {"Оплата и баланс", "Техническая проблема", "Подключение", "Другое"} <= {
        b["title"] for b in buttons(reason)
    }
    consent = await say(sender, payload=pressed(reason, "Оплата и баланс"), **fields)
    assert CONSENT in texts(consent)
    return await say(sender, payload=pressed(consent, "Согласен"), **fields)


async def test_callback_identified_phone_on_file_future_window(
    say: Say, services: Services
) -> None:
    me = identity(PETROVA)
    phone = await start_callback(say, "cb-1", identity=me)
    assert "На какой номер" in texts(phone)
    [on_file] = [b for b in buttons(phone) if "договора" in b["title"]]
    assert "+7 914 ***-**-02" in on_file["title"]
    assert "+79140000002" not in on_file["payload"]  # the number never travels in a payload
    when = await say("cb-1", payload=on_file["payload"], identity=me)
    assert "Когда удобно" in texts(when)
    done = await say("cb-1", "завтра с 10 до 12", identity=me)
    assert "Заявка на обратный звонок №" in texts(done)
    assert "+7 914 ***-**-02" in texts(done)
    [call] = await board(services, "callback")
    assert call.phone == "+79140000002"
    assert call.contract == PETROVA
    assert call.details["reason"] == "billing"
    start = datetime.fromisoformat(call.details["window_start"])
    end = datetime.fromisoformat(call.details["window_end"])
    chita = ZoneInfo("Asia/Chita")
    assert start > datetime.now(UTC)
    assert (start.astimezone(chita).hour, end.astimezone(chita).hour) == (10, 12)
    assert "с 10:00 до 12:00" in call.details["when"]
    assert call.details["consent_channel"] == "rest"


async def test_callback_yesterday_is_refused_with_a_reason(say: Say, services: Services) -> None:
    phone = await start_callback(say, "cb-2")
    assert not [b for b in buttons(phone) if "договора" in b["title"]]  # nobody on file
    invalid = await say("cb-2", "не скажу")
    assert "На какой номер" in texts(invalid)
    when = await say("cb-2", "8 914 555 12 34")
    assert "Когда удобно" in texts(when)
    past = await say("cb-2", "вчера в 15:00")
    assert "уже прошло" in texts(past)
    assert await board(services) == []
    done = await say("cb-2", "завтра после 15")
    assert "Заявка на обратный звонок №" in texts(done)
    [call] = await board(services, "callback")
    assert call.phone == "+79145551234"


async def test_callback_out_of_hours_suggests_the_nearest_window(
    say: Say, services: Services
) -> None:
    config = services.handoff.config
    billing = Department("billing", OpeningHours.parse("Mo-Su 09:00-18:00"), "Asia/Chita")
    services.handoff.config = replace(
        config, departments={**config.departments, "billing": billing}
    )
    await start_callback(say, "cb-3")
    await say("cb-3", "+7 914 555-12-34")
    late = await say("cb-3", "завтра в 22:00")
    text = texts(late)
    assert "отдел не работает" in text
    [nearest] = [b for b in buttons(late) if b["payload"].startswith("/inform")]
    start = datetime.fromisoformat(args(nearest["payload"])["when"].split("/")[0])
    assert start.astimezone(ZoneInfo("Asia/Chita")).hour == 9  # the next morning's opening
    assert await board(services) == []
    done = await say("cb-3", payload=nearest["payload"])
    assert "Заявка на обратный звонок №" in texts(done)
    [call] = await board(services, "callback")
    assert call.details["department"] == "billing"
    assert datetime.fromisoformat(call.details["window_start"]) == start


async def test_callback_consent_refused_stores_nothing(say: Say, services: Services) -> None:
    reason = await say("cb-4", "перезвоните мне пожалуйста")
    consent = await say("cb-4", payload=pressed(reason, "Техническая проблема"))
    refused = await say("cb-4", payload=pressed(consent, "Не согласен"))
    assert "ничего не записано" in texts(refused)
    assert await board(services) == []


async def test_callback_cancel_mid_flow(say: Say, services: Services) -> None:
    phone = await start_callback(say, "cb-5")
    assert "На какой номер" in texts(phone)
    cancelled = await say("cb-5", "отмена")
    assert "отменил" in texts(cancelled)
    after = await say("cb-5", "+7 914 555-12-34")
    assert "Когда удобно" not in texts(after)
    assert await board(services) == []


# --- complaints and feedback ---------------------------------------------------------------------
async def test_complaint_with_a_photo_gets_a_number(say: Say, services: Services) -> None:
    first = await say("cmp-1", "хочу пожаловаться")
    assert "Расскажите, что случилось" in texts(first)
    photo = await services.files.put(b"\xff\xd8\xff\xe0 a photo", "router.jpg", "image/jpeg")
    handled = await services.gateway.handle(
        Inbound(
            key=ConversationKey("rest", "cmp-1", "cmp-1"),
            message_id="photo-1",
            kind="attachment",
            attachments=(Attachment("image", name="router.jpg", file=photo),),
        )
    )
    assert handled.replies  # acknowledged, the question asked again
    done = await say("cmp-1", "Мастер обещал прийти вчера и так и не пришёл, никто не позвонил")
    text = texts(done)
    number = re.search(r"Обращение № (\d+)", text)
    assert number is not None
    assert "Приложено файлов: 1" in text
    assert "/human_operator" in [b["payload"] for b in buttons(done)]
    assert done["state"] == "bot"  # no automatic hand-off: it waits in «Заявки»
    [record] = await board(services, "complaint")
    assert record.id == int(number.group(1))
    assert "так и не пришёл" in record.details["text"]
    assert [a["file_id"] for a in record.attachments] == [photo.file_id]
    assert record.attachments[0]["name"] == "router.jpg"


async def test_complaint_without_files_is_sent_with_the_button(
    say: Say, services: Services
) -> None:
    story = await say(
        "cmp-2", "Жалоба: третий день интернет пропадает по вечерам, а поддержка молчит"
    )
    assert "Можно добавить фото" in texts(story)  # the first message was the story itself
    done = await say("cmp-2", payload=pressed(story, "Отправить"))
    assert "Обращение №" in texts(done)
    [record] = await board(services, "complaint")
    assert record.details["text"].startswith("Жалоба: третий день")
    assert record.attachments == ()


async def test_feedback_is_its_own_kind(say: Say, services: Services) -> None:
    first = await say("fb-1", "хочу оставить отзыв о вашей работе")
    assert "отзыв" in texts(first)
    more = await say("fb-1", "Мастер Игорь всё сделал быстро и аккуратно, спасибо ему")
    done = await say("fb-1", payload=pressed(more, "Отправить"))
    assert "Спасибо за отзыв" in texts(done)
    [record] = await board(services, "feedback")
    assert "Игорь" in record.details["text"]
    assert await board(services, "complaint") == []


# --- termination ---------------------------------------------------------------------------------
async def test_termination_lists_equipment_and_the_office(say: Say, services: Services) -> None:
    me = identity(PETROVA)
    shown = await say("term-1", "хочу расторгнуть договор", identity=me)
    text = texts(shown)
    assert "TP-Link Archer C6" in text
    assert "2231A2345691" in text
    assert "ул. Бутина, 10" in text  # the Chita office that takes equipment back
    assert "Богомягкова" not in text  # the other Chita office does not
    assert not await board(services)  # nothing until confirmed
    done = await say("term-1", payload=pressed(shown, "Оформить расторжение"), identity=me)
    assert re.search(r"расторжение № \d+ принята", texts(done))
    assert "ул. Бутина, 10" in texts(done)
    assert done["state"] == "bot"  # a person is offered, not forced
    [record] = await board(services, "termination")
    assert record.contract == PETROVA
    assert record.details["equipment"] == [
        {"kind": "router", "model": "TP-Link Archer C6", "serial": "2231A2345691"}
    ]
    assert record.details["return_office"] == "chita-1"


async def test_termination_kept_stores_nothing(say: Say, services: Services) -> None:
    me = identity(PETROVA)
    shown = await say("term-2", "хочу расторгнуть договор", identity=me)
    kept = await say("term-2", payload=pressed(shown, "Не расторгать"), identity=me)
    assert "договор остаётся" in texts(kept)
    assert await board(services) == []


async def test_termination_needs_identification(say: Say, services: Services) -> None:
    answer = await say("term-3", "хочу расторгнуть договор")
    assert "/identify" in [b["payload"] for b in buttons(answer)]
    assert "TP-Link" not in texts(answer)
    assert await board(services) == []
