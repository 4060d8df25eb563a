"""The dialog described as data: ``flows/dialog.yml`` → typed, validated flow specs.

A flow answers one or more intents. It may need slots (asked for, validated and re-asked when the
answer does not fit), may need an identified customer, and ends in an action (a named coroutine),
a localized reply, or a hand-off to a person.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class FlowError(ValueError):
    """``flows/`` is inconsistent: unknown intent, action, validator or message id."""


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    title: str  # message id
    payload: str


@dataclass(frozen=True, slots=True)
class SlotSpec:
    name: str
    ask: str  # message id of the question
    entity: str | None = None  # entity type that fills it
    validate: str | None = None  # validator that accepts raw text (or an entity value)
    remember: bool = False  # carried across flows: the customer's city stays known
    suggest: str | None = None  # suggested answers as buttons ("cities")
    required: bool = True
    scan: bool = False  # try the validator on the message that starts the flow, not only answers
    from_account: str | None = None  # default from the identified customer's account field
    hint: str | None = None  # parameters for the question, from the catalog ("address_example")
    # Its validator takes any text: a confident request of another flow leaves the question
    # instead of being taken as the answer ("какой у меня баланс?" to "выберите шаг").
    switchable: bool = False


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A more fitting answer of a reply flow when the message has one of ``markers`` ("ты бот?"
    gets the honest answer, "расскажи шутку" a joke)."""

    markers: tuple[str, ...]  # stems: a word starting with one counts; with a space: a phrase
    reply: tuple[str, ...]  # message ids; one is picked by the message (stable, see engine)
    buttons: tuple[ButtonSpec, ...] | None = None  # None: the flow's own


@dataclass(frozen=True, slots=True)
class FlowSpec:
    name: str
    intents: tuple[str, ...]
    slots: tuple[SlotSpec, ...] = ()
    requires_identity: bool = False
    action: str | None = None
    # Message ids; with several, one is picked by the message so that "как дела" and "как ты?"
    # do not always get the same words, yet the same message always gets the same answer.
    reply: tuple[str, ...] = ()
    buttons: tuple[ButtonSpec, ...] = ()
    topics: tuple[TopicSpec, ...] = ()
    menu: bool = False  # the main menu's buttons follow the reply's own
    handoff: str | None = None  # department
    params: Mapping[str, Any] = field(default_factory=dict)
    payload_only: bool = False  # its "intents" are button payloads, not classifier intents
    source: str = field(default="", compare=False)  # the file it came from, for error messages

    def slot(self, name: str) -> SlotSpec | None:
        return next((s for s in self.slots if s.name == name), None)


@dataclass(frozen=True, slots=True)
class DialogConfig:
    flows: Mapping[str, FlowSpec]
    menu: tuple[ButtonSpec, ...]
    followup_markers: tuple[str, ...]
    followup_max_words: int
    location_intent: str
    switch_threshold: float
    misses_hand_off: bool
    entity_intents: Mapping[str, str]
    max_reasks: int
    max_misses: int
    # Typed answers to an offer ("да, подтверждаю"): short messages with one of these words.
    confirm_words: frozenset[str] = frozenset()
    decline_words: frozenset[str] = frozenset()
    confirm_fillers: frozenset[str] = frozenset()  # allowed around them ("пожалуйста")
    confirm_max_words: int = 4
    # Intents that never take a customer away from an open free-text question.
    switch_ignores: frozenset[str] = frozenset()
    # The whole answer to an open question ("отмена", "нет, не надо") that ends the flow: the
    # message's words, fillers left out, must be one of these phrases.
    cancel_words: frozenset[str] = frozenset()
    cancel_fillers: frozenset[str] = frozenset()

    def flow_for_intent(self, intent: str) -> FlowSpec | None:
        return next((f for f in self.flows.values() if intent in f.intents), None)


def _buttons(raw: Any, where: str) -> tuple[ButtonSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FlowError(f"{where}: 'buttons' must be a list")
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"title", "payload"}:
            raise FlowError(f"{where}: a button needs exactly 'title' and 'payload'")
        out.append(ButtonSpec(str(item["title"]), str(item["payload"])))
    return tuple(out)


_SLOT_KEYS = {
    "name", "ask", "entity", "validate", "remember", "suggest", "required", "scan", "from_account",
    "hint", "switchable",
}  # fmt: skip
_FLOW_KEYS = {
    "intents", "slots", "requires_identity", "action", "reply", "buttons", "handoff", "params",
    "payload_only", "topics", "menu",
}  # fmt: skip


