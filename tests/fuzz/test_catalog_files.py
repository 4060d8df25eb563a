"""The provider's own files, mutated the way a hurried edit or a bad export breaks them: every
catalog file (CSV and rules.yml) and every flows file either loads or is refused with an error
naming the file (and, for the catalog, the line); never another exception, nothing half-read."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from bot.billing.csv_seed import load_seed
from bot.catalog.catalog import load_catalog
from bot.catalog.csv_rows import CatalogError
from bot.catalog.opening_hours import OpeningHours, OpeningHoursError
from bot.config import DEMO_CATALOG, Settings
from bot.dialog.actions.troubleshoot import load_trees
from bot.dialog.flows import FlowError
from bot.handoff.config import load_handoff_config
from bot.i18n import load_translator
from bot.outages.csv_file import load_outages
from bot.services import build_dialog
from bot.visits.schedule import load_visit_slots
from tests.fuzz.conftest import examples
from tests.fuzz.strategies import hostile_text, mutated

CATALOG_FILES = sorted(p.name for p in DEMO_CATALOG.iterdir() if p.suffix in (".csv", ".yml"))
FLOWS = Settings().flows_dir
FLOW_FILES = [
    "dialog.yml", "handoff.yml", "troubleshooting.yml",
    *(f"dialog.d/{p.name}" for p in sorted((FLOWS / "dialog.d").glob("*.yml"))),
]  # fmt: skip

# Short values only: the point is the loaders' handling of what they find, not the speed of the
# address index on long junk (the linear-time tests own that).
_value = st.one_of(
    hostile_text(12),
    st.sampled_from(["", " ", "-1", "1e999", "NaN", "0x10", "１２", "2026-02-30", "25:00",
                     "true", "null", '"', "a;b;;", "Mo-Su 00:00-24:00", "+03:00"]),
)  # fmt: skip


@st.composite
def _mutated_text(draw: st.DrawFn, text: str, *, is_csv: bool) -> bytes:
    """``text`` after one to three edits: a CSV field replaced, a line replaced, deleted,
    doubled or inserted, or raw bytes (maybe not UTF-8) spliced in."""
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        lines = text.split("\n")
        edit = draw(st.sampled_from(["field", "field", "line", "delete", "double", "insert"]))
        at = draw(st.integers(min_value=0, max_value=max(len(lines) - 1, 0)))
        if edit == "field" and is_csv:
            rows = list(csv.reader(io.StringIO(text, newline="")))
            if rows:
                row = rows[draw(st.integers(min_value=0, max_value=len(rows) - 1))]
                if row:
                    row[draw(st.integers(min_value=0, max_value=len(row) - 1))] = draw(_value)
                out = io.StringIO(newline="")
                csv.writer(out, lineterminator="\n").writerows(rows)
                text = out.getvalue()
            continue
        if edit in ("line", "field"):
            lines[at] = draw(_value)
        elif edit == "delete":
            del lines[at]
        elif edit == "double":
            lines.insert(at, lines[at])
        else:
            lines.insert(at, draw(_value))
        text = "\n".join(lines)
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate makes invalid UTF-8
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    return data


@st.composite
def _mutated_yaml(draw: st.DrawFn, text: str) -> bytes:
    """Either a text edit, or the parsed document with fields replaced and dumped again."""
    if draw(st.booleans()):
        return draw(_mutated_text(text, is_csv=False))
    doc = yaml.safe_load(text)
    changed = draw(mutated([doc]))
    try:
        return yaml.safe_dump(changed, allow_unicode=True).encode("utf-8", "surrogatepass")
    except yaml.YAMLError:
        return text.encode()


def _load_everything(directory: Path) -> None:
    catalog = load_catalog(directory)
    load_outages(directory, catalog)
    load_visit_slots(directory, catalog.cities)
    load_seed(directory, catalog)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@settings(max_examples=examples(150))
@given(st.data())
def test_a_broken_catalog_file_is_refused_with_file_and_line(workdir: Path, data: Any) -> None:
    name = data.draw(st.sampled_from(CATALOG_FILES), label="file")
    directory = workdir / "catalog"
    shutil.rmtree(directory, ignore_errors=True)
    shutil.copytree(DEMO_CATALOG, directory)
    original = (DEMO_CATALOG / name).read_text(encoding="utf-8")
    if name.endswith(".yml"):
        broken = data.draw(_mutated_yaml(original), label="content")
    else:
        broken = data.draw(_mutated_text(original, is_csv=True), label="content")
    (directory / name).write_bytes(broken)
    try:
        _load_everything(directory)
    except CatalogError as exc:
        refused: CatalogError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.path.parent == directory, refused
        assert refused.path.name in CATALOG_FILES or refused.line == 0, refused
        assert refused.problem, refused


_FLOW_LOADERS: dict[str, Callable[[Path], Any]] = {}


def _flow_loader(name: str) -> Callable[[Path], Any]:
    translator = load_translator(Settings().locales_dir)
    messages = translator.catalogs["ru"].keys()
    if name == "handoff.yml":
        return lambda flows: load_handoff_config(flows / "handoff.yml")
    if name == "troubleshooting.yml":
        return lambda flows: load_trees(flows / "troubleshooting.yml", messages=messages)
    return lambda flows: build_dialog(flows, translator)


@settings(max_examples=examples(40), phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(st.data())
def test_a_broken_flows_file_is_refused_with_the_file(workdir: Path, data: Any) -> None:
    name = data.draw(st.sampled_from(FLOW_FILES), label="file")
    flows = workdir / "flows"
    shutil.rmtree(flows, ignore_errors=True)
    shutil.copytree(FLOWS, flows, ignore=shutil.ignore_patterns("nlu"))
    broken = data.draw(_mutated_yaml((FLOWS / name).read_text(encoding="utf-8")), label="content")
    (flows / name).write_bytes(broken)
    if name not in _FLOW_LOADERS:
        _FLOW_LOADERS[name] = _flow_loader(name)
    try:
        _FLOW_LOADERS[name](flows)
    except FlowError as exc:
        problem = str(exc)
    else:
        return
    assert str(flows / name) in problem, problem


@settings(max_examples=examples(200))
@given(
    st.one_of(
        hostile_text(40),
        st.lists(
            st.sampled_from(["Mo", "Tu", "Su", "-", ",", ";", " ", "09:00", "24:00", "00:00",
                             "-", "off", "PH", "+", "10:60", "99:99", "[1]", "\"", "Mo-Su"]),
            max_size=12,
        ).map("".join),
    )
)  # fmt: skip
def test_opening_hours_parse_or_refuse(spec: str) -> None:
    with contextlib.suppress(OpeningHoursError):
        OpeningHours.parse(spec)
