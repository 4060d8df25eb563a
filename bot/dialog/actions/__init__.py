"""Named actions the flows refer to (``action:`` in ``flows/dialog.yml``)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.dialog.actions.account import (
    answer_balance,
    answer_bonus,
    answer_history,
    internet_down,
)
from bot.dialog.actions.account_actions import (
    change_tariff,
    promised_payment,
    suspension,
    unblock,
)
from bot.dialog.actions.account_settings import (
    autopay,
    change_contacts,
    notifications,
    services,
)
from bot.dialog.actions.callback import save_callback
from bot.dialog.actions.complaint import save_complaint
from bot.dialog.actions.coverage import check_coverage, save_connection_request
from bot.dialog.actions.identity import identify, identify_by_contact, logout
from bot.dialog.actions.invoice import send_invoice
from bot.dialog.actions.offers import confirm_operation, decline_operation
from bot.dialog.actions.offices import answer_offices
from bot.dialog.actions.tariffs import answer_support_contacts, answer_tariffs
from bot.dialog.actions.termination import request_termination
from bot.dialog.actions.visits import technician_visit
from bot.dialog.types import Action

ACTIONS: Mapping[str, Action] = {
    "balance": answer_balance,
    "bonus_balance": answer_bonus,
    "payment_history": answer_history,
    "tariffs": answer_tariffs,
    "coverage": check_coverage,
    "connection_request": save_connection_request,
    "offices": answer_offices,
    "support_contacts": answer_support_contacts,
    "identify": identify,
    "identify_by_contact": identify_by_contact,
    "logout": logout,
    "callback": save_callback,
    "complaint": save_complaint,
    "terminate_contract": request_termination,
    "internet_down": internet_down,
    "promised_payment": promised_payment,
    "unblock": unblock,
    "suspension": suspension,
    "change_tariff": change_tariff,
    "services": services,
    "autopay": autopay,
    "notifications": notifications,
    "change_contacts": change_contacts,
    "invoice": send_invoice,
    "confirm_operation": confirm_operation,
    "decline_operation": decline_operation,
    "technician_visit": technician_visit,
}
