"""Typed records of a provider catalog (see DATA_FORMAT.md); one frozen dataclass per CSV row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

TariffKind = Literal["internet", "tv", "internet_tv", "phone"]
OfficeKind = Literal["office", "terminal"]
CoverageStatus = Literal["connected", "planned"]
Technology = Literal["fttb", "gpon", "docsis"]
AccountStatus = Literal["active", "blocked", "suspended"]


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
class Account:
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


@dataclass(frozen=True, slots=True)
class Transaction:
    contract_number: str
    at: datetime
    amount_rub: Decimal
    description: str
