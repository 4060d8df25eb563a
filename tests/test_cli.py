"""The command line as an operator uses it: ``python -m bot chat | nlu predict | nlu eval | run``.

Every test drives the real command in a subprocess from the project root, with ``BOT_VAR_DIR``
in a temporary directory (nothing is written into the repository) and no channel credentials in
the environment. Servers listen on 127.0.0.1 only. Commands whose output several tests read are
run once per module.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.catalog.catalog import Catalog, load_catalog
from bot.config import DEMO_CATALOG
from bot.intents.names import INTENTS

ROOT = Path(__file__).resolve().parent.parent
OTHER_CATALOG = ROOT / "tests" / "fixtures" / "other_catalog"
TIMEOUT = 120.0
STARTUP_LIMIT = 60.0
ENTITY_TYPES = {
    "city", "street", "house", "flat", "contract_number", "phone", "date", "time", "amount",
}  # fmt: skip
# Settings that would make ``run`` talk to the outside world or change what the tests expect.
_FOREIGN_ENV = ("BOT_", "TELEGRAM_", "VK_", "VIBER_", "REDIS")


# --- running the commands ------------------------------------------------------------------------
def _env(var_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_FOREIGN_ENV)}
    env.update(
        BOT_VAR_DIR=str(var_dir), PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1", NO_PROXY="*"
    )
    env.update(extra or {})
    return env


def bot(
    *args: str, var_dir: Path, stdin: str = "", env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot ARGS`` to completion, feeding ``stdin`` (so it is not a TTY)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        env=_env(var_dir, env),
        timeout=TIMEOUT,
        check=False,
    )


def chat(*args: str, lines: Sequence[str], var_dir: Path) -> str:
    """A scripted terminal conversation: one customer message per line; the bot's transcript."""
    done = bot("chat", *args, var_dir=var_dir, stdin="".join(f"{line}\n" for line in lines))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


# --- reading what the bot printed ----------------------------------------------------------------
_BUTTON = re.compile(r"^  \[(\d+)\] (.+)$", re.MULTILINE)
_THOUSANDS = re.compile(r"(?<=\d)[ \u00a0\u202f](?=\d{3}(?!\d))")


def button_titles(transcript: str) -> list[str]:
    return [m.group(2) for m in _BUTTON.finditer(transcript)]


def price(value: Decimal) -> str:
    """A price as the bot writes it: ``650`` or ``880,50``."""
    return str(value).removesuffix(".00").replace(".", ",")


def tariff_line(transcript: str, name: str) -> str | None:
    """The line that offers tariff ``name`` ("• Интернет 500 — 500 Мбит/с, 650 ₽/мес")."""
    for line in transcript.splitlines():
        if line.lstrip("•*- \t").startswith(f"{name} —"):
            return _THOUSANDS.sub("", line)
    return None


def offers(transcript: str, name: str, amount: Decimal) -> bool:
    line = tariff_line(transcript, name)
    return (
        line is not None
        and re.search(rf"(?<![\d,]){re.escape(price(amount))}\s*₽", line) is not None
    )


def city_spellings(catalog: Catalog) -> set[str]:
    """Names and Cyrillic aliases (every grammatical case given) of the catalog's cities."""
    out: set[str] = set()
    for city in catalog.cities.values():
        out.add(city.name)
        out.update(a for a in city.aliases if re.search("[а-яё]", a, re.IGNORECASE))
    return out


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(DEMO_CATALOG)


@pytest.fixture(scope="module")
def other() -> Catalog:
    return load_catalog(OTHER_CATALOG)


