"""Intent classification: an interface and the embedded pipeline (TF-IDF over characters and
lemmas + a linear model), trained at start-up from ``flows/nlu`` in about a second."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from bot.intents.names import INTENTS
from bot.intents.normalize import classifier_view

# Sharpness of the margin softmax. At 3, correct dev-set predictions sit above ~0.6 and wrong
# ones below ~0.4, which is where the fallback threshold (BOT_NLU_THRESHOLD) is set.
TEMPERATURE = 3.0


@dataclass(frozen=True, slots=True)
class IntentMatch:
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Example:
    intent: str
    text: str


# libyaml's loader when built in: ten times faster on start-up than the pure-Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TrainingDataError(ValueError):
    pass


class IntentClassifier(abc.ABC):
    """Ranks intents for one message; the best first, confidences in 0..1."""

    @abc.abstractmethod
    def classify(self, text: str, locale: str = "ru") -> list[IntentMatch]: ...


def load_examples(folder: Path, *, known: Sequence[str] = INTENTS) -> list[Example]:
    """Read ``flows/nlu/*.yml`` (``intent:`` + ``examples:``)."""
    examples: list[Example] = []
    for path in sorted(folder.glob("*.yml")):
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - safe loader
        except yaml.YAMLError as exc:
            raise TrainingDataError(f"{path}: {exc}") from exc
        if not isinstance(data, dict) or "intent" not in data or "examples" not in data:
            raise TrainingDataError(f"{path}: expected keys 'intent' and 'examples'")
        intent = data["intent"]
        if intent not in known:
            raise TrainingDataError(f"{path}: unknown intent {intent!r} (see INTENTS.md)")
        for text in data["examples"]:
            if not isinstance(text, str) or not text.strip():
                raise TrainingDataError(f"{path}: every example must be non-empty text")
            examples.append(Example(intent, text.strip()))
    if not examples:
        raise TrainingDataError(f"{folder}: no training examples found")
    return examples


def examples_fingerprint(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(f"{ex.intent}\t{ex.text}\n".encode())
    return digest.hexdigest()[:16]


class LinearIntentClassifier(IntentClassifier):
    """Character n-grams catch typos and word forms; lemma n-grams catch word choice."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self._chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1
        )
        self._lemmas = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            sublinear_tf=True,
            token_pattern=r"\S+",  # noqa: S106 - not a password
        )
        views = [classifier_view(ex.text) for ex in examples]
        features = hstack(
            [
                self._chars.fit_transform([s for s, _ in views]),
                self._lemmas.fit_transform([lem for _, lem in views]),
            ]
        ).tocsr()
        # A linear SVM trains in a tenth of a second on a few thousand examples (logistic
        # regression took seconds) and is as accurate here; liblinear is deterministic.
        self._model = LinearSVC(C=0.5)
        self._model.fit(features, [ex.intent for ex in examples])
        self._labels: list[str] = [str(c) for c in self._model.classes_]

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def _features(self, texts: Sequence[str]) -> object:
        views = [classifier_view(t) for t in texts]
        return hstack(
            [
                self._chars.transform([s for s, _ in views]),
                self._lemmas.transform([lem for _, lem in views]),
            ]
        ).tocsr()

    def _probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Softmax over SVM margins: a confidence that is comparable across messages."""
        scores = self._model.decision_function(self._features(texts))
        scaled = TEMPERATURE * (scores - scores.max(axis=1, keepdims=True))
        exp = np.exp(scaled)
        return exp / exp.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]

    def classify(self, text: str, locale: str = "ru") -> list[IntentMatch]:
        probs = self._probabilities([text])[0]
        order = np.argsort(-probs)
        return [IntentMatch(self._labels[i], float(probs[i])) for i in order[:5]]

    def classify_many(self, texts: Sequence[str]) -> list[IntentMatch]:
        probs = self._probabilities(texts)
        best = probs.argmax(axis=1)
        return [IntentMatch(self._labels[i], float(p[i])) for i, p in zip(best, probs, strict=True)]
