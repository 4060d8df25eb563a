"""Typed records of a provider catalog (see DATA_FORMAT.md); one frozen dataclass per CSV row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

TariffKind = Literal["internet", "tv", "internet_tv", "phone"]
OfficeKind = Literal["office", "terminal"]
CoverageStatus = Literal["connected", "planned"]
Technology = Literal["fttb", "gpon", "docsis"]
AccountStatus = Literal["active", "blocked", "suspended"]
ServiceKind = Literal["antivirus", "static_ip", "tv_package", "equipment_rent", "other"]
ServicePeriod = Literal["month", "once"]
EquipmentKind = Literal["router", "tv_box", "onu", "other"]

# What a customer may be told about, and where (notification preferences on the account).
NOTIFICATION_TOPICS: tuple[str, ...] = ("balance", "outages", "offers")
NOTIFICATION_CHANNELS: tuple[str, ...] = ("sms", "email", "messenger")
DEFAULT_NOTIFICATIONS: Mapping[str, tuple[str, ...]] = {
    "balance": ("sms", "messenger"),
    "outages": ("sms", "messenger"),
    "offers": ("email",),
}


@dataclass(frozen=True, slots=True)
class City:
    city_id: str
    name: str
    aliases: tuple[str, ...]
    timezone: str
    support_phone: str


@dataclass(frozen=True, slots=True)
class Tariff:
    tariff_id: str
    city_id: str
    name: str
    kind: TariffKind
    speed_mbps: int | None
    tv_channels: int | None
    price_rub: Decimal
    description: str
    archived: bool


@dataclass(frozen=True, slots=True)
class Office:
    office_id: str
    city_id: str
    kind: OfficeKind
    name: str
    address: str
    lat: float
    lon: float
    opening_hours: str
    services: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CoverageEntry:
    city_id: str
    street: str
    house: str
    status: CoverageStatus
    technology: Technology


@dataclass(frozen=True, slots=True)
class Service:
    """An extra service offered in a city (services.csv)."""

    service_id: str
    city_id: str
    name: str
    kind: ServiceKind
    price_rub: Decimal
    period: ServicePeriod
    description: str
    archived: bool


@dataclass(frozen=True, slots=True)
class Equipment:
    kind: EquipmentKind
    model: str
    serial: str
    ownership: Literal["rented", "owned"]
    return_on_termination: bool


@dataclass(frozen=True, slots=True)
class PromisedPayment:
    amount_rub: Decimal
    taken_on: date
    until: date  # the last day it covers; the amount is taken back after it


@dataclass(frozen=True, slots=True)
class Suspension:
    """A voluntary pause; both days inclusive. ``end`` None: until the customer resumes."""

    start: date
    end: date | None


@dataclass(frozen=True, slots=True)
class PendingTariff:
    tariff_id: str
    effective: date


@dataclass(frozen=True, slots=True)
class Account:
    """A customer's account as the billing reports it now (dates already applied: a pause that
    began today reads ``suspended``, an expired promised payment is gone)."""

    contract_number: str
    city_id: str
    holder_name: str
    phone: str
    email: str
    address: str
    tariff_id: str
    balance_rub: Decimal
    bonus_points: int
    status: AccountStatus
    next_charge_date: date
    autopay: bool = False
    last_payment_date: date | None = None
    services: tuple[str, ...] = ()
    equipment: tuple[Equipment, ...] = ()
    promised_payment: PromisedPayment | None = None
    last_promised_on: date | None = None  # when one was last taken (the cooldown counts from it)
    suspension: Suspension | None = None  # current or booked
    pending_tariff: PendingTariff | None = None
    notifications: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_NOTIFICATIONS)
    )


@dataclass(frozen=True, slots=True)
class Transaction:
    contract_number: str
    at: datetime
    amount_rub: Decimal
    description: str