# --- chat ----------------------------------------------------------------------------------------
def test_chat_scripted_conversation_answers_in_order(demo: Catalog, tmp_path: Path) -> None:
    out = chat(
        lines=["привет", "какие тарифы в Чите?", "а в Братске?", "1"], var_dir=tmp_path / "var"
    )
    # The greeting comes first, with buttons to press.
    assert out.strip(), "the bot printed nothing"
    assert "Чита" not in out.split("[1]")[0], "the greeting came after the tariff answer"
    assert button_titles(out), "no buttons were printed"

    # The Chita answer comes before anything about Bratsk; the follow-up switches the city.
    assert "Братск" in out
    chita, bratsk = out.split("Братск", 1)
    for tariff in demo.tariffs.values():
        if tariff.city_id != "chita":
            continue
        if tariff.archived:
            assert tariff.name not in chita, f"archived {tariff.name} offered"
        else:
            assert offers(chita, tariff.name, tariff.price_rub), (tariff, chita)
    bratsk_tariffs = demo.active_tariffs("bratsk")
    assert bratsk_tariffs
    for tariff in bratsk_tariffs:
        assert offers(bratsk, tariff.name, tariff.price_rub), (tariff, bratsk)
    chita_only = {t.name for t in demo.active_tariffs("chita")} - {t.name for t in bratsk_tariffs}
    assert chita_only, "the demo catalog should have a tariff only Chita offers"
    for name in chita_only:
        assert tariff_line(bratsk, name) is None, f"Chita's {name} listed for Bratsk"

    # "1" presses the first button under the Bratsk answer ("Проверить адрес"): the bot asks
    # for an address instead of not understanding a bare digit.
    first_button = button_titles(bratsk)[0]
    assert "адрес" in first_button.lower()
    after_press = bratsk.rsplit(f"[1] {first_button}", 1)[1]
    assert "адрес" in after_press
    assert "не понял" not in out


def test_chat_with_other_catalog_knows_only_that_provider(
    demo: Catalog, other: Catalog, tmp_path: Path
) -> None:
    out = chat(
        "--data",
        str(OTHER_CATALOG),
        lines=[
            "какие тарифы в Улан-Удэ?",
            "а в Якутске?",
            "где ваш офис в Улан-Удэ?",
            "офисы в Якутске",
        ],
        var_dir=tmp_path / "var",
    )
    assert {t.city_id for t in other.tariffs.values()} == set(other.cities)
    for tariff in other.tariffs.values():
        if tariff.archived:
            assert tariff.name not in out, f"archived {tariff.name} offered"
        else:
            assert offers(out, tariff.name, tariff.price_rub), (tariff, out)
    for office in other.offices:
        if office.kind == "office":
            assert office.name in out, (office, out)
            assert office.address in out, (office, out)
    for spelling in city_spellings(demo):
        assert spelling not in out, f"demo city {spelling!r} in another provider's answers"
    for tariff in demo.tariffs.values():
        assert tariff_line(out, tariff.name) is None, f"demo tariff {tariff.name} offered"


@dataclass(frozen=True)
class AddressChat:
    transcript: str


@pytest.fixture(scope="module")
def other_address_chat(tmp_path_factory: pytest.TempPathFactory) -> AddressChat:
    """Two address checks in a row with the other provider's catalog."""
    out = chat(
        "--data",
        str(OTHER_CATALOG),
        lines=["/coverage", "Улан-Удэ, Смолина 54", "Якутск, Орджоникидзе 38"],
        var_dir=tmp_path_factory.mktemp("var"),
    )
    return AddressChat(out)


def test_address_check_with_other_catalog(other_address_chat: AddressChat) -> None:
    out = other_address_chat.transcript
    assert "ул. Смолина, 54" in out
    assert "Байкал 200" in out  # the connected house's tariffs are offered


def test_address_prompt_example_comes_from_the_loaded_catalog(
    demo: Catalog, other_address_chat: AddressChat
) -> None:
    out = other_address_chat.transcript
    for spelling in city_spellings(demo):
        assert spelling not in out, f"demo city {spelling!r} in another provider's answers"


def test_second_address_in_a_conversation_is_checked(other_address_chat: AddressChat) -> None:
    assert "ул. Орджоникидзе, 38" in other_address_chat.transcript


