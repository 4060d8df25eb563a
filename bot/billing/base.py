"""Billing behind an interface: read the customer's account, and change it through operations.

Two implementations: the embedded ledger (``bot.billing.ledger``: the catalog's CSV files seed a
SQLite ledger, so changes survive restarts) and ``HttpBilling`` (``bot.billing.http``), a
connector to the small JSON-over-HTTP API of ``docs/billing-api.md`` that a provider bridges to
their own billing (LANBilling, Hydra, BGBilling …).

Every change is an ``Operation`` with an id chosen by the caller. The billing applies an id at
most once and answers a repeated id with the account as it is, so a retry after a timeout, a
redelivered webhook or "Да" pressed twice never changes money or service twice.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.catalog.models import Account, Transaction

OperationKind = Literal[
    "promised_payment",  # amount_rub, until (ISO date)
    "suspend",  # start, end (ISO dates, end may be null), fee_rub
    "resume",  # -
    "change_tariff",  # tariff_id, effective (ISO date; today or earlier = at once)
    "cancel_tariff_change",  # -
    "service_on",  # service_id, charge_rub (a one-off price charged now, else 0)
    "service_off",  # service_id
    "autopay",  # enabled (bool)
    "set_contact",  # field ("phone" | "email"), value
    "set_notifications",  # notifications: {topic: [channel, …]}
    "unblock",  # -
    "payment",  # amount_rub, description — a payment that arrived (billing events, demo)
]
OPERATION_KINDS: tuple[str, ...] = OperationKind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Operation:
    id: str  # idempotency key: the same id is applied once
    kind: OperationKind
    params: Mapping[str, Any] = field(default_factory=dict)  # JSON-serialisable
    by: str = "bot"  # "bot" or an operator's login
    at: datetime | None = None


class BillingError(Exception):
    """The billing did not do what was asked."""


class BillingRefused(BillingError):
    """The billing answered and said no (its own rules). ``code`` is machine-readable
    (``insufficient_funds``, ``not_allowed``, ``unknown_contract`` …)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


class BillingUnavailable(BillingError):
    """No answer we can trust: timeout, connection refused, 5xx, a malformed body. The operation
    may or may not have happened; retrying with the same id is safe."""


class Billing(abc.ABC):
    """All methods are async because a real billing is remote."""

    @abc.abstractmethod
    async def account(self, contract_number: str) -> Account | None:
        """The account as of now (a pause that began today reads ``suspended``)."""

    @abc.abstractmethod
    async def transactions(self, contract_number: str, *, limit: int = 10) -> list[Transaction]:
        """Most recent first."""

    @abc.abstractmethod
    async def find_by_phone(self, phone: str) -> list[Account]:
        """Accounts whose phone on file is ``phone`` (E.164, ``+7XXXXXXXXXX``)."""

    @abc.abstractmethod
    async def apply(self, contract_number: str, operation: Operation) -> Account:
        """Carry out ``operation`` once per id and return the account after it.

        Raises ``BillingRefused`` when the billing says no, ``BillingUnavailable`` when there is
        no trustworthy answer."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections, if any."""
