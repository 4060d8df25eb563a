"""The monthly invoice: a PDF a customer can read (in Russian, with the real wording from
locales/) and pay by scanning its QR code, which a real decoder reads back as the GOST R
56042-2014 payment text with the right account, sum and contract."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from bot.i18n import Translator, load_translator
from bot.selfservice.invoice import (
    INVOICE_LABEL_KEYS,
    Invoice,
    InvoiceLine,
    Requisites,
    payment_qr_payload,
    qr_png,
    render_invoice_pdf,
)

ROOT = Path(__file__).resolve().parents[2]

# Real-world shaped requisites whose control digits are right (Sberbank's BIC and
# correspondent account; the settlement account matches that BIC).
REQ = Requisites(
    name="ООО «Телеком»",
    inn="7701234567",
    kpp="770101001",
    bank="ПАО СБЕРБАНК",
    bic="044525225",
    correspondent_account="30101810400000000225",
    settlement_account="40702810138250123017",
)

INVOICE = Invoice(
    number="2026-03/000123",
    issued=date(2026, 3, 1),
    period_start=date(2026, 3, 1),
    period_end=date(2026, 3, 31),
    due=date(2026, 3, 10),
    contract="100234",
    holder="Иванов Иван Иванович",
    address="ул. Ленина, д. 10, кв. 15",
    city="Рязань",
    lines=(
        InvoiceLine("Тариф «Домашний 500»", Decimal("750")),
        InvoiceLine("Аренда роутера", Decimal("150")),
        InvoiceLine("Пакет ТВ «Базовый»", Decimal("334.50")),
    ),
    balance_rub=Decimal("-1234.50"),
    to_pay_rub=Decimal("1234.50"),
)


@pytest.fixture(scope="module")
def tr() -> Translator:
    return load_translator(ROOT / "locales")


def labels(tr: Translator, locale: str = "ru") -> dict[str, str]:
    out: dict[str, str] = {}
    for key in INVOICE_LABEL_KEYS:
        message = tr.message(locale, f"invoice.{key}")
        assert isinstance(message, str), key
        out[key] = message
    return out


def fields(payload: str) -> list[tuple[str, str]]:
    """The payload as the standard reads it: header, then key=value parts split at "|"."""
    header, *parts = payload.split("|")
    assert header == "ST00012"
    return [(part.split("=", 1)[0], part.split("=", 1)[1]) for part in parts]


def text_of(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"\s+", " ", text)  # NBSP in amounts and line wraps read as plain spaces


def decoded_qr_codes(pdf: bytes) -> list[zxingcpp.Barcode]:
    found: list[zxingcpp.Barcode] = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for image in page.images:
            found += zxingcpp.read_barcodes(
                image.image.convert("L"), text_mode=zxingcpp.TextMode.Plain
            )
    return found


def invoice_payload(invoice: Invoice, tr: Translator) -> str:
    return payment_qr_payload(
        REQ,
        amount_rub=invoice.to_pay_rub,
        purpose=labels(tr)["purpose"].format(contract=invoice.contract, number=invoice.number),
        contract=invoice.contract,
        payer=invoice.holder,
        address=f"{invoice.city}, {invoice.address}",
    )


# --- the payload ---------------------------------------------------------------------------------
def test_payload_has_the_standard_header_and_field_order() -> None:
    payload = payment_qr_payload(
        REQ,
        amount_rub=Decimal("1234.50"),
        purpose="Оплата по договору 100234",
        contract="100234",
        payer="Иванов Иван Иванович",
        address="Рязань, ул. Ленина, д. 10",
    )
    assert payload == (
        "ST00012|Name=ООО «Телеком»|PersonalAcc=40702810138250123017|BankName=ПАО СБЕРБАНК"
        "|BIC=044525225|CorrespAcc=30101810400000000225|Sum=123450"
        "|Purpose=Оплата по договору 100234|PayeeINN=7701234567|KPP=770101001"
        "|LastName=Иванов|FirstName=Иван|MiddleName=Иванович"
        "|PayerAddress=Рязань, ул. Ленина, д. 10|PersAcc=100234"
    )


@pytest.mark.parametrize(
    ("rub", "kopecks"),
    [("1234.50", "123450"), ("1234.5", "123450"), ("0.01", "1"), ("700", "70000")],
)
def test_sum_is_whole_kopecks_without_separator(rub: str, kopecks: str) -> None:
    payload = payment_qr_payload(REQ, amount_rub=Decimal(rub), purpose="p", contract="1")
    assert dict(fields(payload))["Sum"] == kopecks


@pytest.mark.parametrize("rub", ["10.005", "-1"])
def test_amount_that_is_not_whole_kopecks_or_negative_is_refused(rub: str) -> None:
    with pytest.raises(ValueError, match=rub):
        payment_qr_payload(REQ, amount_rub=Decimal(rub), purpose="p", contract="1")


def test_zero_amount_leaves_the_sum_to_the_customer() -> None:
    payload = payment_qr_payload(REQ, amount_rub=Decimal(0), purpose="p", contract="100234")
    keys = [key for key, _ in fields(payload)]
    assert "Sum" not in keys
    assert dict(fields(payload))["PersAcc"] == "100234"


def test_a_pipe_or_line_break_in_a_value_cannot_start_a_new_field() -> None:
    req = replace(REQ, name="ООО «Телеком|Sum=1»", bank="ПАО|СБЕРБАНК")
    payload = payment_qr_payload(
        req,
        amount_rub=Decimal("500"),
        purpose="Оплата|PersonalAcc=40817810000000000000",
        contract="100|234",
        payer="Иванов\nИван|Иванович",
        address="Рязань |KPP=1",
    )
    parsed = fields(payload)
    assert [key for key, _ in parsed] == [
        "Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc", "Sum", "Purpose", "PayeeINN",
        "KPP", "LastName", "FirstName", "MiddleName", "PayerAddress", "PersAcc",
    ]  # fmt: skip
    values = dict(parsed)
    assert values["Sum"] == "50000"
    assert values["PersonalAcc"] == "40702810138250123017"
    assert values["KPP"] == "770101001"
    assert values["PersAcc"] == "100 234"
    assert (values["LastName"], values["FirstName"], values["MiddleName"]) == (
        "Иванов",
        "Иван",
        "Иванович",
    )


def test_empty_optional_values_are_left_out() -> None:
    payload = payment_qr_payload(
        replace(REQ, kpp=""), amount_rub=Decimal(1), purpose="p", contract="7"
    )
    assert [key for key, _ in fields(payload)] == [
        "Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc", "Sum", "Purpose", "PayeeINN",
        "PersAcc",
    ]  # fmt: skip


def test_long_texts_are_cut_to_the_standards_limits() -> None:
    req = replace(REQ, name="Н" * 200, bank="Б" * 60)
    values = dict(
        fields(payment_qr_payload(req, amount_rub=Decimal(1), purpose="П" * 300, contract="1"))
    )
    assert (len(values["Name"]), len(values["BankName"]), len(values["Purpose"])) == (160, 45, 210)


@pytest.mark.parametrize(
    "field", ["name", "inn", "bank", "bic", "correspondent_account", "settlement_account"]
)
def test_a_missing_requisite_is_named(field: str) -> None:
    req = replace(REQ, **{field: "  "})
    assert not req.complete()
    with pytest.raises(ValueError, match=f"requisites: {field} is missing"):
        payment_qr_payload(req, amount_rub=Decimal(1), purpose="p", contract="1")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bic", "04452522"),
        ("settlement_account", "4070281013825012301"),
        ("settlement_account", "40702810138250123018"),  # one digit mistyped
        ("correspondent_account", "30101810400000000226"),
        ("inn", "77012345"),
        ("kpp", "7701"),
    ],
)
def test_a_malformed_requisite_is_named(field: str, value: str) -> None:
    req = replace(REQ, **{field: value})
    assert not req.complete()
    with pytest.raises(ValueError, match=f"requisites: {field} "):
        payment_qr_payload(req, amount_rub=Decimal(1), purpose="p", contract="1")


def test_accounts_written_in_groups_are_accepted() -> None:
    req = replace(
        REQ,
        settlement_account="4070 2810 1382 5012 3017",
        correspondent_account="30101 810 4 0000 0000225",
    )
    assert req.complete()
    assert replace(REQ, kpp="").complete()  # KPP is optional (sole proprietors have none)
    values = dict(fields(payment_qr_payload(req, amount_rub=Decimal(1), purpose="p", contract="1")))
    assert values["PersonalAcc"] == "40702810138250123017"
    assert values["CorrespAcc"] == "30101810400000000225"


def test_qr_png_decodes_to_the_payload_at_level_m_in_byte_mode_without_eci() -> None:
    payload = payment_qr_payload(REQ, amount_rub=Decimal("99.90"), purpose="Оплата", contract="1")
    (code,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png(payload))))
    assert code.bytes == payload.encode("utf-8")
    assert code.ec_level == "M"
    assert code.symbology_identifier == "]Q1"  # no ECI header: the charset is in "ST00012"


# --- the PDF -------------------------------------------------------------------------------------
def test_invoice_pdf_shows_payer_charges_requisites_and_labels_in_russian(tr: Translator) -> None:
    text = text_of(render_invoice_pdf(INVOICE, REQ, labels(tr)))
    for expected in (
        "Счёт на оплату № 2026-03/000123 от 01.03.2026",
        "Расчётный период: с 01.03.2026 по 31.03.2026",
        "Плательщик Иванов Иван Иванович",
        "Договор (лицевой счёт) 100234",
        "Рязань, ул. Ленина, д. 10, кв. 15",
        "Тариф «Домашний 500» 750,00",
        "Пакет ТВ «Базовый» 334,50",
        "Начислено за период 1 234,50",
        "Баланс на 01.03.2026 \u22121 234,50",
        "Итого к оплате 1 234,50",
        "Оплатите, пожалуйста, до 10.03.2026",
        "Получатель ООО «Телеком»",
        "ИНН 7701234567",
        "КПП 770101001",
        "Банк получателя ПАО СБЕРБАНК",
        "БИК 044525225",
        "30101810400000000225",
        "40702810138250123017",
        "Назначение платежа: Оплата услуг связи по договору 100234",
        "Отсканируйте QR-код в приложении банка",
    ):
        assert expected in text


def test_invoice_qr_code_scans_as_the_payment_for_this_invoice(tr: Translator) -> None:
    (code,) = decoded_qr_codes(render_invoice_pdf(INVOICE, REQ, labels(tr)))
    assert code.text == invoice_payload(INVOICE, tr)
    assert code.text.startswith("ST00012|Name=ООО «Телеком»|PersonalAcc=40702810138250123017|")
    values = dict(fields(code.text))
    assert values["Sum"] == "123450"
    assert values["PersAcc"] == "100234"
    assert values["Purpose"] == "Оплата услуг связи по договору 100234, счёт № 2026-03/000123"
    assert code.ec_level == "M"


def test_nothing_to_pay_gives_a_top_up_code_without_a_sum(tr: Translator) -> None:
    paid = replace(INVOICE, balance_rub=Decimal("250"), to_pay_rub=Decimal(0))
    pdf = render_invoice_pdf(paid, REQ, labels(tr))
    (code,) = decoded_qr_codes(pdf)
    assert "Sum" not in dict(fields(code.text))
    assert dict(fields(code.text))["PersAcc"] == "100234"
    text = text_of(pdf)
    assert "Итого к оплате 0,00" in text
    assert "Сейчас платить ничего не нужно" in text
    assert "реквизиты и сумма заполнятся сами" not in text


def test_a_balance_rounded_to_zero_does_not_read_as_a_debt(tr: Translator) -> None:
    settled = replace(INVOICE, balance_rub=Decimal("-0.001"), to_pay_rub=Decimal(0))
    text = text_of(render_invoice_pdf(settled, REQ, labels(tr)))
    assert "Баланс на 01.03.2026 0,00" in text
    assert "\u2212" not in text


def test_incomplete_requisites_give_an_invoice_without_a_qr_code(tr: Translator) -> None:
    pdf = render_invoice_pdf(INVOICE, replace(REQ, settlement_account=""), labels(tr))
    assert all(not page.images for page in PdfReader(io.BytesIO(pdf)).pages)
    text = text_of(pdf)
    assert "Итого к оплате 1 234,50" in text
    assert "Оплатить можно в личном кабинете" in text
    assert "Расчётный счёт" not in text  # an empty row would look like a misprint


def test_a_long_bill_spills_onto_another_page_with_the_qr_code_whole(tr: Translator) -> None:
    lines = tuple(InvoiceLine(f"Услуга {n}", Decimal(10)) for n in range(1, 61))
    long = replace(INVOICE, lines=lines, to_pay_rub=Decimal(600))
    pdf = render_invoice_pdf(long, REQ, labels(tr))
    assert len(PdfReader(io.BytesIO(pdf)).pages) > 1
    assert "Услуга 60 10,00" in text_of(pdf)
    (code,) = decoded_qr_codes(pdf)
    assert dict(fields(code.text))["Sum"] == "60000"


def test_english_invoice_uses_the_english_labels_and_money_format(tr: Translator) -> None:
    pdf = render_invoice_pdf(INVOICE, REQ, labels(tr, "en"), money=lambda a: tr.money("en", a))
    text = text_of(pdf)
    assert "Invoice No. 2026-03/000123 of 01.03.2026" in text
    assert "Total to pay 1,234.50" in text
    assert "Счёт на оплату" not in text


def test_the_file_depends_only_on_the_invoice(tr: Translator) -> None:
    first = render_invoice_pdf(INVOICE, REQ, labels(tr))
    assert render_invoice_pdf(INVOICE, REQ, labels(tr)) == first
    created = PdfReader(io.BytesIO(first)).metadata
    assert created is not None
    assert created.creation_date == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_missing_label_is_named(tr: Translator) -> None:
    partial = labels(tr)
    del partial["qr_hint"]
    with pytest.raises(KeyError, match="qr_hint"):
        render_invoice_pdf(INVOICE, REQ, partial)


def test_an_invoice_cannot_ask_for_a_negative_payment() -> None:
    with pytest.raises(ValueError, match="to_pay_rub"):
        replace(INVOICE, to_pay_rub=Decimal("-1"))


# --- the locale files ----------------------------------------------------------------------------
@pytest.mark.parametrize("locale", ["ru", "en"])
def test_locale_file_has_exactly_the_invoice_labels(locale: str) -> None:
    data = yaml.safe_load((ROOT / "locales" / locale / "invoice.yml").read_text(encoding="utf-8"))
    assert list(data) == ["invoice"]
    assert set(data["invoice"]) == set(INVOICE_LABEL_KEYS)
