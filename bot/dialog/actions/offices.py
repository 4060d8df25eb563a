"""Offices and payment terminals: by city, by street, or nearest to a shared location."""

from __future__ import annotations

from bot.catalog.addresses import street_core
from bot.catalog.models import Office, OfficeKind
from bot.dialog.actions.render import mentions, office_block
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.nlu import make_payload
from bot.intents.normalize import basic, lemma, words
from bot.models import Button, Raw, Reply, Text


def _kind(ctx: ActionContext) -> OfficeKind:
    if ctx.slots.get("kind") in ("office", "terminal"):
        return "terminal" if ctx.slots["kind"] == "terminal" else "office"
    return "terminal" if mentions(ctx.text, ctx.params.get("terminal_markers", ())) else "office"


def _on_street(offices: list[Office], text: str) -> list[Office]:
    """Offices whose street the customer named ("офис на Бутина")."""
    said = {lemma(w) for w in words(basic(text))} | set(words(basic(text)))
    hits = []
    for office in offices:
        core = street_core(office.address.split(",")[0])
        tokens = words(core)
        if tokens and all(t in said or lemma(t) in said for t in tokens):
            hits.append(office)
    return hits


async def answer_offices(ctx: ActionContext) -> ActionResult:
    kind = _kind(ctx)
    other: OfficeKind = "office" if kind == "terminal" else "terminal"
    location = ctx.location
    if location is not None:
        nearby = ctx.catalog.nearest(location.lat, location.lon, kind=kind, limit=3)
        blocks = [
            office_block(
                n.office,
                ctx.catalog.hours[n.office.office_id],
                ctx.now,
                ctx.catalog.cities[n.office.city_id].timezone,
                distance_km=n.distance_km,
            )
            for n in nearby
        ]
        switch = Button(
            Text(f"button.show_{other}s"),
            make_payload("offices", {"kind": other, "location": ctx.slots.get("location")}),
        )
        head = Text(f"offices.nearest.{kind}")
        return ActionResult(replies=(Reply((head, *blocks), (switch,)),))

    city_id = ctx.slots.get("city")
    city = ctx.catalog.city(str(city_id)) if city_id else None
    if city is None:
        return ActionResult(ask="city", forget=("city",))
    found = ctx.catalog.offices_in(city.city_id, kind)
    on_street = _on_street(found, ctx.text) if ctx.text else []
    shown = on_street or found
    switch = Button(
        Text(f"button.show_{other}s"),
        make_payload("offices", {"kind": other, "city": city.city_id}),
    )
    if not shown:
        reply = Reply(
            (
                Text(
                    f"offices.none.{kind}",
                    {"city": Raw(city.name), "phone": Raw(city.support_phone)},
                ),
            ),
            (switch,),
        )
        return ActionResult(replies=(reply,), remember={"city": city.city_id})
    blocks = [
        office_block(o, ctx.catalog.hours[o.office_id], ctx.now, city.timezone, distance_km=None)
        for o in shown
    ]
    head = Text(f"offices.in_city.{kind}", {"city": Raw(city.name)})
    parts = (head, *blocks, Text("offices.share_location_hint"))
    return ActionResult(replies=(Reply(parts, (switch,)),), remember={"city": city.city_id})
