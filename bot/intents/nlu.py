"""The NLU front door: a button payload short-circuits classification; otherwise the classifier
ranks intents and the extractor finds entities."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.intents.classifier import IntentClassifier, IntentMatch
from bot.intents.entities import Entity, EntityExtractor
from bot.intents.names import OUT_OF_SCOPE

_PAYLOAD = re.compile(r"^/(?P<intent>[a-z_]+)(?P<args>\{.*\})?$", re.S)


class PayloadError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class NluResult:
    text: str
    intent: str
    confidence: float
    entities: tuple[Entity, ...] = ()
    ranking: tuple[IntentMatch, ...] = ()
    payload_args: Mapping[str, Any] = field(default_factory=dict)
    from_payload: bool = False

    def entity(self, kind: str) -> Entity | None:
        return next((e for e in self.entities if e.type == kind), None)

    def as_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "entities": [e.as_json() for e in self.entities],
        }


def parse_payload(payload: str) -> tuple[str, dict[str, Any]]:
    """``/intent`` or ``/intent{"slot": "value"}`` (the Rasa convention) to (name, arguments)."""
    m = _PAYLOAD.match(payload.strip())
    if not m:
        raise PayloadError(f"payload {payload[:60]!r} is not of the form /name or /name{{json}}")
    args: dict[str, Any] = {}
    if m.group("args"):
        try:
            loaded = json.loads(m.group("args"))
        except json.JSONDecodeError as exc:
            raise PayloadError(f"payload arguments are not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise PayloadError("payload arguments must be a JSON object")
        args = {str(k): v for k, v in loaded.items()}
    return m.group("intent"), args


def make_payload(name: str, args: Mapping[str, Any] | None = None) -> str:
    if not args:
        return f"/{name}"
    return f"/{name}{json.dumps(dict(args), ensure_ascii=False, separators=(',', ':'))}"


class Nlu:
    def __init__(
        self,
        *,
        classifier: IntentClassifier,
        extractor: EntityExtractor,
        threshold: float,
    ) -> None:
        self.classifier = classifier
        self.extractor = extractor
        self.threshold = threshold

    def understand(self, text: str, *, locale: str = "ru", today: date | None = None) -> NluResult:
        entities = tuple(self.extractor.extract(text, today=today))
        if not text.strip():
            return NluResult(text, OUT_OF_SCOPE, 1.0, entities)
        ranking = tuple(self.classifier.classify(text, locale))
        best = ranking[0]
        return NluResult(text, best.name, best.confidence, entities, ranking)

    def from_payload(self, payload: str) -> NluResult:
        name, args = parse_payload(payload)
        return NluResult(payload, name, 1.0, payload_args=args, from_payload=True)

    def understood(self, result: NluResult) -> bool:
        return result.intent != OUT_OF_SCOPE and (
            result.from_payload or result.confidence >= self.threshold
        )


def entity_values(entities: Sequence[Entity], kind: str) -> list[Entity]:
    return [e for e in entities if e.type == kind]
