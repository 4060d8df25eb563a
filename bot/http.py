"""HTTP helpers shared by the routes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from aiohttp import web

# Cyrillic as UTF-8, not \\u escapes: readable with curl and half the size.
_dumps = partial(json.dumps, ensure_ascii=False)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


# A cell starting with one of these is a formula to Excel and LibreOffice: written as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> str:
    """``value`` as CSV cell text that a spreadsheet shows and never evaluates."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_download(
    header: Sequence[str], rows: Iterable[Iterable[str]], *, name: str
) -> web.Response:
    """An export for spreadsheets: ``;``-separated (Excel in a Russian locale splits on it; the
    csv module quotes cells that contain it), UTF-8 with a BOM (Excel reads Cyrillic then); the
    file is ``<name>-<UTC stamp>.csv`` and never cached (it holds personal data). Cells the
    customer or an operator typed go through ``spreadsheet_cell`` first."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{name}-{stamp}.csv"',
        },
    )
