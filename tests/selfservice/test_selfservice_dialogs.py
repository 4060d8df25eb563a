"""Account actions end to end through the REST channel with a signed identity: happy path,
refusal by the rules, a change of mind at the confirmation, an unidentified customer and the
billing down — against the embedded ledger and against HttpBilling + the fake billing bridge."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.billing.base import BillingUnavailable, Operation
from bot.config import Settings
from bot.services import Services
from tests.conftest import Say, buttons, texts
from tests.fakes.billing import FakeBilling

BLOCKED = "750045678924"  # Чита, -450 ₽, «Интернет 100»
ACTIVE = "750012345678"  # Чита, 880.50 ₽, «Интернет 500», no extra services
AUTOPAY_ON = "750012345691"  # Чита, autopay on


def payload(answer: dict[str, Any], title: str) -> str:
    found = [b["payload"] for b in buttons(answer) if b["title"] == title]
    assert found, f"no button {title!r} in {[b['title'] for b in buttons(answer)]}"
    return found[0]


async def account(services: Services, contract: str) -> Any:
    found = await services.billing.account(contract)
    assert found is not None
    return found


# --- promised payment --------------------------------------------------------------------------
async def test_promised_payment_unblocks_and_is_done_once(ask: Say, ss_services: Services) -> None:
    answer = await ask("pp-1", "дайте обещанный платёж", contract=BLOCKED)
    text = texts(answer)
    assert "обещанный платёж на 900 ₽" in text  # the debt and the next month, whole rubles
    assert "Подтверждаете?" in text
    yes = payload(answer, "Да")
    done = await ask("pp-1", payload=yes, contract=BLOCKED)
    assert "подключён" in texts(done)
    assert "снова включён" in texts(done)
    after = await account(ss_services, BLOCKED)
    assert after.status == "active"
    assert after.balance_rub == Decimal("450.00")
    assert after.promised_payment is not None
    again = await ask("pp-1", payload=yes, contract=BLOCKED)  # "Да" pressed twice
    assert "уже сделано" in texts(again)
    assert (await account(ss_services, BLOCKED)).balance_rub == Decimal("450.00")
    log = await ss_services.oplog.for_contract(BLOCKED)
    assert [(r.kind, r.by, r.status) for r in log] == [("promised_payment", "bot", "done")]
    # the balance answer mentions it
    balance = await ask("pp-1", "какой у меня баланс", contract=BLOCKED)
    assert "обещанный платёж 900 ₽" in texts(balance)


async def test_promised_payment_refused_by_the_rules(ask: Say, ss_services: Services) -> None:
    answer = await ask("pp-2", "нужен обещанный платеж", contract=ACTIVE)
    assert "хватает, обещанный платёж не нужен" in texts(answer)
    assert "Подтверждаете?" not in texts(answer)
    assert await ss_services.oplog.for_contract(ACTIVE) == []


async def test_changing_ones_mind_changes_nothing(ask: Say, ss_services: Services) -> None:
    before = await account(ss_services, BLOCKED)
    offer = await ask("pp-3", "обещанный платёж", contract=BLOCKED)
    no = await ask("pp-3", "нет, передумал", contract=BLOCKED)
    assert "ничего не меняю" in texts(no)
    assert await account(ss_services, BLOCKED) == before
    # The old "Да" after the talk moved on does not confirm a stale offer.
    stale = await ask("pp-3", payload=payload(offer, "Да"), contract=BLOCKED)
    assert "неактуально" in texts(stale)
    assert await account(ss_services, BLOCKED) == before


async def test_unidentified_customer_is_asked_to_identify(ask: Say, ss_services: Services) -> None:
    answer = await ask("pp-4", "дайте обещанный платёж")
    assert "убедиться, что это вы" in texts(answer)
    assert "Подтверждаете?" not in texts(answer)


async def test_billing_down_apologises_and_changes_nothing(
    ask: Say, ss_services: Services, backend: FakeBilling | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await account(ss_services, BLOCKED)
    offer = await ask("pp-5", "обещанный платёж", contract=BLOCKED)
    if backend is not None:
        backend.fail_next(503, times=50)
    else:

        async def unavailable(contract: str, operation: Operation) -> Any:
            raise BillingUnavailable("down")

        monkeypatch.setattr(ss_services.billing, "apply", unavailable)
    failed = await ask("pp-5", payload=payload(offer, "Да"), contract=BLOCKED)
    assert "не удаётся связаться" in texts(failed)
    assert any(b["payload"] == "/human_operator" for b in buttons(failed))
    assert failed["state"] == "bot"
    if backend is not None:
        backend.recover()
        assert backend.applied == []
    else:
        monkeypatch.undo()
    assert await account(ss_services, BLOCKED) == before
    log = await ss_services.oplog.for_contract(BLOCKED)
    # the ledger fails at the change itself; the bridge already at reading the account
    assert [r.status for r in log] in (["failed"], [])


# --- voluntary pause ------------------------------------------------------------------------
async def test_pause_book_ask_end_and_resume(ask: Say, ss_services: Services) -> None:
    answer = await ask("sp-1", "хочу приостановить интернет на время отпуска", contract=ACTIVE)
    assert "На какие даты" in texts(answer)
    short = await ask("sp-1", "на 3 дня", contract=ACTIVE)
    assert "от 7 до 90 дней" in texts(short)  # refused by the rules, asked again
    offer = await ask("sp-1", "на две недели с понедельника", contract=ACTIVE)
    assert "Поставлю услуги на паузу" in texts(offer)
    assert "14 дней" in texts(offer)
    done = await ask("sp-1", "да, подтверждаю", contract=ACTIVE)
    assert "Готово: пауза" in texts(done)
    paused = await account(ss_services, ACTIVE)
    assert paused.suspension is not None
    assert (paused.suspension.end - paused.suspension.start).days == 13
    status = await ask("sp-1", "когда закончится моя пауза?", contract=ACTIVE)
    assert "Пауза уже оформлена" in texts(status)
    balance = await ask("sp-1", "баланс", contract=ACTIVE)
    assert "Запланирована пауза" in texts(balance)
    resume = await ask("sp-1", payload=payload(status, "Снять с паузы"), contract=ACTIVE)
    assert "Отменить запланированную паузу" in texts(resume)
    await ask("sp-1", payload=payload(resume, "Да"), contract=ACTIVE)
    assert (await account(ss_services, ACTIVE)).suspension is None


# --- tariff change -----------------------------------------------------------------------------
async def test_tariff_change_planned_shown_and_cancelled(ask: Say, ss_services: Services) -> None:
    answer = await ask("tc-1", "хочу сменить тариф", contract=ACTIVE)
    text = texts(answer)
    assert "Сейчас у вас тариф «Интернет 500»" in text
    assert "Интернет 500" not in [b["title"] for b in buttons(answer)]  # not the current one
    target = buttons(answer)[0]
    offer = await ask("tc-1", payload=target["payload"], contract=ACTIVE)
    assert f"тариф «{target['title']}»" in texts(offer)
    assert "нового расчётного периода" in texts(offer)
    await ask("tc-1", payload=payload(offer, "Да"), contract=ACTIVE)
    planned = await account(ss_services, ACTIVE)
    assert planned.pending_tariff is not None
    assert planned.tariff_id == "chita-inet-500"  # from the next charge, not now
    balance = await ask("tc-1", "мой баланс", contract=ACTIVE)
    assert f"переходите на тариф «{target['title']}»" in texts(balance)
    cancel = await ask("tc-1", "отмените смену тарифа", contract=ACTIVE)
    assert "Отменить переход" in texts(cancel)
    await ask("tc-1", "да", contract=ACTIVE)
    assert (await account(ss_services, ACTIVE)).pending_tariff is None


# --- extra services, autopay, notifications -------------------------------------------------------
async def test_service_on_and_off(ask: Say, ss_services: Services) -> None:
    offer = await ask("sv-1", "подключите антивирус", contract=ACTIVE)
    assert "за 99 ₽ в месяц" in texts(offer)
    await ask("sv-1", payload=payload(offer, "Да"), contract=ACTIVE)
    assert "chita-antivirus" in (await account(ss_services, ACTIVE)).services
    balance = await ask("sv-1", "баланс", contract=ACTIVE)
    assert "749 ₽ (тариф «Интернет 500» и подключённые услуги)" in texts(balance)
    off = await ask("sv-1", "отключите антивирус", contract=ACTIVE)
    assert "Отключить услугу «Антивирус»" in texts(off)
    await ask("sv-1", "да", contract=ACTIVE)
    assert "chita-antivirus" not in (await account(ss_services, ACTIVE)).services


async def test_autopay_off_and_how_to_turn_it_on(ask: Say, ss_services: Services) -> None:
    offer = await ask("ap-1", "отключите автоплатёж", contract=AUTOPAY_ON)
    await ask("ap-1", payload=payload(offer, "Да"), contract=AUTOPAY_ON)
    assert (await account(ss_services, AUTOPAY_ON)).autopay is False
    on = await ask("ap-1", "как подключить автоплатеж", contract=AUTOPAY_ON)
    assert "данные карты в чат вводить нельзя" in texts(on)


async def test_offers_opt_out_in_one_message(ask: Say, ss_services: Services) -> None:
    answer = await ask("nt-1", "надоели ваши смс с рекламой, отпишите меня", contract=ACTIVE)
    assert "сохранены" in texts(answer)
    assert "Акции и предложения: не присылаем" in texts(answer)
    prefs = (await account(ss_services, ACTIVE)).notifications
    assert prefs["offers"] == ()
    assert prefs["outages"]  # the account's own news still come


# --- contacts ---------------------------------------------------------------------------------
async def test_phone_change_needs_a_code_sent_to_the_new_number(
    ask: Say, ss_services: Services, settings: Settings
) -> None:
    answer = await ask("ct-1", "хочу поменять номер телефона в договоре", contract=ACTIVE)
    assert "Напишите новый номер" in texts(answer)
    sent = await ask("ct-1", "+7 914 555-66-77", contract=ACTIVE)
    assert "Отправил код" in texts(sent)
    notes = sorted((settings.var_dir / "notifications").glob("*.sms.json"))
    record = json.loads(notes[-1].read_text(encoding="utf-8"))
    assert record["to"] == "+79145556677"  # the NEW number proves it is theirs
    code = next(w for w in record["text"].split() if w.rstrip(".").isdigit()).rstrip(".")
    wrong = await ask("ct-1", "000000" if code != "000000" else "111111", contract=ACTIVE)
    assert (await account(ss_services, ACTIVE)).phone == "+79140000001"
    assert "код" in texts(wrong).lower()
    done = await ask("ct-1", code, contract=ACTIVE)
    assert "новый номер телефона сохранён" in texts(done)
    assert (await account(ss_services, ACTIVE)).phone == "+79145556677"


# --- unblocking and "internet down" ---------------------------------------------------------------
async def test_blocked_customer_hears_what_to_pay_and_is_unblocked_by_payment(
    ask: Say, ss_services: Services
) -> None:
    answer = await ask("ub-1", "почему заблокирован договор?", contract=BLOCKED)
    text = texts(answer)
    assert "не хватает 450 ₽" in text
    assert "пополните счёт на 450 ₽" in text
    assert "Обещанный платёж" in [b["title"] for b in buttons(answer)]
    down = await ask("ub-2", "не работает интернет", contract=BLOCKED)
    assert "задолженности" in texts(down)  # the account first, no router steps for a debt
    assert "роутер" not in texts(down)
    assert "Проверить дальше" in [b["title"] for b in buttons(down)]
    await ss_services.billing.apply(
        BLOCKED, Operation("pay-1", "payment", {"amount_rub": "500.00"}, by="billing")
    )
    assert (await account(ss_services, BLOCKED)).status == "active"


# --- invoice ------------------------------------------------------------------------------------
async def test_invoice_pdf_with_payment_qr(ask: Say, ss_client: TestClient) -> None:
    pypdf = pytest.importorskip("pypdf")
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    answer = await ask("iv-1", "пришлите квитанцию на оплату", contract=BLOCKED)
    assert "к оплате 900 ₽" in texts(answer)
    files = [a for r in answer["replies"] for a in r.get("attachments", [])]
    assert files
    assert files[0]["content_type"] == "application/pdf"
    resp = await ss_client.get(files[0]["url"])
    assert resp.status == 200
    pdf = pypdf.PdfReader(io.BytesIO(await resp.read()))
    page = pdf.pages[0]
    assert BLOCKED in page.extract_text()
    image = Image.open(io.BytesIO(page.images[0].data))
    decoded = zxingcpp.read_barcodes(image)
    assert decoded
    payload_text = decoded[0].text
    assert payload_text.startswith("ST00012|")
    assert f"PersAcc={BLOCKED}" in payload_text
    assert "Sum=90000" in payload_text


def test_demo_rules_file_is_loaded() -> None:
    from bot.catalog.catalog import load_catalog
    from bot.config import DEMO_CATALOG

    rules = load_catalog(Path(DEMO_CATALOG)).rules
    assert rules.requisites.bic == "044525225"


async def test_old_unanswered_yes_never_applies_after_a_newer_one(
    ask: Say, ss_services: Services, backend: FakeBilling | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await ask("st-1", "обещанный платёж", contract=BLOCKED)
    if backend is not None:
        backend.fail_next(503, times=50)
    else:

        async def unavailable(contract: str, operation: Operation) -> Any:
            raise BillingUnavailable("down")

        monkeypatch.setattr(ss_services.billing, "apply", unavailable)
    await ask("st-1", payload=payload(first, "Да"), contract=BLOCKED)  # no answer from billing
    if backend is not None:
        backend.recover()
    else:
        monkeypatch.undo()
    second = await ask("st-1", "дайте обещанный платёж", contract=BLOCKED)
    await ask("st-1", payload=payload(second, "Да"), contract=BLOCKED)
    assert (await account(ss_services, BLOCKED)).balance_rub == Decimal("450.00")
    stale = await ask("st-1", payload=payload(first, "Да"), contract=BLOCKED)
    assert "неактуально" in texts(stale)
    assert (await account(ss_services, BLOCKED)).balance_rub == Decimal("450.00")  # credit once


async def test_a_yes_with_a_question_is_asked_again_and_the_offer_kept(
    ask: Say, ss_services: Services
) -> None:
    await ask("yq-1", "хочу сменить тариф", contract=ACTIVE)
    offer = await ask("yq-1", "Игровой 1000", contract=ACTIVE)
    assert "Подтверждаете?" in texts(offer)
    unclear = await ask("yq-1", "да, а скорость какая?", contract=ACTIVE)
    assert "кнопкой «Да» или «Нет»" in texts(unclear)
    assert (await account(ss_services, ACTIVE)).pending_tariff is None
    done = await ask("yq-1", payload=payload(unclear, "Да"), contract=ACTIVE)
    assert "Игровой 1000" in texts(done)
    assert (await account(ss_services, ACTIVE)).pending_tariff is not None
    again = await ask("yq-1", "да", contract=ACTIVE)  # a second "да" right after
    assert "уже сделано" in texts(again)