def test_chat_contract_shows_balance_only_with_contract(demo: Catalog, tmp_path: Path) -> None:
    contract = "750012345678"
    with (DEMO_CATALOG / "accounts.csv").open(encoding="utf-8", newline="") as f:
        account = next(row for row in csv.DictReader(f) if row["contract_number"] == contract)
    balance, tariff = Decimal(account["balance_rub"]), demo.tariffs[account["tariff_id"]]

    anonymous = chat(lines=["какой у меня баланс?"], var_dir=tmp_path / "var1")
    identified = chat(
        "--contract", contract, lines=["какой у меня баланс?"], var_dir=tmp_path / "v2"
    )

    assert contract in identified
    assert re.search(rf"(?<![\d,]){re.escape(price(balance))}\s*₽", identified), identified
    assert tariff.name in identified  # the next charge is for this tariff

    assert anonymous.strip(), "no answer at all"
    assert contract not in anonymous
    assert "₽" not in anonymous, anonymous


def test_chat_unknown_contract_is_refused(tmp_path: Path) -> None:
    done = bot("chat", "--contract", "999999999999", var_dir=tmp_path / "var", stdin="баланс\n")
    assert done.returncode != 0
    assert "999999999999" in done.stderr


def test_chat_in_english(demo: Catalog, tmp_path: Path) -> None:
    out = chat(
        "--locale",
        "en",
        lines=["hello", "what tariffs do you have in Chita?", "what about Bratsk?"],
        var_dir=tmp_path / "var",
    )
    assert "Mbit/s" in out
    for russian in ("Мбит/с", "/мес", "Здравствуйте", "Тарифы в"):
        assert russian not in out, f"{russian!r} in the English chat"
    for title in button_titles(out):
        assert not re.search("[а-яё]", title, re.IGNORECASE), f"Russian button {title!r}"
    for tariff in demo.active_tariffs("chita") + demo.active_tariffs("bratsk"):
        assert tariff_line(out, tariff.name) is not None, tariff.name
    assert "Братск" in out or "Bratsk" in out


def test_chat_unknown_locale_is_refused(tmp_path: Path) -> None:
    done = bot("chat", "--locale", "de", var_dir=tmp_path / "var", stdin="hallo\n")
    assert done.returncode != 0
    assert "de" in done.stderr


# --- nlu predict ---------------------------------------------------------------------------------
PREDICT_LINES = (
    "тарифы в Братске",
    "мой телефон +7 914 123-45-67",
    "перезвоните на 89141234567",
    "баланс по договору 750012345678",
    "Братск, Мира 39а",
    "хочу заплатить 500 рублей",
    "заплачу 1 500 рублей завтра",
)


@pytest.fixture(scope="module")
def predictions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    lines = [*PREDICT_LINES, ""]  # the blank line is skipped
    done = bot(
        "nlu", "predict", var_dir=tmp_path_factory.mktemp("var"), stdin="\n".join(lines) + "\n"
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in rows] == [line for line in lines if line]
    return {r["text"]: r for r in rows}


def entities(prediction: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in prediction["entities"] if e["type"] == kind]


def test_predict_prints_one_json_object_per_line(predictions: dict[str, dict[str, Any]]) -> None:
    for text, row in predictions.items():
        assert {"text", "intent", "confidence", "entities"} <= set(row), row
        assert row["intent"] in INTENTS, row
        assert isinstance(row["confidence"], float | int), row
        assert 0 <= row["confidence"] <= 1, row
        for entity in row["entities"]:
            assert entity["type"] in ENTITY_TYPES, entity
            assert {"value", "start", "end"} <= set(entity), entity
            assert 0 <= entity["start"] < entity["end"] <= len(text), entity


