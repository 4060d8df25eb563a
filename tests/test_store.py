"""Contract tests for the durable store and the per-conversation locks.

Every ``Store`` backend must pass ``TestStoreContract``. To add one (e.g. Redis), add a single
entry to ``STORE_BACKENDS``: a function that opens a new store on the backing data of the test,
so that opening it twice reaches the same data (that is how the restart test works).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.models import Conversation, ConversationKey, Inbound, RenderedButton
from bot.storage.base import Store, TurnRecord
from bot.storage.memory_locks import MemoryLocks
from bot.storage.redis.client import connect
from bot.storage.redis.store import RedisStore
from bot.storage.sqlite import SqliteStore

OpenStore = Callable[[], Store]

STORE_BACKENDS: dict[str, Callable[[Path], Store]] = {
    "sqlite": lambda tmp_path: SqliteStore(path=tmp_path / "s.sqlite3"),
}

# Only a guard against a hung test run if a lock deadlocks; no assertion depends on timing.
DEADLOCK_GUARD_S = 10

ALICE = ConversationKey("telegram", "100", "100")
BOB = ConversationKey("vk", "200", "201")


@pytest.fixture(params=[*sorted(STORE_BACKENDS), "redis"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    if request.param != "redis":
        factory = STORE_BACKENDS[request.param]
        yield lambda: factory(tmp_path)
        return
    # RedisStore shares a client it does not close (bot/services.py closes it): one client per
    # store opened, closed after the test. Opening twice reaches the same (FLUSHALLed) server.
    url: str = request.getfixturevalue("redis_url")
    clients: list[Redis] = []

    def open_redis() -> Store:
        clients.append(connect(url))
        return RedisStore(clients[-1])

    yield open_redis
    for client in clients:
        await client.aclose()


@pytest.fixture
async def store(open_store: OpenStore) -> AsyncIterator[Store]:
    opened = open_store()
    yield opened
    await opened.close()


def _conversation() -> Conversation:
    return Conversation(
        key=ALICE,
        state="operator",
        locale="en",
        contract_number="750012345678",
        dialog={
            "flow": "coverage",
            "slots": {"city": "chita", "address": "ул. Бутина, 10, кв. 5", "house": "10а"},
            "history": [{"intent": "приветствие", "score": 0.93}, {"intent": "coverage"}],
            "asked": None,
            "retries": 2,
            "flags": [True, False],
        },
    )


class TestStoreContract:
    # --- conversations ---------------------------------------------------------------------------
    async def test_unknown_conversation_is_none(self, store: Store) -> None:
        assert await store.load_conversation(ALICE) is None

    async def test_last_message_overall_and_by_sender(self, store: Store) -> None:
        assert await store.last_message(ALICE.id) is None
        await store.append_message(ALICE.id, "customer", "первое")
        await store.append_message(ALICE.id, "customer", "второе")
        await store.append_message(ALICE.id, "bot", "ответ")
        last = await store.last_message(ALICE.id)
        assert last is not None
        assert (last.sender, last.text) == ("bot", "ответ")
        customer = await store.last_message(ALICE.id, sender="customer")
        assert customer is not None
        assert customer.text == "второе"

    async def test_answered_delivery_ids_are_forgotten_after_a_while(self, store: Store) -> None:
        inbound = Inbound(ALICE, "u1", "text", text="привет")
        first = await store.inbox_put("telegram", "100", inbound)
        assert first is not None
        assert await store.inbox_put("telegram", "100", inbound) is None  # a redelivery
        await store.commit_turn(TurnRecord(Conversation(ALICE), (), inbox_id=first))
        assert await store.inbox_forget(older_than_days=1) == 0  # too recent to forget
        assert await store.inbox_forget(older_than_days=0) == 1
        assert await store.inbox_put("telegram", "100", inbound) is not None  # a reused id

    async def test_conversation_round_trip(self, store: Store) -> None:
        conversation = _conversation()
        await store.save_conversation(conversation)
        assert await store.load_conversation(ALICE) == conversation
        assert await store.load_conversation(BOB) is None

    async def test_saving_again_replaces_the_conversation(self, store: Store) -> None:
        await store.save_conversation(_conversation())
        later = Conversation(key=ALICE, state="bot", locale="ru", contract_number=None, dialog={})
        await store.save_conversation(later)
        assert await store.load_conversation(ALICE) == later

    # --- transcripts -----------------------------------------------------------------------------
    async def test_transcript_keeps_order_buttons_and_meta(self, store: Store) -> None:
        first = await store.append_message(ALICE.id, "customer", "Какой у меня баланс?")
        second = await store.append_message(
            ALICE.id,
            "bot",
            "Баланс: 880,50 ₽",
            buttons=(RenderedButton("История платежей", "/history"), RenderedButton("Меню", "/")),
            meta={"intent": "balance", "score": 0.87, "entities": [{"type": "contract"}]},
        )
        await store.append_message(BOB.id, "customer", "привет")
        third = await store.append_message(ALICE.id, "operator", "Здравствуйте, это Мария.")

        assert first.id < second.id < third.id
        assert isinstance(second.at, datetime)
        assert second.at.tzinfo is not None
        loaded = await store.messages(ALICE.id)
        assert loaded == [first, second, third]
        assert loaded[1].buttons == (
            RenderedButton("История платежей", "/history"),
            RenderedButton("Меню", "/"),
        )
        assert loaded[1].meta == {
            "intent": "balance",
            "score": 0.87,
            "entities": [{"type": "contract"}],
        }
        assert [m.sender for m in loaded] == ["customer", "bot", "operator"]
        assert [m.text for m in await store.messages(BOB.id)] == ["привет"]
        assert await store.messages("telegram:nobody:nobody") == []

    async def test_transcript_after_cursor_and_limit(self, store: Store) -> None:
        sent = [
            await store.append_message(ALICE.id, "customer", f"сообщение {i}") for i in range(7)
        ]
        await store.append_message(BOB.id, "customer", "чужое")

        assert [m.text for m in await store.messages(ALICE.id, limit=3)] == [
            "сообщение 0",
            "сообщение 1",
            "сообщение 2",
        ]
        after = await store.messages(ALICE.id, after=sent[2].id)
        assert [m.id for m in after] == [m.id for m in sent[3:]]
        page = await store.messages(ALICE.id, after=sent[2].id, limit=2)
        assert [m.text for m in page] == ["сообщение 3", "сообщение 4"]
        assert await store.messages(ALICE.id, after=sent[-1].id) == []

        # Paging with the cursor visits every message exactly once, in order.
        seen: list[str] = []
        cursor = 0
        while batch := await store.messages(ALICE.id, after=cursor, limit=3):
            seen.extend(m.text for m in batch)
            cursor = batch[-1].id
        assert seen == [f"сообщение {i}" for i in range(7)]

    # --- dedupe ----------------------------------------------------------------------------------
    async def test_remember_once(self, store: Store) -> None:
        assert await store.remember_once("telegram", "update-42") is True
        assert await store.remember_once("telegram", "update-42") is False
        assert await store.remember_once("telegram", "update-42") is False
        assert await store.remember_once("vk", "update-42") is True
        assert await store.remember_once("telegram", "update-43") is True

    # --- identity links --------------------------------------------------------------------------
    async def test_identity_link_relink_and_revoke(self, store: Store) -> None:
        assert await store.identity(ALICE) is None

        await store.link_identity(ALICE, "750012345678", "signed")
        link = await store.identity(ALICE)
        assert link is not None
        assert (link.key, link.contract_number, link.method) == (ALICE, "750012345678", "signed")
        assert link.linked_at.tzinfo is not None
        assert await store.identity(BOB) is None

        await store.link_identity(ALICE, "380300112233", "operator")
        relinked = await store.identity(ALICE)
        assert relinked is not None
        assert (relinked.contract_number, relinked.method) == ("380300112233", "operator")

        await store.link_identity(BOB, "270000111222", "signed")
        assert await store.revoke_identity(ALICE) is True
        assert await store.identity(ALICE) is None
        assert await store.revoke_identity(ALICE) is False
        bob = await store.identity(BOB)
        assert bob is not None
        assert bob.contract_number == "270000111222"

    # --- customer requests -----------------------------------------------------------------------
    async def test_requests_filtered_by_kind(self, store: Store) -> None:
        connect = await store.add_request(
            "connection",
            ALICE.id,
            {"city": "chita", "address": "ул. Бутина, 10", "name": "Анна", "phone": "+79140000002"},
        )
        callback = await store.add_request(
            "callback", BOB.id, {"phone": "+79020000011", "when": "завтра в 10:00"}
        )
        second = await store.add_request("connection", BOB.id, {"address": "пр-т Ленина, 22"})

        assert len({connect.id, callback.id, second.id}) == 3
        assert connect.created_at.tzinfo is not None
        assert await store.requests("connection") == [connect, second]
        assert await store.requests("callback") == [callback]
        assert await store.requests() == [connect, callback, second]
        assert await store.requests("complaint") == []
        loaded = (await store.requests("connection"))[0]
        assert loaded.data["address"] == "ул. Бутина, 10"
        assert loaded.conversation_id == ALICE.id

    async def test_ping(self, store: Store) -> None:
        assert await store.ping() is True

    # --- restarts --------------------------------------------------------------------------------
    async def test_everything_survives_a_restart(self, open_store: OpenStore) -> None:
        before = open_store()
        try:
            await before.save_conversation(_conversation())
            messages = [
                await before.append_message(ALICE.id, "customer", "Где ближайший офис?"),
                await before.append_message(
                    ALICE.id,
                    "bot",
                    "Офис продаж на Бутина",
                    buttons=(RenderedButton("Показать терминалы оплаты", "/terminals"),),
                    meta={"flow": "offices"},
                ),
            ]
            assert await before.remember_once("telegram", "update-1") is True
            await before.link_identity(ALICE, "750012345678", "signed")
            request = await before.add_request("callback", ALICE.id, {"phone": "+79140000001"})
        finally:
            await before.close()

        after = open_store()
        try:
            assert await after.ping() is True
            assert await after.load_conversation(ALICE) == _conversation()
            assert await after.messages(ALICE.id) == messages
            assert await after.remember_once("telegram", "update-1") is False, (
                "a redelivery after a restart must still be recognised"
            )
            link = await after.identity(ALICE)
            assert link is not None
            assert link.contract_number == "750012345678"
            assert await after.requests() == [request]

            newer = await after.append_message(ALICE.id, "customer", "спасибо")
            assert newer.id > messages[-1].id, "cursors handed out before a restart stay valid"
            assert await after.messages(ALICE.id, after=messages[-1].id) == [newer]
            newer_request = await after.add_request("callback", BOB.id, {})
            assert newer_request.id != request.id
        finally:
            await after.close()


# --- MemoryLocks ---------------------------------------------------------------------------------
async def test_same_conversation_runs_strictly_one_after_the_other() -> None:
    locks = MemoryLocks()
    log: list[str] = []
    first_inside = asyncio.Event()
    release_first = asyncio.Event()
    second_trying = asyncio.Event()

    async def first() -> None:
        async with locks.hold(ALICE.id):
            log.append("first in")
            first_inside.set()
            await release_first.wait()
            log.append("first out")

    async def second() -> None:
        second_trying.set()
        async with locks.hold(ALICE.id):
            log.append("second in")

    async with asyncio.timeout(DEADLOCK_GUARD_S):
        task_a = asyncio.create_task(first())
        await first_inside.wait()
        task_b = asyncio.create_task(second())
        # second() only gives control back once it has to wait: had it got the lock, it would
        # already have logged "second in".
        await second_trying.wait()
        assert log == ["first in"]
        release_first.set()
        await asyncio.gather(task_a, task_b)
    assert log == ["first in", "first out", "second in"]


async def test_a_newcomer_waits_for_a_holder_that_inherited_the_lock() -> None:
    """Forgetting idle locks must not forget a lock that was handed over to a waiter."""
    locks = MemoryLocks()
    log: list[str] = []
    events = {name: asyncio.Event() for name in ("a_in", "a_go", "b_in", "b_go", "c_trying")}

    async def holder(name: str) -> None:
        async with locks.hold(ALICE.id):
            log.append(f"{name} in")
            events[f"{name}_in"].set()
            await events[f"{name}_go"].wait()
            log.append(f"{name} out")

    async def newcomer() -> None:
        events["c_trying"].set()
        async with locks.hold(ALICE.id):
            log.append("c in")

    async with asyncio.timeout(DEADLOCK_GUARD_S):
        task_a = asyncio.create_task(holder("a"))
        await events["a_in"].wait()
        task_b = asyncio.create_task(holder("b"))
        events["a_go"].set()
        await events["b_in"].wait()  # b got the lock from a
        task_c = asyncio.create_task(newcomer())
        await events["c_trying"].wait()
        assert log == ["a in", "a out", "b in"]
        events["b_go"].set()
        await asyncio.gather(task_a, task_b, task_c)
    assert log == ["a in", "a out", "b in", "b out", "c in"]
    assert locks._locks == {}
    assert locks._waiters == {}


async def test_different_conversations_run_concurrently() -> None:
    locks = MemoryLocks()
    first_inside = asyncio.Event()
    second_inside = asyncio.Event()
    log: list[str] = []

    async def first() -> None:
        async with locks.hold(ALICE.id):
            first_inside.set()
            # Holds ALICE's lock until BOB's turn has started: impossible if they excluded
            # each other.
            await second_inside.wait()
            log.append("first saw second inside")

    async def second() -> None:
        await first_inside.wait()
        async with locks.hold(BOB.id):
            second_inside.set()
            log.append("second in")

    async with asyncio.timeout(DEADLOCK_GUARD_S):
        await asyncio.gather(first(), second())
    assert log == ["second in", "first saw second inside"]


async def test_released_locks_are_forgotten() -> None:
    locks = MemoryLocks()
    for i in range(1000):
        async with locks.hold(f"telegram:{i}:{i}"):
            assert f"telegram:{i}:{i}" in locks._locks
    assert locks._locks == {}
    assert locks._waiters == {}


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    locks = MemoryLocks()
    holding = asyncio.Event()
    release = asyncio.Event()
    waiter_trying = asyncio.Event()

    async def holder() -> None:
        async with locks.hold(ALICE.id):
            holding.set()
            await release.wait()

    async def waiter() -> None:
        waiter_trying.set()
        async with locks.hold(ALICE.id):
            pytest.fail("the waiter was cancelled before it could get the lock")

    async with asyncio.timeout(DEADLOCK_GUARD_S):
        task_holder = asyncio.create_task(holder())
        await holding.wait()
        task_waiter = asyncio.create_task(waiter())
        await waiter_trying.wait()
        task_waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task_waiter
        release.set()
        await task_holder
        # The conversation is usable again afterwards.
        async with locks.hold(ALICE.id):
            pass
    assert locks._locks == {}
    assert locks._waiters == {}
