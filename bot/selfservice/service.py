"""Account actions carried out: the rules decide (``policy``), the billing does it, the operations
log remembers who did what. The dialog's actions and the operator console call the same
``AccountActions``, so a customer and an operator always get the same answer.

Idempotency: the caller names every attempt with an operation id (the bot: the id of the offer
the customer confirms; the console: an id made when the operator opened the dialog). An id that
already succeeded is not done again; one interrupted half-way (``pending`` in the log) is retried
with the same id, which the billing applies at most once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.billing.base import Billing, BillingRefused, BillingUnavailable, Operation
from bot.catalog.catalog import Catalog
from bot.catalog.models import Account
from bot.intents.date_ranges import find_date_range
from bot.selfservice import policy
from bot.selfservice.oplog import OperationLog, OperationRecord
from bot.selfservice.policy import Decision, Proposal, Refusal
from bot.storage.base import Locks
from bot.storage.memory_locks import MemoryLocks

log = logging.getLogger(__name__)

# An attempt the billing did not answer may be retried under its id this long after it began;
# later its terms are stale and the customer asks again.
REPLAY_WINDOW = timedelta(minutes=15)

# The actions a person can ask for (the bot after confirmation, an operator from the card).
ACTION_KINDS: tuple[str, ...] = (
    "promised_payment", "suspend", "resume", "change_tariff", "cancel_tariff_change",
    "service_on", "service_off", "autopay_off", "set_notifications", "set_contact", "unblock",
)  # fmt: skip


class ActionError(Exception):
    """The request itself is wrong (unknown action, missing argument): a 400 for the console."""


@dataclass(frozen=True, slots=True)
class Done:
    account: Account  # after the operation
    proposal: Proposal
    repeat: bool = False  # this id had been carried out before; nothing was done again


class AccountActions:
    def __init__(
        self,
        *,
        billing: Billing,
        catalog: Catalog,
        oplog: OperationLog,
        locks: Locks | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.billing = billing
        self.catalog = catalog
        self.oplog = oplog
        self._locks = locks or MemoryLocks()
        self._clock = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self._clock()

    def today(self, account: Account) -> date:
        return self.now().astimezone(self.catalog.timezone(account.city_id)).date()

    def decide(self, kind: str, account: Account, args: Mapping[str, Any]) -> Decision:
        """What the rules say about ``kind`` for this account now."""
        today = self.today(account)
        catalog = self.catalog
        if kind == "promised_payment":
            return policy.promised_payment(account, catalog, today)
        if kind == "suspend":
            start, end, days = _dates(args, today)
            return policy.suspend(account, catalog, today, start, end, days)
        if kind == "resume":
            return policy.resume(account, catalog, today)
        if kind == "change_tariff":
            return policy.change_tariff(account, catalog, today, _arg(args, "tariff_id"))
        if kind == "cancel_tariff_change":
            return policy.cancel_tariff_change(account, catalog)
        if kind == "service_on":
            return policy.service_on(account, catalog, _arg(args, "service_id"))
        if kind == "service_off":
            return policy.service_off(account, catalog, _arg(args, "service_id"))
        if kind == "autopay_off":
            return policy.autopay_off(account)
        if kind == "set_notifications":
            raw = args.get("notifications")
            if not isinstance(raw, Mapping):
                raise ActionError("'notifications' must map topics to lists of channels")
            return policy.set_notifications(
                account, {str(k): tuple(v) for k, v in raw.items() if isinstance(v, list)}
            )
        if kind == "set_contact":
            return policy.set_contact(account, _arg(args, "field"), _arg(args, "value"))
        if kind == "unblock":
            return policy.unblock(account, catalog, today)
        raise ActionError(f"unknown action {kind!r}")

    async def carry_out(
        self,
        contract: str,
        kind: str,
        args: Mapping[str, Any],
        *,
        op_id: str,
        by: str,
        conversation_id: str | None = None,
        account: Account | None = None,
    ) -> Done | Refusal:
        """Decide again on the account as it is now (it may have changed since the offer) and,
        if the rules still allow it, have the billing do it. ``account``: one read in this very
        turn, to spare the billing a second call. ``BillingUnavailable`` propagates: the caller
        apologises and offers a person; nothing is half-done (the same id is safe to retry).

        One contract's actions run one at a time (the customer in two messengers, an operator
        at the same moment), so two offers cannot both pass the rules on the same old state."""
        async with self._locks.hold(f"contract:{contract}"):
            return await self._carry_out(
                contract, kind, args, op_id=op_id, by=by, conversation_id=conversation_id,
                account=account,
            )  # fmt: skip

    async def _carry_out(
        self,
        contract: str,
        kind: str,
        args: Mapping[str, Any],
        *,
        op_id: str,
        by: str,
        conversation_id: str | None,
        account: Account | None,
    ) -> Done | Refusal:
        earlier = await self.oplog.get(op_id)
        if earlier is not None and earlier.contract != contract:
            raise ActionError("operation id belongs to another contract")
        if earlier is not None and earlier.status == "done":
            current = await self.billing.account(contract)
            if current is None:
                raise BillingUnavailable("the account disappeared")
            return Done(current, _proposal_of(earlier), repeat=True)
        if earlier is not None and earlier.status == "refused":
            return Refusal("billing_refused", {"code": earlier.details.get("code", "")})
        if earlier is not None and (
            earlier.status == "superseded" or self.now() - earlier.at > REPLAY_WINDOW
        ):
            # Another action of this kind was decided since, or too much time has passed: the
            # old terms no longer hold. (Had the billing done it after all, the account shows it
            # and a new request is decided on that.)
            await self.oplog.finish(op_id, "superseded")
            return Refusal("offer_expired")
        if earlier is not None:
            # Interrupted or unanswered a moment ago: the billing may have done it already, so
            # the same operation goes again under the same id (done at most once).
            proposal = _proposal_of(earlier)
        else:
            if account is None:
                account = await self.billing.account(contract)
            if account is None:
                return Refusal("unknown_contract")
            decision = self.decide(kind, account, args)
            if isinstance(decision, Refusal):
                return decision
            proposal = decision
            await self.oplog.begin(
                OperationRecord(
                    id=op_id, contract=contract, kind=proposal.kind, by=by, at=self.now(),
                    details={"params": dict(proposal.params), "terms": dict(proposal.terms)},
                    conversation_id=conversation_id,
                )
            )  # fmt: skip
            # An older attempt of the same kind that got no answer must never go through later
            # on top of this one (its «Да» is told the offer expired).
            await self.oplog.supersede(contract, proposal.kind, keep=op_id)
        operation = Operation(op_id, proposal.kind, proposal.params, by=by, at=self.now())
        try:
            changed = await self.billing.apply(contract, operation)
        except BillingRefused as exc:
            await self.oplog.finish(op_id, "refused", {"code": exc.code})
            log.info("billing refused %s (%s)", proposal.kind, exc.code)
            return Refusal("billing_refused", {"code": exc.code})
        except BillingUnavailable:
            await self.oplog.finish(op_id, "failed")
            log.warning("billing unavailable for %s", proposal.kind)
            raise
        await self.oplog.finish(op_id, "done")
        return Done(changed, proposal)


def _arg(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ActionError(f"{key!r} is required")
    return value


def _dates(args: Mapping[str, Any], today: date) -> tuple[date | None, date | None, int | None]:
    """Pause dates from explicit ISO ``from``/``to`` (the console) or customer text (``text``)."""
    if args.get("text"):
        found = find_date_range(str(args["text"]), today)
        if found is None:
            return None, None, None
        return found.start, found.end, found.days
    try:
        start = date.fromisoformat(str(args["from"])) if args.get("from") else None
        end = date.fromisoformat(str(args["to"])) if args.get("to") else None
        days = int(args["days"]) if args.get("days") else None
    except (TypeError, ValueError):
        raise ActionError("'from'/'to' must be ISO dates, 'days' a whole number") from None
    return start, end, days


def _proposal_of(record: OperationRecord) -> Proposal:
    details = record.details
    return Proposal(
        record.kind,  # type: ignore[arg-type]  # written from a Proposal
        dict(details.get("params") or {}),
        dict(details.get("terms") or {}),
    )
