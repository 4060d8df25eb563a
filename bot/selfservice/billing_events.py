"""``POST /api/v1/billing/events``: the billing tells the gateway that a payment arrived or a
status changed, so the customer hears "payment received, services are back on" without asking.

Authenticity: header ``X-Billing-Signature: sha256=<hex HMAC-SHA256(BILLING_WEBHOOK_SECRET, raw
body)>``, compared in constant time; without the secret configured the endpoint is off (403),
never open. Each event id is processed once: it is an entry of the operations log (``by``
"billing", shown on the operator's customer card). With the embedded ledger a payment event is
also booked (the ledger is the billing); a remote billing has booked it already.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from bot.billing.base import Billing, BillingRefused, BillingUnavailable, Operation
from bot.billing.ledger import LedgerBilling
from bot.http import json_response
from bot.models import Text
from bot.selfservice.notices import CustomerNotices
from bot.selfservice.oplog import OperationLog, OperationRecord, OperationStatus
from bot.untrusted import UntrustedInput, clean_text, loads

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_AMOUNT = Decimal(100_000_000)
# A redelivery within this time of the first attempt is refused as "in progress"; later, the
# first attempt is taken as lost (a crash) and the event handled again.
IN_FLIGHT = timedelta(seconds=60)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


class BillingEvents:
    def __init__(
        self,
        *,
        billing: Billing,
        notices: CustomerNotices,
        oplog: OperationLog,
        secret: str | None,
    ) -> None:
        self._billing = billing
        self._notices = notices
        self._oplog = oplog
        self._secret = secret

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/billing/events", self.receive)

    async def receive(self, request: web.Request) -> web.StreamResponse:
        if not self._secret:
            return _error(403, "billing events are off: set BILLING_WEBHOOK_SECRET")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "event too large")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _error(413, "event too large")
        given = request.headers.get("X-Billing-Signature", "")
        if not hmac.compare_digest(given.encode(), sign(self._secret, body).encode()):
            log.warning("billing event with a bad signature refused")
            return _error(403, "bad signature")
        try:
            event = loads(body, max_bytes=MAX_BODY)
        except UntrustedInput as exc:
            return _error(400, str(exc))
        problem = _check(event)
        if problem:
            return _error(400, problem)
        op_id = f"event:{event['id']}"
        details = {k: event[k] for k in ("amount_rub", "status") if k in event}
        mine = OperationRecord(
            op_id, str(event["contract"]), f"billing_{event['kind']}", "billing",
            datetime.now(UTC), details=details,
        )  # fmt: skip
        record = await self._oplog.begin(mine)
        if record.contract != mine.contract:
            return _error(409, "this event id was used for another contract")
        if record.status in ("done", "refused"):
            return json_response({"ok": True, "duplicate": True})
        racing = record.status == "pending" and record.at != mine.at
        if racing and mine.at - record.at < IN_FLIGHT:
            # The same event is being handled right now (a redelivery racing the first):
            # the billing retries later and finds it done; nobody is told twice.
            return _error(409, "this event is being processed; retry later")
        try:
            response, notified = await self._handle(event, op_id)
        except BillingUnavailable:
            # Not processed: the billing retries the same id later and it is done then.
            await self._oplog.finish(op_id, "failed")
            return _error(503, "billing unavailable, retry later")
        status: OperationStatus = "done" if response.status == 200 else "refused"
        await self._oplog.finish(op_id, status, {"notified": notified})
        return response

    async def _handle(self, event: dict[str, Any], op_id: str) -> tuple[web.StreamResponse, bool]:
        contract = str(event["contract"])
        before = await self._billing.account(contract)
        if before is None:
            return _error(404, "unknown contract"), False
        amount = Decimal(str(event.get("amount_rub", "0")))
        account = before
        if event["kind"] == "payment" and isinstance(self._billing, LedgerBilling):
            try:
                account = await self._billing.apply(
                    contract,
                    Operation(op_id, "payment", {"amount_rub": str(amount)}, by="billing"),
                )  # fmt: skip
            except BillingRefused as exc:
                return _error(409, f"refused: {exc.code}"), False
        parts: list[Text] = []
        if event["kind"] == "payment":
            parts.append(Text("selfservice.events.payment",
                              {"amount": amount, "balance": account.balance_rub}))  # fmt: skip
        was_blocked = before.status == "blocked" or event.get("previous_status") == "blocked"
        if account.status == "active" and was_blocked:
            parts.append(Text("selfservice.events.unblocked"))
        elif account.status == "blocked" and event["kind"] == "status":
            parts.append(Text("selfservice.events.blocked", {"balance": account.balance_rub}))
        told = await self._notices.tell(account, "balance", parts) if parts else None
        answer = {"ok": True, "status": account.status, "notified": bool(told)}
        return json_response(answer), bool(told)


def _check(event: Any) -> str | None:
    if not isinstance(event, dict):
        return "the body must be a JSON object"
    if not isinstance(event.get("id"), str) or not 0 < len(event["id"]) <= 200:
        return "'id' must be a string of 1-200 characters"
    if clean_text(event["id"], 200) != event["id"]:
        return "'id' holds characters that are not allowed"  # it is stored as the op id
    contract = event.get("contract")
    # isdigit() alone takes "²" and Arabic-Indic digits; a contract number is ASCII.
    if not isinstance(contract, str) or not (contract.isascii() and contract.isdigit()):
        return "'contract' must be the contract number"
    if len(contract) > 32:
        return "'contract' must be the contract number"
    if event.get("kind") not in ("payment", "status"):
        return "'kind' must be payment or status"
    if event["kind"] == "payment" or "amount_rub" in event:
        raw_amount = event.get("amount_rub")
        if not isinstance(raw_amount, int | float | str) or isinstance(raw_amount, bool):
            return "'amount_rub' must be an amount"
        try:
            amount = Decimal(str(raw_amount)[:64])
        except (InvalidOperation, ValueError):
            return "'amount_rub' must be an amount"
        if not amount.is_finite() or (event["kind"] == "payment" and amount <= 0):
            return "'amount_rub' must be a positive amount"
        # "1e999999" is finite to Decimal; no payment is that large, nor a fraction of a kopeck.
        if abs(amount) > MAX_AMOUNT or amount != amount.quantize(Decimal("0.01")):
            return f"'amount_rub' must be at most {MAX_AMOUNT} with kopecks at most"
    for name in ("status", "previous_status"):
        value = event.get(name)
        # Kept in the operations log and shown on the customer card: a short clean word.
        if value is not None and (
            not isinstance(value, str) or len(value) > 32 or clean_text(value, 32) != value
        ):
            return f"'{name}' must be a short string"
    return None
