"""A request to terminate the contract: identified customers only (the flow says so).

The customer is shown what happens next — the equipment to bring back (rented, marked to be
returned on termination) and the office of their city that takes it — and confirms; the
request then goes on the board for the billing department to close the contract. A person is
offered, not forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.catalog.catalog import Catalog
from bot.catalog.models import Account, Equipment, Office
from bot.catalog.opening_hours import OpeningHours
from bot.dialog.actions.render import hours_line
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.nlu import make_payload
from bot.intents.normalize import basic
from bot.models import Button, Raw, Reply, Text
from bot.requests.desk import requests_of
from bot.requests.model import NewRequest


def to_return(account: Account) -> list[Equipment]:
    return [e for e in account.equipment if e.ownership == "rented" and e.return_on_termination]


def return_office(catalog: Catalog, account: Account, service: str) -> Office | None:
    """The office of the customer's city that takes equipment back. Without coordinates of
    the customer's home, the nearest is one on their own street when there is one, else the
    first the catalog lists (the provider orders its offices)."""
    offices = [o for o in catalog.offices_in(account.city_id, "office") if service in o.services]
    if not offices:
        return None
    home = basic(account.address).split(",")[0]
    same_street = [o for o in offices if home and basic(o.address).split(",")[0] == home]
    return (same_street or offices)[0]


def _equipment_lines(items: Sequence[Equipment]) -> list[Text]:
    return [
        Text(
            "termination.equipment_line",
            {
                "kind": Text(f"termination.kind.{e.kind}"),
                "model": Raw(e.model),
                "serial": Raw(e.serial),
            },
        )
        for e in items
    ]


def _office_text(office: Office, now: datetime, tz: str) -> Text:
    hours = OpeningHours.parse(office.opening_hours)
    return Text(
        "termination.office",
        {"name": Raw(office.name), "address": Raw(office.address),
         "hours": hours_line(hours, now, tz)},
    )  # fmt: skip


async def request_termination(ctx: ActionContext) -> ActionResult:
    account = ctx.account
    if account is None:  # the flow requires identity; kept for a flow file that forgets it
        return ActionResult(replies=(Reply((Text("identity.required"),)),))
    items = to_return(account)
    office = return_office(ctx.catalog, account, str(ctx.params.get("office_service", "equipment")))
    city = ctx.catalog.city(account.city_id)
    tz = city.timezone if city else "UTC"
    parts: list[Text] = []
    if items:
        parts.append(Text("termination.equipment", {"items": _equipment_lines(items)}))
        if office is not None:
            parts.append(_office_text(office, ctx.now, tz))
        else:
            parts.append(
                Text("termination.no_office", {"phone": Raw(city.support_phone if city else "")})
            )
    else:
        parts.append(Text("termination.no_equipment"))

    decision = ctx.slots.get("confirm")
    if decision is None:
        buttons = (
            Button(Text("termination.button.confirm"), make_payload("inform", {"confirm": "yes"})),
            Button(Text("termination.button.keep"), make_payload("inform", {"confirm": "no"})),
            Button(Text("button.operator"), "/human_operator"),
        )
        return ActionResult(
            ask="confirm",
            ask_parts=(
                Text("termination.intro", {"contract": Raw(account.contract_number)}),
                *parts,
            ),
            ask_buttons=buttons,
        )
    said = basic(str(decision))
    if said != "yes" and said not in {basic(w) for w in ctx.params.get("confirm_words") or ()}:
        return ActionResult(
            replies=(Reply((Text("termination.kept"),), (Button(Text("button.menu"), "/menu"),)),)
        )
    details: dict[str, object] = {
        "equipment": [{"kind": e.kind, "model": e.model, "serial": e.serial} for e in items],
    }
    if office is not None:
        details["return_office"] = office.office_id
        details["return_office_address"] = office.address
    request = await requests_of(ctx).create(
        NewRequest(
            kind="termination",
            conversation_id=ctx.conversation.id,
            contract=account.contract_number,
            city_id=account.city_id,
            address=account.address,
            details=details,
        )
    )
    next_steps = "termination.saved" if items else "termination.saved_no_equipment"
    after = (
        Button(Text("button.operator"), "/human_operator"),
        Button(Text("button.menu"), "/menu"),
    )
    # What to bring back and where, repeated under the number: this is the message they keep.
    shown = (Text(next_steps, {"number": request.id}), *(parts if items else ()))
    return ActionResult(replies=(Reply(shown, after),))
