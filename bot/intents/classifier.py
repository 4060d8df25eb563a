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
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from bot.intents.fast_linear import FastLinear
from bot.intents.names import INTENTS, OUT_OF_SCOPE
from bot.intents.normalize import classifier_view

# Sharpness of the margin softmax when no calibration was run (calibrate() fits it).
DEFAULT_TEMPERATURE = 3.0


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


class _Features:
    """Character n-grams catch typos and word forms; lemma n-grams catch word choice."""

    def __init__(self) -> None:
        self._chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1
        )
        self._lemmas = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            sublinear_tf=True,
            token_pattern=r"\S+",  # noqa: S106 - not a password
        )

    def fit_transform(self, views: Sequence[tuple[str, str]]) -> csr_matrix:
        return hstack(
            [
                self._chars.fit_transform([s for s, _ in views]),
                self._lemmas.fit_transform([lem for _, lem in views]),
            ]
        ).tocsr()

    def transform(self, views: Sequence[tuple[str, str]]) -> csr_matrix:
        return hstack(
            [
                self._chars.transform([s for s, _ in views]),
                self._lemmas.transform([lem for _, lem in views]),
            ]
        ).tocsr()


def _svm() -> LinearSVC:
    # A linear SVM trains in a tenth of a second on a few thousand examples (logistic
    # regression took seconds) and is as accurate here; a fixed seed keeps it deterministic.
    return LinearSVC(C=0.5, random_state=0)


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    if scores.ndim == 1:  # two classes: sklearn gives one margin, for the second class
        scores = np.column_stack([-scores, scores])
    scaled = temperature * (scores - scores.max(axis=1, keepdims=True))
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Calibration:
    """How far to trust the model, measured by cross-validation on its own training examples.

    ``temperature`` turns SVM margins into probabilities (fitted by log-loss); ``threshold`` is
    the confidence below which answering does more harm than asking to rephrase (a wrong answer
    costs as much as a right one earns)."""

    temperature: float
    threshold: float
    cv_accuracy: float


_TEMPERATURES = tuple(float(t) for t in np.geomspace(0.5, 20.0, 40))
_THRESHOLDS = tuple(round(float(t), 2) for t in np.arange(0.10, 0.91, 0.01))


def calibrate(examples: Sequence[Example], *, folds: int = 5) -> Calibration:
    """Out-of-fold margins for every example -> temperature and threshold. Deterministic."""
    views = [classifier_view(ex.text) for ex in examples]  # normalised once, used by every fold
    gold = np.array([ex.intent for ex in examples])
    labels = np.array(sorted(set(gold)))
    # The vocabulary and IDF are fitted once on all examples: they use no labels, so sharing
    # them across folds barely flatters the estimate and saves two thirds of the time.
    matrix = _Features().fit_transform(views)
    scores = np.zeros((len(views), len(labels)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train_idx, test_idx in splitter.split(views, gold):
        model = _svm().fit(matrix[train_idx], gold[train_idx])
        fold_scores = model.decision_function(matrix[test_idx])
        columns = np.searchsorted(labels, model.classes_)
        scores[np.ix_(test_idx, columns)] = fold_scores
    truth = np.searchsorted(labels, gold)

    def log_loss(t: float) -> float:
        probs = _softmax(scores, t)
        return float(-np.log(probs[np.arange(len(truth)), truth] + 1e-12).mean())

    temperature = min(_TEMPERATURES, key=log_loss)
    probs = _softmax(scores, temperature)
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    right = predicted == truth
    fallback = labels[predicted] == OUT_OF_SCOPE  # answered by the fallback anyway

    def utility(t: float) -> float:
        answered = (confidence >= t) & ~fallback
        return float(np.sum(answered & right) - np.sum(answered & ~right))

    threshold = max(_THRESHOLDS, key=lambda t: (utility(t), -t))
    return Calibration(temperature, threshold, float(right.mean()))


class LinearIntentClassifier(IntentClassifier):
    """TF-IDF over characters and lemmas, a linear SVM, softmax confidences."""

    def __init__(
        self, examples: Sequence[Example], *, calibration: Calibration | None = None
    ) -> None:
        self._features = _Features()
        self._model = _svm()
        self._model.fit(
            self._features.fit_transform([classifier_view(ex.text) for ex in examples]),
            [ex.intent for ex in examples],
        )
        self._labels: list[str] = [str(c) for c in self._model.classes_]
        self.calibration = calibration or Calibration(DEFAULT_TEMPERATURE, 0.4, float("nan"))
        self._fast = FastLinear(self._features._chars, self._features._lemmas, self._model)

    @classmethod
    def trained(cls, examples: Sequence[Example]) -> LinearIntentClassifier:
        """Train and calibrate (about half a second for two thousand examples)."""
        return cls(examples, calibration=calibrate(examples))

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def _probabilities(self, texts: Sequence[str]) -> np.ndarray:
        scores = self._model.decision_function(
            self._features.transform([classifier_view(t) for t in texts])
        )
        return _softmax(scores, self.calibration.temperature)

    def margins(self, text: str) -> np.ndarray:
        """SVM margins of one message, computed without sklearn's per-call overhead."""
        return self._fast.margins(*classifier_view(text))

    def classify(self, text: str, locale: str = "ru") -> list[IntentMatch]:
        probs = _softmax(self.margins(text)[np.newaxis, :], self.calibration.temperature)[0]
        order = np.argsort(-probs)
        return [IntentMatch(self._labels[i], float(probs[i])) for i in order[:5]]

    def classify_many(self, texts: Sequence[str]) -> list[IntentMatch]:
        probs = self._probabilities(texts)
        best = probs.argmax(axis=1)
        return [IntentMatch(self._labels[i], float(p[i])) for i, p in zip(best, probs, strict=True)]
