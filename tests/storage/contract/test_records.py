"""Contract of ``Records``: requests older versions kept in the conversation store, read once
at start by the request board. Runs against every backend (``conftest.py``)."""

from __future__ import annotations

from bot.storage.base import Store
from tests.storage.contract.support import ALICE, BOB


async def test_no_requests_in_an_empty_store(store: Store) -> None:
    assert await store.requests() == []
    assert await store.requests("connection") == []


async def test_requests_come_back_in_the_order_added_all_or_by_kind(store: Store) -> None:
    connect = await store.add_request(
        "connection",
        ALICE.id,
        {"city": "chita", "address": "ул. Бутина, 10", "name": "Анна", "floor": 3, "pets": None},
    )
    callback = await store.add_request("callback", BOB.id, {"when": "завтра в 10:00"})
    second = await store.add_request("connection", BOB.id, {})

    assert len({connect.id, callback.id, second.id}) == 3
    assert (connect.kind, connect.conversation_id) == ("connection", ALICE.id)
    assert connect.created_at.tzinfo is not None
    assert await store.requests() == [connect, callback, second]
    assert await store.requests("connection") == [connect, second]
    assert await store.requests("callback") == [callback]
    assert await store.requests("complaint") == []
    [loaded, _] = await store.requests("connection")
    assert dict(loaded.data) == {
        "city": "chita",
        "address": "ул. Бутина, 10",
        "name": "Анна",
        "floor": 3,
        "pets": None,
    }
