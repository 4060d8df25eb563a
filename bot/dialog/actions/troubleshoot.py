"""Troubleshooting by symptom: the trees of ``flows/troubleshooting.yml`` and their runner.

A tree is a few steps; each step is a message and buttons that lead to another step or to an end
(``solved``, ``visit``: the technician-visit button, ``technical``: a hand-off to the technical
department with the path taken). The buttons are payloads of the ``internet_down`` flow, so the
engine restarts the flow with the tree, the step and the path as slots; where the customer is
after the bot spoke is also kept in the dialog memory, for answers typed instead of pressed.

``internet_down`` (``account.py``) tells the account state and an outage at the account's address
first and hands over here; for an unidentified customer this module asks the address (or
«Пропустить») and checks outages there before the tree.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.catalog.addresses import AddressLookupKind
from bot.dialog.actions.render import mentions, mentions_stem
from bot.dialog.flows import FlowError
from bot.dialog.types import ActionContext, ActionResult, Handoff
from bot.intents.nlu import make_payload
from bot.models import Button, Raw, Reply, Text
from bot.outages.lookup import outages_for
from bot.outages.model import Outage
from bot.outages.render import outage_answer

TROUBLESHOOTING = "troubleshooting"  # ctx.extras key: the loaded Trees
MEMORY = "troubleshooting"  # dialog memory: where the customer is ({"tree", "step", "path"})
INTENT = "internet_down"  # the flow whose payloads the buttons are
ENDS = ("solved", "visit", "technical")
SERVICES = ("internet", "tv", "phone")
PATH_SEP = ">"


class TreeError(FlowError):
    """``flows/troubleshooting.yml`` is inconsistent (unknown step, message id, end …)."""


@dataclass(frozen=True, slots=True)
class Choice:
    title: str  # message id
    next: str | None = None  # a step of the same tree
    end: str | None = None  # one of ENDS


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    say: str  # message id
    choices: tuple[Choice, ...]


@dataclass(frozen=True, slots=True)
class Tree:
    name: str
    title: str  # message id of its button when the symptom is asked
    services: tuple[str, ...]  # what an outage must touch to explain the symptom
    stems: tuple[str, ...]
    words: tuple[str, ...]
    unless: tuple[str, ...]
    start: str
    steps: Mapping[str, Step]

    def named_in(self, text: str) -> bool:
        if not text or (self.unless and mentions_stem(text, self.unless)):
            return False
        return mentions_stem(text, self.stems) or (bool(self.words) and mentions(text, self.words))


@dataclass(frozen=True, slots=True)
class Trees:
    trees: Mapping[str, Tree]  # in file order: the first one named in a message wins
    ask_order: tuple[str, ...]  # the buttons when the symptom is asked
    solved_stems: tuple[str, ...]
    negations: tuple[str, ...]
    skip_stems: tuple[str, ...]
    switch_confidence: float  # a typed new symptom mid-tree starts that tree at this confidence

    def symptom(self, text: str) -> Tree | None:
        return next((t for t in self.trees.values() if t.named_in(text)), None)

    def solved(self, text: str) -> bool:
        """ "Всё заработало, спасибо" (but not "не заработало")."""
        return mentions_stem(text, self.solved_stems) and not mentions(text, self.negations)

    def skips(self, text: str) -> bool:
        return mentions_stem(text, self.skip_stems)


# --- loading -------------------------------------------------------------------------------------
def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) and s for s in raw):
        raise TreeError(f"{where}: expected a list of strings")
    return tuple(raw)


def _keys(raw: Any, allowed: set[str], required: set[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TreeError(f"{where}: expected a mapping")
    unknown, missing = set(raw) - allowed, required - set(raw)
    if unknown:
        raise TreeError(f"{where}: unknown key(s) {sorted(unknown)}")
    if missing:
        raise TreeError(f"{where}: missing {sorted(missing)}")
    return raw


def _choice(raw: Any, where: str) -> Choice:
    data = _keys(raw, {"title", "next", "end"}, {"title"}, where)
    if ("next" in data) == ("end" in data):
        raise TreeError(f"{where}: a button needs either 'next' or 'end'")
    end = data.get("end")
    if end is not None and end not in ENDS:
        raise TreeError(f"{where}: unknown end {end!r} (one of {', '.join(ENDS)})")
    nxt = data.get("next")
    return Choice(str(data["title"]), str(nxt) if nxt is not None else None, end)


def _tree(name: str, raw: Any, where: str) -> Tree:
    allowed = {"title", "services", "stems", "words", "unless", "start", "steps"}
    data = _keys(raw, allowed, {"title", "services", "start", "steps"}, where)
    services = _strings(data["services"], f"{where}: services")
    if not services or set(services) - set(SERVICES):
        raise TreeError(f"{where}: services must be some of {', '.join(SERVICES)}")
    if not isinstance(data["steps"], dict) or not data["steps"]:
        raise TreeError(f"{where}: 'steps' must be a non-empty mapping")
    steps: dict[str, Step] = {}
    for step_name, step_raw in data["steps"].items():
        at = f"{where}: step {step_name!r}"
        step = _keys(step_raw, {"say", "buttons"}, {"say", "buttons"}, at)
        if not isinstance(step["buttons"], list) or not step["buttons"]:
            raise TreeError(f"{at}: 'buttons' must be a non-empty list")
        choices = tuple(_choice(b, f"{at}: button {i + 1}") for i, b in enumerate(step["buttons"]))
        steps[str(step_name)] = Step(str(step_name), str(step["say"]), choices)
    return Tree(
        name=name,
        title=str(data["title"]),
        services=services,
        stems=_strings(data.get("stems"), f"{where}: stems"),
        words=_strings(data.get("words"), f"{where}: words"),
        unless=_strings(data.get("unless"), f"{where}: unless"),
        start=str(data["start"]),
        steps=steps,
    )


def _problems(tree: Tree, messages: Collection[str]) -> list[str]:
    where = f"tree {tree.name!r}"
    problems: list[str] = []
    if tree.title not in messages:
        problems.append(f"{where}: unknown message {tree.title!r}")
    if tree.start not in tree.steps:
        problems.append(f"{where}: unknown start step {tree.start!r}")
    for step in tree.steps.values():
        if step.say not in messages:
            problems.append(f"{where}: step {step.name!r}: unknown message {step.say!r}")
        for choice in step.choices:
            if choice.title not in messages:
                problems.append(f"{where}: step {step.name!r}: unknown message {choice.title!r}")
            if choice.next is not None and choice.next not in tree.steps:
                problems.append(f"{where}: step {step.name!r}: unknown step {choice.next!r}")
    if problems:
        return problems
    # Every step is reachable from the start (a step nobody sees is a mistake in the data).
    seen, todo = {tree.start}, [tree.start]
    while todo:
        for choice in tree.steps[todo.pop()].choices:
            if choice.next is not None and choice.next not in seen:
                seen.add(choice.next)
                todo.append(choice.next)
    for name in tree.steps.keys() - seen:
        problems.append(f"{where}: step {name!r} is never reached")
    return problems


def load_trees(path: Path, *, messages: Collection[str]) -> Trees:
    """Load and cross-check the trees; every step and message id must resolve at start-up."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:  # a ValueError, not an OSError
        raise TreeError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (OSError, yaml.YAMLError) as exc:
        raise TreeError(f"{path}: {exc}") from exc
    try:
        top = _keys(data, {"settings", "trees"}, {"trees"}, "top level")
        if not isinstance(top["trees"], dict) or not top["trees"]:
            raise TreeError("'trees' must be a non-empty mapping")
        trees = {str(n): _tree(str(n), raw, f"tree {n!r}") for n, raw in top["trees"].items()}
        allowed = {"solved_stems", "negations", "skip_stems", "ask_order", "switch_confidence"}
        settings = _keys(top.get("settings") or {}, allowed, set(), "settings")
        order = _strings(settings.get("ask_order"), "settings: ask_order") or tuple(trees)
        solved_stems = _strings(settings.get("solved_stems"), "settings: solved_stems")
        negations = _strings(settings.get("negations"), "settings: negations")
        skip_stems = _strings(settings.get("skip_stems"), "settings: skip_stems")
        switch_confidence = _number(settings.get("switch_confidence", 0.5), "switch_confidence")
    except TreeError as exc:
        raise TreeError(f"{path}: {exc}") from None
    problems = [p for tree in trees.values() for p in _problems(tree, messages)]
    problems += [f"settings: ask_order: unknown tree {n!r}" for n in order if n not in trees]
    if problems:
        raise TreeError(f"{path}: " + "; ".join(problems))
    return Trees(
        trees=trees,
        ask_order=order,
        solved_stems=solved_stems,
        negations=negations,
        skip_stems=skip_stems,
        switch_confidence=switch_confidence,
    )


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TreeError(f"settings: {name}: expected a number")
    return float(value)


