"""Tariffs of a city, or the customer's own tariff."""

from __future__ import annotations

from bot.dialog.actions.render import mentions, tariff_line
from bot.dialog.types import ActionContext, ActionResult
from bot.models import Button, Raw, Reply, Text


async def answer_tariffs(ctx: ActionContext) -> ActionResult:
    if mentions(ctx.text, ctx.params.get("personal_markers", ())):
        return _own_tariff(ctx)
    city_id = ctx.slots.get("city")
    city = ctx.catalog.city(str(city_id)) if city_id else None
    if city is None:
        return ActionResult(ask="city", forget=("city",))
    offered = ctx.catalog.active_tariffs(city.city_id)
    if not offered:
        reply = Reply(
            (Text("tariffs.none", {"city": Raw(city.name), "phone": Raw(city.support_phone)}),)
        )
        return ActionResult(replies=(reply,), remember={"city": city.city_id})
    reply = Reply(
        (
            Text(
                "tariffs.list", {"city": Raw(city.name), "items": [tariff_line(t) for t in offered]}
            ),
            Text("tariffs.next_steps"),
        ),
        (
            Button(Text("button.check_address"), "/coverage"),
            Button(Text("button.offices"), "/offices"),
        ),
    )
    return ActionResult(replies=(reply,), remember={"city": city.city_id})


def _own_tariff(ctx: ActionContext) -> ActionResult:
    if ctx.account is None:
        login = Button(Text("button.identify"), "/identify")
        return ActionResult(replies=(Reply((Text("identity.required"),), (login,)),))
    tariff = ctx.catalog.tariffs.get(ctx.account.tariff_id)
    if tariff is None:
        return ActionResult(replies=(Reply((Text("tariffs.mine_unknown"),)),))
    parts: list[Text] = [Text("tariffs.mine", {"line": tariff_line(tariff)})]
    if tariff.archived:
        parts.append(Text("tariffs.mine_archived"))
    return ActionResult(
        replies=(Reply(tuple(parts), (Button(Text("button.all_tariffs"), "/tariffs"),)),),
        remember={"city": ctx.account.city_id},
    )


async def answer_support_contacts(ctx: ActionContext) -> ActionResult:
    """Hotline of the customer's city when known, otherwise every distinct number we have."""
    city = ctx.catalog.city(str(ctx.slots["city"])) if ctx.slots.get("city") else None
    if city is not None:
        phones = Raw(f"{city.support_phone} ({city.name})")
    else:
        phones = Raw(", ".join(sorted({c.support_phone for c in ctx.catalog.cities.values()})))
    buttons = (
        Button(Text("button.offices"), "/offices"),
        Button(Text("button.operator"), "/human_operator"),
    )
    return ActionResult(
        replies=(Reply((Text("info.support_contacts", {"phones": phones}),), buttons),)
    )
