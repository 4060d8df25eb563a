"""Telling affected customers that an outage was posted or has ended.

Who is affected: the billing interface has no "accounts at this address" question. A billing
that can list a city's accounts (the embedded ledger: ``AccountsInCity``) is asked that; for any
other billing only customers who have talked to us are found (contracts linked to our
conversations), each read from the billing. Everyone found is matched against the outage with
the account's address, and told through ``CustomerNotices`` (their last channel, only if they
allow outage notices in a messenger) in the outbox's bulk lane, so the fan-out never delays a
reply to someone who is chatting. Each customer hears each event of an outage at most once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.billing.base import Billing, BillingError
from bot.catalog.catalog import Catalog
from bot.catalog.models import Account
from bot.models import ConversationKey
from bot.outages.matching import Place, covers, place_of
from bot.outages.model import Outage
from bot.outages.render import ended_notice, posted_notice
from bot.outages.store import OutageStore
from bot.selfservice.notices import CustomerNotices
from bot.storage.base import Store, bulk_delivery

log = logging.getLogger(__name__)

TOPIC = "outages"
# Conversations scanned for contracts when the billing cannot list accounts (per state).
CONVERSATION_SCAN = 100_000
READS_AT_ONCE = 8  # concurrent account reads from a remote billing

# What a tariff carries, to skip customers the outage does not touch (a TV outage is no news to
# an internet-only contract). An unknown tariff counts as everything.
_TARIFF_SERVICES = {
    "internet": {"internet"},
    "tv": {"tv"},
    "internet_tv": {"internet", "tv"},
    "phone": {"phone"},
}


@runtime_checkable
class AccountsInCity(Protocol):
    """An optional billing capability (not on ``Billing``): list a city's accounts."""

    async def accounts_in_city(self, city_id: str) -> list[Account]: ...


def uses_services(account: Account, catalog: Catalog, services: tuple[str, ...]) -> bool:
    tariff = catalog.tariffs.get(account.tariff_id)
    has = _TARIFF_SERVICES.get(tariff.kind, set()) if tariff else {"internet", "tv", "phone"}
    return bool(has & set(services))


class OutageNotices:
    def __init__(
        self,
        *,
        outages: OutageStore,
        notices: CustomerNotices,
        billing: Billing,
        store: Store,
        catalog: Catalog,
        clock: Callable[[], datetime],
    ) -> None:
        self._outages = outages
        self._notices = notices
        self._billing = billing
        self._store = store
        self._catalog = catalog
        self._clock = clock

    async def _linked_accounts(self, city_id: str) -> list[Account]:
        contracts: set[str] = set()
        for state in ("bot", "queued", "operator", "closed"):
            for conversation_id in await self._store.recent_conversations(
                state=state, limit=CONVERSATION_SCAN
            ):
                conversation = await self._store.load_conversation(
                    ConversationKey.parse(conversation_id)
                )
                if conversation is not None and conversation.contract_number:
                    contracts.add(conversation.contract_number)
        gate = asyncio.Semaphore(READS_AT_ONCE)

        async def read(contract: str) -> Account | None:
            async with gate:
                try:
                    return await self._billing.account(contract)
                except BillingError:
                    log.warning("outage notices: an account could not be read; skipped")
                    return None

        found = await asyncio.gather(*(read(c) for c in sorted(contracts)))
        return [a for a in found if a is not None and a.city_id == city_id]

    async def affected(self, outage: Outage) -> list[tuple[Account, Place]]:
        """Accounts at the outage's addresses that use one of its services."""
        if isinstance(self._billing, AccountsInCity):
            accounts = await self._billing.accounts_in_city(outage.city_id)
        else:
            accounts = await self._linked_accounts(outage.city_id)
        out: list[tuple[Account, Place]] = []
        for account in accounts:
            place = place_of(self._catalog, account.city_id, account.address)
            if (
                place is not None
                and covers(outage, place)
                and uses_services(account, self._catalog, outage.services)
            ):
                out.append((account, place))
        return out

    async def announce(self, outage: Outage, event: str) -> int:
        """Tell every affected customer that ``outage`` was "posted" or has "ended"; how many
        were told."""
        tz = self._catalog.timezone(outage.city_id)
        told = 0
        with bulk_delivery():  # the outbox's low-priority lane for every notice below
            for account, _ in await self.affected(outage):
                if "messenger" not in account.notifications.get(TOPIC, ()):
                    continue
                if not await self._outages.first_notice(
                    outage.outage_id, account.contract_number, event
                ):
                    continue
                if event == "ended":
                    parts = ended_notice(outage, account.address)
                else:
                    parts = posted_notice(outage, account.address, self._clock(), tz)
                try:
                    if await self._notices.tell(account, TOPIC, parts):
                        told += 1
                except Exception:  # one customer's failure must not stop the others' notices
                    log.exception("outage notice failed for one customer")
        log.info("outage %s %s: %d customer(s) told", outage.outage_id, event, told)
        return told