def test_predict_intents_and_entities(predictions: dict[str, dict[str, Any]]) -> None:
    def surface(text: str, entity: dict[str, Any]) -> str:
        return text[entity["start"] : entity["end"]]

    text = "тарифы в Братске"
    row = predictions[text]
    assert row["intent"] == "tariffs"
    [city] = entities(row, "city")
    assert city["value"] == "Братск"
    assert surface(text, city) == "Братске"

    for text in ("мой телефон +7 914 123-45-67", "перезвоните на 89141234567"):
        [phone] = entities(predictions[text], "phone")
        assert phone["value"] == "+79141234567"
        digits = re.sub(r"\D", "", surface(text, phone))
        assert digits in ("79141234567", "89141234567"), surface(text, phone)
    assert predictions["перезвоните на 89141234567"]["intent"] == "callback_request"

    text = "баланс по договору 750012345678"
    row = predictions[text]
    assert row["intent"] == "balance"
    [contract] = entities(row, "contract_number")
    assert contract["value"] == "750012345678" == surface(text, contract)
    assert not entities(row, "phone")

    text = "Братск, Мира 39а"
    row = predictions[text]
    [city], [street], [house] = (
        entities(row, "city"),
        entities(row, "street"),
        entities(row, "house"),
    )
    assert (surface(text, city), city["value"]) == ("Братск", "Братск")
    assert surface(text, street) == "Мира"
    assert street["value"].lower() == "мира"
    assert surface(text, house) == "39а"
    assert house["value"] == "39а"

    text = "хочу заплатить 500 рублей"
    [amount] = entities(predictions[text], "amount")
    assert Decimal(amount["value"]) == 500
    assert surface(text, amount).startswith("500")


def test_predict_no_street_without_a_house(predictions: dict[str, dict[str, Any]]) -> None:
    row = predictions["заплачу 1 500 рублей завтра"]
    assert [Decimal(a["value"]) for a in entities(row, "amount")] == [1500]
    assert not entities(row, "street"), row


def test_chat_typing_a_button_title_or_number_presses_it(tmp_path: Path) -> None:
    # Messengers without buttons show them as a list: people type the title or its number.
    out = chat(
        lines=["привет", "Проверить адрес", "Братск, Мира 39а", "главное меню", "3"],
        var_dir=tmp_path / "var",
    )
    assert "Напишите адрес" in out  # the title pressed the coverage button
    assert "ул. Мира, 39а" in out
    assert "В каком городе искать" in out or "Офисы в городе" in out  # "3" pressed "Офисы"
    assert "не понял" not in out


@pytest.fixture(scope="module")
def other_predictions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    lines = ["тарифы в Якутске", "офисы в Улан-Удэ", "тарифы в Чите", "тарифы в Улан Удэ"]
    done = bot(
        "nlu",
        "predict",
        "--data",
        str(OTHER_CATALOG),
        var_dir=tmp_path_factory.mktemp("var"),
        stdin="\n".join(lines) + "\n",
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {r["text"]: r for r in rows}


def test_predict_cities_come_from_data(other_predictions: dict[str, dict[str, Any]]) -> None:
    assert [c["value"] for c in entities(other_predictions["тарифы в Якутске"], "city")] == [
        "Якутск"
    ]
    assert [c["value"] for c in entities(other_predictions["офисы в Улан-Удэ"], "city")] == [
        "Улан-Удэ"
    ]
    assert entities(other_predictions["тарифы в Чите"], "city") == []  # not this provider's


def test_predict_multiword_city_alias(other_predictions: dict[str, dict[str, Any]]) -> None:
    assert [c["value"] for c in entities(other_predictions["тарифы в Улан Удэ"], "city")] == [
        "Улан-Удэ"
    ]


# --- nlu eval ------------------------------------------------------------------------------------
def _metric(out: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)}:\s*([0-9.]+)\s*$", out, re.MULTILINE | re.IGNORECASE)
    assert match, f"no {name} line in:\n{out}"
    return float(match.group(1))


def _table(out: str) -> dict[str, list[str]]:
    """intent -> the numbers of its row in the per-intent table."""
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] in INTENTS and re.fullmatch(r"[0-9.]+", parts[1]):
            rows[parts[0]] = parts[1:]
    return rows


