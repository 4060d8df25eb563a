"""The embedded billing's starting data: ``accounts.csv``, ``transactions.csv`` and the optional
``account_services.csv`` and ``equipment.csv`` of a catalog directory (DATA_FORMAT.md), read as
strictly as the reference files."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from bot.catalog.catalog import Catalog
from bot.catalog.csv_rows import Row, read_rows
from bot.catalog.models import Account, Equipment, Suspension, Transaction

ACCOUNT_COLUMNS = (
    "contract_number",
    "city_id",
    "holder_name",
    "phone",
    "email",
    "address",
    "tariff_id",
    "balance_rub",
    "bonus_points",
    "status",
    "next_charge_date",
)
# Optional: a catalog from before self-service (or a provider's export) may leave them out.
ACCOUNT_OPTIONAL_COLUMNS = ("autopay", "last_payment_date", "suspended_from", "suspended_to")
TRANSACTION_COLUMNS = ("contract_number", "at", "amount_rub", "description")
ACCOUNT_SERVICE_COLUMNS = ("contract_number", "service_id", "since")
EQUIPMENT_COLUMNS = (
    "contract_number",
    "kind",
    "model",
    "serial",
    "ownership",
    "return_on_termination",
)

_CONTRACT = re.compile(r"[0-9]{6,16}")
_PHONE = re.compile(r"\+7[0-9]{10}")


@dataclass(frozen=True, slots=True)
class Seed:
    accounts: tuple[Account, ...]
    transactions: tuple[Transaction, ...]


def _account(row: Row, catalog: Catalog) -> Account:
    contract = row.text("contract_number")
    if not _CONTRACT.fullmatch(contract):
        raise row.fail(f"column 'contract_number': {contract!r} is not 6-16 digits")
    city_id = row.text("city_id")
    if catalog.city(city_id) is None:
        raise row.fail(f"column 'city_id': unknown city {city_id!r} (not in cities.csv)")
    tariff_id = row.text("tariff_id")
    tariff = catalog.tariffs.get(tariff_id)
    if tariff is None:
        raise row.fail(f"column 'tariff_id': unknown tariff {tariff_id!r} (not in tariffs.csv)")
    if tariff.city_id != city_id:
        raise row.fail(f"column 'tariff_id': tariff {tariff_id!r} belongs to {tariff.city_id!r}")
    phone = row.text("phone")
    if not _PHONE.fullmatch(phone):
        raise row.fail(f"column 'phone': {phone!r} is not in the form +7XXXXXXXXXX")
    status = row.choice("status", ("active", "blocked", "suspended"))
    suspension = None
    if row.text("suspended_from", required=False):
        end = row.day("suspended_to") if row.text("suspended_to", required=False) else None
        suspension = Suspension(row.day("suspended_from"), end)
        if end is not None and end < suspension.start:
            raise row.fail("column 'suspended_to': before suspended_from")
    elif row.text("suspended_to", required=False):
        raise row.fail("column 'suspended_to' is set but 'suspended_from' is empty")
    return Account(
        contract_number=contract,
        city_id=city_id,
        holder_name=row.text("holder_name"),
        phone=phone,
        email=row.text("email", required=False),
        address=row.text("address"),
        tariff_id=tariff_id,
        balance_rub=row.decimal("balance_rub"),
        bonus_points=row.optional_int("bonus_points") or 0,
        status=status,  # type: ignore[arg-type]  # checked by choice()
        next_charge_date=row.day("next_charge_date"),
        autopay=row.boolean("autopay") if row.text("autopay", required=False) else False,
        last_payment_date=(
            row.day("last_payment_date") if row.text("last_payment_date", required=False) else None
        ),
        suspension=suspension,
    )


def _known_contract(row: Row, accounts: dict[str, Account]) -> Account:
    contract = row.text("contract_number")
    if contract not in accounts:
        raise row.fail(f"column 'contract_number': unknown contract {contract!r}")
    return accounts[contract]


def load_seed(directory: Path, catalog: Catalog) -> Seed:
    accounts: dict[str, Account] = {}
    for row in read_rows(directory / "accounts.csv", ACCOUNT_COLUMNS, ACCOUNT_OPTIONAL_COLUMNS):
        account = _account(row, catalog)
        if account.contract_number in accounts:
            raise row.fail(f"duplicate contract_number {account.contract_number!r}")
        accounts[account.contract_number] = account
    transactions: list[Transaction] = []
    for row in read_rows(directory / "transactions.csv", TRANSACTION_COLUMNS):
        account = _known_contract(row, accounts)
        transactions.append(
            Transaction(
                contract_number=account.contract_number,
                at=row.moment("at"),
                amount_rub=row.decimal("amount_rub"),
                description=row.text("description"),
            )
        )
    if (directory / "account_services.csv").exists():
        for row in read_rows(directory / "account_services.csv", ACCOUNT_SERVICE_COLUMNS):
            account = _known_contract(row, accounts)
            service_id = row.text("service_id")
            service = catalog.services.get(service_id)
            if service is None:
                raise row.fail(f"column 'service_id': unknown service {service_id!r}")
            if service.city_id != account.city_id:
                raise row.fail(
                    f"column 'service_id': {service_id!r} belongs to {service.city_id!r}"
                )
            if service_id in account.services:
                raise row.fail(f"service {service_id!r} is listed twice for this contract")
            row.day("since")
            accounts[account.contract_number] = replace(
                account, services=(*account.services, service_id)
            )
    if (directory / "equipment.csv").exists():
        for row in read_rows(directory / "equipment.csv", EQUIPMENT_COLUMNS):
            account = _known_contract(row, accounts)
            item = Equipment(
                kind=row.choice("kind", ("router", "tv_box", "onu", "other")),  # type: ignore[arg-type]
                model=row.text("model"),
                serial=row.text("serial", required=False),
                ownership=row.choice("ownership", ("rented", "owned")),  # type: ignore[arg-type]
                return_on_termination=row.boolean("return_on_termination"),
            )
            accounts[account.contract_number] = replace(
                account, equipment=(*account.equipment, item)
            )
    return Seed(tuple(accounts.values()), tuple(transactions))
