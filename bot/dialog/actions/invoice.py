"""The month's invoice as a PDF in the chat: the coming period's charges, what to pay, the
provider's requisites and a payment QR code (GOST R 56042) that bank apps scan."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

from bot.billing.effects import add_months
from bot.dialog.actions.offers import account_of, actions_of, menu_button
from bot.dialog.actions.render import day_month
from bot.dialog.types import ActionContext, ActionResult
from bot.models import Button, Reply, Text
from bot.selfservice import policy
from bot.selfservice.invoice import Invoice, InvoiceLine, Requisites, render_invoice_pdf

# ctx.extras keys, filled at start-up (bot/services.py)
FILES = "files"
INVOICE_LABELS = "invoice_labels"  # locale -> {label key: template}
MONEY = "money"  # (locale, amount) -> "1 250,50"


async def send_invoice(ctx: ActionContext) -> ActionResult:
    account = account_of(ctx)
    files = ctx.extras.get(FILES)
    labels_of: Callable[[str], Mapping[str, str]] | None = ctx.extras.get(INVOICE_LABELS)
    money: Callable[[str, Decimal], str] | None = ctx.extras.get(MONEY)
    if files is None or labels_of is None or money is None:
        return ActionResult(replies=(Reply((Text("selfservice.invoice.unavailable"),),
                                           (menu_button(),)),))  # fmt: skip
    catalog = ctx.catalog
    today = actions_of(ctx).today(account)
    start = policy.next_charge(account, catalog, today)
    end = add_months(start, 1) - timedelta(days=1)
    lines: list[InvoiceLine] = []
    tariff = catalog.tariffs.get(account.tariff_id)
    if tariff is not None:
        lines.append(InvoiceLine(tariff.name, tariff.price_rub))
    lines += [InvoiceLine(s.name, s.price_rub) for s in policy.monthly_services(account, catalog)]
    total = policy.monthly_total(account, catalog)
    to_pay = max(Decimal(0), total - policy.own_money(account)).quantize(Decimal("0.01"))
    due = start
    if account.promised_payment is not None and policy.to_repay_promised(account, catalog) > 0:
        due = min(start, account.promised_payment.until)  # before the credit is taken back
    city = catalog.city(account.city_id)
    invoice = Invoice(
        number=f"{account.contract_number}-{start:%Y%m}",
        issued=today,
        period_start=start,
        period_end=end,
        due=due,
        contract=account.contract_number,
        holder=account.holder_name,
        address=account.address,
        city=city.name if city else account.city_id,
        lines=tuple(lines),
        balance_rub=account.balance_rub,
        to_pay_rub=to_pay,
    )
    locale = ctx.conversation.locale
    requisites = Requisites(**asdict(catalog.rules.requisites))
    # fpdf2 is synchronous and takes tens of milliseconds: off the event loop.
    pdf = await asyncio.to_thread(
        render_invoice_pdf, invoice, requisites, labels_of(locale),
        money=lambda amount: money(locale, amount),
    )  # fmt: skip
    ref = await files.put(pdf, f"invoice-{invoice.number}.pdf", "application/pdf")
    key = "selfservice.invoice.sent" if to_pay else "selfservice.invoice.sent_nothing_due"
    parts = [Text(key, {"period": day_month(start), "amount": to_pay, "due": day_month(due)})]
    if not requisites.complete():
        parts.append(Text("selfservice.invoice.no_qr"))
    buttons = (Button(Text("button.how_to_pay"), "/payment_method"), menu_button())
    return ActionResult(replies=(Reply(tuple(parts), buttons, attachments=(ref,)),))
