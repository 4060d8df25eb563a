"""The customer card of the operator console and the account actions an operator takes from it.

``GET /api/v1/operator/customers/{contract}`` is the card: the account as the billing reports it,
what the rules allow next (tariffs and services to switch to) and the operations log.
``POST …/customers/{contract}/actions/{kind}`` runs an action through ``AccountActions``, the
same rules and code the bot uses, so an operator cannot promise what the bot would refuse and
the log says who did it. ``dry_run`` asks the rules only: the console shows the terms, and the
operator's confirmation then carries it out under the operation id the preview handed out (a
double click or a retry after a timeout is done once).

The card shows contacts masked: an operator recognises them, a screenshot does not leak them.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from bot.billing import Billing
from bot.billing.base import BillingUnavailable
from bot.billing.wire import equipment_to_json
from bot.catalog.catalog import Catalog
from bot.catalog.models import Account, Tariff
from bot.handoff.audit import audit
from bot.handoff.auth import authorized
from bot.http import json_response
from bot.notify import mask_email, mask_phone
from bot.selfservice import policy
from bot.selfservice.oplog import OperationRecord
from bot.selfservice.policy import Proposal, Refusal
from bot.selfservice.service import ACTION_KINDS, AccountActions, ActionError, Done
from bot.untrusted import SHORT_TEXT_LIMIT, UntrustedInput, clean_text, loads

log = logging.getLogger(__name__)

# Contacts change only with the customer's one-time code (the bot's flow), never by an operator.
CONSOLE_KINDS: tuple[str, ...] = tuple(k for k in ACTION_KINDS if k != "set_contact")
OPERATIONS_SHOWN = 50
_OP_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_CONTROL_KEYS = ("op_id", "dry_run", "conversation_id")
# A contract number in the path: digits and a few separators in every billing we know.
_CONTRACT_LIMIT = 64


def new_op_id() -> str:
    return secrets.token_urlsafe(12)


def card_json(
    account: Account,
    catalog: Catalog,
    operations: list[OperationRecord],
    today: date,
) -> dict[str, Any]:
    """The card: the account now, what can be offered, and the operations newest first."""
    tariff = catalog.tariffs.get(account.tariff_id)
    city = catalog.city(account.city_id)
    pending = account.pending_tariff
    pending_target = catalog.tariffs.get(pending.tariff_id) if pending else None
    promised = account.promised_payment
    pause = account.suspension
    balance = policy.rub(account.balance_rub)
    return {
        "contract": account.contract_number,
        "holder": account.holder_name,
        "city_id": account.city_id,
        "city": city.name if city else account.city_id,
        "address": account.address,
        "status": account.status,
        "balance_rub": balance,
        "bonus_points": account.bonus_points,
        "tariff_id": account.tariff_id,
        "tariff": _tariff(tariff) if tariff else None,
        "pending_tariff": {
            "tariff_id": pending.tariff_id,
            "name": pending_target.name if pending_target else pending.tariff_id,
            "effective": pending.effective.isoformat(),
        }
        if pending
        else None,
        "promised_payment": {
            "amount_rub": policy.rub(promised.amount_rub),
            "until": promised.until.isoformat(),
            "taken_on": promised.taken_on.isoformat(),
        }
        if promised
        else None,
        "suspension": {
            "from": pause.start.isoformat(),
            "to": pause.end.isoformat() if pause.end else None,
        }
        if pause
        else None,
        "services": list(account.services),
        "services_detail": [_service(sid, catalog) for sid in account.services],
        "autopay": account.autopay,
        "notifications": {t: list(c) for t, c in account.notifications.items()},
        "phone": mask_phone(account.phone) if account.phone else None,
        "email": mask_email(account.email) if account.email else None,
        "next_charge_date": policy.next_charge(account, catalog, today).isoformat(),
        "monthly_total_rub": policy.rub(policy.monthly_total(account, catalog)),
        "to_unblock_rub": policy.rub(policy.to_unblock(account, catalog))
        if account.status == "blocked"
        else None,
        "last_payment_date": account.last_payment_date.isoformat()
        if account.last_payment_date
        else None,
        "equipment": [equipment_to_json(e) for e in account.equipment],
        "available": {
            "tariffs": [_tariff(t) for t in policy.tariff_choices(account, catalog)],
            "services_on": [
                _service(s.service_id, catalog)
                for s in catalog.offered_services(account.city_id)
                if s.service_id not in account.services
            ],
            "services_off": [_service(sid, catalog) for sid in account.services],
            "kinds": list(CONSOLE_KINDS),
        },
        "operations": [_operation(r) for r in operations],
        # The names the conversation view used before the card grew; the console reads them.
        "holder_name": account.holder_name,
        "balance": str(account.balance_rub),
    }


def _tariff(tariff: Tariff) -> dict[str, Any]:
    return {
        "tariff_id": tariff.tariff_id,
        "name": tariff.name,
        "price": policy.rub(tariff.price_rub),
        "kind": tariff.kind,
        "speed_mbps": tariff.speed_mbps,
        "tv_channels": tariff.tv_channels,
    }


def _service(service_id: str, catalog: Catalog) -> dict[str, Any]:
    service = catalog.services.get(service_id)
    if service is None:  # taken out of the catalog: still on the account, shown by its id
        return {"service_id": service_id, "name": service_id, "price": None, "period": None}
    return {
        "service_id": service_id,
        "name": service.name,
        "price": policy.rub(service.price_rub),
        "period": service.period,
    }


def _operation(record: OperationRecord) -> dict[str, Any]:
    details = dict(record.details)
    params = details.get("params")
    if record.kind == "set_contact" and isinstance(params, Mapping):
        # The new phone or e-mail is the customer's personal data: masked like the card's own.
        value = str(params.get("value", ""))
        masked = mask_email(value) if params.get("field") == "email" else mask_phone(value)
        details["params"] = {**params, "value": masked}
    return {
        "id": record.id,
        "kind": record.kind,
        "at": record.at.isoformat(),
        "by": record.by,
        "status": record.status,
        "details": details,
    }


def _refusal(refusal: Refusal) -> web.Response:
    return json_response(
        {"refusal": {"reason": refusal.reason, "terms": dict(refusal.terms)}}, status=409
    )


def _unavailable() -> web.Response:
    return json_response(
        {"error": "the billing is not answering; nothing was changed, try again later"},
        status=503,
    )


class CustomerDesk:
    """Cards and actions for the operator API; without ``actions`` the card has no log and
    actions answer 503 (a deployment that has not wired them)."""

    def __init__(
        self, *, billing: Billing, catalog: Catalog, actions: AccountActions | None
    ) -> None:
        self._billing = billing
        self._catalog = catalog
        self._actions = actions

    def routes(self, app: web.Application, base: str) -> None:
        customer = f"{base}/customers/{{contract}}"
        app.router.add_get(customer, self.show)
        app.router.add_post(f"{customer}/actions/{{kind}}", self.act)

    def _today(self, account: Account) -> date:
        if self._actions is not None:
            return self._actions.today(account)  # the same "today" the rules decide by
        return datetime.now(UTC).astimezone(self._catalog.timezone(account.city_id)).date()

    async def card(self, account: Account) -> dict[str, Any]:
        operations = (
            await self._actions.oplog.for_contract(account.contract_number, limit=OPERATIONS_SHOWN)
            if self._actions is not None
            else []
        )
        return card_json(account, self._catalog, operations, self._today(account))

    async def card_of(self, contract: str) -> dict[str, Any] | None:
        """The card of a contract; None when the billing does not know it. Raises
        ``BillingUnavailable``."""
        account = await self._billing.account(contract)
        return await self.card(account) if account is not None else None

    async def show(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=False)
        contract = _contract(request)
        if contract is None:
            return json_response({"error": "no such contract"}, status=404)
        try:
            card = await self.card_of(contract)
        except BillingUnavailable:
            return _unavailable()
        if card is None:
            return json_response({"error": "no such contract"}, status=404)
        await audit(request, "customer.card", login=operator.login, target=contract)
        return json_response(card)

    async def act(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        contract = _contract(request)
        if contract is None:
            return json_response({"error": "no such contract"}, status=404)
        kind = clean_text(request.match_info["kind"], SHORT_TEXT_LIMIT)
        try:
            body = await _body(request)
            op_id, dry_run, conversation_id = _controls(body)
            if kind == "set_contact":
                raise ActionError(
                    "contacts are changed only by the customer with a one-time code sent to "
                    "them (the bot's flow), not from the console"
                )
            if kind not in CONSOLE_KINDS:
                raise ActionError(f"unknown action {kind!r}; one of {', '.join(CONSOLE_KINDS)}")
            if self._actions is None:
                return json_response({"error": "account actions are not configured"}, status=503)
            args = {k: v for k, v in body.items() if k not in _CONTROL_KEYS}
            if dry_run:
                return await self._preview(self._actions, contract, kind, args)
            result = await self._actions.carry_out(
                contract, kind, args, op_id=op_id or new_op_id(), by=operator.login,
                conversation_id=conversation_id,
            )  # fmt: skip
        except ActionError as exc:
            return json_response({"error": str(exc)}, status=400)
        except BillingUnavailable:
            return _unavailable()
        if isinstance(result, Refusal):
            if result.reason == "unknown_contract":
                return json_response({"error": "no such contract"}, status=404)
            log.info("operator %s: %s refused (%s)", operator.login, kind, result.reason)
            await audit(
                request, "customer.action", login=operator.login, target=contract, kind=kind,
                outcome="refused", reason=result.reason, conversation_id=conversation_id,
            )  # fmt: skip
            return _refusal(result)
        log.info(
            "operator %s: %s done%s", operator.login, kind, " (repeat)" if result.repeat else ""
        )
        await audit(
            request, "customer.action", login=operator.login, target=contract, kind=kind,
            outcome="repeat" if result.repeat else "done", conversation_id=conversation_id,
        )  # fmt: skip
        return json_response(await self._done(kind, result))

    async def _preview(
        self, actions: AccountActions, contract: str, kind: str, args: Mapping[str, Any]
    ) -> web.Response:
        account = await self._billing.account(contract)
        if account is None:
            return json_response({"error": "no such contract"}, status=404)
        decision = actions.decide(kind, account, args)
        if isinstance(decision, Refusal):
            return _refusal(decision)
        return json_response({"proposal": _proposal(kind, decision), "op_id": new_op_id()})

    async def _done(self, kind: str, done: Done) -> dict[str, Any]:
        return {
            "kind": kind,
            "done": dict(done.proposal.terms),
            "repeat": done.repeat,
            "card": await self.card(done.account),
        }


def _proposal(kind: str, proposal: Proposal) -> dict[str, Any]:
    return {"kind": kind, "terms": dict(proposal.terms)}


def _contract(request: web.Request) -> str | None:
    """The contract of the path, or None when it cannot be one (too long, or characters the
    billing and the stores must never see)."""
    raw = unquote(request.match_info["contract"])
    contract = clean_text(raw, _CONTRACT_LIMIT)
    return contract if contract == raw and contract.strip() else None


def _cleaned(value: Any) -> Any:
    """Every string in parsed JSON cleaned (``loads`` has bounded the depth, so the recursion
    is shallow): the rules and the operations log then only see valid text."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    if isinstance(value, dict):
        return {clean_text(str(k), SHORT_TEXT_LIMIT): _cleaned(v) for k, v in value.items()}
    return value


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = loads(raw)
    except UntrustedInput as exc:
        raise ActionError(str(exc)) from None
    if not isinstance(body, dict):
        raise ActionError("the body must be a JSON object")
    cleaned: dict[str, Any] = _cleaned(body)
    return cleaned


def _controls(body: Mapping[str, Any]) -> tuple[str | None, bool, str | None]:
    op_id = body.get("op_id")
    if op_id is not None and (not isinstance(op_id, str) or not _OP_ID.match(op_id)):
        raise ActionError("'op_id' must be 8-64 characters of A-Z, a-z, 0-9, '_' and '-'")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ActionError("'dry_run' must be true or false")
    conversation_id = body.get("conversation_id")
    if conversation_id is not None and (
        not isinstance(conversation_id, str) or len(conversation_id) > 300
    ):
        raise ActionError("'conversation_id' must be a string")
    return op_id, dry_run, conversation_id
