"""The intent classifier on messages it was not trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.intents.classifier import (
    Example,
    LinearIntentClassifier,
    TrainingDataError,
    calibrate,
    load_examples,
)
from bot.intents.names import INTENTS, OUT_OF_SCOPE
from bot.intents.nlu import Nlu
from bot.intents.normalize import classifier_view
from bot.nlu_eval import evaluate, fold_refined, read_tsv
from tests.conftest import ROOT, SHARED

FLOWS_NLU = ROOT / "flows" / "nlu"
HOLDOUT = ROOT / "benchmarks" / "data" / "nlu_holdout.tsv"
DEV = SHARED / "data" / "intents_dev.tsv"


def _score(nlu: Nlu, path: Path) -> tuple[float, float]:
    # As `python -m bot nlu eval` scores it: a file labelled before smalltalk existed counts
    # it as out_of_scope ("как дела" there is out_of_scope).
    data = read_tsv(path)
    gold = [e.intent for e in data]
    predicted, _ = fold_refined(gold, [nlu.understand(e.text).intent for e in data])
    report = evaluate(gold, predicted)
    return report.accuracy, report.macro_f1


def test_training_data_covers_every_intent_richly() -> None:
    examples = load_examples(FLOWS_NLU)
    counts = {name: sum(e.intent == name for e in examples) for name in INTENTS}
    assert min(counts.values()) >= 40, counts


def test_held_out_messages_are_recognised(demo_nlu: Nlu) -> None:
    # Written independently of flows/nlu by someone who never saw the training examples.
    accuracy, macro_f1 = _score(demo_nlu, HOLDOUT)
    assert accuracy >= 0.93
    assert macro_f1 >= 0.93


@pytest.mark.skipif(not DEV.exists(), reason="the shared dev set is not beside this checkout")
def test_dev_set_targets(demo_nlu: Nlu) -> None:
    accuracy, macro_f1 = _score(demo_nlu, DEV)
    assert accuracy >= 0.95
    assert macro_f1 >= 0.93


def test_no_training_example_is_copied_from_the_dev_set() -> None:
    # Short stock phrases ("привет", "баланс") are bound to coincide; a sentence of five or
    # more words found verbatim would mean the dev set leaked into training.
    if not DEV.exists():
        pytest.skip("the shared dev set is not beside this checkout")
    dev = {e.text.casefold().strip(" ?!.") for e in read_tsv(DEV) if len(e.text.split()) >= 5}
    copied = [e.text for e in load_examples(FLOWS_NLU) if e.text.casefold().strip(" ?!.") in dev]
    assert copied == []


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("balans", "balance"),  # transliteration
        ("skolko deneg na schetu", "balance"),
        ("internet ne rabotaet", "internet_down"),
        ("какие тарифы", "tariffs"),
        ("тарифф", "tariffs"),  # typo
        ("здраствуйте", "greet"),
        ("пазавите аператора", "human_operator"),
        ("where is your office", "offices"),
        (
            "Добрый день. Уже неделю мучаюсь. Подскажите, когда мне следующий раз платить и "
            "сколько? Заранее спасибо",
            "balance",
        ),
    ],
)
def test_registers_typos_and_transliteration(demo_nlu: Nlu, text: str, intent: str) -> None:
    result = demo_nlu.understand(text)
    assert result.intent == intent
    assert demo_nlu.understood(result)


@pytest.mark.parametrize(
    "text", ["ываываыва", "какая завтра погода", "посоветуй фильм на выходные", "🙂"]
)
def test_unrelated_messages_are_not_answered_as_a_topic(demo_nlu: Nlu, text: str) -> None:
    result = demo_nlu.understand(text)
    assert result.intent == OUT_OF_SCOPE or not demo_nlu.understood(result)


@pytest.mark.parametrize(
    "text",
    ["ну как ты там поживаешь", "а ты случайно не робот?", "ты умничка", "пошути как-нибудь"],
)
def test_small_talk_is_small_talk(demo_nlu: Nlu, text: str) -> None:
    result = demo_nlu.understand(text)
    assert result.intent == "smalltalk"
    assert demo_nlu.understood(result)


def test_calibration_is_deterministic_and_sane() -> None:
    examples = load_examples(FLOWS_NLU)
    first, second = calibrate(examples), calibrate(examples)
    assert first == second
    assert 0.1 <= first.threshold <= 0.9
    assert first.cv_accuracy > 0.75


def test_training_is_deterministic() -> None:
    examples = load_examples(FLOWS_NLU)
    texts = [e.text for e in read_tsv(HOLDOUT)][:200]
    a = LinearIntentClassifier(examples).classify_many(texts)
    b = LinearIntentClassifier(examples).classify_many(texts)
    assert a == b


def test_outside_training_set_is_used_as_given() -> None:
    examples = [Example("greet", t) for t in ("привет", "здравствуйте", "добрый день")] + [
        Example("goodbye", t) for t in ("пока", "до свидания", "всего доброго")
    ]
    model = LinearIntentClassifier(examples)
    assert model.labels == ["goodbye", "greet"]
    assert model.classify("привет всем")[0].name == "greet"


def test_unknown_intent_in_training_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yml").write_text("intent: weather\nexamples:\n  - погода\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="weather"):
        load_examples(tmp_path)


def test_single_message_scoring_matches_sklearn() -> None:
    # classify() scores one message by hand for speed; it must agree with sklearn exactly.
    model = LinearIntentClassifier(load_examples(FLOWS_NLU))
    texts = [e.text for e in read_tsv(HOLDOUT)]
    batch = model._model.decision_function(
        model._features.transform([classifier_view(t) for t in texts])
    )
    for text, expected in zip(texts, batch, strict=True):
        assert np.allclose(model.margins(text), expected, atol=1e-9, rtol=0)
