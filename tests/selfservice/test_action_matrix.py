"""Every account action the bot carries out, as a customer meets it through the REST channel with
a signed identity: the happy path, a refusal by the rules, a change of mind at the confirmation,
an unidentified customer and the billing down — each against the embedded ledger and against
HttpBilling + the fake billing bridge (the ``backend`` fixture in conftest.py).

The actions confirmed with «Да» are one table (``OFFERS``) run through the same tests; the
refusals are another table (``REFUSALS``). Contacts (confirmed by a code), notification
preferences (saying it is the consent) and the invoice (changes nothing) have their own tests.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from bot.billing.base import BillingUnavailable, Operation
from bot.catalog.models import Account
from bot.config import Settings
from bot.services import Services
from tests.conftest import Say, buttons, texts
from tests.fakes.billing import BLOCKED_WITH_MONEY, FakeBilling

BLOCKED = "750045678924"  # Чита, -450 ₽, «Интернет 100»
ACTIVE = "750012345678"  # Чита, 880.50 ₽, «Интернет 500», no extra services, autopay off
AUTOPAY_ON = "750012345691"  # Чита, autopay on, «Аренда роутера» and «Антивирус»
TEST_CATALOG: dict[str, Any] = {}  # demo rules, plus the account blocked with money on it

Setup = Callable[[Services, str], Awaitable[None]]


async def account(services: Services, contract: str) -> Account:
    found = await services.billing.account(contract)
    assert found is not None
    return found


def payload(answer: dict[str, Any], title: str) -> str:
    found = [b["payload"] for b in buttons(answer) if b["title"] == title]
    assert found, f"no button {title!r} in {[b['title'] for b in buttons(answer)]}"
    return found[0]


def titles(answer: dict[str, Any]) -> list[str]:
    return [b["title"] for b in buttons(answer)]


async def done_log(services: Services, contract: str) -> list[tuple[str, str, str]]:
    return [(r.kind, r.by, r.status) for r in await services.oplog.for_contract(contract)]


# --- states set up through the billing itself (not the bot, so the log stays empty) ----------
async def paused_since_today(services: Services, contract: str) -> None:
    today = services.account_actions.today(await account(services, contract))
    end = today + timedelta(days=13)
    params = {"start": today.isoformat(), "end": end.isoformat(), "fee_rub": "0.00"}
    await services.billing.apply(contract, Operation("setup-pause", "suspend", params, by="test"))


async def tariff_change_planned(services: Services, contract: str) -> None:
    effective = (await account(services, contract)).next_charge_date
    params = {"tariff_id": "chita-inet-100", "effective": effective.isoformat()}
    await services.billing.apply(
        contract, Operation("setup-tariff", "change_tariff", params, by="test")
    )


async def promised_payment_taken(services: Services, contract: str) -> None:
    today = services.account_actions.today(await account(services, contract))
    params = {"amount_rub": "900.00", "until": (today + timedelta(days=4)).isoformat()}
    await services.billing.apply(
        contract, Operation("setup-promised", "promised_payment", params, by="test")
    )


# --- the actions confirmed with «Да» ----------------------------------------------------------
@dataclass(frozen=True)
class Offer:
    name: str
    contract: str
    says: str  # the customer's words
    terms: tuple[str, ...]  # what the offer states
    kind: str  # the operation in the log
    effect: Callable[[Account, Account], bool]  # (before, after): the change the customer sees
    done: str  # in the answer to «Да»
    yes: str | None = None  # typed instead of pressing «Да»
    no: str | None = None  # typed instead of pressing «Нет»
    setup: Setup | None = None
    rules: dict[str, Any] | None = None  # a catalog copy (``ss_catalog``), None: the demo one
    anon_city: str | None = None  # anyone may see the services of a city: asked it first


OFFERS = [
    Offer(
        "promised_payment",
        BLOCKED,
        "дайте обещанный платёж, пожалуйста",
        ("обещанный платёж на 900 ₽", "Доступ к услугам включится сразу"),
        "promised_payment",
        lambda b, a: (
            a.balance_rub == b.balance_rub + 900
            and a.status == "active"
            and a.promised_payment is not None
        ),
        "обещанный платёж на 900 ₽ подключён",
    ),
    Offer(
        "unblock",
        BLOCKED_WITH_MONEY,
        "я оплатил, разблокируйте интернет",
        ("На счёте уже 100 ₽",),
        "unblock",
        lambda b, a: b.status == "blocked" and a.status == "active" and a.balance_rub == 100,
        "услуги снова работают",
        yes="да, включите",
        no="нет, не надо",
        rules=TEST_CATALOG,
    ),
    Offer(
        "pause_book",
        ACTIVE,
        "приостановите интернет с 10 по 25 января, уезжаю",
        ("с 10 января по 25 января", "16 дней"),
        "suspend",
        lambda b, a: (
            b.suspension is None
            and a.suspension is not None
            and (a.suspension.start.day, a.suspension.start.month) == (10, 1)
            and a.suspension.end is not None
            and (a.suspension.end - a.suspension.start).days == 15
        ),
        "Готово: пауза с 10 января по 25 января",
        yes="да, подтверждаю",
    ),
    Offer(
        "resume_early",
        ACTIVE,
        "я вернулся из отпуска, возобновите интернет",
        ("Снять паузу и включить услуги сейчас?",),
        "resume",
        lambda b, a: b.status == "suspended" and a.status == "active" and a.suspension is None,
        "пауза снята",
        no="нет, передумал",
        setup=paused_since_today,
    ),
    Offer(
        "change_tariff",
        ACTIVE,
        "можно перейти на 1 гигабит?",
        ("тариф «Игровой 1000» (950 ₽/мес)", "на 300 ₽ в месяц дороже"),
        "change_tariff",
        lambda b, a: (
            a.pending_tariff is not None
            and a.pending_tariff.tariff_id == "chita-game-1000"
            and a.tariff_id == b.tariff_id == "chita-inet-500"
        ),
        "у вас будет тариф «Игровой 1000»",
        yes="ок, оформляйте",
    ),
    Offer(
        "cancel_tariff_change",
        ACTIVE,
        "отмените смену тарифа, оставлю старый",
        ("Отменить переход на тариф «Интернет 100»",),
        "cancel_tariff_change",
        lambda b, a: b.pending_tariff is not None and a.pending_tariff is None,
        "тариф остаётся прежним",
        no="нет",
        setup=tariff_change_planned,
    ),
    Offer(
        "service_on",
        ACTIVE,
        "хочу подключить статический IP для камер",
        ("«Статический IP-адрес» за 150 ₽ в месяц", "станет 800 ₽"),
        "service_on",
        lambda b, a: "chita-static-ip" not in b.services and "chita-static-ip" in a.services,
        "услуга «Статический IP-адрес» подключена",
        yes="да",
        anon_city="Чита",
    ),
    Offer(
        "service_off",
        AUTOPAY_ON,
        "уберите аренду роутера, у меня теперь свой",
        ("Отключить услугу «Аренда роутера»?",),
        "service_off",
        lambda b, a: "chita-router-rent" in b.services and "chita-router-rent" not in a.services,
        "услуга «Аренда роутера» отключена",
        no="нет, передумала",
        anon_city="Чита",
    ),
    Offer(
        "autopay_off",
        AUTOPAY_ON,
        "отключите автоплатёж, буду платить сама",
        ("Отключить автоплатёж?",),
        "autopay",
        lambda b, a: b.autopay and not a.autopay,
        "автоплатёж отключён",
        yes="согласна",
    ),
]


def offer_cases() -> list[Any]:
    return [pytest.param(o, o.rules, id=o.name) for o in OFFERS]


offers = pytest.mark.parametrize(("spec", "ss_catalog"), offer_cases(), indirect=["ss_catalog"])


async def offered(ask: Say, services: Services, spec: Offer, sender: str) -> dict[str, Any]:
    """Set the account up, say the words, check the offer and its terms; return the answer."""
    if spec.setup is not None:
        await spec.setup(services, spec.contract)
    answer = await ask(sender, spec.says, contract=spec.contract)
    text = texts(answer)
    for term in spec.terms:
        assert term in text
    assert "Подтверждаете?" in text
    assert {"Да", "Нет"} <= set(titles(answer))
    return answer


@offers
async def test_confirmed_action_is_done_once(ask: Say, ss_services: Services, spec: Offer) -> None:
    offer = await offered(ask, ss_services, spec, "ok")
    before = await account(ss_services, spec.contract)  # after the set-up, before «Да»
    yes = payload(offer, "Да")
    if spec.yes is not None:
        done = await ask("ok", spec.yes, contract=spec.contract)
    else:
        done = await ask("ok", payload=yes, contract=spec.contract)
    assert spec.done in texts(done)
    after = await account(ss_services, spec.contract)
    assert spec.effect(before, after)
    assert await done_log(ss_services, spec.contract) == [(spec.kind, "bot", "done")]
    # «Да» pressed a second time: told it is done, nothing happens twice.
    again = await ask("ok", payload=yes, contract=spec.contract)
    assert "уже сделано" in texts(again)
    assert await account(ss_services, spec.contract) == after
    assert await done_log(ss_services, spec.contract) == [(spec.kind, "bot", "done")]


@offers
async def test_change_of_mind_changes_nothing(ask: Say, ss_services: Services, spec: Offer) -> None:
    offer = await offered(ask, ss_services, spec, "no")
    before = await account(ss_services, spec.contract)
    if spec.no is not None:
        declined = await ask("no", spec.no, contract=spec.contract)
    else:
        declined = await ask("no", payload=payload(offer, "Нет"), contract=spec.contract)
    assert "ничего не меняю" in texts(declined)
    assert await account(ss_services, spec.contract) == before
    # The old «Да» pressed after that does not bring the offer back.
    stale = await ask("no", payload=payload(offer, "Да"), contract=spec.contract)
    assert "неактуально" in texts(stale)
    assert await account(ss_services, spec.contract) == before
    assert await done_log(ss_services, spec.contract) == []


@offers
async def test_unidentified_customer_gets_no_offer(
    ask: Say, ss_services: Services, spec: Offer
) -> None:
    if spec.setup is not None:
        await spec.setup(ss_services, spec.contract)
    before = await account(ss_services, spec.contract)
    answer = await ask("anon", spec.says)
    if spec.anon_city is not None:
        assert "В каком вы городе?" in texts(answer)
        answer = await ask("anon", spec.anon_city)
        assert "подтвердите договор" in texts(answer)
    else:
        assert "убедиться, что это вы" in texts(answer)
    assert "Подтверждаете?" not in texts(answer)
    assert "Да" not in titles(answer)
    assert await account(ss_services, spec.contract) == before
    assert await done_log(ss_services, spec.contract) == []


class Outage:
    """The billing stops answering: the fake bridge answers 503, the embedded ledger's ``apply``
    (and, with ``reads``, ``account``) raises ``BillingUnavailable``."""

    def __init__(
        self, services: Services, backend: FakeBilling | None, mp: pytest.MonkeyPatch
    ) -> None:
        self.services, self.backend, self.mp = services, backend, mp

    def start(self, *, reads: bool = False) -> None:
        if self.backend is not None:
            self.backend.fail_next(503, times=50)
            return

        async def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise BillingUnavailable("down")

        self.mp.setattr(self.services.billing, "apply", unavailable)
        if reads:
            self.mp.setattr(self.services.billing, "account", unavailable)

    def end(self) -> None:
        if self.backend is not None:
            self.backend.recover()
        else:
            self.mp.undo()


@pytest.fixture
def outage(
    ss_services: Services, backend: FakeBilling | None, monkeypatch: pytest.MonkeyPatch
) -> Outage:
    return Outage(ss_services, backend, monkeypatch)


def apologised(answer: dict[str, Any]) -> None:
    assert "не удаётся связаться" in texts(answer)
    assert any(b["payload"] == "/human_operator" for b in buttons(answer))
    assert answer["state"] == "bot"  # still with the bot, not queued for a person


@offers
async def test_billing_down_at_yes_then_the_same_yes_does_it_once(
    ask: Say,
    ss_services: Services,
    backend: FakeBilling | None,
    outage: Outage,
    spec: Offer,
) -> None:
    offer = await offered(ask, ss_services, spec, "down")
    before = await account(ss_services, spec.contract)
    yes = payload(offer, "Да")
    applied = list(backend.applied) if backend is not None else []  # the set-up's
    outage.start()
    apologised(await ask("down", payload=yes, contract=spec.contract))
    outage.end()
    assert await account(ss_services, spec.contract) == before
    if backend is not None:
        assert backend.applied == applied
    # Back up: the same «Да» goes through, under the same operation id, exactly once.
    done = await ask("down", payload=yes, contract=spec.contract)
    assert spec.done in texts(done)
    after = await account(ss_services, spec.contract)
    assert spec.effect(before, after)
    assert await done_log(ss_services, spec.contract) == [(spec.kind, "bot", "done")]
    again = await ask("down", payload=yes, contract=spec.contract)
    assert "уже сделано" in texts(again)
    assert await account(ss_services, spec.contract) == after
    if backend is not None:
        assert len(backend.applied) == len(applied) + 1


async def test_signed_in_customer_asking_again_gets_the_offer(
    ask: Say, ss_services: Services
) -> None:
    anon = await ask("again", "дайте обещанный платёж")
    assert "убедиться, что это вы" in texts(anon)
    answer = await ask("again", "так можно обещанный платёж?", contract=BLOCKED)
    assert "обещанный платёж на 900 ₽" in texts(answer)
    done = await ask("again", payload=payload(answer, "Да"), contract=BLOCKED)
    assert "подключён" in texts(done)
    assert (await account(ss_services, BLOCKED)).status == "active"


async def test_identifying_answers_the_question_that_waited(
    ask: Say, ss_services: Services
) -> None:
    anon = await ask("later", "дайте обещанный платёж")
    assert "убедиться, что это вы" in texts(anon)
    # The customer signs in on the site; the widget's next message carries the identity.
    answer = await ask("later", "готово", contract=BLOCKED)
    assert "обещанный платёж на 900 ₽" in texts(answer)
    done = await ask("later", payload=payload(answer, "Да"), contract=BLOCKED)
    assert "подключён" in texts(done)
    assert (await account(ss_services, BLOCKED)).status == "active"


# --- refusals by the rules ----------------------------------------------------------------------
@dataclass(frozen=True)
class Refused:
    name: str
    contract: str
    says: str
    told: str  # the reason, in the customer's words
    setup: Setup | None = None
    rules: dict[str, Any] | None = None
    marks: tuple[Any, ...] = field(default=())


REFUSALS = [
    Refused(
        "promised_debt_too_large",
        BLOCKED,
        "нужен обещанный платеж",
        "Задолженность 450 ₽ больше допустимых 100 ₽",
        rules={"promised_payment": {"max_debt_rub": 100}},
    ),
    Refused(
        "promised_already_taken",
        BLOCKED,
        "можно ещё один обещанный платёж?",
        "Обещанный платёж уже подключён: 900 ₽",
        setup=promised_payment_taken,
    ),
    Refused(
        "unblock_without_money",
        BLOCKED,
        "почему заблокирован договор? включите интернет",
        "пополните счёт на 450 ₽",
    ),
    Refused("unblock_not_blocked", ACTIVE, "разблокируйте мой договор", "Договор не заблокирован"),
    Refused(
        "pause_too_short",
        ACTIVE,
        "приостановите интернет на 3 дня",
        "Получается 3 дня, а паузу можно оформить на срок от 7 до 90 дней",
    ),
    Refused(
        "pause_while_blocked",
        BLOCKED,
        "поставьте интернет на паузу на две недели с понедельника",
        "Пока договор заблокирован, паузу оформить нельзя. Сначала пополните счёт на 450 ₽",
    ),
    Refused(
        "pause_already_on",
        ACTIVE,
        "приостановите интернет с 10 по 25 января",
        "Услуги на паузе до",
        setup=paused_since_today,
    ),
    Refused(
        "resume_not_paused",
        ACTIVE,
        "возобновите интернет, я вернулся",
        "Услуги сейчас не на паузе",
    ),
    Refused(
        "tariff_while_blocked",
        BLOCKED,
        "хочу перейти на тариф Интернет 500",
        "Пока договор заблокирован, тариф сменить нельзя",
    ),
    Refused(
        "cancel_nothing_planned",
        ACTIVE,
        "отмените смену тарифа",
        "Запланированной смены тарифа нет",
    ),
    Refused(
        "service_while_blocked",
        BLOCKED,
        "подключите антивирус",
        "Пока договор заблокирован, подключить услугу нельзя",
    ),
    Refused(
        "service_already_on",
        AUTOPAY_ON,
        "подключите антивирус",
        "Услуга «Антивирус» уже подключена",
    ),
    Refused(
        "service_off_not_on",
        ACTIVE,
        "отключите статический IP",
        "Услуга «Статический IP-адрес» не подключена",
    ),
    Refused("autopay_already_off", ACTIVE, "отключите автоплатёж", "Автоплатёж и так выключен"),
    Refused(
        "contact_same",
        ACTIVE,
        "хочу поменять номер телефона на +7 914 000-00-01",
        "Этот контакт уже указан в договоре",
    ),
]


@pytest.mark.parametrize(
    ("case", "ss_catalog"),
    [pytest.param(r, r.rules, id=r.name, marks=r.marks) for r in REFUSALS],
    indirect=["ss_catalog"],
)
async def test_refused_by_the_rules(ask: Say, ss_services: Services, case: Refused) -> None:
    if case.setup is not None:
        await case.setup(ss_services, case.contract)
    before = await account(ss_services, case.contract)
    answer = await ask("refused", case.says, contract=case.contract)
    assert case.told in texts(answer)
    assert "Подтверждаете?" not in texts(answer)
    assert "Да" not in titles(answer)
    assert await account(ss_services, case.contract) == before
    assert await done_log(ss_services, case.contract) == []


async def test_polite_cancel_of_a_tariff_change(ask: Say, ss_services: Services) -> None:
    await tariff_change_planned(ss_services, ACTIVE)
    answer = await ask("polite", "отмените, пожалуйста, смену тарифа", contract=ACTIVE)
    assert "Отменить переход на тариф «Интернет 100»" in texts(answer)


# --- contacts: confirmed by a code sent to the new contact ------------------------------------
def last_code(settings: Settings, kind: str) -> tuple[str, str]:
    """(destination, code) of the last one-time code the bot sent."""
    notes = sorted((settings.var_dir / "notifications").glob(f"*.{kind}.json"))
    assert notes, f"no {kind} was sent"
    record = json.loads(notes[-1].read_text(encoding="utf-8"))
    code = next(w.rstrip(".") for w in record["text"].split() if w.rstrip(".").isdigit())
    return record["to"], code


async def test_email_change_with_the_code(
    ask: Say, ss_services: Services, ss_settings: Settings
) -> None:
    asked = await ask("mail", "поменяйте почту в договоре", contract=ACTIVE)
    assert "Напишите новый номер телефона или адрес e-mail" in texts(asked)
    sent = await ask("mail", "новая почта ivan.ivanov@mail.ru", contract=ACTIVE)
    assert "Отправил код" in texts(sent)
    to, code = last_code(ss_settings, "email")
    assert to == "ivan.ivanov@mail.ru"
    assert (await account(ss_services, ACTIVE)).email == "ivanov@example.ru"  # not before the code
    done = await ask("mail", code, contract=ACTIVE)
    assert "новая почта сохранена" in texts(done)
    assert (await account(ss_services, ACTIVE)).email == "ivan.ivanov@mail.ru"
    assert await done_log(ss_services, ACTIVE) == [("set_contact", "bot", "done")]


async def test_contact_change_needs_identity(ask: Say, ss_services: Services) -> None:
    answer = await ask("mail-anon", "хочу поменять номер телефона на +7 914 555-66-77")
    assert "убедиться, что это вы" in texts(answer)
    assert "Отправил код" not in texts(answer)
    assert (await account(ss_services, ACTIVE)).phone == "+79140000001"


async def test_contact_change_with_the_billing_down(
    ask: Say, ss_services: Services, ss_settings: Settings, outage: Outage
) -> None:
    await ask("mail-down", "хочу поменять номер телефона на +7 914 555-66-77", contract=ACTIVE)
    _, code = last_code(ss_settings, "sms")
    outage.start()
    apologised(await ask("mail-down", code, contract=ACTIVE))
    outage.end()
    assert (await account(ss_services, ACTIVE)).phone == "+79140000001"
    assert [s for _, _, s in await done_log(ss_services, ACTIVE)] in ([], ["failed"])


# --- notification preferences: saying it is the consent ---------------------------------------
async def test_offers_opt_out_is_saved_once(ask: Say, ss_services: Services) -> None:
    answer = await ask("nt", "больше не присылайте рекламу, пожалуйста", contract=ACTIVE)
    assert "настройки уведомлений сохранены" in texts(answer)
    assert "Акции и предложения: не присылаем" in texts(answer)
    prefs = (await account(ss_services, ACTIVE)).notifications
    assert prefs["offers"] == ()
    assert prefs["outages"]  # the account's own news still come
    again = await ask("nt", "отпишите меня от рассылки с акциями", contract=ACTIVE)
    assert "Акции и предложения: не присылаем" in texts(again)
    assert await done_log(ss_services, ACTIVE) == [("set_notifications", "bot", "done")]


async def test_tired_of_ad_sms_stops_only_the_ads(ask: Say, ss_services: Services) -> None:
    before = (await account(ss_services, ACTIVE)).notifications
    answer = await ask("nt-sms", "надоели ваши смс с рекламой", contract=ACTIVE)
    assert "Акции и предложения: не присылаем" in texts(answer)
    after = (await account(ss_services, ACTIVE)).notifications
    assert after["offers"] == ()
    # Reminders to pay and outage news were not what annoyed the customer: they keep coming.
    assert (after["balance"], after["outages"]) == (before["balance"], before["outages"])


async def test_notifications_need_identity(ask: Say, ss_services: Services) -> None:
    before = await account(ss_services, ACTIVE)
    answer = await ask("nt-anon", "больше не присылайте рекламу")
    assert "убедиться, что это вы" in texts(answer)
    assert await account(ss_services, ACTIVE) == before


async def test_notifications_with_the_billing_down(
    ask: Say, ss_services: Services, outage: Outage
) -> None:
    before = await account(ss_services, ACTIVE)
    outage.start()
    apologised(await ask("nt-down", "больше не присылайте рекламу", contract=ACTIVE))
    outage.end()
    assert await account(ss_services, ACTIVE) == before
    assert "done" not in [s for _, _, s in await done_log(ss_services, ACTIVE)]


# --- invoice: a document, no change --------------------------------------------------------------
async def test_invoice_changes_nothing(ask: Say, ss_services: Services) -> None:
    before = await account(ss_services, AUTOPAY_ON)
    answer = await ask("iv", "выставьте счёт на оплату за следующий месяц", contract=AUTOPAY_ON)
    # «Интернет + ТВ 300» 790 + router 100 + antivirus 99 = 989, minus 1250 on the account
    assert "доплачивать ничего не нужно" in texts(answer)
    files = [a for r in answer["replies"] for a in r.get("attachments", [])]
    assert [f["content_type"] for f in files] == ["application/pdf"]
    assert await account(ss_services, AUTOPAY_ON) == before
    assert await done_log(ss_services, AUTOPAY_ON) == []


async def test_invoice_needs_identity(ask: Say) -> None:
    answer = await ask("iv-anon", "пришлите квитанцию")
    assert "убедиться, что это вы" in texts(answer)
    assert not [a for r in answer["replies"] for a in r.get("attachments", [])]


async def test_invoice_with_the_billing_down(ask: Say, outage: Outage) -> None:
    outage.start(reads=True)
    answer = await ask("iv-down", "пришлите квитанцию", contract=BLOCKED)
    outage.end()
    apologised(answer)
    assert not [a for r in answer["replies"] for a in r.get("attachments", [])]
