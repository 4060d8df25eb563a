"""Can this house be connected? And, for a planned or connected house, a connection request."""

from __future__ import annotations

from bot.catalog.addresses import AddressLookup, AddressLookupKind, StreetRef
from bot.catalog.models import City, CoverageEntry
from bot.dialog.actions import consent
from bot.dialog.actions.render import tariff_line
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.nlu import make_payload
from bot.models import Button, Raw, Reply, Text
from bot.requests.desk import requests_of
from bot.requests.model import NewRequest

K = AddressLookupKind


def _request_button(entry: CoverageEntry) -> Button:
    args = {"city": entry.city_id, "street": entry.street, "house": entry.house}
    return Button(Text("button.leave_request"), make_payload("coverage_request", args))


def _address_text(city: City | None, street: str, house: str) -> Raw:
    return Raw(f"{city.name}, {street}, {house}" if city else f"{street}, {house}")


async def check_coverage(ctx: ActionContext) -> ActionResult:
    street, house, city_id = ctx.slots.get("street"), ctx.slots.get("house"), ctx.slots.get("city")
    lookup: AddressLookup
    if street and house and city_id:
        # A choice among candidates, pressed as a button.
        lookup = ctx.catalog.addresses.lookup_street(
            StreetRef(str(city_id), str(street)), str(house)
        )
    elif ctx.slots.get("address"):
        lookup = ctx.catalog.addresses.lookup(
            str(ctx.slots["address"]), str(city_id) if city_id else None
        )
    else:
        return ActionResult(ask="address")

    kind = lookup.kind
    if kind == K.NO_ADDRESS:
        return ActionResult(ask="address", forget=("address",))
    if kind == K.NEED_CITY:
        return ActionResult(ask="city", forget=("city",))
    city = ctx.catalog.city(lookup.city_id) if lookup.city_id else None
    remember = {"city": city.city_id} if city else {}
    if kind == K.FOUND and lookup.entry is not None:
        return ActionResult(replies=(_found(ctx, lookup.entry),), remember=remember)
    if kind == K.AMBIGUOUS_STREET:
        return ActionResult(replies=(_choose(ctx, lookup),), remember=remember)
    # HOUSE_NOT_FOUND / STREET_NOT_FOUND: not in the register, so not covered (yet).
    phone = city.support_phone if city else next(iter(ctx.catalog.cities.values())).support_phone
    parts: list[Text] = [Text("coverage.not_covered", {"phone": Raw(phone)})]
    buttons: list[Button] = []
    if kind == K.STREET_NOT_FOUND and lookup.candidates and lookup.parsed.house:
        parts.append(Text("coverage.did_you_mean"))
        buttons += _candidate_buttons(ctx, lookup, lookup.parsed.house)
    buttons.append(Button(Text("button.other_address"), "/coverage"))
    return ActionResult(replies=(Reply(tuple(parts), tuple(buttons)),), remember=remember)


def _found(ctx: ActionContext, entry: CoverageEntry) -> Reply:
    city = ctx.catalog.city(entry.city_id)
    address = _address_text(city, entry.street, entry.house)
    if entry.status == "planned":
        return Reply(
            (Text("coverage.planned", {"address": address}),),
            (_request_button(entry), Button(Text("button.menu"), "/menu")),
        )
    offered = ctx.catalog.active_tariffs(entry.city_id)
    return Reply(
        (
            Text("coverage.connected", {"address": address}),
            Text("coverage.tariffs", {"items": [tariff_line(t) for t in offered]}),
        ),
        (_request_button(entry), Button(Text("button.menu"), "/menu")),
    )


def _candidate_buttons(ctx: ActionContext, lookup: AddressLookup, house: str) -> list[Button]:
    several_cities = len({c.city_id for c in lookup.candidates}) > 1
    buttons = []
    for ref in lookup.candidates[:5]:
        city = ctx.catalog.city(ref.city_id)
        title = _address_text(city if several_cities else None, ref.street, house)
        args = {"city": ref.city_id, "street": ref.street, "house": house}
        buttons.append(Button(title, make_payload("coverage", args)))
    return buttons


def _choose(ctx: ActionContext, lookup: AddressLookup) -> Reply:
    house = lookup.parsed.house or ""
    return Reply((Text("coverage.choose_street"),), tuple(_candidate_buttons(ctx, lookup, house)))


async def save_connection_request(ctx: ActionContext) -> ActionResult:
    """Store name + phone for a house from the register; never for an address we did not check,
    and never without the customer's consent to the processing of both (asked first, so a
    refusal ends it before either is given)."""
    city_id, street, house = ctx.slots.get("city"), ctx.slots.get("street"), ctx.slots.get("house")
    lookup = (
        ctx.catalog.addresses.lookup_street(StreetRef(str(city_id), str(street)), str(house))
        if city_id and street and house
        else None
    )
    if lookup is None or lookup.entry is None:
        return ActionResult(replies=(Reply((Text("coverage.request_no_address"),)),))
    entry = lookup.entry
    agreed = consent.answer(ctx)
    if agreed == "refused":
        return consent.refused(ctx, entry.city_id)
    if agreed != "given":
        return consent.ask(ctx, unclear=agreed == "unclear")
    for slot in ("name", "phone"):
        if not ctx.slots.get(slot):
            return ActionResult(ask=slot)
    request = await requests_of(ctx).create(
        NewRequest(
            kind="connection",
            conversation_id=ctx.conversation.id,
            contract=ctx.conversation.contract_number,
            name=str(ctx.slots["name"]),
            phone=str(ctx.slots["phone"]),
            city_id=entry.city_id,
            address=f"{entry.street}, {entry.house}",
            details={"house_status": entry.status, **consent.record(ctx)},
        )
    )
    city = ctx.catalog.city(entry.city_id)
    return ActionResult(
        replies=(
            Reply(
                (
                    Text(
                        "coverage.request_saved",
                        {
                            "number": request.id,
                            "name": Raw(str(ctx.slots["name"])),
                            "address": _address_text(city, entry.street, entry.house),
                        },
                    ),
                ),
                (Button(Text("button.menu"), "/menu"),),
            ),
        ),
        forget_memory=(consent.SHOWN,),
    )
