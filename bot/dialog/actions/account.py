"""Answers about the identified customer's money: balance, bonus points, payment history.

The engine runs these only for an identified customer (``requires_identity`` in the flow)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from bot.catalog.models import Account
from bot.dialog.actions.render import day_month, transaction_line
from bot.dialog.actions.troubleshoot import Troubleshooting
from bot.dialog.types import ActionContext, ActionResult
from bot.models import Button, Plural, Raw, Reply, Text
from bot.outages.lookup import outages_for_account
from bot.selfservice import policy


def _account(ctx: ActionContext) -> Account:
    if ctx.account is None:  # the flow's requires_identity guarantees this
        raise LookupError("account action without an identified customer")
    return ctx.account


def _today(ctx: ActionContext, account: Account) -> date:
    if ctx.actions is not None:
        return ctx.actions.today(account)
    return ctx.now.astimezone(ctx.catalog.timezone(account.city_id)).date()


def account_state(ctx: ActionContext, account: Account) -> list[Text]:
    """What is in force on the account beyond the money: a promised payment, a pause, a
    planned tariff change. Said in balance answers and before troubleshooting."""
    parts: list[Text] = []
    promised = account.promised_payment
    if promised is not None:
        parts.append(
            Text(
                "balance.promised",
                {"amount": promised.amount_rub, "until": day_month(promised.until)},
            )
        )
        repay = policy.to_repay_promised(account, ctx.catalog)
        if repay > 0:
            # One timeline: what keeps service on after it ends, and what also covers the
            # next charge (the balance shown includes the promised credit).
            stay = policy.monthly_total(account, ctx.catalog) - policy.own_money(account)
            charge_on = policy.next_charge(account, ctx.catalog, _today(ctx, account))
            parts.append(
                Text(
                    "balance.promised_repay",
                    {
                        "amount": repay,
                        "until": day_month(promised.until),
                        "stay": max(stay, repay),
                        "date": day_month(charge_on),
                    },
                )
            )
    pause = account.suspension
    if pause is not None:
        if pause.start > _today(ctx, account):
            key = "balance.pause_booked" if pause.end else "balance.pause_booked_open"
        else:
            key = "balance.pause_until" if pause.end else "balance.pause_open"
        parts.append(
            Text(
                key,
                {
                    "from": day_month(pause.start),
                    "to": day_month(pause.end) if pause.end else Raw(""),
                },
            )
        )
    pending = account.pending_tariff
    if pending is not None:
        tariff = ctx.catalog.tariffs.get(pending.tariff_id)
        parts.append(
            Text(
                "balance.pending_tariff",
                {
                    "tariff": Raw(tariff.name if tariff else pending.tariff_id),
                    "effective": day_month(pending.effective),
                },
            )
        )
    return parts


async def answer_balance(ctx: ActionContext) -> ActionResult:
    account = _account(ctx)
    catalog = ctx.catalog
    tariff = catalog.tariffs.get(account.tariff_id)
    today = _today(ctx, account)
    parts: list[Text] = [
        Text(
            "balance.summary",
            {"contract": Raw(account.contract_number), "balance": account.balance_rub},
        ),
        Text(f"balance.status.{account.status}"),
    ]
    buttons: list[Button] = []
    total = policy.monthly_total(account, catalog)
    charge_on = policy.next_charge(account, catalog, today)
    if account.status == "blocked":
        # Service is off now: what brings it back today, not how to "avoid a break".
        owed = policy.to_unblock(account, catalog)
        parts.append(Text("balance.to_unblock", {"amount": owed.quantize(Decimal("0.01"))}))
        buttons.append(Button(Text("button.promised_payment"), "/promised_payment"))
    elif tariff is not None and account.status != "suspended":
        services = len(policy.monthly_services(account, catalog))
        key = "balance.next_charge_with_services" if services else "balance.next_charge"
        parts.append(
            Text(key, {"date": day_month(charge_on), "amount": total, "tariff": Raw(tariff.name)})
        )
        shortfall = total - policy.own_money(account)
        # With a promised payment running, its repayment line (account_state) says it all.
        if shortfall > Decimal(0) and policy.to_repay_promised(account, catalog) == 0:
            parts.append(
                Text("balance.top_up", {"amount": shortfall, "date": day_month(charge_on)})
            )
    parts += account_state(ctx, account)
    if account.bonus_points:
        parts.append(Text("balance.bonus", {"points": Plural("unit.points", account.bonus_points)}))
    recent = await ctx.billing.transactions(account.contract_number, limit=3)
    if recent:
        parts.append(Text("balance.recent", {"items": [transaction_line(t) for t in recent]}))
    buttons += [
        Button(Text("button.history"), "/payment_history"),
        Button(Text("button.how_to_pay"), "/payment_method"),
    ]
    return ActionResult(replies=(Reply(tuple(parts), tuple(buttons)),))


async def internet_down(ctx: ActionContext) -> ActionResult:
    """The account first: a blocked or paused contract explains a dead line before anything
    else. Then a known outage at the customer's address: what, why, until when, and no tree
    (rebooting cannot fix a cut cable). Then the troubleshooting tree of the symptom
    (``troubleshoot.py``), which asks an unidentified customer's address itself. Both checks
    run again at every pressed step, so an outage posted mid-conversation is told at once."""
    run = Troubleshooting(ctx)
    if run.answer and run.mid_tree:
        typed = await run.typed()
        if typed is not None:
            return typed
        # A new symptom typed mid-tree: checked from the start like any other.
    account = ctx.account
    parts: list[Text] = []
    buttons: list[Button] = []
    if account is not None and account.status == "blocked" and not run.go:
        owed = policy.to_unblock(account, ctx.catalog).quantize(Decimal("0.01"))
        parts.append(Text("troubleshoot.blocked", {"amount": owed}))
        buttons += [
            Button(Text("button.promised_payment"), "/promised_payment"),
            Button(Text("button.how_to_pay"), "/payment_method"),
        ]
    elif account is not None and account.status == "suspended" and not run.go:
        parts.append(Text("troubleshoot.suspended"))
        parts += account_state(ctx, account)
        buttons.append(Button(Text("button.resume"), '/suspend_service{"mode":"resume"}'))
    outages = await outages_for_account(ctx, account, run.services) if account else []
    if account is not None and outages:
        told = run.outage(outages, account.city_id, mid_tree=run.mid_tree)
        reply = told.replies[0]
        return replace(told, replies=(Reply((*parts, *reply.parts), (*buttons, *reply.buttons)),))
    if parts:
        # Paying (or ending the pause) is the fix; the tree is for a customer who says it is
        # something else.
        parts.append(Text("troubleshooting.account_first"))
        buttons.append(run.continue_button())
        return ActionResult(replies=(Reply(tuple(parts), tuple(buttons)),))
    return await run.go_on(parts)


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
