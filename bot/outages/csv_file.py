"""``outages.csv`` of the catalog (optional): read as strictly as the other catalog files, a
broken row stops start-up with file, line and problem."""

from __future__ import annotations

from pathlib import Path

from bot.catalog.catalog import Catalog
from bot.catalog.csv_rows import read_rows
from bot.outages.fields import FIELDS, OutageInvalid, parse_outage
from bot.outages.model import Outage

FILE_NAME = "outages.csv"


def load_outages(directory: Path, catalog: Catalog) -> list[Outage]:
    """The outages of a catalog directory; none when it has no ``outages.csv``."""
    path = directory / FILE_NAME
    if not path.exists():
        return []
    out: list[Outage] = []
    seen: set[str] = set()
    for row in read_rows(path, FIELDS):
        try:
            outage = parse_outage(row.values, catalog)
        except OutageInvalid as exc:
            raise row.fail(f"column {exc.field!r}: {exc.problem}") from None
        if outage.outage_id in seen:
            raise row.fail(f"duplicate outage_id {outage.outage_id!r}")
        seen.add(outage.outage_id)
        out.append(outage)
    return out
