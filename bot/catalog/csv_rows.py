"""Strict CSV reading shared by the catalog and the embedded billing: every problem is reported
with file, line and column, and nothing half-read is returned."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class CatalogError(ValueError):
    """A catalog file does not follow DATA_FORMAT.md."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Row:
    path: Path
    line: int
    values: dict[str, str]

    def fail(self, problem: str) -> CatalogError:
        return CatalogError(self.path, self.line, problem)

    def text(self, column: str, *, required: bool = True) -> str:
        value = self.values[column].strip()
        if required and not value:
            raise self.fail(f"column {column!r} is empty")
        return value

    def parsed(self, column: str, parse: Callable[[str], T], what: str) -> T:
        raw = self.text(column)
        try:
            return parse(raw)
        except (ValueError, InvalidOperation) as exc:
            detail = f" ({exc})" if str(exc) and not isinstance(exc, InvalidOperation) else ""
            raise self.fail(f"column {column!r}: {raw!r} is not {what}{detail}") from None

    def optional_int(self, column: str) -> int | None:
        if not self.text(column, required=False):
            return None
        value = self.parsed(column, _ascii_int, "a whole number")
        if value < 0:
            raise self.fail(f"column {column!r}: must not be negative")
        return value

    def decimal(self, column: str) -> Decimal:
        value = self.parsed(column, _decimal, "a number with a decimal point")
        return value

    def choice(self, column: str, allowed: Sequence[str]) -> str:
        value = self.text(column)
        if value not in allowed:
            raise self.fail(f"column {column!r}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def boolean(self, column: str) -> bool:
        value = self.text(column).lower()
        if value not in ("true", "false"):
            raise self.fail(f"column {column!r}: {value!r} is not true or false")
        return value == "true"

    def day(self, column: str) -> date:
        return self.parsed(column, date.fromisoformat, "a date YYYY-MM-DD")

    def moment(self, column: str) -> datetime:
        value = self.parsed(column, datetime.fromisoformat, "an ISO 8601 date-time")
        if value.tzinfo is None:
            raise self.fail(f"column {column!r}: {self.values[column]!r} has no UTC offset")
        return value

    def listing(self, column: str) -> tuple[str, ...]:
        return tuple(
            part.strip() for part in self.text(column, required=False).split(";") if part.strip()
        )


def _ascii_int(raw: str) -> int:
    # int() also accepts other scripts' digits ("１２"); a catalog is written in ASCII.
    if not raw.lstrip("+-").isascii() or not raw.lstrip("+-").isdigit():
        raise ValueError("use the digits 0-9")
    return int(raw)


def _decimal(raw: str) -> Decimal:
    if "," in raw:
        raise ValueError("use a decimal point, not a comma")
    if not raw.isascii():
        raise ValueError("use the digits 0-9")
    value = Decimal(raw)
    if not value.is_finite():
        raise ValueError("not a finite number")
    return value


def read_rows(path: Path, columns: Sequence[str], optional: Sequence[str] = ()) -> Iterator[Row]:
    """Yield rows of ``path`` after checking that its header is exactly ``columns`` (any order),
    plus any of the ``optional`` columns; an optional column left out reads as empty."""
    if not path.is_file():
        raise CatalogError(path, 0, "file is missing")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        bad_line = data[: exc.start + bom].count(b"\n") + 1
        raise CatalogError(
            path,
            bad_line,
            f"not UTF-8 (byte 0x{data[exc.start + bom]:02x}); save the file as UTF-8",
        ) from None
    # StringIO(newline="") splits records only at CR/LF, as csv expects; str.splitlines() would
    # also split inside a field at U+2028, U+0085 or a form feed.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CatalogError(path, 1, "file is empty; expected a header row") from None
    except csv.Error as exc:
        raise CatalogError(path, 1, f"malformed CSV: {exc}") from None
    missing = [c for c in columns if c not in header]
    unknown = [c for c in header if c not in columns and c not in optional]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        if repeated:
            parts.append(f"repeated column(s) {', '.join(repeated)}")
        raise CatalogError(path, 1, "bad header: " + "; ".join(parts))
    while True:
        # A record may span lines (a quoted field with a newline): report where it starts.
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CatalogError(path, line, f"malformed CSV: {exc}") from None
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise CatalogError(path, line, f"expected {len(header)} fields, found {len(fields)}")
        values = dict.fromkeys(optional, "")
        values.update(zip(header, fields, strict=True))
        yield Row(path, line, values)