# --- running -------------------------------------------------------------------------------------
def trees_of(ctx: ActionContext) -> Trees:
    trees = ctx.extras.get(TROUBLESHOOTING)
    if not isinstance(trees, Trees):
        raise LookupError("troubleshooting trees are not loaded (ctx.extras['troubleshooting'])")
    return trees


def _slot(ctx: ActionContext, name: str) -> str | None:
    value = ctx.slots.get(name)
    return str(value) if value not in (None, "") else None


_FLOW_SLOTS = ("tree", "address", "city", "answer", "step", "path", "skip", "go", "end")


class Troubleshooting:
    """One turn of the troubleshooting dialog, read from the flow's slots and the memory."""

    def __init__(self, ctx: ActionContext) -> None:
        self.ctx = ctx
        self.trees = trees_of(ctx)
        # Nothing of ours in the slots: a new request ("не работает интернет", the menu), so
        # whatever an earlier check left in the memory does not count.
        self.fresh = not any(_slot(ctx, name) for name in _FLOW_SLOTS)
        memory = ctx.memory.get(MEMORY)
        self.memory: Mapping[str, Any] = {}
        if isinstance(memory, Mapping) and not self.fresh:
            self.memory = memory
        self.answer = _slot(ctx, "answer")  # typed at a step instead of pressing a button
        self.step = _slot(ctx, "step")  # pressed: the step to show
        self.end = _slot(ctx, "end")  # pressed: the end reached
        self.go = bool(_slot(ctx, "go"))  # the account state was told; check further
        raw_path = self.memory.get("path") if self.answer else _slot(ctx, "path")
        self.path = [p for p in str(raw_path or "").split(PATH_SEP) if p]
        self.tree: Tree | None = None
        self.unclear = False  # the customer named a symptom we could not place
        typed = _slot(ctx, "tree")
        if typed is not None:
            self.tree = self.trees.trees.get(typed) or self.trees.symptom(typed)
            self.unclear = self.tree is None
        elif self.fresh:
            self.tree = self.trees.symptom(ctx.text)
        else:
            self.tree = self.trees.trees.get(str(self.memory.get("tree")))

    @property
    def mid_tree(self) -> bool:
        """A step's button was pressed, or an answer typed to a step."""
        return bool(self.step or self.end or (self.answer and self.memory.get("step")))

    @property
    def services(self) -> tuple[str, ...] | None:
        """The services whose outage explains the symptom (all while it is not known)."""
        return self.tree.services if self.tree is not None else None

    def continue_button(self) -> Button:
        args = {"go": "1", **({"tree": self.tree.name} if self.tree else {})}
        return Button(Text("troubleshooting.button.continue"), make_payload(INTENT, args))

    # --- the turn --------------------------------------------------------------------------
    async def typed(self) -> ActionResult | None:
        """An answer typed at a step. None: it names another symptom; start that tree."""
        tree = self.trees.trees.get(str(self.memory.get("tree")))
        step = tree.steps.get(str(self.memory.get("step"))) if tree else None
        if tree is None or step is None:
            self.tree = None
            return self._ask_symptom([])
        text = self.answer or ""
        if self.trees.solved(text):
            return self._end(tree, "solved", self.path)
        nlu = self.ctx.nlu
        other = self.trees.symptom(text)
        new_request = nlu.intent == INTENT and nlu.confidence >= self.trees.switch_confidence
        # "А телевизор тоже не показывает" is a new symptom; "всё равно нет интернета" at the
        # reboot step is the same one, i.e. "не помогло": shown the step again.
        if new_request and other is not None and other is not tree:
            self.tree, self.answer, self.step, self.end, self.path = other, None, None, None, []
            return None
        self.tree = tree
        return self._show(tree, step, self.path, [Text("troubleshooting.step_not_understood")])

    async def go_on(self, lead: Sequence[Text]) -> ActionResult:
        """After the account and its address: the address of an unidentified customer, then
        the symptom, then the step (or the end) of its tree."""
        parts = list(lead)
        if not self.mid_tree and self.ctx.account is None and not _slot(self.ctx, "skip"):
            checked = await self._address(parts)
            if checked is not None:
                return checked
        elif self.mid_tree and self.ctx.account is None:
            told = await self._outage_at_typed_address(mid_tree=True)
            if told is not None:
                return told
        tree = self.tree
        if tree is None:
            return self._ask_symptom(parts)
        path = self.path
        if self.end in ENDS:  # (a step of the base slots may be left from the last press)
            return self._end(tree, self.end, path)
        step = tree.steps.get(self.step or tree.start)
        if step is None:  # a button of an older version of the trees
            step, path = tree.steps[tree.start], []
        return self._show(tree, step, path, parts)

    # --- the address of an unidentified customer -----------------------------------------
    def _typed_place(self) -> tuple[str, str] | str | None:
        """(city id, address text) of the address the customer typed; "address" or "city" when
        that still has to be asked; None when they skipped it."""
        address = _slot(self.ctx, "address")
        if address is None:
            return "address"
        if self.trees.skips(address):
            return None
        city = _slot(self.ctx, "city")
        catalog = self.ctx.catalog
        hint = city if city in catalog.cities else None
        if hint is None and self.ctx.memory.get("city") in catalog.cities:
            hint = str(self.ctx.memory["city"])  # the city named earlier in the conversation
        text = address if city is None or hint is not None else f"{city}, {address}"
        lookup = catalog.addresses.lookup(text, hint)
        if lookup.kind == AddressLookupKind.NO_ADDRESS:
            return "address"
        if lookup.city_id is None:
            return "city"
        return lookup.city_id, text

    async def _address(self, parts: list[Text]) -> ActionResult | None:
        place = self._typed_place()
        skip = Button(
            Text("troubleshooting.button.skip"),
            make_payload(INTENT, {"skip": "1", **({"tree": self.tree.name} if self.tree else {})}),
        )
        if place == "address":
            said = _slot(self.ctx, "address") is not None
            note = [Text("troubleshooting.address_not_understood")] if said else []
            return self._ask("address", [*parts, *note], (skip,), forget=("address", "city"))
        if place == "city":
            said = _slot(self.ctx, "city") is not None
            cities = sorted(self.ctx.catalog.cities.values(), key=lambda c: c.name)
            buttons = tuple(
                Button(Raw(c.name), make_payload(INTENT, {"city": c.city_id})) for c in cities
            )
            note = [Text("slot.not_understood")] if said else []
            return self._ask("city", [*parts, *note], (*buttons, skip), forget=("city",))
        if place is None:
            return None  # skipped: straight to the tree
        told = await self._outage_at_typed_address(mid_tree=False)
        if told is not None:
            return told
        parts.append(Text("troubleshooting.no_outage"))
        return None

    async def _outage_at_typed_address(self, *, mid_tree: bool) -> ActionResult | None:
        place = self._typed_place()
        if not isinstance(place, tuple):
            return None
        city_id, text = place
        found = await outages_for(self.ctx, city_id, text, "", self.services)
        return self.outage(found, city_id, mid_tree=mid_tree) if found else None

    def outage(self, found: Sequence[Outage], city_id: str, *, mid_tree: bool) -> ActionResult:
        """What is down, why and until when; no tree (rebooting cannot fix a cut cable)."""
        parts = [Text("troubleshooting.outage_now")] if mid_tree else []
        tz = self.ctx.catalog.timezone(city_id)
        for item in found:
            parts += outage_answer(item, self.ctx.now, tz)
        parts.append(Text("outages.no_checklist"))
        reply = Reply(tuple(parts), (Button(Text("button.menu"), "/menu"),))
        return ActionResult(replies=(reply,), forget_memory=(MEMORY,))

    # --- questions, steps and ends -------------------------------------------------------
    def _ask(
        self,
        slot: str,
        parts: Sequence[Text],
        buttons: tuple[Button, ...],
        *,
        forget: tuple[str, ...] = (),
        step: Step | None = None,
        path: Sequence[str] = (),
    ) -> ActionResult:
        where: dict[str, Any] = {"tree": self.tree.name if self.tree else None}
        if step is not None:
            where.update(step=step.name, path=PATH_SEP.join(path))
        return ActionResult(
            ask=slot,
            ask_parts=tuple(parts),
            ask_buttons=buttons,
            forget=(*forget, "answer"),
            remember={MEMORY: where},
        )

    def _ask_symptom(self, parts: Sequence[Text]) -> ActionResult:
        note = [Text("troubleshooting.symptom_not_understood")] if self.unclear else []
        buttons = tuple(
            Button(Text(self.trees.trees[name].title), make_payload(INTENT, {"tree": name}))
            for name in self.trees.ask_order
        )
        return self._ask("tree", [*parts, *note], buttons, forget=("tree",))

    def _show(
        self, tree: Tree, step: Step, path: Sequence[str], parts: Sequence[Text]
    ) -> ActionResult:
        here = [*path, step.name]
        buttons = []
        for choice in step.choices:
            args: dict[str, str] = {"tree": tree.name}
            if choice.next is not None:
                args["step"] = choice.next
            else:
                args["end"] = str(choice.end)
            args["path"] = PATH_SEP.join(here)
            buttons.append(Button(Text(choice.title), make_payload(INTENT, args)))
        self.tree = tree
        return self._ask("answer", [*parts, Text(step.say)], tuple(buttons), step=step, path=path)

    def _end(self, tree: Tree, end: str, path: Sequence[str]) -> ActionResult:
        trail = PATH_SEP.join(path)
        if end == "visit":
            # The technician-visit flow takes it from here (flows/dialog.d/visits.yml): the
            # symptom fills its problem (not asked again), the tree and the steps tried go along.
            problem = self.ctx.render(Text(tree.title))
            args = {"problem": problem, "troubleshooting": f"{tree.name}:{trail}"}
            button = Button(
                Text("troubleshooting.button.book_visit"), make_payload("technician_visit", args)
            )
            reply = Reply((Text("troubleshooting.end.visit"),), (button,))
            return ActionResult(replies=(reply,), forget_memory=(MEMORY,))
        if end == "technical":
            # The operator sees the tree and the steps already done in the queue's reason.
            reason = f"troubleshooting:{tree.name}" + (f":{trail}" if trail else "")
            return ActionResult(
                replies=(Reply((Text("troubleshooting.end.technical"),)),),
                handoff=Handoff("technical", reason),
                forget_memory=(MEMORY,),
            )
        return ActionResult(
            replies=(Reply((Text("troubleshooting.end.solved"),)),), forget_memory=(MEMORY,)
        )