def test_nlu_eval_reports_accuracy_f1_and_per_intent(tmp_path: Path) -> None:
    data = tmp_path / "dev.tsv"
    data.write_text(
        "# a comment and a blank line are skipped\n\n"
        "greet\tздравствуйте\n"
        "greet\tдобрый день!\n"
        "balance\tкакой у меня баланс?\n"
        "balance\tсколько денег на счету\n"
        "offices\tгде ближайший офис?\n"
        "offices\tадрес вашего офиса в Чите\n"
        "tariffs\tкакие есть тарифы на интернет\n"
        "balance\tгде ваш офис на Бутина\n",  # mislabelled on purpose
        encoding="utf-8",
    )
    done = bot("nlu", "eval", str(data), var_dir=tmp_path / "var")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    accuracy, macro_f1 = _metric(out, "accuracy"), _metric(out, "macro-F1")
    assert 0.5 <= accuracy < 1  # one line is mislabelled on purpose
    assert 0 < macro_f1 < 1
    table = _table(out)
    assert set(table) >= {"greet", "balance", "offices", "tariffs"}
    assert table["balance"][-1] == "3"  # the support column
    assert table["greet"][-1] == "2"
    assert re.search(r"balance\s*->\s*offices", out), out  # the confusion is named


# A tiny three-intent training set in which greetings are deliberately labelled ``goodbye``.
TRAIN = [
    *(("goodbye", t) for t in ("привет", "здравствуйте", "добрый день", "доброе утро", "хай")),
    *(("balance", t) for t in ("какой у меня баланс", "сколько денег на счету",
                               "остаток на счёте", "проверить баланс", "баланс лицевого счета")),
    *(("offices", t) for t in ("где ваш офис", "адрес офиса", "где находится офис продаж",
                               "часы работы офиса", "ближайший офис")),
]  # fmt: skip


