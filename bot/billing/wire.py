"""Accounts and transactions as JSON: the wire format of the billing API (docs/billing-api.md)
and how the embedded ledger stores them. Reading is strict: a malformed record raises
``ValueError`` naming the field, so a broken bridge is noticed instead of answered from."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.catalog.models import (
    DEFAULT_NOTIFICATIONS,
    NOTIFICATION_CHANNELS,
    Account,
    Equipment,
    PendingTariff,
    PromisedPayment,
    Suspension,
    Transaction,
)


def equipment_to_json(e: Equipment) -> dict[str, Any]:
    return {
        "kind": e.kind,
        "model": e.model,
        "serial": e.serial,
        "ownership": e.ownership,
        "return_on_termination": e.return_on_termination,
    }


def account_to_json(a: Account) -> dict[str, Any]:
    return {
        "contract_number": a.contract_number,
        "city_id": a.city_id,
        "holder_name": a.holder_name,
        "phone": a.phone,
        "email": a.email,
        "address": a.address,
        "tariff_id": a.tariff_id,
        "balance_rub": str(a.balance_rub),
        "bonus_points": a.bonus_points,
        "status": a.status,
        "next_charge_date": a.next_charge_date.isoformat(),
        "autopay": a.autopay,
        "last_payment_date": a.last_payment_date.isoformat() if a.last_payment_date else None,
        "services": list(a.services),
        "equipment": [equipment_to_json(e) for e in a.equipment],
        "promised_payment": (
            {
                "amount_rub": str(p.amount_rub),
                "taken_on": p.taken_on.isoformat(),
                "until": p.until.isoformat(),
            }
            if (p := a.promised_payment)
            else None
        ),
        "last_promised_on": a.last_promised_on.isoformat() if a.last_promised_on else None,
        "suspension": (
            {"from": s.start.isoformat(), "to": s.end.isoformat() if s.end else None}
            if (s := a.suspension)
            else None
        ),
        "pending_tariff": (
            {"tariff_id": t.tariff_id, "effective": t.effective.isoformat()}
            if (t := a.pending_tariff)
            else None
        ),
        "notifications": {k: list(v) for k, v in a.notifications.items()},
    }


class _Reader:
    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object")
        self.data = data
        self.where = where

    def fail(self, key: str, what: str) -> ValueError:
        return ValueError(f"{self.where}.{key}: expected {what}")

    def text(self, key: str, *, optional: bool = False) -> str:
        value = self.data.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def money(self, key: str) -> Decimal:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, "an amount")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(key, "an amount") from None
        if not amount.is_finite():
            raise self.fail(key, "a finite amount")
        return amount

    def day(self, key: str, *, optional: bool = False) -> date | None:
        value = self.data.get(key)
        if value is None and optional:
            return None
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.fail(key, "an ISO date") from None

    def required_day(self, key: str) -> date:
        day = self.day(key)
        assert day is not None
        return day

    def sub(self, key: str) -> _Reader | None:
        value = self.data.get(key)
        return None if value is None else _Reader(value, f"{self.where}.{key}")


def account_from_json(data: Any, where: str = "account") -> Account:
    r = _Reader(data, where)
    status = r.text("status")
    if status not in ("active", "blocked", "suspended"):
        raise r.fail("status", "active, blocked or suspended")
    bonus = r.data.get("bonus_points", 0)
    if isinstance(bonus, bool) or not isinstance(bonus, int):
        raise r.fail("bonus_points", "a whole number")
    services = r.data.get("services") or []
    if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
        raise r.fail("services", "a list of service ids")
    equipment = []
    for i, item in enumerate(r.data.get("equipment") or []):
        e = _Reader(item, f"{where}.equipment[{i}]")
        equipment.append(
            Equipment(
                kind=e.text("kind"),  # type: ignore[arg-type]
                model=e.text("model", optional=True),
                serial=e.text("serial", optional=True),
                ownership="owned" if e.data.get("ownership") == "owned" else "rented",
                return_on_termination=bool(e.data.get("return_on_termination", False)),
            )
        )
    promised = None
    if (p := r.sub("promised_payment")) is not None:
        promised = PromisedPayment(
            p.money("amount_rub"), p.required_day("taken_on"), p.required_day("until")
        )
    suspension = None
    if (s := r.sub("suspension")) is not None:
        suspension = Suspension(s.required_day("from"), s.day("to", optional=True))
    pending = None
    if (t := r.sub("pending_tariff")) is not None:
        pending = PendingTariff(t.text("tariff_id"), t.required_day("effective"))
    notifications = dict(DEFAULT_NOTIFICATIONS)
    raw_notes = r.data.get("notifications")
    if raw_notes is not None:
        if not isinstance(raw_notes, Mapping):
            raise r.fail("notifications", "an object of topics")
        for topic, channels in raw_notes.items():
            if not isinstance(channels, list) or any(
                c not in NOTIFICATION_CHANNELS for c in channels
            ):
                raise r.fail(f"notifications.{topic}", "a list of sms, email, messenger")
            notifications[str(topic)] = tuple(channels)
    return Account(
        contract_number=r.text("contract_number"),
        city_id=r.text("city_id"),
        holder_name=r.text("holder_name"),
        phone=r.text("phone", optional=True),
        email=r.text("email", optional=True),
        address=r.text("address", optional=True),
        tariff_id=r.text("tariff_id"),
        balance_rub=r.money("balance_rub"),
        bonus_points=bonus,
        status=status,  # type: ignore[arg-type]
        next_charge_date=r.required_day("next_charge_date"),
        autopay=bool(r.data.get("autopay", False)),
        last_payment_date=r.day("last_payment_date", optional=True),
        services=tuple(services),
        equipment=tuple(equipment),
        promised_payment=promised,
        last_promised_on=r.day("last_promised_on", optional=True),
        suspension=suspension,
        pending_tariff=pending,
        notifications=notifications,
    )


def transaction_to_json(t: Transaction) -> dict[str, Any]:
    return {"at": t.at.isoformat(), "amount_rub": str(t.amount_rub), "description": t.description}


def transaction_from_json(data: Any, contract: str, where: str = "transaction") -> Transaction:
    r = _Reader(data, where)
    try:
        at = datetime.fromisoformat(r.text("at"))
    except ValueError:
        raise r.fail("at", "an ISO 8601 date-time") from None
    if at.tzinfo is None:
        raise r.fail("at", "a date-time with a UTC offset")
    return Transaction(contract, at, r.money("amount_rub"), r.text("description", optional=True))
