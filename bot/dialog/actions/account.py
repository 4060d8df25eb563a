"""Answers about the identified customer's money: balance, bonus points, payment history.

The engine runs these only for an identified customer (``requires_identity`` in the flow)."""

from __future__ import annotations

from decimal import Decimal

from bot.catalog.models import Account
from bot.dialog.actions.render import day_month, transaction_line
from bot.dialog.types import ActionContext, ActionResult
from bot.models import Button, Plural, Raw, Reply, Text


def _account(ctx: ActionContext) -> Account:
    if ctx.account is None:  # the flow's requires_identity guarantees this
        raise LookupError("account action without an identified customer")
    return ctx.account


async def answer_balance(ctx: ActionContext) -> ActionResult:
    account = _account(ctx)
    tariff = ctx.catalog.tariffs.get(account.tariff_id)
    parts: list[Text] = [
        Text(
            "balance.summary",
            {"contract": Raw(account.contract_number), "balance": account.balance_rub},
        ),
        Text(f"balance.status.{account.status}"),
    ]
    if tariff is not None and account.status != "suspended":
        parts.append(
            Text(
                "balance.next_charge",
                {
                    "date": day_month(account.next_charge_date),
                    "amount": tariff.price_rub,
                    "tariff": Raw(tariff.name),
                },
            )
        )
        shortfall = tariff.price_rub - account.balance_rub
        if shortfall > Decimal(0):
            parts.append(
                Text(
                    "balance.top_up",
                    {"amount": shortfall, "date": day_month(account.next_charge_date)},
                )
            )
    if account.bonus_points:
        parts.append(Text("balance.bonus", {"points": Plural("unit.points", account.bonus_points)}))
    recent = await ctx.billing.transactions(account.contract_number, limit=3)
    if recent:
        parts.append(Text("balance.recent", {"items": [transaction_line(t) for t in recent]}))
    buttons = (
        Button(Text("button.history"), "/payment_history"),
        Button(Text("button.how_to_pay"), "/payment_method"),
    )
    return ActionResult(replies=(Reply(tuple(parts), buttons),))


async def answer_bonus(ctx: ActionContext) -> ActionResult:
    account = _account(ctx)
    return ActionResult(
        replies=(
            Reply(
                (
                    Text("bonus.summary", {"points": Plural("unit.points", account.bonus_points)}),
                    Text("bonus.how_to_spend"),
                )
            ),
        )
    )


async def answer_history(ctx: ActionContext) -> ActionResult:
    account = _account(ctx)
    items = await ctx.billing.transactions(account.contract_number, limit=10)
    if not items:
        return ActionResult(replies=(Reply((Text("history.empty"),)),))
    reply = Reply(
        (
            Text(
                "history.list",
                {
                    "contract": Raw(account.contract_number),
                    "items": [transaction_line(t) for t in items],
                },
            ),
        ),
        (Button(Text("button.balance"), "/balance"),),
    )
    return ActionResult(replies=(reply,))
