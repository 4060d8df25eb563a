"""What an operation does to an account, and what the passing of days does: the pure state
machine that both embedded ledgers (in memory and SQLite) share.

No rule of the provider is checked here (the self-service layer does that before asking, so a
bot and an operator get the same answer); only what a billing itself would refuse is refused:
an unknown tariff or service, unblocking with too little money.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bot.billing.base import BillingRefused, Operation
from bot.catalog.catalog import Catalog
from bot.catalog.models import (
    NOTIFICATION_CHANNELS,
    NOTIFICATION_TOPICS,
    Account,
    AccountStatus,
    PendingTariff,
    PromisedPayment,
    Suspension,
    Transaction,
)

# Wording of the ledger's own transaction lines (shown in payment history), by operation kind.
Describe = Callable[[str], str]


def add_months(day: date, months: int, *, keep_day: int | None = None) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(keep_day or day.day, last))


def next_charge_date(stored: date, today: date, billing_day: int) -> date:
    """The next day the monthly fee is charged, never in the past: a stored date that has
    passed (the billing has not told us the new one yet) rolls forward to the billing day."""
    if stored >= today:
        return stored
    candidate = date(today.year, today.month, min(billing_day, 28))
    return candidate if candidate >= today else add_months(candidate, 1, keep_day=billing_day)


def _status_by_money(account: Account, threshold: Decimal) -> AccountStatus:
    return "active" if account.balance_rub >= threshold else "blocked"


def settle(account: Account, today: date, catalog: Catalog) -> Account:
    """Bring an account up to ``today``: a promised payment past its last day is taken back, a
    booked pause starts or ends, a planned tariff change takes effect."""
    rules = catalog.rules
    promised = account.promised_payment
    if promised is not None and today > promised.until:
        account = replace(
            account, balance_rub=account.balance_rub - promised.amount_rub, promised_payment=None
        )
        if account.status == "active" and account.balance_rub < rules.unblock_at_balance_rub:
            account = replace(account, status="blocked")
    pause = account.suspension
    if pause is not None:
        if pause.end is not None and today > pause.end:
            account = replace(account, suspension=None, status="active")
            account = replace(
                account, status=_status_by_money(account, rules.unblock_at_balance_rub)
            )
        elif pause.start <= today and account.status != "suspended":
            account = replace(account, status="suspended")
    pending = account.pending_tariff
    if pending is not None and today >= pending.effective:
        account = replace(account, tariff_id=pending.tariff_id, pending_tariff=None)
    return replace(
        account,
        next_charge_date=next_charge_date(account.next_charge_date, today, rules.billing_day),
    )


@dataclass(frozen=True, slots=True)
class Applied:
    account: Account
    transactions: tuple[Transaction, ...] = ()


def _day(params: Mapping[str, Any], key: str) -> date:
    try:
        return date.fromisoformat(str(params[key]))
    except (KeyError, ValueError):
        raise BillingRefused("bad_request", f"{key!r} must be an ISO date") from None


def _money(params: Mapping[str, Any], key: str) -> Decimal:
    try:
        value = Decimal(str(params.get(key, 0)))
    except ArithmeticError:
        raise BillingRefused("bad_request", f"{key!r} must be an amount") from None
    if not value.is_finite() or value < 0:
        raise BillingRefused("bad_request", f"{key!r} must be a non-negative amount")
    return value


def apply_operation(
    account: Account,
    operation: Operation,
    *,
    today: date,
    now: datetime,
    catalog: Catalog,
    describe: Describe,
) -> Applied:
    """The account after ``operation`` (already settled to ``today``), and the money it moved."""
    params = operation.params
    threshold = catalog.rules.unblock_at_balance_rub
    moved: list[Transaction] = []

    def money(amount: Decimal, kind: str) -> None:
        nonlocal account
        if amount:
            account = replace(account, balance_rub=account.balance_rub + amount)
            moved.append(Transaction(account.contract_number, now, amount, describe(kind)))

    kind = operation.kind
    if kind == "promised_payment":
        # A billing never stacks promised payments, whatever the caller decided.
        if account.promised_payment is not None:
            raise BillingRefused("not_allowed", "a promised payment is already active")
        amount = _money(params, "amount_rub")
        money(amount, "promised_payment")
        money(-_money(params, "fee_rub"), "promised_payment_fee")
        account = replace(
            account,
            promised_payment=PromisedPayment(amount, today, _day(params, "until")),
            last_promised_on=today,
        )
        if account.status == "blocked" and account.balance_rub >= threshold:
            account = replace(account, status="active")
    elif kind == "suspend":
        start = _day(params, "start")
        end = _day(params, "end") if params.get("end") else None
        if start < today or (end is not None and end < start):
            raise BillingRefused("bad_request", "a pause cannot start in the past or end before")
        if account.suspension is not None:
            raise BillingRefused("not_allowed", "the account is already paused")
        money(-_money(params, "fee_rub"), "suspension_fee")
        account = replace(account, suspension=Suspension(start, end))
        if start <= today:
            account = replace(account, status="suspended")
    elif kind == "resume":
        if account.suspension is None and account.status != "suspended":
            raise BillingRefused("not_suspended", "the account is not paused")
        account = replace(account, suspension=None, status="active")
        account = replace(account, status=_status_by_money(account, threshold))
    elif kind == "change_tariff":
        tariff = catalog.tariffs.get(str(params.get("tariff_id")))
        if tariff is None or tariff.city_id != account.city_id or tariff.archived:
            raise BillingRefused("unknown_tariff", "no such tariff in the customer's city")
        effective = _day(params, "effective")
        if effective <= today:
            account = replace(account, tariff_id=tariff.tariff_id, pending_tariff=None)
        else:
            account = replace(account, pending_tariff=PendingTariff(tariff.tariff_id, effective))
    elif kind == "cancel_tariff_change":
        if account.pending_tariff is None:
            raise BillingRefused("no_pending_change", "no tariff change is planned")
        account = replace(account, pending_tariff=None)
    elif kind in ("service_on", "service_off"):
        service = catalog.services.get(str(params.get("service_id")))
        if service is None or service.city_id != account.city_id:
            raise BillingRefused("unknown_service", "no such service in the customer's city")
        if kind == "service_on":
            if service.archived:
                raise BillingRefused("unknown_service", "the service is no longer offered")
            if service.service_id not in account.services:
                money(-_money(params, "charge_rub"), "service_charge")
                account = replace(account, services=(*account.services, service.service_id))
        else:
            account = replace(
                account, services=tuple(s for s in account.services if s != service.service_id)
            )
    elif kind == "autopay":
        account = replace(account, autopay=bool(params.get("enabled")))
    elif kind == "set_contact":
        field_name = params.get("field")
        if field_name not in ("phone", "email") or not str(params.get("value") or ""):
            raise BillingRefused("bad_request", "field must be phone or email, with a value")
        value = str(params["value"])
        if field_name == "phone":
            account = replace(account, phone=value)
        else:
            account = replace(account, email=value)
    elif kind == "set_notifications":
        account = replace(account, notifications=_notifications(params.get("notifications")))
    elif kind == "unblock":
        if account.status != "blocked":
            raise BillingRefused("not_blocked", "the account is not blocked")
        if account.balance_rub < threshold:
            raise BillingRefused("insufficient_funds", "the balance is below the unblock level")
        account = replace(account, status="active")
    elif kind == "payment":
        money(_money(params, "amount_rub"), "payment")
        account = replace(account, last_payment_date=today)
        if account.status == "blocked" and account.balance_rub >= threshold:
            account = replace(account, status="active")
    else:
        raise BillingRefused("unknown_operation", f"unknown operation {kind!r}")
    return Applied(account, tuple(moved))


def _notifications(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise BillingRefused("bad_request", "notifications must be a mapping of topics")
    out: dict[str, tuple[str, ...]] = {}
    for topic in NOTIFICATION_TOPICS:
        channels = raw.get(topic, ())
        if not isinstance(channels, list | tuple) or any(
            c not in NOTIFICATION_CHANNELS for c in channels
        ):
            raise BillingRefused("bad_request", f"notifications.{topic}: unknown channel")
        out[topic] = tuple(c for c in NOTIFICATION_CHANNELS if c in channels)
    unknown = set(raw) - set(NOTIFICATION_TOPICS)
    if unknown:
        raise BillingRefused("bad_request", f"unknown notification topic(s) {sorted(unknown)}")
    return out
