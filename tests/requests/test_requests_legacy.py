"""Requests stored by earlier versions in the conversation store's ``requests`` table are taken
over by the board at start-up, once, under the numbers the customers were told."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.intents.nlu import Nlu
from bot.requests.model import NewRequest
from bot.services import build_services
from bot.storage.sqlite import SqliteStore


async def test_old_rows_are_taken_over_once(settings: Settings, demo_nlu: Nlu) -> None:
    if settings.redis_url:
        pytest.skip("old-style requests were only ever kept in the SQLite store")
    old = SqliteStore(path=settings.sqlite_path)
    lead = await old.add_request(
        "connection",
        "telegram:1:1",
        {"city_id": "bratsk", "street": "ул. Обручева", "house": "21", "status": "planned",
         "name": "Анна", "phone": "+79145551234"},
    )  # fmt: skip
    call = await old.add_request(
        "callback", "vk:2:2", {"phone": "+79140000001", "when": "вечером", "contract": None}
    )
    await old.close()

    services = build_services(settings, nlu=demo_nlu)
    await services.start()
    try:
        board = services.requests.board
        records = {r.id: r for r in await board.find()}
        assert set(records) == {lead.id, call.id}  # the numbers the customers were told
        taken = records[lead.id]
        assert (taken.kind, taken.status, taken.name, taken.phone) == (
            "connection", "new", "Анна", "+79145551234",
        )  # fmt: skip
        assert (taken.city_id, taken.address) == ("bratsk", "ул. Обручева, 21")
        assert taken.details == {"house_status": "planned"}
        assert taken.created_at == lead.created_at
        assert taken.conversation_id == "telegram:1:1"
        assert [h.action for h in taken.history] == ["imported"]
        assert records[call.id].details == {"when": "вечером"}
        assert records[call.id].contract is None
        # New requests come after them.
        fresh = await services.requests.create(NewRequest("callback", "vk:3:3", phone="+7914"))
        assert fresh.id > max(records)
    finally:
        await services.close()

    again = build_services(settings, nlu=demo_nlu)  # the next start takes nothing twice
    await again.start()
    try:
        assert len(await again.requests.board.find()) == 3
    finally:
        await again.close()
