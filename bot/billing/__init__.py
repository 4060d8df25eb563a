"""Billing: the interface, the embedded SQLite ledger and the HTTP connector."""

from bot.billing.base import (
    OPERATION_KINDS,
    Billing,
    BillingError,
    BillingRefused,
    BillingUnavailable,
    Operation,
    OperationKind,
)

__all__ = [
    "OPERATION_KINDS",
    "Billing",
    "BillingError",
    "BillingRefused",
    "BillingUnavailable",
    "Operation",
    "OperationKind",
]
