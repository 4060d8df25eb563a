"""Complaints and feedback: the customer's words and files become a record with a number.

One intent (``complaint``) answers both: a review is told apart by the flow's
``feedback_markers`` ("отзыв", "благодарю", "предложение" …), so the classifier needs no
second, easily confused intent and the board still gets the right kind. Nothing is handed to
an operator automatically: the record is in «Заявки», and the reply offers a person.

Files: the engine keeps those sent while the flow is open (or just before, answered with
«Жалоба») in the slot ``attachments``; a file sent with the words of the first message is on
``ctx.inbound``. All go on the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bot.dialog.actions.render import mentions_stem
from bot.dialog.types import ActionContext, ActionResult
from bot.intents.normalize import basic, words
from bot.models import Button, Reply, Text
from bot.requests.desk import requests_of
from bot.requests.model import NewRequest

KIND: Final = "complaint_kind"  # memory: complaint or feedback, decided by the first message
FILES: Final = "attachments"


def _files(ctx: ActionContext) -> list[dict[str, Any]]:
    kept = [dict(f) for f in ctx.slots.get(FILES) or () if isinstance(f, Mapping)]
    for attachment in ctx.inbound.attachments:
        stored = getattr(attachment, "file", None)  # in our file store (bot/channels)
        if stored is None:
            continue
        entry = {
            "file_id": stored.file_id,
            "name": stored.name,
            "content_type": stored.content_type,
            "size": stored.size,
        }
        if entry not in kept:
            kept.append(entry)
    return kept


def _starting(ctx: ActionContext) -> bool:
    return ctx.nlu.intent == "complaint"


async def save_complaint(ctx: ActionContext) -> ActionResult:
    remember: dict[str, Any] = {}
    forget: tuple[str, ...] = ()
    kind = str(ctx.memory.get(KIND) or "complaint")
    text = ctx.slots.get("text")
    if _starting(ctx):
        markers = list(ctx.params.get("feedback_markers") or ())
        kind = "feedback" if mentions_stem(ctx.text, markers) else "complaint"
        remember[KIND] = kind
        # A message that already tells the story ("мастер опоздал на три часа и нагрубил") is
        # the complaint itself; "хочу пожаловаться" only opens it.
        if text is None and len(words(basic(ctx.text))) >= int(ctx.params.get("min_words", 8)):
            text = ctx.text.strip()
            remember["complaint_text"] = text
        else:
            forget = ("complaint_text",)  # the story of a complaint left unfinished earlier
    elif text is None:
        text = ctx.memory.get("complaint_text")
    files = _files(ctx)
    if not text:
        return ActionResult(
            ask="text", ask_parts=(Text(f"{kind}.intro"),), remember=remember, forget_memory=forget
        )
    more = ctx.slots.get("more")
    if not files and more is None:
        # Photos help: offered once, sent (then «Отправить») or skipped with «Отправить».
        return ActionResult(ask="more", remember=remember, forget_memory=forget)
    if more not in (None, "send") and len(words(basic(str(more)))) > 2:
        text = f"{text}\n{more}"  # typed instead of pressing «Отправить»: more of the story
    request = await requests_of(ctx).create(
        NewRequest(
            kind=kind,
            conversation_id=ctx.conversation.id,
            contract=ctx.conversation.contract_number,
            city_id=ctx.account.city_id if ctx.account else None,
            details={"text": str(text)},
            attachments=tuple(files),
        )
    )
    buttons = (
        Button(Text("button.operator"), "/human_operator"),
        Button(Text("button.menu"), "/menu"),
    )
    parts = [Text(f"{kind}.saved", {"number": request.id})]
    if files:
        parts.append(Text("complaint.files", {"count": len(files)}))
    return ActionResult(
        replies=(Reply(tuple(parts), buttons),), forget_memory=(KIND, "complaint_text", FILES)
    )
