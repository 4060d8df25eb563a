"""Offices and payment terminals: by city, by street, or nearest to a shared location."""

from __future__ import annotations

from bot.catalog.addresses import street_core
from bot.catalog.catalog import NearbyOffice
from bot.catalog.models import Office, OfficeKind
from bot.dialog.actions.render import mentions, office_block
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.nlu import make_payload
from bot.intents.normalize import basic, lemma, words
from bot.models import Button, Raw, Reply, Text


def _kind(ctx: ActionContext) -> OfficeKind:
    chosen = ctx.slots.get("kind")
    if chosen is None and not ctx.text:
        # A bare shared location right after "где терминал?" means terminals near me.
        chosen = ctx.memory.get("office_kind")
    if chosen in ("office", "terminal"):
        return "terminal" if chosen == "terminal" else "office"
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
        radius = float(ctx.params.get("nearby_km", 30))
        head = Text(f"offices.nearest.{kind}")
        if kind == "terminal" and not any(n.distance_km <= radius for n in nearby):
            # A terminal hundreds of kilometres away helps nobody: an office near them that
            # takes payments, or else paying online.
            return _pay_without_terminal(ctx, location.lat, location.lon, radius)
        if nearby and nearby[0].distance_km > radius:
            far_city = ctx.catalog.cities[nearby[0].office.city_id]
            head = Text(f"offices.far.{kind}", {"city": Raw(far_city.name)})
            nearby = nearby[:1]
        else:
            nearby = [n for n in nearby if n.distance_km <= radius]
        blocks = _near_blocks(ctx, nearby)
        switch = Button(
            Text(f"button.show_{other}s"),
            make_payload("offices", {"kind": other, "location": ctx.slots.get("location")}),
        )
        return ActionResult(
            replies=(Reply((head, *blocks), (switch,)),), remember={"office_kind": kind}
        )

    city_id = ctx.slots.get("city")
    city = ctx.catalog.city(str(city_id)) if city_id else None
    if city is None:
        return ActionResult(ask="city", forget=("city",), remember={"office_kind": kind})
    found = ctx.catalog.offices_in(city.city_id, kind)
    on_street = _on_street(found, ctx.text) if ctx.text else []
    shown = on_street or found
    switch = Button(
        Text(f"button.show_{other}s"),
        make_payload("offices", {"kind": other, "city": city.city_id}),
    )
    if not shown and kind == "terminal":
        payers = [o for o in ctx.catalog.offices_in(city.city_id, "office") if _takes_payments(o)]
        if payers:
            blocks = [
                office_block(o, ctx.catalog.hours[o.office_id], ctx.now, city.timezone,
                             distance_km=None)
                for o in payers
            ]  # fmt: skip
            head = Text("offices.pay_in_office.city", {"city": Raw(city.name)})
            reply = Reply((head, *blocks), (switch,))
            return ActionResult(
                replies=(reply,), remember={"city": city.city_id, "office_kind": kind}
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
        return ActionResult(replies=(reply,), remember={"city": city.city_id, "office_kind": kind})
    blocks = [
        office_block(o, ctx.catalog.hours[o.office_id], ctx.now, city.timezone, distance_km=None)
        for o in shown
    ]
    head = Text(f"offices.in_city.{kind}", {"city": Raw(city.name)})
    parts = (head, *blocks, Text("offices.share_location_hint"))
    return ActionResult(
        replies=(Reply(parts, (switch,)),), remember={"city": city.city_id, "office_kind": kind}
    )


def _near_blocks(ctx: ActionContext, nearby: list[NearbyOffice]) -> list[Text]:
    """Offices near a shared location, each with its hours in its own city's time and the
    distance."""
    return [
        office_block(
            n.office,
            ctx.catalog.hours[n.office.office_id],
            ctx.now,
            ctx.catalog.cities[n.office.city_id].timezone,
            distance_km=n.distance_km,
        )
        for n in nearby
    ]


def _takes_payments(office: Office) -> bool:
    return "payment" in office.services


def _pay_without_terminal(
    ctx: ActionContext, lat: float, lon: float, radius: float
) -> ActionResult:
    near = [
        n
        for n in ctx.catalog.nearest(lat, lon, kind="office", limit=20)
        if n.distance_km <= radius and _takes_payments(n.office)
    ][:3]
    how = Button(Text("button.how_to_pay"), "/payment_method")
    if near:
        blocks = _near_blocks(ctx, near)
        reply = Reply((Text("offices.pay_in_office.near"), *blocks), (how,))
    else:
        parts: list[Text] = [Text("offices.pay_online")]
        link = ctx.catalog.rules.payment.link
        if link and "{contract}" not in link:
            parts.append(Text("selfservice.pay_link", {"link": Raw(link)}))
        reply = Reply(tuple(parts), (how,))
    return ActionResult(replies=(reply,), remember={"office_kind": "terminal"})
