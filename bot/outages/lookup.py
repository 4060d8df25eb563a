"""Outages at an address, for the dialog: before any troubleshooting the bot asks this.

Actions reach the board through ``ctx.extras[OUTAGES]`` (filled at start-up); without it (a
tool, a test without the board) nobody has an outage."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, runtime_checkable

from bot.catalog.addresses import normalize_house
from bot.catalog.catalog import Catalog
from bot.catalog.models import Account
from bot.dialog.types import ActionContext
from bot.outages.matching import Place, covers, place_of
from bot.outages.model import Outage

OUTAGES = "outages"  # ctx.extras key: the outage board (OutageService)


@runtime_checkable
class OutageBoard(Protocol):
    """What the dialog needs of ``OutageService`` (a protocol: the service imports the dialog's
    rendering helpers, so the dialog must not import the service)."""

    async def in_force(self, city_id: str) -> list[Outage]: ...


async def outages_at(
    catalog: Catalog,
    city_id: str,
    street_text: str,
    house: str,
    *,
    board: OutageBoard,
    services: Collection[str] | None = None,
) -> list[Outage]:
    """Outages in force now at this address (street and house as the customer typed them, or
    from the account), optionally only those that touch one of ``services``."""
    text = f"{street_text} {house}".strip()
    place = place_of(catalog, city_id, text) if text else None
    if place is None:
        place = Place(city_id, street_text, normalize_house(house) if house.strip() else "")
    return [
        o
        for o in await board.in_force(city_id)
        if covers(o, place) and (services is None or set(services) & set(o.services))
    ]


async def outages_for_account(
    ctx: ActionContext, account: Account, services: Collection[str] | None = None
) -> list[Outage]:
    board = ctx.extras.get(OUTAGES)
    if not isinstance(board, OutageBoard):
        return []
    place = place_of(ctx.catalog, account.city_id, account.address)
    if place is None:
        return []  # an address we cannot read: no claim either way
    return [
        o
        for o in await board.in_force(account.city_id)
        if covers(o, place) and (services is None or set(services) & set(o.services))
    ]


async def outages_for(
    ctx: ActionContext,
    city_id: str,
    street_text: str,
    house: str,
    services: Collection[str] | None = None,
) -> list[Outage]:
    """``outages_at`` with the board from the action's context (troubleshooting trees)."""
    board = ctx.extras.get(OUTAGES)
    if not isinstance(board, OutageBoard):
        return []
    return await outages_at(
        ctx.catalog, city_id, street_text, house, board=board, services=services
    )
