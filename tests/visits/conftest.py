"""A fixed clock for visits (no test depends on today's date) and helpers to walk the dialog."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.services import Services
from tests.conftest import Say, buttons, identity

# Tuesday 10 March 2026, 12:00 in Chita (UTC+9) = 03:00 UTC; 14:00 in Khabarovsk (UTC+10).
NOW = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
CHITA = "750012345678"  # ул. Бутина, 10, кв. 5
CHITA_2 = "750012345691"
CHITA_3 = "750023456702"
CHITA_4 = "750034567813"
KHABAROVSK = "270000111222"  # ул. Муравьёва-Амурского, 23, кв. 6


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(services: Services) -> Clock:
    clock = Clock(NOW)
    assert services.visits is not None
    services.visits.clock = clock
    return clock


def visit_buttons(answer: dict[str, Any], step: str) -> list[dict[str, str]]:
    return [
        b
        for b in buttons(answer)
        if b["payload"].startswith("/technician_visit") and f'"step":"{step}"' in b["payload"]
    ]


async def as_customer(
    say: Say, sender: str, contract: str, text: str | None = None, **fields: Any
) -> dict[str, Any]:
    return await say(sender, text, identity=identity(contract), **fields)


# The request board's operators (anna, boris, sveta) with their own cookie jars.
from tests.requests.conftest import OperatorClient, operators  # noqa: E402, F401