def test_nlu_eval_train_uses_the_given_file(tmp_path: Path) -> None:
    """Greetings are labelled ``goodbye`` in this training file: only a model trained on it
    (not the bundled one, which calls them ``greet``) scores the test file perfectly."""
    train, test = tmp_path / "train.tsv", tmp_path / "test.tsv"
    train.write_text("intent\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in TRAIN), encoding="utf-8")
    test.write_text(
        "goodbye\tпривет всем\ngoodbye\tздравствуйте!\nbalance\tбаланс счета\noffices\tгде офис\n",
        encoding="utf-8",
    )
    done = bot("nlu", "eval", "--train", str(train), str(test), var_dir=tmp_path / "var")
    assert done.returncode == 0, done.stderr
    assert _metric(done.stdout, "accuracy") == 1.0
    assert set(_table(done.stdout)) == {"goodbye", "balance", "offices"}


@pytest.fixture(scope="module")
def malformed_eval(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    tmp = tmp_path_factory.mktemp("eval")
    data = tmp / "broken.tsv"
    data.write_text("greet\tпривет\nbalance какой у меня баланс\n", encoding="utf-8")
    return bot("nlu", "eval", str(data), var_dir=tmp / "var")


def test_nlu_eval_malformed_line_is_an_error(
    malformed_eval: subprocess.CompletedProcess[str],
) -> None:
    assert malformed_eval.returncode != 0
    assert "broken.tsv:2" in malformed_eval.stderr
    assert "intent<TAB>text" in malformed_eval.stderr
    assert "accuracy" not in malformed_eval.stdout


def test_nlu_eval_malformed_line_without_traceback(
    malformed_eval: subprocess.CompletedProcess[str],
) -> None:
    assert "Traceback" not in malformed_eval.stderr
    assert malformed_eval.stderr.startswith("error:")
    assert malformed_eval.returncode == 2


# --- run -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None
) -> Response:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with _NO_PROXY.open(request, timeout=30) as resp:
            return Response(resp.status, resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, err.read())


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(encoding="utf-8")

    def errors(self) -> str:
        return self.stderr.read_text(encoding="utf-8")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        return int(self.process.returncode)


def start_server(tmp: Path, env: Mapping[str, str] | None = None) -> Server:
    """``python -m bot run`` on a free loopback port; returns once /healthz answers."""
    port = free_port()
    out, err = tmp / "run.out", tmp / "run.err"
    with out.open("wb") as out_f, err.open("wb") as err_f:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out_f,
            stderr=err_f,
            cwd=ROOT,
            env=_env(tmp / "var", env),
        )
    server = Server(f"http://127.0.0.1:{port}", process, out, err)
    deadline = time.monotonic() + STARTUP_LIMIT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"run exited with {process.returncode}:\n{server.errors()}")
            try:
                if http("GET", server.base + "/healthz").status == 200:
                    return server
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /healthz within {STARTUP_LIMIT:.0f} s:\n{server.errors()}")
            time.sleep(0.2)
    except BaseException:
        server.stop()
        raise


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The gateway with no configuration at all (no token: loopback may use the REST channel)."""
    running = start_server(tmp_path_factory.mktemp("run"))
    try:
        yield running
    finally:
        running.stop()


def test_run_prints_the_urls_it_serves(server: Server) -> None:
    out = server.output()
    for path in ("/api/v1/messages", "/healthz", "/metrics", "/api/v1/openapi.json"):
        assert server.base + path in out, out


def test_run_health(server: Server) -> None:
    resp = http("GET", server.base + "/healthz")
    assert resp.status == 200
    assert resp.json()["status"] == "ok"


def test_run_rest_channel_answers_tariffs(demo: Catalog, server: Server) -> None:
    resp = http(
        "POST", server.base + "/api/v1/messages", {"sender": "cli-test", "text": "тарифы в Чите"}
    )
    assert resp.status == 200, resp.body
    answer = resp.json()
    assert answer["state"] == "bot"
    assert answer["conversation_id"]
    text = "\n".join(r["text"] for r in answer["replies"])
    for tariff in demo.active_tariffs("chita"):
        assert offers(text, tariff.name, tariff.price_rub), (tariff, text)


def test_run_metrics(server: Server) -> None:
    http("POST", server.base + "/api/v1/messages", {"sender": "cli-metrics", "text": "привет"})
    resp = http("GET", server.base + "/metrics")
    assert resp.status == 200
    metrics = resp.body.decode()
    assert re.search(r"^isp_bot_messages_in_total\{[^}]*\} [1-9]", metrics, re.MULTILINE), metrics


def test_run_openapi(server: Server) -> None:
    resp = http("GET", server.base + "/api/v1/openapi.json")
    assert resp.status == 200
    spec = resp.json()
    assert str(spec["openapi"]).startswith("3.")
    assert "post" in spec["paths"]["/api/v1/messages"]


def test_run_with_rest_token_requires_it(tmp_path: Path) -> None:
    running = start_server(tmp_path, {"BOT_REST_TOKEN": "secret"})
    try:
        url, body = running.base + "/api/v1/messages", {"sender": "cli-auth", "text": "привет"}
        assert http("POST", url, body).status == 401
        assert http("POST", url, body, {"Authorization": "Bearer wrong"}).status == 401
        ok = http("POST", url, body, {"Authorization": "Bearer secret"})
        assert ok.status == 200, ok.body
        assert ok.json()["replies"]
    finally:
        code = running.stop()
    assert code == 0, running.errors()  # Ctrl-C is a clean shutdown
    assert "Traceback" not in running.errors()


def test_run_refuses_a_broken_catalog(tmp_path: Path) -> None:
    data = tmp_path / "catalog"
    shutil.copytree(DEMO_CATALOG, data)
    tariffs = data / "tariffs.csv"
    lines = tariffs.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, start=1) if line.startswith("chita-inet-500,"))
    assert ",650.00," in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(",650.00,", ",abc,")
    tariffs.write_text("".join(lines), encoding="utf-8")

    done = bot(
        "run", "--data", str(data), "--host", "127.0.0.1", "--port", str(free_port()),
        var_dir=tmp_path / "var",
    )  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"tariffs.csv:{number}" in done.stderr
    assert "price_rub" in done.stderr
    assert "abc" in done.stderr
    assert "http://" not in done.stdout  # no URLs: nothing is served


def test_operators_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    var = tmp_path / "var"
    added = bot(
        "operators", "add", "ivan", "--name", "Иван", "--departments", "billing,technical",
        var_dir=var, stdin="a long enough password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "a long enough password" not in added.stdout + added.stderr
    listed = bot("operators", "list", var_dir=var)
    assert "ivan" in listed.stdout
    assert "billing,technical" in listed.stdout
    weak = bot("operators", "add", "petr", var_dir=var, stdin="short\n")
    assert weak.returncode != 0
    assert "petr" not in bot("operators", "list", var_dir=var).stdout
