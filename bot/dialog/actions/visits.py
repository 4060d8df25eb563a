"""A technician visit in the dialog: book, ask about, move or cancel one.

Booking: the problem (a troubleshooting tree's ``{"problem": …}``, the message itself, or asked),
free windows of the customer's city as buttons ("завтра, 10:00–12:00", «Другое время» for more),
then the terms — when, the account's address, the problem, the fee — and «Да» / «Нет». «Да»
books under the offer's id: pressed twice it books once. The window's capacity is checked again
when booking (compare-and-set in the visit store): a window filled by someone else meanwhile is
refused with fresh windows.

What spans turns lives in the dialog memory (``visit_draft``): the problem, the visit being moved,
the windows shown and the open offer. A flow's slots only carry this turn's button or answer.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from bot.catalog.models import Account
from bot.dialog.types import ActionContext, ActionResult, Handoff
from bot.intents.nlu import make_payload
from bot.intents.normalize import basic, words
from bot.models import Button, Raw, Reply, Text
from bot.visits.render import fee_text, window_text
from bot.visits.schedule import Window, parse_window_id
from bot.visits.service import VISITS, Refused, VisitService, describe
from bot.visits.store import Booked, Visit

INTENT: Final = "technician_visit"
DRAFT: Final = "visit_draft"  # memory: problem, moving, shown windows, the open offer
PAGE: Final = 6  # windows per message


def visits_of(ctx: ActionContext) -> VisitService | None:
    service = ctx.extras.get(VISITS)
    return service if isinstance(service, VisitService) else None


def _button(title: Text | Raw, **args: Any) -> Button:
    return Button(title, make_payload(INTENT, args))


def _menu() -> Button:
    return Button(Text("button.menu"), "/menu")


def _operator() -> Button:
    return Button(Text("button.operator"), "/human_operator")


def _marked(text: str, markers: Sequence[str]) -> bool:
    """A marker is a word stem ("перенес" finds "перенесите") or, with a space, a phrase."""
    said = words(text)
    return any(
        (m in text) if " " in m else any(w.startswith(m) for w in said)
        for m in (basic(str(marker)) for marker in markers)
    )


def _draft(ctx: ActionContext) -> dict[str, Any]:
    draft = ctx.memory.get(DRAFT)
    return dict(draft) if isinstance(draft, Mapping) else {}


async def technician_visit(ctx: ActionContext) -> ActionResult:
    service = visits_of(ctx)
    account = ctx.account
    if service is None or account is None or service.city(account.city_id) is None:
        # No windows for this city: a person books it, as before visit_slots.csv existed.
        return ActionResult(
            replies=(Reply((Text("handoff.technician"),)),),
            handoff=Handoff("technical", INTENT),
        )
    return await _Turn(ctx, service, account).run()


class _Turn:
    def __init__(self, ctx: ActionContext, service: VisitService, account: Account) -> None:
        self.ctx = ctx
        self.service = service
        self.account = account
        self.slots = ctx.slots
        self.draft = _draft(ctx)
        self.params = ctx.params

    async def run(self) -> ActionResult:
        step = self.slots.get("step")
        if "answer" in self.slots:
            return await self._typed_answer(str(self.slots["answer"]))
        if step == "confirm":
            return await self._confirm(str(self.slots.get("op") or ""))
        if step == "decline":
            return self._said(Text("visits.declined"), forget=True)
        if step == "cancel":
            return await self._cancel()
        if step == "move":
            return await self._start_move()
        if step == "more":
            return await self._windows(skip=_int(self.slots.get("skip")))
        # The problem: from a troubleshooting button (a fresh start) or the answer to our question.
        given = " ".join(str(self.slots.get("problem") or "").split())[:200]
        if given and step is None and self.ctx.nlu.from_payload:
            self.draft = {}
        if given:
            self.draft["problem"] = given
        if step == "pick" or "window" in self.slots:
            return await self._offer(str(self.slots.get("window") or ""))
        if given:
            return await self._windows()
        return await self._entry(step)

    # --- the first message ---------------------------------------------------------------
    async def _entry(self, step: Any) -> ActionResult:
        booked = await self.service.booked_of(self.account.contract_number)
        text = basic(self.ctx.text)
        self.draft = {}
        if step == "show" or (step is None and booked and not self._problem_from(text)):
            if booked and _marked(text, self.params.get("move_markers", ())):
                return await self._start_move(booked[0])
            return self._show(booked)
        if step is None and not booked and _marked(text, self.params.get("ask_markers", ())):
            reply = Reply(
                (Text("visits.none_booked"),),
                (_button(Text("visits.button.book"), step="new"), _menu()),
            )
            return ActionResult(replies=(reply,), forget_memory=(DRAFT,))
        problem = self._problem_from(text)
        if problem:
            self.draft["problem"] = problem
            return await self._windows()
        return ActionResult(ask="problem", remember={DRAFT: self.draft})

    def _problem_from(self, text: str) -> str | None:
        """The message names the problem when, request words aside ("вызовите мастера",
        "добрый день"), it still has something to say ("роутер не включается")."""
        if not text:
            return None
        stems = [basic(str(s)) for s in self.params.get("request_words", ())]
        rest = [w for w in words(text) if len(w) > 2 and not any(w.startswith(s) for s in stems)]
        return self.ctx.text.strip()[:200] if len(rest) >= 2 else None

    def _show(self, booked: Sequence[Visit]) -> ActionResult:
        if not booked:
            reply = Reply(
                (Text("visits.none_booked"),),
                (_button(Text("visits.button.book"), step="new"), _menu()),
            )
            return ActionResult(replies=(reply,), forget_memory=(DRAFT,))
        replies = []
        for visit in booked:
            buttons = (
                _button(Text("visits.button.move"), step="move", visit=visit.id),
                _button(Text("visits.button.cancel"), step="cancel", visit=visit.id),
            )
            replies.append(
                Reply((Text("visits.your_visit"), describe(visit, self.service)), buttons)
            )
        replies.append(Reply((Text("visits.anything_else"),), (_menu(),)))
        return ActionResult(replies=tuple(replies), forget_memory=(DRAFT,))

    # --- windows and the offer -----------------------------------------------------------
    async def _windows(self, *, skip: int = 0, before: tuple[Text, ...] = ()) -> ActionResult:
        moving = await self._moving()
        free = await self.service.free(
            self.account.city_id, skip=skip, limit=PAGE + 1, moving=moving
        )
        if not free:
            reply = Reply((*before, Text("visits.no_windows")), (_operator(), _menu()))
            return ActionResult(replies=(reply,), forget_memory=(DRAFT,))
        shown, more = free[:PAGE], len(free) > PAGE
        buttons = [_button(self._label(w), step="pick", window=w.id) for w in shown]
        if more:
            buttons.append(_button(Text("visits.button.more"), step="more", skip=skip + PAGE))
        self.draft["shown"] = [w.id for w in shown]
        self.draft.pop("offer", None)
        slots = self.service.city(self.account.city_id)
        fee = fee_text(slots.fee_rub) if slots else Text("visits.fee.free")
        parts = (*before, Text("visits.pick_window", {"fee": fee}))
        return ActionResult(
            ask="window",
            ask_parts=parts,
            ask_buttons=tuple(buttons),
            remember={DRAFT: self.draft},
            forget=("window", "step"),
        )

    async def _offer(self, window_id: str) -> ActionResult:
        chosen = self._chosen(window_id)
        if chosen is None:
            # Typed something that names no shown window: the same choice again.
            return await self._windows(before=(Text("visits.pick_from_buttons"),))
        moving = await self._moving()
        problem = str(self.draft.get("problem") or (moving.problem if moving else ""))
        if not problem:
            return ActionResult(
                ask="problem", remember={DRAFT: self.draft}, forget=("window", "step")
            )
        op = secrets.token_urlsafe(9)
        self.draft["offer"] = {"op": op, "window": chosen}
        starts = parse_window_id(chosen)
        slots = self.service.city(self.account.city_id)
        if starts is None or slots is None:
            return await self._windows()
        when = self._label_at(chosen)
        terms = Text(
            "visits.offer_move" if moving else "visits.offer",
            {
                "when": when,
                "address": Raw(self.account.address),
                "problem": Raw(problem),
                "fee": fee_text(slots.fee_rub),
            },
        )
        buttons = (
            _button(Text("button.yes"), step="confirm", op=op),
            _button(Text("button.no"), step="decline", op=op),
        )
        return ActionResult(
            ask="answer",
            ask_parts=(terms,),
            ask_buttons=buttons,
            remember={DRAFT: self.draft},
            forget=("answer", "window", "step"),
        )

    def _chosen(self, window_id: str) -> str | None:
        """A window button's id, or a time typed against the windows shown ("в 14", "14:00")."""
        if parse_window_id(window_id) is not None:
            return window_id
        shown = [str(w) for w in self.draft.get("shown") or ()]
        match = re.search(r"\b(\d{1,2})(?::(\d{2}))?\b", window_id)
        if not match:
            return None
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        slots = self.service.city(self.account.city_id)
        for candidate in shown:
            at = parse_window_id(candidate)
            if at is not None and slots is not None:
                local = at.astimezone(slots.timezone)
                if (local.hour, local.minute) == (hour, minute):
                    return candidate
        return None

    # --- «Да», «Нет» ---------------------------------------------------------------------
    async def _typed_answer(self, answer: str) -> ActionResult:
        said = words(basic(answer))
        yes = any(w in self.params.get("yes_words", ()) for w in said)
        no = any(w in self.params.get("no_words", ()) for w in said)
        offer = self.draft.get("offer")
        if yes != no and isinstance(offer, Mapping):
            if yes:
                return await self._confirm(str(offer.get("op")))
            return self._said(Text("visits.declined"), forget=True)
        op = str(offer.get("op")) if isinstance(offer, Mapping) else ""
        buttons = (
            _button(Text("button.yes"), step="confirm", op=op),
            _button(Text("button.no"), step="decline", op=op),
        )
        return ActionResult(
            ask="answer",
            ask_parts=(Text("visits.yes_or_no"),),
            ask_buttons=buttons,
            forget=("answer",),
        )

    async def _confirm(self, op: str) -> ActionResult:
        offer = self.draft.get("offer")
        if not (isinstance(offer, Mapping) and op and offer.get("op") == op):
            done = await self.service.store.by_op(op) if op else None
            if done is not None and done.contract == self.account.contract_number:
                return self._booked(Booked(done, repeat=True))
            return self._said(Text("visits.offer_expired"), forget=True)
        window = str(offer.get("window"))
        moving = await self._moving()
        outcome: Booked | Refused
        if moving is not None:
            outcome = await self.service.move(moving, window, op=op, by="bot")
        else:
            outcome = await self.service.book(
                op=op,
                account=self.account,
                conversation_id=self.ctx.conversation.id,
                window_id=window,
                problem=str(self.draft.get("problem") or ""),
            )
        if isinstance(outcome, Refused):
            if outcome.reason in ("taken", "past", "unknown"):
                return await self._windows(before=(Text(f"visits.refused.{outcome.reason}"),))
            return self._said(Text(f"visits.refused.{outcome.reason}"), forget=True)
        return self._booked(outcome, moved=moving is not None)

    def _booked(self, booked: Booked, *, moved: bool = False) -> ActionResult:
        visit = booked.visit
        head = "visits.already_booked" if booked.repeat else (
            "visits.moved" if moved else "visits.booked"
        )  # fmt: skip
        parts: list[Text] = [Text(head)]
        if visit.request_id is not None:
            parts.append(Text("visits.number", {"number": visit.request_id}))
        parts.append(describe(visit, self.service))
        parts.append(Text("visits.reminder_promise"))
        buttons = (
            _button(Text("visits.button.move"), step="move", visit=visit.id),
            _button(Text("visits.button.cancel"), step="cancel", visit=visit.id),
            _menu(),
        )
        return ActionResult(replies=(Reply(tuple(parts), buttons),), forget_memory=(DRAFT,))

    # --- move, cancel --------------------------------------------------------------------
    async def _own(self, visit_id: Any) -> Visit | None:
        """The customer's own booked visit (a forged button naming another's finds nothing)."""
        visit = await self.service.store.get(_int(visit_id)) if visit_id is not None else None
        if visit is None or visit.contract != self.account.contract_number:
            return None
        return visit if visit.status == "booked" else None

    async def _moving(self) -> Visit | None:
        return await self._own(self.draft.get("moving")) if "moving" in self.draft else None

    async def _start_move(self, visit: Visit | None = None) -> ActionResult:
        visit = visit or await self._own(self.slots.get("visit"))
        if visit is None:
            return self._said(Text("visits.not_found"), forget=True)
        self.draft = {"moving": visit.id, "problem": visit.problem}
        return await self._windows(
            before=(Text("visits.move_from", {"when": self.service.label(visit)}),)
        )

    async def _cancel(self) -> ActionResult:
        visit = await self._own(self.slots.get("visit"))
        if visit is None:
            return self._said(Text("visits.not_found"), forget=True)
        cancelled = await self.service.cancel(visit.id, by="bot")
        if cancelled is None:
            return self._said(Text("visits.not_found"), forget=True)
        reply = Reply(
            (Text("visits.cancelled", {"when": self.service.label(cancelled)}),),
            (_button(Text("visits.button.book"), step="new"), _menu()),
        )
        return ActionResult(replies=(reply,), forget_memory=(DRAFT,))

    # --- wording helpers -----------------------------------------------------------------
    def _label(self, window: Window) -> Text:
        slots = self.service.city(window.city_id)
        assert slots is not None
        return window_text(window.starts_at, window.ends_at, self.service.now(), slots.timezone)

    def _label_at(self, window_id: str) -> Text:
        slots = self.service.city(self.account.city_id)
        starts = parse_window_id(window_id)
        assert slots is not None
        assert starts is not None
        ends = starts + timedelta(minutes=slots.slot_minutes)
        return window_text(starts, ends, self.service.now(), slots.timezone)

    def _said(self, text: Text, *, forget: bool) -> ActionResult:
        return ActionResult(
            replies=(Reply((text,), (_menu(),)),), forget_memory=(DRAFT,) if forget else ()
        )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
