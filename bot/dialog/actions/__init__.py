"""Named actions the flows refer to (``action:`` in ``flows/dialog.yml``)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.dialog.actions.account import answer_balance, answer_bonus, answer_history
from bot.dialog.actions.callback import save_callback
from bot.dialog.actions.coverage import check_coverage, save_connection_request
from bot.dialog.actions.identity import identify, identify_by_contact, logout
from bot.dialog.actions.offices import answer_offices
from bot.dialog.actions.tariffs import answer_support_contacts, answer_tariffs
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
}
