"""A call-back request: the phone and a convenient time, stored for the operators."""

from __future__ import annotations

from bot.dialog.types import ActionContext, ActionResult
from bot.models import Button, Raw, Reply, Text
from bot.notify import mask_phone
from bot.requests.desk import requests_of
from bot.requests.model import NewRequest


async def save_callback(ctx: ActionContext) -> ActionResult:
    phone, when = str(ctx.slots["phone"]), str(ctx.slots["when"])
    request = await requests_of(ctx).create(
        NewRequest(
            kind="callback",
            conversation_id=ctx.conversation.id,
            contract=ctx.conversation.contract_number,
            phone=phone,
            details={"when": when},
        )
    )
    saved = Text(
        "callback.saved",
        {"number": request.id, "phone": Raw(mask_phone(phone)), "when": Raw(when)},
    )
    return ActionResult(replies=(Reply((saved,), (Button(Text("button.menu"), "/menu"),)),))
