"""Per-message latency of intent classification + entity extraction, against a baseline.

    .venv/bin/python benchmarks/nlu_latency.py [--rounds 3] [--messages FILE]

The product pipeline (normalisation, transliteration, pymorphy3 lemmas, TF-IDF over characters
and lemmas, linear SVM with calibrated softmax, entity extraction with the address parser) is
timed message by message next to a baseline measured in the same run on the same messages: a
plain character TF-IDF + linear SVM on lower-cased text with no entity extraction. Reported:
p50 / p90 / p99 / max per message (first pass with cold caches, then warm passes), training and
calibration time, and the process's resident memory. This is a benchmark, not a test: it prints
numbers, it does not pass or fail.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.catalog.catalog import load_catalog  # noqa: E402
from bot.config import DEMO_CATALOG  # noqa: E402
from bot.intents.classifier import load_examples  # noqa: E402
from bot.services import build_nlu  # noqa: E402


def _rss_mib() -> tuple[float, float]:
    """Current and peak resident set size of this process, MiB (Linux /proc)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _messages(path: Path) -> list[str]:
    rows = [line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r[1] for r in rows if len(r) == 2 and r[1].strip()]


def _time_each(fn: Callable[[str], object], messages: Sequence[str]) -> list[float]:
    out = []
    for text in messages:
        start = time.perf_counter_ns()
        fn(text)
        out.append((time.perf_counter_ns() - start) / 1e6)
    return out


def _stats(samples: Sequence[float]) -> str:
    q = np.percentile(samples, [50, 90, 99])
    return f"{q[0]:7.3f} {q[1]:7.3f} {q[2]:7.3f} {max(samples):8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="warm passes after the cold one")
    parser.add_argument(
        "--messages",
        type=Path,
        default=ROOT / "benchmarks" / "data" / "nlu_holdout.tsv",
        help="intent<TAB>text file whose texts are timed",
    )
    args = parser.parse_args()
    messages = _messages(args.messages)
    rss_start, _ = _rss_mib()

    started = time.perf_counter()
    catalog = load_catalog(DEMO_CATALOG)
    nlu = build_nlu(catalog, flows_dir=ROOT / "flows")
    train_seconds = time.perf_counter() - started
    rss_model, _ = _rss_mib()

    examples = load_examples(ROOT / "flows" / "nlu")
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    baseline = LinearSVC(C=0.5, random_state=0).fit(
        vectorizer.fit_transform([e.text.lower() for e in examples]), [e.intent for e in examples]
    )

    def product(text: str) -> object:
        return nlu.understand(text)

    def plain(text: str) -> object:
        return baseline.predict(vectorizer.transform([text.lower()]))

    cold = _time_each(product, messages)
    warm: list[float] = []
    base: list[float] = []
    for _ in range(args.rounds):
        warm += _time_each(product, messages)
        base += _time_each(plain, messages)
    rss_end, rss_peak = _rss_mib()

    print(f"messages: {len(messages)} from {args.messages.name}, warm rounds: {args.rounds}")
    print(f"training + calibration at start-up: {train_seconds:.2f} s")
    print(f"resident memory: {rss_start:.0f} MiB at start, {rss_model:.0f} MiB with the model, "
          f"{rss_end:.0f} MiB after the run (peak {rss_peak:.0f} MiB)")  # fmt: skip
    print()
    print(f"{'per message, ms':<44}{'p50':>7} {'p90':>7} {'p99':>7} {'max':>8}")
    print(f"{'product: classify + entities (cold caches)':<44}{_stats(cold)}")
    print(f"{'product: classify + entities (warm)':<44}{_stats(warm)}")
    print(f"{'baseline: char TF-IDF + SVM, no entities':<44}{_stats(base)}")
    ratio = statistics.median(warm) / statistics.median(base)
    print(f"\nproduct / baseline median: {ratio:.2f}x")


if __name__ == "__main__":
    main()