def _ids(raw: Any, where: str) -> tuple[str, ...]:
    """One message id or a list of them."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise FlowError(f"{where}: 'reply' must be a message id or a list of them")
    return tuple(raw)


def _topic(raw: Any, where: str) -> TopicSpec:
    if not isinstance(raw, dict) or not raw.get("markers") or not raw.get("reply"):
        raise FlowError(f"{where}: a topic needs 'markers' and 'reply'")
    unknown = set(raw) - {"markers", "reply", "buttons"}
    if unknown:
        raise FlowError(f"{where}: unknown topic key(s) {sorted(unknown)}")
    return TopicSpec(
        markers=tuple(str(m) for m in raw["markers"]),
        reply=_ids(raw["reply"], where),
        buttons=_buttons(raw["buttons"], where) if "buttons" in raw else None,
    )


def _slot(raw: Any, where: str) -> SlotSpec:
    if not isinstance(raw, dict) or "name" not in raw or "ask" not in raw:
        raise FlowError(f"{where}: a slot needs 'name' and 'ask'")
    unknown = set(raw) - _SLOT_KEYS
    if unknown:
        raise FlowError(f"{where}: unknown slot key(s) {sorted(unknown)}")
    for key in ("entity", "validate", "suggest", "from_account", "hint"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise FlowError(f"{where}: slot {raw['name']!r}: '{key}' must be a name")
    return SlotSpec(
        name=str(raw["name"]),
        ask=str(raw["ask"]),
        entity=raw.get("entity"),
        validate=raw.get("validate"),
        remember=bool(raw.get("remember", False)),
        suggest=raw.get("suggest"),
        required=bool(raw.get("required", True)),
        scan=bool(raw.get("scan", False)),
        from_account=raw.get("from_account"),
        hint=raw.get("hint"),
        switchable=bool(raw.get("switchable", False)),
    )


def _flow(name: str, raw: Any, where: str) -> FlowSpec:
    if not isinstance(raw, dict):
        raise FlowError(f"{where}: flow {name!r} must be a mapping")
    unknown = set(raw) - _FLOW_KEYS
    if unknown:
        raise FlowError(f"{where}: flow {name!r} has unknown key(s) {sorted(unknown)}")
    intents = raw.get("intents", [])
    if isinstance(intents, str):
        intents = [intents]
    for key in ("action", "handoff"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise FlowError(f"{where}: flow {name!r}: '{key}' must be a name")
    ends = [k for k in ("action", "reply", "handoff") if raw.get(k)]
    if not ends:
        raise FlowError(f"{where}: flow {name!r} needs an 'action', a 'reply' or a 'handoff'")
    return FlowSpec(
        name=name,
        intents=tuple(str(i) for i in intents),
        slots=tuple(_slot(s, f"{where}: flow {name!r}") for s in raw.get("slots", []) or []),
        requires_identity=bool(raw.get("requires_identity", False)),
        action=raw.get("action"),
        reply=_ids(raw.get("reply"), f"{where}: flow {name!r}"),
        buttons=_buttons(raw.get("buttons"), f"{where}: flow {name!r}"),
        topics=tuple(_topic(t, f"{where}: flow {name!r}") for t in raw.get("topics") or []),
        menu=bool(raw.get("menu", False)),
        handoff=raw.get("handoff"),
        params=dict(raw.get("params") or {}),
        payload_only=bool(raw.get("payload_only", False)),
        source=where,
    )


def _more_flows(folder: Path, taken: set[str]) -> dict[str, FlowSpec]:
    """Flows of ``dialog.d/*.yml`` (each with a top-level ``flows:`` mapping), so that a
    capability's dialog lives in a file of its own; a name given twice is an error."""
    out: dict[str, FlowSpec] = {}
    for extra in sorted(folder.glob("*.yml")) if folder.is_dir() else ():
        data = _read_yaml(extra) or {}
        if not isinstance(data, dict) or not isinstance(data.get("flows"), dict):
            raise FlowError(f"{extra}: expected a top-level 'flows' mapping")
        with _blamed_on(extra):
            for name, raw in data["flows"].items():
                if name in taken or name in out:
                    raise FlowError(f"{extra}: flow {name!r} is defined twice")
                out[name] = _flow(name, raw, str(extra))
    return out


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:  # a ValueError, not an OSError: named apart
        raise FlowError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (OSError, yaml.YAMLError) as exc:
        raise FlowError(f"{path}: {exc}") from exc


@contextmanager
def _blamed_on(path: Path) -> Iterator[None]:
    """A value of the wrong type deep in a file (``max_reasks: x``, ``settings: true``) is the
    file's fault: start-up stops with the file named, not with a traceback."""
    try:
        yield
    except FlowError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise FlowError(f"{path}: a value of the wrong type ({exc})") from None


def load_dialog(
    path: Path,
    *,
    intents: Collection[str],
    actions: Collection[str],
    validators: Collection[str],
    suggesters: Collection[str],
    messages: Collection[str],
    hints: Collection[str] = (),
) -> DialogConfig:
    """Load and cross-check the dialog file; every reference must resolve at start-up."""
    data = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("flows"), dict):
        raise FlowError(f"{path}: expected a top-level 'flows' mapping")
    with _blamed_on(path):
        flows = {name: _flow(name, raw, str(path)) for name, raw in data["flows"].items()}
    flows.update(_more_flows(path.parent / "dialog.d", set(flows)))
    with _blamed_on(path):
        config = _dialog_config(path, data, flows)
        _check(config, path, intents, actions, validators, suggesters, messages, hints)
    return config


def _dialog_config(path: Path, data: dict[str, Any], flows: dict[str, FlowSpec]) -> DialogConfig:
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise FlowError(f"{path}: 'settings' must be a mapping")
    return DialogConfig(
        flows=flows,
        menu=_buttons(data.get("menu"), f"{path}: menu"),
        followup_markers=tuple(str(m) for m in settings.get("followup_markers", [])),
        followup_max_words=int(settings.get("followup_max_words", 1)),
        location_intent=str(settings.get("location_intent", "offices")),
        switch_threshold=float(settings.get("switch_threshold", 0.8)),
        misses_hand_off=settings.get("after_misses", "handoff") == "handoff",
        entity_intents={str(k): str(v) for k, v in (settings.get("entity_intents") or {}).items()},
        max_reasks=int(settings.get("max_reasks", 2)),
        max_misses=int(settings.get("max_misses", 2)),
        confirm_words=frozenset(str(w) for w in settings.get("confirm_words", [])),
        decline_words=frozenset(str(w) for w in settings.get("decline_words", [])),
        confirm_fillers=frozenset(str(w) for w in settings.get("confirm_fillers", [])),
        confirm_max_words=int(settings.get("confirm_max_words", 4)),
        switch_ignores=frozenset(str(i) for i in settings.get("switch_ignores", [])),
        cancel_words=frozenset(str(w) for w in settings.get("cancel_words", [])),
        cancel_fillers=frozenset(str(w) for w in settings.get("cancel_fillers", [])),
    )


def _check(
    config: DialogConfig,
    path: Path,
    intents: Collection[str],
    actions: Collection[str],
    validators: Collection[str],
    suggesters: Collection[str],
    messages: Collection[str],
    hints: Collection[str],
) -> None:
    seen: dict[str, str] = {}
    problems: list[str] = []
    for button in config.menu:
        if button.title not in messages:
            problems.append(f"menu button: unknown message {button.title!r}")
    for flow in config.flows.values():
        # A flow of dialog.d/ is blamed on its own file, not on dialog.yml.
        at = "" if flow.source in ("", str(path)) else f"{flow.source}: "
        for intent in flow.intents:
            if intent not in intents and not flow.payload_only:
                problems.append(f"{at}flow {flow.name!r}: unknown intent {intent!r}")
            if intent in seen:
                problems.append(
                    f"{at}intent {intent!r} is answered by {seen[intent]!r} and {flow.name!r}"
                )
            seen[intent] = flow.name
        if flow.action and flow.action not in actions:
            problems.append(f"{at}flow {flow.name!r}: unknown action {flow.action!r}")
        keys = [*flow.reply, *(b.title for b in flow.buttons)]
        for topic in flow.topics:
            keys += [*topic.reply, *(b.title for b in topic.buttons or ())]
        if flow.topics and not flow.reply:
            problems.append(f"{at}flow {flow.name!r}: topics need a 'reply' for other messages")
        for key in keys:
            if key and key not in messages:
                problems.append(f"{at}flow {flow.name!r}: unknown message {key!r}")
        for slot in flow.slots:
            if slot.ask not in messages:
                problems.append(
                    f"{at}flow {flow.name!r}: slot {slot.name!r} unknown message {slot.ask!r}"
                )
            if slot.validate and slot.validate not in validators:
                problems.append(f"{at}flow {flow.name!r}: unknown validator {slot.validate!r}")
            if slot.suggest and slot.suggest not in suggesters:
                problems.append(f"{at}flow {flow.name!r}: unknown suggestions {slot.suggest!r}")
            if slot.hint and slot.hint not in hints:
                problems.append(f"{at}flow {flow.name!r}: unknown hint {slot.hint!r}")
    if problems:
        raise FlowError(f"{path}: " + "; ".join(problems))
