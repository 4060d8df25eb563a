"""Billing behind an interface. ``CsvBilling`` is the embedded stand-in over ``accounts.csv`` and
``transactions.csv``; a connector to the provider's real billing implements the same ABC."""

from __future__ import annotations

import abc
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from bot.catalog.catalog import Catalog
from bot.catalog.csv_rows import CatalogError, Row, read_rows
from bot.catalog.models import Account, Transaction

ACCOUNT_COLUMNS = (
    "contract_number", "city_id", "holder_name", "phone", "email", "address", "tariff_id",
    "balance_rub", "bonus_points", "status", "next_charge_date",
)  # fmt: skip
TRANSACTION_COLUMNS = ("contract_number", "at", "amount_rub", "description")

_CONTRACT = re.compile(r"[0-9]{6,16}")
_PHONE = re.compile(r"\+7[0-9]{10}")


class Billing(abc.ABC):
    """Read access to customer accounts. All methods are async because real billing is remote."""

    @abc.abstractmethod
    async def account(self, contract_number: str) -> Account | None: ...

    @abc.abstractmethod
    async def transactions(self, contract_number: str, *, limit: int = 10) -> list[Transaction]:
        """Most recent first."""

    @abc.abstractmethod
    async def find_by_phone(self, phone: str) -> list[Account]:
        """Accounts whose phone on file is ``phone`` (E.164, ``+7XXXXXXXXXX``)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections, if any."""


class CsvBilling(Billing):
    def __init__(self, *, accounts: Iterable[Account], transactions: Iterable[Transaction]) -> None:
        self._accounts: Mapping[str, Account] = {a.contract_number: a for a in accounts}
        by_contract: dict[str, list[Transaction]] = defaultdict(list)
        for tx in transactions:
            by_contract[tx.contract_number].append(tx)
        self._transactions = {
            c: sorted(txs, key=lambda t: t.at, reverse=True) for c, txs in by_contract.items()
        }

    async def account(self, contract_number: str) -> Account | None:
        return self._accounts.get(contract_number)

    async def transactions(self, contract_number: str, *, limit: int = 10) -> list[Transaction]:
        return self._transactions.get(contract_number, [])[:limit]

    async def find_by_phone(self, phone: str) -> list[Account]:
        return [a for a in self._accounts.values() if a.phone == phone]

    @property
    def contracts(self) -> tuple[str, ...]:
        return tuple(self._accounts)


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
    bonus = row.optional_int("bonus_points") or 0
    return Account(
        contract_number=contract,
        city_id=city_id,
        holder_name=row.text("holder_name"),
        phone=phone,
        email=row.text("email", required=False),
        address=row.text("address"),
        tariff_id=tariff_id,
        balance_rub=row.decimal("balance_rub"),
        bonus_points=bonus,
        status=row.choice("status", ("active", "blocked", "suspended")),  # type: ignore[arg-type]
        next_charge_date=row.day("next_charge_date"),
    )


def load_csv_billing(directory: Path, catalog: Catalog) -> CsvBilling:
    accounts: dict[str, Account] = {}
    for row in read_rows(directory / "accounts.csv", ACCOUNT_COLUMNS):
        account = _account(row, catalog)
        if account.contract_number in accounts:
            raise row.fail(f"duplicate contract_number {account.contract_number!r}")
        accounts[account.contract_number] = account
    transactions: list[Transaction] = []
    for row in read_rows(directory / "transactions.csv", TRANSACTION_COLUMNS):
        contract = row.text("contract_number")
        if contract not in accounts:
            raise row.fail(f"column 'contract_number': unknown contract {contract!r}")
        transactions.append(
            Transaction(
                contract_number=contract,
                at=row.moment("at"),
                amount_rub=row.decimal("amount_rub"),
                description=row.text("description"),
            )
        )
    return CsvBilling(accounts=accounts.values(), transactions=transactions)


__all__ = [
    "ACCOUNT_COLUMNS",
    "TRANSACTION_COLUMNS",
    "Billing",
    "CatalogError",
    "CsvBilling",
    "load_csv_billing",
]
