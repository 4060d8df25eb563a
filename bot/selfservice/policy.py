"""The provider's rules applied to one account: may this customer take a promised payment, pause
for these dates, switch to that tariff …, and on what terms.

Pure functions of (account, catalog, today): the bot and the operator console ask the same
questions and get the same answers. A ``Proposal`` is what the billing will be asked to do (and
what the customer confirms); a ``Refusal`` says why not, as a reason code the wording is keyed by.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from bot.billing.base import OperationKind
from bot.billing.effects import next_charge_date
from bot.catalog.catalog import Catalog
from bot.catalog.models import NOTIFICATION_CHANNELS, NOTIFICATION_TOPICS, Account, Service, Tariff

# Without a payment for this long a block is explained as "long without payment".
LONG_WITHOUT_PAYMENT = timedelta(days=60)


@dataclass(frozen=True, slots=True)
class Proposal:
    kind: OperationKind
    params: Mapping[str, Any]  # for the billing (JSON)
    terms: Mapping[str, Any] = field(default_factory=dict)  # for the customer (JSON)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # e.g. "debt_too_large"; wording: selfservice.refused.<reason>
    terms: Mapping[str, Any] = field(default_factory=dict)


Decision = Proposal | Refusal


def rub(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


def monthly_services(account: Account, catalog: Catalog) -> list[Service]:
    return [
        s
        for sid in account.services
        if (s := catalog.services.get(sid)) is not None and s.period == "month"
    ]


def monthly_total(account: Account, catalog: Catalog) -> Decimal:
    """What the next monthly charge takes: the tariff and every recurring service."""
    tariff = catalog.tariffs.get(account.tariff_id)
    total = tariff.price_rub if tariff else Decimal(0)
    return total + sum((s.price_rub for s in monthly_services(account, catalog)), Decimal(0))


def next_charge(account: Account, catalog: Catalog, today: date) -> date:
    return next_charge_date(account.next_charge_date, today, catalog.rules.billing_day)


def own_money(account: Account) -> Decimal:
    """The balance without an active promised payment: that credit is taken back on its last
    day, so it never counts as paid for the next charge or an invoice."""
    promised = account.promised_payment
    return account.balance_rub - (promised.amount_rub if promised else Decimal(0))


def to_repay_promised(account: Account, catalog: Catalog) -> Decimal:
    """What to pay before a promised payment ends so that service is not suspended then."""
    if account.promised_payment is None:
        return Decimal(0)
    return max(Decimal(0), catalog.rules.unblock_at_balance_rub - own_money(account))


def to_unblock(account: Account, catalog: Catalog) -> Decimal:
    """What a blocked customer must pay now to get service back (0 when nothing)."""
    return max(Decimal(0), catalog.rules.unblock_at_balance_rub - account.balance_rub)


def _ceil_rub(amount: Decimal) -> Decimal:
    return Decimal(math.ceil(amount))


# --- promised payment ----------------------------------------------------------------------


def promised_payment(account: Account, catalog: Catalog, today: date) -> Decision:
    rules = catalog.rules.promised_payment
    if account.promised_payment is not None:
        p = account.promised_payment
        return Refusal(
            "promised_active", {"amount": rub(p.amount_rub), "until": p.until.isoformat()}
        )
    if account.status not in rules.statuses:
        return Refusal(f"promised_status_{account.status}")
    last = account.last_promised_on
    if last is not None and (today - last).days < rules.cooldown_days:
        again = last + timedelta(days=rules.cooldown_days)
        return Refusal("promised_cooldown", {"since": last.isoformat(), "again": again.isoformat()})
    debt = max(Decimal(0), -account.balance_rub)
    if debt > rules.max_debt_rub:
        return Refusal(
            "promised_debt_too_large",
            {
                "debt": rub(debt),
                "limit": rub(rules.max_debt_rub),
                "link": catalog.rules.payment_link(account.contract_number),
            },
        )
    monthly = monthly_total(account, catalog)
    # Enough to get service back and through the next charge, in whole rubles.
    needed = max(monthly - account.balance_rub, to_unblock(account, catalog))
    if needed <= 0:
        return Refusal("promised_not_needed", {"balance": rub(account.balance_rub)})
    amount = _ceil_rub(needed)
    until = today + timedelta(days=rules.days - 1)
    return Proposal(
        "promised_payment",
        {"amount_rub": rub(amount), "until": until.isoformat(), "fee_rub": rub(rules.fee_rub)},
        {
            "amount": rub(amount),
            "until": until.isoformat(),
            "days": rules.days,
            "fee": rub(rules.fee_rub),
            "unblocks": account.status == "blocked",
        },
    )


# --- voluntary suspension -------------------------------------------------------------------


def suspend(
    account: Account,
    catalog: Catalog,
    today: date,
    start: date | None,
    end: date | None,
    days: int | None,
) -> Decision:
    rules = catalog.rules.suspension
    if account.suspension is not None or account.status == "suspended":
        pause = account.suspension
        return Refusal(
            "suspend_already",
            {
                "from": pause.start.isoformat() if pause else None,
                "to": pause.end.isoformat() if pause and pause.end else None,
            },
        )
    if account.status == "blocked":
        return Refusal("suspend_blocked", {"amount": rub(to_unblock(account, catalog))})
    start = start or today + timedelta(days=1)
    if end is None and days is not None:
        end = start + timedelta(days=days - 1)
    if end is None:
        return Refusal("suspend_no_end", {"min": rules.min_days, "max": rules.max_days})
    if start < today:
        return Refusal("suspend_in_past", {"from": start.isoformat()})
    if end < start:
        return Refusal("suspend_reversed", {"from": start.isoformat(), "to": end.isoformat()})
    length = (end - start).days + 1
    if length < rules.min_days or length > rules.max_days:
        return Refusal(
            "suspend_length", {"days": length, "min": rules.min_days, "max": rules.max_days}
        )
    fee = rules.fee_per_day_rub * length
    if fee > 0 and account.balance_rub < fee:
        return Refusal("suspend_funds", {"fee": rub(fee), "balance": rub(account.balance_rub)})
    return Proposal(
        "suspend",
        {"start": start.isoformat(), "end": end.isoformat(), "fee_rub": rub(fee)},
        {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "days": length,
            "fee": rub(fee),
            "resume_on": (end + timedelta(days=1)).isoformat(),
        },
    )


def resume(account: Account, catalog: Catalog, today: date) -> Decision:
    if account.suspension is None and account.status != "suspended":
        return Refusal("resume_not_paused")
    pause = account.suspension
    started = pause is None or pause.start <= today
    return Proposal(
        "resume",
        {},
        {
            "started": started,
            "from": pause.start.isoformat() if pause else None,
            "to": pause.end.isoformat() if pause and pause.end else None,
        },
    )


# --- tariff change ---------------------------------------------------------------------------


def tariff_choices(account: Account, catalog: Catalog) -> list[Tariff]:
    return [t for t in catalog.active_tariffs(account.city_id) if t.tariff_id != account.tariff_id]


def change_tariff(account: Account, catalog: Catalog, today: date, tariff_id: str) -> Decision:
    target = catalog.tariffs.get(tariff_id)
    current = catalog.tariffs.get(account.tariff_id)
    if target is None or target.city_id != account.city_id or target.archived:
        return Refusal("tariff_unknown")
    if target.tariff_id == account.tariff_id:
        return Refusal("tariff_same", {"tariff": target.name})
    if account.status == "blocked":
        return Refusal("tariff_blocked", {"amount": rub(to_unblock(account, catalog))})
    effective = (
        today
        if catalog.rules.tariff_change.effective == "now"
        else next_charge(account, catalog, today)
    )
    difference = target.price_rub - (current.price_rub if current else Decimal(0))
    return Proposal(
        "change_tariff",
        {"tariff_id": target.tariff_id, "effective": effective.isoformat()},
        {
            "tariff": target.name,
            "price": rub(target.price_rub),
            "difference": rub(difference),
            "effective": effective.isoformat(),
            "now": effective <= today,
            "current": current.name if current else account.tariff_id,
        },
    )


def cancel_tariff_change(account: Account, catalog: Catalog) -> Decision:
    pending = account.pending_tariff
    if pending is None:
        return Refusal("tariff_no_pending")
    target = catalog.tariffs.get(pending.tariff_id)
    return Proposal(
        "cancel_tariff_change",
        {},
        {
            "tariff": target.name if target else pending.tariff_id,
            "effective": pending.effective.isoformat(),
        },
    )


# --- extra services --------------------------------------------------------------------------


def service_on(account: Account, catalog: Catalog, service_id: str) -> Decision:
    service = catalog.services.get(service_id)
    if service is None or service.city_id != account.city_id or service.archived:
        return Refusal("service_unknown")
    if service.service_id in account.services:
        return Refusal("service_already_on", {"service": service.name})
    if account.status == "blocked":
        return Refusal("service_blocked", {"amount": rub(to_unblock(account, catalog))})
    charge = service.price_rub if service.period == "once" else Decimal(0)
    if charge > account.balance_rub:
        return Refusal("service_funds", {"price": rub(charge), "balance": rub(account.balance_rub)})
    return Proposal(
        "service_on",
        {"service_id": service.service_id, "charge_rub": rub(charge)},
        {
            "service": service.name,
            "price": rub(service.price_rub),
            "period": service.period,
            "monthly_total": rub(
                monthly_total(account, catalog)
                + (service.price_rub if service.period == "month" else 0)
            ),
        },
    )


def service_off(account: Account, catalog: Catalog, service_id: str) -> Decision:
    service = catalog.services.get(service_id)
    if service is None or service.service_id not in account.services:
        return Refusal("service_not_on", {"service": service.name if service else service_id})
    return Proposal(
        "service_off",
        {"service_id": service.service_id},
        {"service": service.name, "price": rub(service.price_rub), "period": service.period},
    )


# --- autopay, notifications, contacts, unblocking --------------------------------------------


def autopay_off(account: Account) -> Decision:
    if not account.autopay:
        return Refusal("autopay_already_off")
    return Proposal("autopay", {"enabled": False})


def set_notifications(account: Account, changes: Mapping[str, tuple[str, ...]]) -> Decision:
    new = {t: tuple(account.notifications.get(t, ())) for t in NOTIFICATION_TOPICS}
    for topic, channels in changes.items():
        if topic not in NOTIFICATION_TOPICS or any(
            c not in NOTIFICATION_CHANNELS for c in channels
        ):
            return Refusal("notifications_unknown")
        new[topic] = tuple(c for c in NOTIFICATION_CHANNELS if c in channels)
    if all(new[t] == tuple(account.notifications.get(t, ())) for t in NOTIFICATION_TOPICS):
        return Refusal("notifications_unchanged")
    return Proposal(
        "set_notifications",
        {"notifications": {t: list(c) for t, c in new.items()}},
        {"notifications": {t: list(c) for t, c in new.items()}},
    )


def set_contact(account: Account, field_name: str, value: str) -> Decision:
    if field_name not in ("phone", "email"):
        return Refusal("contact_unknown")
    if getattr(account, field_name) == value:
        return Refusal("contact_same")
    return Proposal("set_contact", {"field": field_name, "value": value}, {"field": field_name})


def block_reasons(account: Account, catalog: Catalog, today: date) -> dict[str, Any]:
    """Why a contract is blocked and what brings it back, for the customer and the operator."""
    owed = to_unblock(account, catalog)
    long_unpaid = (
        account.last_payment_date is not None
        and today - account.last_payment_date > LONG_WITHOUT_PAYMENT
    )
    return {
        "debt": rub(max(Decimal(0), -account.balance_rub)),
        "to_unblock": rub(_ceil_rub(owed) if owed else owed),
        # paying the next month too keeps it from blocking again at the next charge
        "to_stay_on": rub(
            _ceil_rub(max(Decimal(0), monthly_total(account, catalog) - account.balance_rub))
        ),
        "long_unpaid": long_unpaid,
        "last_payment": account.last_payment_date.isoformat()
        if account.last_payment_date
        else None,
    }


def unblock(account: Account, catalog: Catalog, today: date) -> Decision:
    if account.status != "blocked":
        return Refusal(f"unblock_{account.status}")
    if account.balance_rub < catalog.rules.unblock_at_balance_rub:
        return Refusal("unblock_funds", block_reasons(account, catalog, today))
    return Proposal("unblock", {}, {"balance": rub(account.balance_rub)})
