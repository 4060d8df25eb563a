"""The dialog engine: one customer message in, the bot's replies and the new state out.

It knows nothing of platforms (it sees ``Inbound``) and holds no wording (it emits ``Text`` ids).
What it does is generic: pick the flow for the intent, fill its slots from button payloads,
entities, earlier turns and the customer's account, ask for what is missing (re-asking when an
answer does not fit), run the flow's action, and carry context so that "а в Братске?" after a
tariff question is answered for Bratsk.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.billing import Billing, BillingUnavailable
from bot.catalog.catalog import Catalog
from bot.catalog.models import Account
from bot.dialog.flows import ButtonSpec, DialogConfig, FlowSpec, SlotSpec
from bot.dialog.slots import HINTS, SUGGESTERS, VALIDATORS, SlotTools
from bot.dialog.types import Action, ActionContext, ActionResult, DialogState, Handoff, Turn
from bot.i18n import Translator
from bot.intents.names import OUT_OF_SCOPE
from bot.intents.nlu import Nlu, NluResult, PayloadError, make_payload
from bot.intents.normalize import basic, words
from bot.models import Button, Conversation, Inbound, Reply, Text
from bot.notify import Notifier
from bot.selfservice.service import AccountActions
from bot.serialize import files_to_json
from bot.storage.base import Store

log = logging.getLogger(__name__)

# Payloads the engine itself understands (not intents): answering a question, the menu.
INFORM = "inform"
MENU = "menu"
# An offer waiting for "Да" / "Нет" (memory key), and the payload intents that answer it.
OFFER = "offer"
LAST_DONE = "last_done"  # memory: the operation just carried out (a second "да" is told so)
CONFIRM = "confirm"
DECLINE = "decline"
UNCLEAR = "unclear_answer"  # neither yes nor no to an open offer
CANCEL = "cancel"  # "отмена" as the whole answer to an open question
# A file with no words (see ``_files``): what it is about is asked (flows/dialog.d/
# attachments.yml); the stored files travel as FILES (FileRef JSON) in the payload arguments,
# the slots of the flow that takes them, and the memory until the next message.
ATTACHMENT = "attachment"
FILES_REFUSED = "attachment_refused"  # none could be stored: the customer is told why
FILES = "attachments"


def _reply(key: str, buttons: tuple[Button, ...] = (), **params: Any) -> Reply:
    return Reply((Text(key, params),), buttons)


class DialogEngine:
    def __init__(
        self,
        *,
        config: DialogConfig,
        nlu: Nlu,
        actions: Mapping[str, Action],
        catalog: Catalog,
        billing: Billing,
        store: Store,
        notifier: Notifier,
        translator: Translator,
        account_actions: AccountActions | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        self._config = config
        self._nlu = nlu
        self._actions = actions
        self._catalog = catalog
        self._billing = billing
        self._store = store
        self._notifier = notifier
        self._translator = translator
        self._account_actions = account_actions
        self._extras = dict(extras or {})
        self._tools = SlotTools(catalog, nlu.extractor)

    @property
    def nlu(self) -> Nlu:
        return self._nlu

    def menu_buttons(self) -> tuple[Button, ...]:
        return tuple(Button(Text(b.title), b.payload) for b in self._config.menu)

    async def step(
        self, conversation: Conversation, inbound: Inbound, *, now: datetime | None = None
    ) -> Turn:
        run = _Run(self, conversation, inbound, now or datetime.now(UTC))
        await run.go()
        new = replace(conversation, dialog=run.state.to_json(), contract_number=run.contract)
        return Turn(tuple(run.replies), new, run.handoff, run.result)


class _Run:
    """One turn's mutable working set; discarded after ``step`` returns."""

    def __init__(
        self, engine: DialogEngine, conversation: Conversation, inbound: Inbound, now: datetime
    ) -> None:
        self.e = engine
        self.config = engine._config
        self.conversation = conversation
        self.inbound = inbound
        self.now = now
        self.state = DialogState.from_json(conversation.dialog)
        self.replies: list[Reply] = []
        self.handoff: Handoff | None = None
        self.result: NluResult | None = None
        self.account: Account | None = None
        self.billing_down = False  # the billing did not answer in this turn
        self.contract = conversation.contract_number

    async def go(self) -> None:
        before = {key: self.state.memory.get(key) for key in (OFFER, LAST_DONE, FILES)}
        try:
            await self._go()
        except BillingUnavailable:
            # The billing did not answer: say so and offer a person, rather than fail the turn
            # (nothing was changed; what was asked can be asked again).
            log.warning("billing unavailable during a dialog turn")
            self._end_flow()
            self.replies = [self._billing_down()]
            self.billing_down = True
        # An offer (and the note of what was just done) lives until the next message: answered,
        # or dropped when the talk moved on, so a late "да" never confirms something the
        # customer no longer has in front of them. A billing that did not answer keeps it: the
        # same «Да» may be pressed again once the billing is back.
        answering = self.billing_down or (
            self.result is not None and self.result.intent in (CONFIRM, DECLINE, UNCLEAR)
        )
        for key, value in before.items():
            if self.state.memory.get(key) is value and not answering:
                self.state.memory.pop(key, None)

    def _billing_down(self) -> Reply:
        buttons = (
            Button(Text("button.operator"), "/human_operator"),
            Button(Text("button.menu"), "/menu"),
        )
        return _reply("selfservice.billing_down", buttons)

    async def _go(self) -> None:
        if self.conversation.contract_number:
            try:
                self.account = await self.e._billing.account(self.conversation.contract_number)
            except BillingUnavailable:
                # What needs no account (tariffs, offices, coverage) is still answered; what
                # needs it is told the billing is not answering (see _advance).
                log.warning("billing unavailable: answering without the account")
                self.billing_down = True
        result = self._yes_or_no() or self._understand()
        self.result = result
        if result.intent == UNCLEAR:
            self._ask_yes_or_no(str(result.payload_args.get("op")))
            return
        if result.intent == MENU:
            self._end_flow()
            self.replies.append(_reply("menu.prompt", self.e.menu_buttons()))
            return
        if self.state.flow and self.state.pending and self._cancels():
            self.result = NluResult(result.text, CANCEL, 1.0, from_payload=True)
            self._end_flow()
            # Cancelled means the waiting question too: it is not answered after a later login.
            self.state.memory.pop("after_identify", None)
            self.state.misses = 0
            self.replies.append(_reply("dialog.cancelled", self.e.menu_buttons()))
            return
        if await self._took_files(result):
            return
        if self.state.flow and self.state.pending and await self._answer_pending(result):
            return
        if await self._resume_after_identity(result):
            return
        result = self._by_entities(result)
        self.result = result
        if await self._followup(result):
            return
        if not self.e._nlu.understood(result) or result.intent == INFORM:
            self._not_understood()
            return
        flow = self.config.flow_for_intent(result.intent)
        if flow is None:
            self._not_understood()
            return
        self.state.misses = 0
        await self._start(flow, result)

    async def _resume_after_identity(self, result: NluResult) -> bool:
        """A question that waited for identification is answered once the customer is known,
        however they proved it (a code here, or the site's signed identity on this message),
        unless this message asks something else clearly."""
        waiting = self.state.memory.get("after_identify")
        if not waiting or self.account is None:
            return False
        self.state.memory.pop("after_identify", None)
        flow = self.config.flows.get(str(waiting))
        # "Готово", "вошёл" are not understood as a request: answer what waited. A request of
        # its own (even "привет" days later) is answered as itself.
        asks_other = self.e._nlu.understood(result) and result.intent != INFORM  # fmt: skip
        if flow is None or asks_other:
            return False
        await self._start(flow, replace(result, payload_args={}))
        return True

    # --- understanding -------------------------------------------------------------------
    def _yes_or_no(self) -> NluResult | None:
        """A typed answer to the open offer: "да, подтверждаю" confirms, "нет, передумал"
        declines; "да, а скорость какая?" or "не знаю" is neither (UNCLEAR: asked again, the
        offer kept). Right after an action was done, a second "да" is told it is done."""
        offer = self.state.memory.get(OFFER) or self.state.memory.get(LAST_DONE)
        text = self.inbound.text
        if not offer or not text or self.inbound.payload:
            return None
        said = words(basic(text))
        config = self.config
        yes = any(w in config.confirm_words for w in said)
        no = any(w in config.decline_words for w in said)
        if not yes and not no:
            return None  # something else entirely: routed as usual (the offer lapses)
        known = config.confirm_words | config.decline_words | config.confirm_fillers
        clear = (
            yes != no
            and "?" not in text
            and len(said) <= config.confirm_max_words
            and all(w in known for w in said)
        )
        op = {"op": offer.get("op")}
        if not clear:
            if OFFER not in self.state.memory:
                return None
            return NluResult(text, UNCLEAR, 1.0, payload_args=op, from_payload=True)
        return NluResult(text, CONFIRM if yes else DECLINE, 1.0, payload_args=op, from_payload=True)

    def _cancels(self) -> bool:
        """ "Отмена", "нет, не надо", "назад" as the whole message: the customer leaves the
        question. Inside a sentence ("не надо было менять тариф, а что с балансом") the words
        are not a cancel: such a message is a request of its own and is routed as one."""
        text = self.inbound.text
        if not text or self.inbound.payload:
            return False
        config = self.config
        said = [w for w in words(basic(text)) if w not in config.cancel_fillers]
        return bool(said) and " ".join(said) in config.cancel_words

    def _ask_yes_or_no(self, op: str) -> None:
        buttons = (
            Button(Text("button.yes"), make_payload(CONFIRM, {"op": op})),
            Button(Text("button.no"), make_payload(DECLINE, {"op": op})),
        )
        self.replies.append(_reply("selfservice.yes_or_no", buttons))

    def _understand(self) -> NluResult:
        nlu = self.e._nlu
        inbound = self.inbound
        if inbound.payload:
            try:
                return nlu.from_payload(inbound.payload)
            except PayloadError:
                return NluResult(inbound.payload, OUT_OF_SCOPE, 0.0)
        if inbound.contact is not None:
            return NluResult("", "identify_contact", 1.0, from_payload=True)
        if inbound.location is not None and not inbound.text:
            loc = {"lat": inbound.location.lat, "lon": inbound.location.lon}
            pending = self.state.pending
            if self.state.flow and pending == "location":
                return NluResult("", INFORM, 1.0, payload_args={"location": loc}, from_payload=True)
            return NluResult(
                "", self.config.location_intent, 1.0, payload_args={"location": loc},
                from_payload=True,
            )  # fmt: skip
        if inbound.attachments and not inbound.text:
            return self._files()
        return nlu.understand(inbound.text or "", locale=self.conversation.locale)

    def _files(self) -> NluResult:
        """A file with no words (a caption is understood as text; its files still reach the
        transcript and ``ctx.inbound.attachments``). While a question is open the files join
        the flow's FILES slot, answering it when that is the question (``_took_files``);
        otherwise ATTACHMENT asks what they are about, keeping them in memory for the flow the
        customer picks (a slot ``{name: attachments, remember: true}`` takes them). Files sent
        one after another (a Telegram album) add up."""
        stored = files_to_json(tuple(a.file for a in self.inbound.attachments if a.file))
        if not stored:
            problem = next((a.problem for a in self.inbound.attachments if a.problem), None)
            args = {"problem": problem or "unavailable"}
            return NluResult("", FILES_REFUSED, 1.0, payload_args=args, from_payload=True)
        if self.state.flow and self.state.pending:
            kept = [*self.state.slots.get(FILES, ()), *stored]
            return NluResult("", INFORM, 1.0, payload_args={FILES: kept}, from_payload=True)
        kept = [*self.state.memory.get(FILES, ()), *stored]
        return NluResult("", ATTACHMENT, 1.0, payload_args={FILES: kept}, from_payload=True)

    async def _took_files(self, result: NluResult) -> bool:
        """A refused file is explained, and a file sent while another question is open is
        kept with the flow (the question asked again): either way the open question stays
        open, and neither counts as a misunderstanding. False: route as usual."""
        if result.intent == FILES_REFUSED:
            problem = str(result.payload_args.get("problem"))
            self.replies.append(_reply(f"attachments.refused_{problem}"))
            return True
        if FILES not in result.payload_args or result.intent != INFORM:
            return False
        flow = self.config.flows.get(self.state.flow or "")
        slot = flow.slot(self.state.pending or "") if flow else None
        if slot is None or slot.name == FILES:
            return False  # the question asks for files: answered as usual
        self.state.slots[FILES] = result.payload_args[FILES]
        self.replies.append(
            Reply((Text("attachments.attached"), self._question(slot)), self._suggest(slot))
        )
        return True

    def _by_entities(self, result: NluResult) -> NluResult:
        """A message the classifier is unsure about but that carries a telling entity (a house
        number after a street: an address) goes to the intent configured for that entity."""
        nlu = self.e._nlu
        if nlu.understood(result) or result.from_payload:
            return result
        # Taken as understood whatever threshold the calibration fitted at start-up (a fixed
        # 0.5 fell below it when the training data changed: "Братск, Мира 39а" got "не понял").
        sure = max(result.confidence, 0.5, nlu.threshold)
        for entity in result.entities:
            intent = self.config.entity_intents.get(entity.type)
            if intent is not None:
                return replace(result, intent=intent, confidence=sure, from_payload=False)
        return result

    # --- slots ---------------------------------------------------------------------------
    def _value_from(self, slot: SlotSpec, result: NluResult, *, answering: bool) -> Any | None:
        if slot.name in result.payload_args:
            return result.payload_args[slot.name]
        if slot.entity:
            entity = result.entity(slot.entity)
            if entity is not None:
                return entity.id or entity.value
        if slot.validate and (answering or slot.scan) and result.text and not result.from_payload:
            return VALIDATORS[slot.validate](result.text, self.e._tools)
        return None

    def _fill(self, flow: FlowSpec, result: NluResult, *, answering: str | None) -> None:
        for key, value in result.payload_args.items():
            if flow.slot(key) is None and key != "location":
                self.state.slots.setdefault(key, value)
        for slot in flow.slots:
            value = self._value_from(slot, result, answering=slot.name == answering)
            if value is not None:
                self.state.slots[slot.name] = value
                if slot.remember:
                    self.state.memory[slot.name] = value
        if "location" in result.payload_args:
            self.state.slots["location"] = result.payload_args["location"]

    def _defaults(self, flow: FlowSpec) -> None:
        for slot in flow.slots:
            if slot.name in self.state.slots:
                continue
            if slot.remember and slot.name in self.state.memory:
                self.state.slots[slot.name] = self.state.memory[slot.name]
            elif slot.from_account and self.account is not None:
                self.state.slots[slot.name] = getattr(self.account, slot.from_account)

    # --- flow control --------------------------------------------------------------------
    async def _start(
        self, flow: FlowSpec, result: NluResult, *, base: Mapping[str, Any] = {}
    ) -> None:
        self.state.flow = flow.name
        self.state.slots = dict(base)
        self.state.pending = None
        self.state.reasks = 0
        self._fill(flow, result, answering=None)
        self._defaults(flow)
        await self._advance(flow, result)

    async def _answer_pending(self, result: NluResult) -> bool:
        """Handle a message while a question is open. False: not an answer, route normally."""
        flow = self.config.flows[self.state.flow or ""]
        pending = self.state.pending or ""
        before = self.state.slots.get(pending)
        had = pending in self.state.slots
        self._fill(flow, result, answering=pending)
        answered = pending in self.state.slots and (not had or self.state.slots[pending] != before)
        if result.from_payload and result.intent in flow.intents:
            # A button of this same flow (or a shared location) answers by itself.
            await self._start(flow, result, base=self.state.slots)
            return True
        # Leaving an open question takes a clear new request: "не скажу" to "ваш телефон?" is
        # an answer that did not fit, not a wish to talk about something else.
        switching = (
            self.e._nlu.understood(result)
            and (result.from_payload or result.confidence >= self.config.switch_threshold)
            and result.intent not in (INFORM,)
            and result.intent not in flow.intents
            and self.config.flow_for_intent(result.intent) is not None
        )
        slot = flow.slot(pending)
        # "Спасибо, заработало" is an answer with manners, not a new request.
        asks_other = switching and result.intent not in self.config.switch_ignores
        if answered and asks_other and slot is not None and slot.switchable:
            # A question that takes any text ("выберите шаг", "какой тариф?") must not swallow
            # "какой у меня баланс?": a confident request of its own wins.
            self.state.slots.pop(pending, None)
            self._end_flow()
            return False
        if answered:
            self.state.pending = None
            self.state.reasks = 0
            self.state.misses = 0
            await self._advance(flow, result)
            return True
        if switching:
            self._end_flow()
            return False
        self.state.reasks += 1
        if self.state.reasks > self.config.max_reasks:
            self._end_flow()
            self._offer_operator()
            return True
        if slot is not None:
            self.replies.append(
                Reply((Text("slot.not_understood"), self._question(slot)), self._suggest(slot))
            )
        return True

    async def _advance(self, flow: FlowSpec, result: NluResult) -> None:
        if flow.requires_identity and self.account is None and self.billing_down:
            self._end_flow()
            self.replies.append(self._billing_down())
            return
        if flow.requires_identity and self.account is None:
            self._end_flow()
            # Come back to this question once the customer has proved who they are.
            self.state.memory["after_identify"] = flow.name
            buttons = (Button(Text("button.identify"), "/identify"), *self.e.menu_buttons())
            self.replies.append(_reply("identity.required", buttons))
            return
        for slot in flow.slots:
            if slot.required and slot.name not in self.state.slots:
                self._ask(slot)
                return
        await self._finish(flow, result)

    def _ask(
        self,
        slot: SlotSpec,
        extra: tuple[Reply, ...] = (),
        parts: tuple[Text, ...] = (),
        buttons: tuple[Button, ...] | None = None,
    ) -> None:
        self.state.pending = slot.name
        self.replies.extend(extra)
        shown = self._suggest(slot) if buttons is None else buttons
        self.replies.append(Reply((*parts, self._question(slot)), shown))

    def _question(self, slot: SlotSpec) -> Text:
        params = HINTS[slot.hint](self.e._tools) if slot.hint else {}
        return Text(slot.ask, params)

    def _suggest(self, slot: SlotSpec) -> tuple[Button, ...]:
        return SUGGESTERS[slot.suggest](slot.name, self.e._tools) if slot.suggest else ()

    async def _finish(self, flow: FlowSpec, result: NluResult) -> None:
        if flow.reply:
            self.replies.append(self._flow_reply(flow))
        if flow.handoff:
            self.handoff = Handoff(flow.handoff, flow.name)
        if flow.action:
            outcome = await self.e._actions[flow.action](self._context(flow, result))
            self._apply(flow, outcome)
            if outcome.ask:
                return
            if outcome.identify:
                await self._identified(flow, outcome.identify, result)
                return
        self._complete(flow)

    async def _identified(self, flow: FlowSpec, contract: str, result: NluResult) -> None:
        self.contract = contract
        self.account = await self.e._billing.account(contract)
        self._complete(flow)
        waiting = self.state.memory.pop("after_identify", None)
        then = self.config.flows.get(str(waiting)) if waiting else None
        if then is not None and self.account is not None:
            await self._start(then, replace(result, payload_args={}))

    def _flow_reply(self, flow: FlowSpec) -> Reply:
        """The flow's reply: the topic the message is about ("ты бот?"), else the general one;
        one of its variants, picked by the message."""
        text = basic(self.inbound.text or "")
        said = words(text)
        ids, specs = flow.reply, flow.buttons
        for topic in flow.topics:
            if any(_marked(text, said, basic(m)) for m in topic.markers):
                ids = topic.reply
                specs = flow.buttons if topic.buttons is None else topic.buttons
                break
        buttons = _buttons(specs)
        if flow.menu:
            shown = {b.payload for b in buttons}
            buttons += tuple(b for b in self.e.menu_buttons() if b.payload not in shown)
        return _reply(_pick(ids, text), buttons)

    def _context(self, flow: FlowSpec, result: NluResult) -> ActionContext:
        return ActionContext(
            conversation=self.conversation,
            inbound=self.inbound,
            nlu=result,
            slots=dict(self.state.slots),
            memory=dict(self.state.memory),
            params=flow.params,
            catalog=self.e._catalog,
            billing=self.e._billing,
            store=self.e._store,
            account=self.account,
            now=self.now,
            notifier=self.e._notifier,
            render=lambda text: self.e._translator.render(self.conversation.locale, text),
            actions=self.e._account_actions,
            extras=self.e._extras,
        )

    def _apply(self, flow: FlowSpec, outcome: ActionResult) -> None:
        self.replies.extend(outcome.replies)
        self.state.memory.update(outcome.remember)
        for name in outcome.forget_memory:
            self.state.memory.pop(name, None)
        if outcome.unidentify:
            self.contract = None
            self.account = None
        for name in outcome.forget:
            self.state.slots.pop(name, None)
        if outcome.handoff:
            self.handoff = outcome.handoff
        if outcome.ask:
            slot = flow.slot(outcome.ask)
            if slot is None:
                raise LookupError(f"flow {flow.name!r} asked for undeclared slot {outcome.ask!r}")
            self._ask(slot, outcome.ask_replies, outcome.ask_parts, outcome.ask_buttons)

    def _complete(self, flow: FlowSpec) -> None:
        self.state.memory["last_flow"] = flow.name
        self.state.memory["last_slots"] = {
            k: v for k, v in self.state.slots.items() if flow.slot(k) is not None
        }
        self._end_flow()

    def _end_flow(self) -> None:
        self.state.flow = None
        self.state.slots = {}
        self.state.pending = None
        self.state.reasks = 0

    # --- context carry and fallback ------------------------------------------------------
    async def _followup(self, result: NluResult) -> bool:
        """ "А в Братске?" right after a tariff answer: rerun the last flow with the new value."""
        last = self.state.memory.get("last_flow")
        if not last or last not in self.config.flows or result.from_payload:
            return False
        flow = self.config.flows[last]
        text = basic(result.text)
        marked = any(text.startswith(m) for m in self.config.followup_markers)
        if self.e._nlu.understood(result) and not marked:
            return False  # a question of its own ("тарифы в Чите", a new address) starts afresh
        # A follow-up is short: the new value and little else ("Братск", "а в Братске?").
        # A full sentence the classifier could not place is not one.
        rest = _without_entities(result)
        if len(rest) > (self.config.followup_max_words + (2 if marked else 0)):
            return False
        new = {}
        for slot in flow.slots:
            if slot.entity and (entity := result.entity(slot.entity)) is not None:
                new[slot.name] = entity.id or entity.value
        if not new:
            return False
        base = dict(self.state.memory.get("last_slots") or {})
        base.update(new)
        for slot in flow.slots:
            if slot.remember and slot.name in new:
                self.state.memory[slot.name] = new[slot.name]
        self.state.misses = 0
        self.state.flow = flow.name
        self.state.slots = base
        self.state.pending = None
        self.state.reasks = 0
        self._defaults(flow)
        await self._advance(flow, result)
        return True

    def _not_understood(self) -> None:
        self.state.misses += 1
        if self.state.misses >= self.config.max_misses:
            self.state.misses = 0
            self._offer_operator()
        else:
            self.replies.append(_reply("fallback.rephrase", self.e.menu_buttons()))

    def _offer_operator(self) -> None:
        if self.config.misses_hand_off:
            # Hand over straight away; the customer can still press "back to the bot".
            self.handoff = Handoff("general", "not_understood")
            self.replies.append(_reply("fallback.handoff"))
            return
        buttons = (
            Button(Text("button.operator"), "/human_operator"),
            Button(Text("button.menu"), "/menu"),
        )
        self.replies.append(_reply("fallback.offer_operator", buttons))


def _buttons(specs: Sequence[ButtonSpec]) -> tuple[Button, ...]:
    return tuple(Button(Text(b.title), b.payload) for b in specs)


def _marked(text: str, said: Sequence[str], marker: str) -> bool:
    if " " in marker:
        return marker in text
    return any(w.startswith(marker) for w in said)


def _pick(options: Sequence[str], text: str) -> str:
    """One of several variants, the same for the same message: varied between messages, yet
    repeatable (a test, a replayed webhook, two processes) — unlike random or ``hash()``."""
    return options[zlib.crc32(text.encode("utf-8")) % len(options)]


def _without_entities(result: NluResult) -> list[str]:
    """Words of the message outside its entities (stop-length words of one or two letters,
    like "а", "в", "по", do not count)."""
    text = result.text
    for entity in sorted(result.entities, key=lambda e: e.start, reverse=True):
        text = text[: entity.start] + " " + text[entity.end :]
    return [w for w in words(basic(text)) if len(w) > 2]
