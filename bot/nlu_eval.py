"""``python -m bot nlu eval``: accuracy, macro-F1, per-intent report and confusion pairs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from bot.intents.classifier import Example
from bot.intents.names import REFINES


class EvalFileError(ValueError):
    pass


def read_tsv(path: Path) -> list[Example]:
    """``intent<TAB>text`` per line; blank lines and ``#`` comments are skipped."""
    out: list[Example] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        intent, sep, text = line.partition("\t")
        if not sep or not intent.strip() or not text.strip():
            raise EvalFileError(f"{path}:{number}: expected 'intent<TAB>text'")
        if number == 1 and intent.strip().lower() in ("label", "intent"):
            continue  # a header row
        out.append(Example(intent.strip(), text.strip()))
    if not out:
        raise EvalFileError(f"{path}: no examples")
    return out


def fold_refined(gold: Sequence[str], predicted: Sequence[str]) -> tuple[list[str], list[str]]:
    """Predictions of an intent the gold file never uses but that refines one it does (see
    ``REFINES``) counted as the broader intent; also which intents were folded."""
    labels = set(gold)
    fold = {new: old for new, old in REFINES.items() if new not in labels and old in labels}
    return [fold.get(p, p) for p in predicted], sorted(set(fold) & set(predicted))


@dataclass(frozen=True, slots=True)
class EvalReport:
    n: int
    accuracy: float
    macro_f1: float
    per_intent: list[tuple[str, float, float, float, int]]
    confusions: list[tuple[str, str, int]]

    def render(self) -> str:
        lines = [
            f"examples:  {self.n}",
            f"accuracy:  {self.accuracy:.4f}",
            f"macro-F1:  {self.macro_f1:.4f}",
            "",
            f"{'intent':<22}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
        ]
        for name, p, r, f, s in self.per_intent:
            lines.append(f"{name:<22}{p:>10.3f}{r:>10.3f}{f:>10.3f}{s:>9}")
        if self.confusions:
            lines += ["", "most frequent confusions (true -> predicted: count):"]
            lines += [f"  {t} -> {p}: {c}" for t, p, c in self.confusions]
        return "\n".join(lines)


def evaluate(gold: Sequence[str], predicted: Sequence[str]) -> EvalReport:
    labels = sorted(set(gold))
    p, r, f, s = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    confusions = Counter((g, q) for g, q in zip(gold, predicted, strict=True) if g != q)
    return EvalReport(
        n=len(gold),
        accuracy=float(accuracy_score(gold, predicted)),
        macro_f1=float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        per_intent=[
            (name, float(p[i]), float(r[i]), float(f[i]), int(s[i]))
            for i, name in enumerate(labels)
        ],
        confusions=[(g, q, c) for (g, q), c in confusions.most_common(20)],
    )
