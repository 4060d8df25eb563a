"""The monthly invoice (payment slip) as a PDF, with a payment QR code a bank app can scan.

The QR code follows GOST R 56042-2014 ("Standards of financial operations. Two-dimensional
barcode symbols for payments by individuals"): the text ``ST00012`` (format ``ST``, version
``0001``, character set ``2`` = UTF-8), then ``Key=Value`` pairs, every one preceded by ``|``.
The five keys of the required block come first, in the standard's order: ``Name``,
``PersonalAcc``, ``BankName``, ``BIC``, ``CorrespAcc``; then the optional ones this bot fills:
``Sum`` (kopecks, digits only), ``Purpose``, ``PayeeINN``, ``KPP``, ``LastName``, ``FirstName``,
``MiddleName``, ``PayerAddress`` and ``PersAcc`` (the payer's account with the payee: here the
contract number, which is what the provider's billing matches a payment by). The symbol is
encoded at error-correction level M in byte mode without an ECI header, since bank apps read the
character set from the header and not from ECI.

All wording printed in the PDF comes in ``labels`` (see ``INVOICE_LABEL_KEYS``), which the caller
takes from ``locales/<lang>/invoice.yml``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from importlib import resources

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

QR_HEADER = "ST00012"
SEPARATOR = "|"

# Every label the PDF needs. Placeholders: title {number} {date}; date {day} {month} {year}
# (zero-padded strings); period {start} {end}; balance {date}; due {date}; purpose {contract}
# {number}. The rest are plain text.
INVOICE_LABEL_KEYS: tuple[str, ...] = (
    "title",  # "Invoice No. {number} of {date}"
    "date",  # how a date is written: "{day}.{month}.{year}"
    "period",  # "Billing period: {start} to {end}"
    "payee",  # requisites table: payee name
    "inn",
    "kpp",
    "bank",
    "bic",
    "correspondent_account",
    "settlement_account",
    "payer",  # payer table: the contract holder
    "contract",
    "address",
    "col_number",  # charges table headings
    "col_description",
    "col_amount",
    "total_charged",  # sum of the month's charges
    "balance",  # "Balance on {date}"
    "to_pay",  # "Total to pay"
    "due",  # "Please pay by {date}"
    "purpose_label",  # "Payment purpose"
    "purpose",  # the purpose text itself, also put in the QR: {contract} {number}
    "qr_hint",  # next to a QR code that carries the sum
    "qr_hint_no_sum",  # next to a QR code without a sum (nothing to pay: top up any amount)
    "qr_unavailable",  # in place of the QR code when the requisites are incomplete
)

# Longest values the standard allows for the fields that can run long. They are cut, not
# refused: the full text is printed on the invoice anyway, and a bank app identifies the payee
# by BIC and account, not by a name that lost its tail.
_MAX_NAME = 160
_MAX_BANK_NAME = 45
_MAX_PURPOSE = 210

# BICs ending in these belong to Bank of Russia and Federal Treasury divisions, whose accounts
# do not carry the commercial-bank control digit; such accounts are not checked.
_CENTRAL_BANK_BIC_ENDINGS = ("000", "001", "002")
_CONTROL_WEIGHTS = ((7, 1, 3) * 8)[:23]  # 3-digit key + 20-digit account


@dataclass(frozen=True, slots=True)
class Requisites:
    """The provider's payment details (``requisites`` in the catalog's ``rules.yml``)."""

    name: str
    inn: str
    kpp: str
    bank: str
    bic: str
    correspondent_account: str
    settlement_account: str

    def problem(self) -> str | None:
        """What keeps these requisites out of a payment QR code, or None if nothing does."""
        try:
            _checked(self)
        except ValueError as exc:
            return str(exc)
        return None

    def complete(self) -> bool:
        """All fields a bank app needs for a transfer are present and well-formed."""
        return self.problem() is None


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    amount_rub: Decimal


@dataclass(frozen=True, slots=True)
class Invoice:
    number: str
    issued: date
    period_start: date
    period_end: date
    due: date
    contract: str
    holder: str
    address: str
    city: str
    lines: tuple[InvoiceLine, ...]  # the month's recurring charges (tariff, services)
    balance_rub: Decimal  # current balance (negative = debt)
    to_pay_rub: Decimal  # what to pay (never negative; 0 = nothing to pay)

    def __post_init__(self) -> None:
        if self.to_pay_rub < 0:
            raise ValueError(f"invoice {self.number}: to_pay_rub must not be negative")
        if self.period_start > self.period_end:
            raise ValueError(f"invoice {self.number}: the period ends before it starts")


# --- the QR payload ------------------------------------------------------------------------------
def _clean(value: str) -> str:
    """A value safe inside the payload: ``|`` would start a new field, so it becomes a space;
    line breaks and runs of spaces become one space (bank apps show the field on one line)."""
    return " ".join(value.replace(SEPARATOR, " ").split())


def _digits(value: str) -> str:
    # Accounts are often written in groups ("4070 2810 ..."); the standard wants digits only.
    return re.sub(r"\s+", "", value)


def _control_ok(key: str, account: str) -> bool:
    """The Bank of Russia control digit check: the 3-digit key and the 20-digit account,
    weighted 7-1-3, must sum (last digits of the products) to a multiple of ten."""
    total = sum(int(c) * w % 10 for c, w in zip(key + account, _CONTROL_WEIGHTS, strict=True))
    return total % 10 == 0


def _checked(req: Requisites) -> dict[str, str]:
    """The requisites as payload values, or ValueError naming the first field that is wrong.

    A wrong account would send the customer's money elsewhere or have it returned days later, so
    the control digits are checked here rather than trusted to the provider's typing.
    """
    values = {
        "name": _clean(req.name),
        "bank": _clean(req.bank),
        "bic": _digits(req.bic),
        "correspondent_account": _digits(req.correspondent_account),
        "settlement_account": _digits(req.settlement_account),
        # Not required by the standard, but bank apps refuse a transfer to an organisation
        # without the payee's taxpayer number.
        "inn": _digits(req.inn),
        "kpp": _digits(req.kpp).upper(),
    }
    for field in ("name", "settlement_account", "bank", "bic", "correspondent_account", "inn"):
        if not values[field]:
            raise ValueError(f"requisites: {field} is missing")
    bic = values["bic"]
    if not re.fullmatch(r"\d{9}", bic):
        raise ValueError("requisites: bic must be 9 digits")
    account = values["settlement_account"]
    if not re.fullmatch(r"\d{20}", account):
        raise ValueError("requisites: settlement_account must be 20 digits")
    corr = values["correspondent_account"]
    if not re.fullmatch(r"\d{20}|0", corr):  # "0": a bank without one, as the standard allows
        raise ValueError("requisites: correspondent_account must be 20 digits")
    if not re.fullmatch(r"\d{10}|\d{12}", values["inn"]):
        raise ValueError("requisites: inn must be 10 or 12 digits")
    if values["kpp"] and not re.fullmatch(r"\d{4}[0-9A-Z]{2}\d{3}", values["kpp"]):
        raise ValueError("requisites: kpp must be 9 characters")
    if bic[-3:] not in _CENTRAL_BANK_BIC_ENDINGS:
        if not _control_ok(bic[-3:], account):
            raise ValueError("requisites: settlement_account does not match bic (control digit)")
        if corr != "0" and not _control_ok("0" + bic[4:6], corr):
            raise ValueError("requisites: correspondent_account does not match bic (control digit)")
    return values


def kopecks(amount_rub: Decimal) -> int:
    """Rubles as whole kopecks; ValueError for a fraction of a kopeck or a negative amount
    (rounding money silently would bill the customer a different sum than printed)."""
    cents = amount_rub * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"amount {amount_rub} has a fraction of a kopeck")
    if cents < 0:
        raise ValueError(f"amount {amount_rub} is negative")
    return int(cents)


def _split_name(payer: str) -> list[tuple[str, str]]:
    # Russian order: surname, given name, patronymic; anything beyond (e.g. "оглы") stays with
    # the patronymic.
    parts = payer.split(" ", 2) if payer else []
    return list(zip(("LastName", "FirstName", "MiddleName"), parts, strict=False))


def payment_qr_payload(
    req: Requisites,
    *,
    amount_rub: Decimal,
    purpose: str,
    contract: str,
    payer: str = "",
    address: str = "",
) -> str:
    """The GOST R 56042-2014 text for a bank app: pay ``amount_rub`` under ``contract``.

    ``amount_rub`` of 0 leaves ``Sum`` out, so the app asks the customer for an amount (a
    top-up). ``payer`` is the full name, surname first. Raises ValueError naming the requisites
    field that is missing or malformed, or for an amount that is negative or not whole kopecks.
    """
    values = _checked(req)
    fields: list[tuple[str, str]] = [
        ("Name", values["name"][:_MAX_NAME]),
        ("PersonalAcc", values["settlement_account"]),
        ("BankName", values["bank"][:_MAX_BANK_NAME]),
        ("BIC", values["bic"]),
        ("CorrespAcc", values["correspondent_account"]),
    ]
    if sum_kop := kopecks(amount_rub):
        fields.append(("Sum", str(sum_kop)))
    fields.append(("Purpose", _clean(purpose)[:_MAX_PURPOSE]))
    fields.append(("PayeeINN", values["inn"]))
    if values["kpp"]:
        fields.append(("KPP", values["kpp"]))
    fields.extend(_split_name(_clean(payer)))
    fields.append(("PayerAddress", _clean(address)))
    fields.append(("PersAcc", _clean(contract)))
    return QR_HEADER + "".join(f"{SEPARATOR}{key}={value}" for key, value in fields if value)


def _qr(payload: str) -> segno.QRCode:
    # Exactly level M, as documented: by default segno raises the level whenever the chosen
    # symbol size has room to spare, so the level would depend on the payload's length.
    return segno.make_qr(payload, error="m", mode="byte", encoding="utf-8", boost_error=False)


def qr_png(payload: str, *, scale: int = 8) -> bytes:
    """PNG of the payment QR code (with the 4-module quiet zone scanners need)."""
    out = io.BytesIO()
    _qr(payload).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


# --- the PDF -------------------------------------------------------------------------------------
_FONT = "DejaVu"
_MARGIN = 15.0
_QR_SIZE = 45.0  # mm: comfortably over the ~2 cm phones need at arm's length


def rub(amount: Decimal) -> str:
    """Default money format on the invoice, as Russian accounting writes it: 1 234,50 with a
    non-breaking space, always with kopecks, and a real minus sign for a debt."""
    amount = amount.quantize(Decimal("0.01"))
    if amount == 0:
        amount = amount.copy_abs()  # a balance of "-0" reads as a debt
    text = f"{amount:,.2f}"
    return text.replace(",", "\u00a0").replace(".", ",").replace("-", "\u2212")


def _date(labels: Mapping[str, str], day: date) -> str:
    return labels["date"].format(day=f"{day.day:02d}", month=f"{day.month:02d}", year=day.year)


def _add_fonts(pdf: FPDF) -> None:
    fonts = resources.files("bot.selfservice") / "fonts"
    for style, file in (("", "DejaVuSans.ttf"), ("B", "DejaVuSans-Bold.ttf")):
        with resources.as_file(fonts / file) as path:
            pdf.add_font(_FONT, style, path)


def _key_value_table(pdf: FPDF, rows: list[tuple[str, str]]) -> None:
    with pdf.table(
        col_widths=(55, 125),
        first_row_as_headings=False,
        text_align=("LEFT", "LEFT"),
        line_height=5,
        padding=1.2,
    ) as table:
        for key, value in rows:
            row = table.row()
            row.cell(key)
            row.cell(value)


def render_invoice_pdf(
    invoice: Invoice,
    requisites: Requisites,
    labels: Mapping[str, str],
    *,
    money: Callable[[Decimal], str] = rub,
) -> bytes:
    """The invoice as a one-page A4 PDF (more pages only for a very long list of charges).

    ``labels`` must hold every key of ``INVOICE_LABEL_KEYS`` (KeyError otherwise); ``money``
    formats an amount for the reader's locale (``Translator.money`` fits). The payment QR code
    carries the sum to pay; with nothing to pay it has no sum, and the ``qr_hint_no_sum`` note
    says any amount may be paid in advance. With incomplete requisites (``Requisites.complete``
    false) the page has no QR code and prints ``qr_unavailable`` instead. The file depends only
    on its inputs: its creation date is the issue date.
    """
    if missing := [key for key in INVOICE_LABEL_KEYS if key not in labels]:
        raise KeyError(f"invoice labels missing: {', '.join(missing)}")
    issued = _date(labels, invoice.issued)
    title = labels["title"].format(number=invoice.number, date=issued)
    purpose = labels["purpose"].format(contract=invoice.contract, number=invoice.number)
    address = ", ".join(part for part in (invoice.city, invoice.address) if part)

    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN)
    pdf.set_creation_date(datetime.combine(invoice.issued, time(), tzinfo=UTC))
    pdf.set_title(title)
    pdf.set_author(requisites.name)
    _add_fonts(pdf)
    pdf.add_page()
    pdf.set_font(_FONT, size=9)

    # The payee's requisites on top, as on any Russian bank invoice, so a customer paying by
    # hand finds them where the eye looks first.
    payee_rows = [
        (labels["payee"], requisites.name),
        (labels["inn"], requisites.inn),
        (labels["kpp"], requisites.kpp),
        (labels["bank"], requisites.bank),
        (labels["bic"], requisites.bic),
        (labels["correspondent_account"], requisites.correspondent_account),
        (labels["settlement_account"], requisites.settlement_account),
    ]
    _key_value_table(pdf, [(k, v) for k, v in payee_rows if v.strip()])

    pdf.ln(6)
    pdf.set_font(_FONT, "B", 14)
    pdf.multi_cell(0, 7, title, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=10)
    period = labels["period"].format(
        start=_date(labels, invoice.period_start), end=_date(labels, invoice.period_end)
    )
    pdf.multi_cell(0, 6, period, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    pdf.set_font(_FONT, size=9)
    payer_rows = [
        (labels["payer"], invoice.holder),
        (labels["contract"], invoice.contract),
        (labels["address"], address),
    ]
    _key_value_table(pdf, [(k, v) for k, v in payer_rows if v.strip()])
    pdf.ln(5)

    total_charged = sum((line.amount_rub for line in invoice.lines), Decimal(0))
    bold = FontFace(emphasis="BOLD")
    with pdf.table(
        col_widths=(12, 133, 35),
        text_align=("CENTER", "LEFT", "RIGHT"),
        line_height=5,
        padding=1.2,
        headings_style=bold,
    ) as table:
        table.row((labels["col_number"], labels["col_description"], labels["col_amount"]))
        for n, line in enumerate(invoice.lines, start=1):
            table.row((str(n), line.description, money(line.amount_rub)))
        summary = (
            (labels["total_charged"], money(total_charged), None),
            (labels["balance"].format(date=issued), money(invoice.balance_rub), None),
            (labels["to_pay"], money(invoice.to_pay_rub), bold),
        )
        for text, amount, style in summary:
            row = table.row(style=style)
            row.cell(text, colspan=2, align="RIGHT")
            row.cell(amount)

    pdf.ln(3)
    pdf.set_font(_FONT, "B", 10)
    due = labels["due"].format(date=_date(labels, invoice.due))
    pdf.multi_cell(0, 6, due, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=9)
    pdf.multi_cell(
        0, 5, f"{labels['purpose_label']}: {purpose}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.ln(5)

    if not requisites.complete():
        pdf.multi_cell(
            0, 5, labels["qr_unavailable"], align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
        return bytes(pdf.output())

    payload = payment_qr_payload(
        requisites,
        amount_rub=invoice.to_pay_rub,
        purpose=purpose,
        contract=invoice.contract,
        payer=invoice.holder,
        address=address,
    )
    if pdf.will_page_break(_QR_SIZE):
        pdf.add_page()
    top = pdf.get_y()
    pdf.image(io.BytesIO(qr_png(payload)), x=_MARGIN, y=top, w=_QR_SIZE, h=_QR_SIZE)
    pdf.set_xy(_MARGIN + _QR_SIZE + 6, top + 4)
    hint = labels["qr_hint"] if invoice.to_pay_rub > 0 else labels["qr_hint_no_sum"]
    pdf.multi_cell(0, 5, hint, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
