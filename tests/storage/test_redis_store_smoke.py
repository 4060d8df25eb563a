"""RedisStore beyond the shared contract (tests/storage/contract): what only a shared, networked
store can get wrong. A real redis-server (tests/redis_server.py), several clients where several
gateway processes would hold their own connections."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.ingress import KEEP_DELIVERY_IDS_DAYS
from bot.models import Conversation, ConversationKey, Inbound
from bot.storage.base import PRIORITY_BULK, PRIORITY_REPLY, TranscriptLine, TurnRecord
from bot.storage.health import StoreUnavailable
from bot.storage.redis.client import connect
from bot.storage.redis.conversations import INBOX_DONE_TTL_SECONDS
from bot.storage.redis.delivery import REMEMBER_SECONDS
from bot.storage.redis.keys import shard_of
from bot.storage.redis.store import RedisStore
from tests.redis_server import RedisServer

ALICE = ConversationKey("telegram", "100", "100")
PROCESSES = 20  # clients racing as that many gateway processes would


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[Redis]]:
    opened = [connect(redis_url) for _ in range(PROCESSES)]
    yield opened
    for client in opened:
        await client.aclose()


def keys_in_distinct_shards(n: int) -> list[ConversationKey]:
    found: dict[int, ConversationKey] = {}
    i = 0
    while len(found) < n:
        key = ConversationKey("vk", str(1000 + i), str(1000 + i))
        found.setdefault(shard_of(key.id), key)
        i += 1
    return list(found.values())


def turn(key: ConversationKey, *texts: str, inbox_id: int | None = None) -> TurnRecord:
    lines = tuple(TranscriptLine("bot", t) for t in texts)
    return TurnRecord(Conversation(key, state="bot"), lines, deliver=lines, inbox_id=inbox_id)


async def test_a_turn_refused_by_redis_leaves_nothing_and_the_retry_leaves_everything(
    own_redis: RedisServer,
) -> None:
    client = connect(own_redis.url)
    store = RedisStore(client)
    try:
        inbox_id = await store.inbox_put("telegram", "u1", Inbound(ALICE, "m1", "text", text="да"))
        assert inbox_id is not None
        # Redis out of memory (maxmemory, noeviction) refuses the whole script.
        await client.config_set("maxmemory", 1)
        with pytest.raises(StoreUnavailable):
            await store.commit_turn(turn(ALICE, "Баланс: 880 ₽", inbox_id=inbox_id))
        assert store.health.failing
        await client.config_set("maxmemory", 0)

        assert await store.load_conversation(ALICE) is None
        assert await store.messages(ALICE.id) == []
        assert await store.outbox_pending() == []
        assert [p.id for p in await store.inbox_pending()] == [inbox_id]  # answered again later

        [entry] = await store.commit_turn(turn(ALICE, "Баланс: 880 ₽", inbox_id=inbox_id))
        assert await store.load_conversation(ALICE) is not None
        assert await store.messages(ALICE.id) == [entry]
        assert [o.text for o in await store.outbox_pending()] == ["Баланс: 880 ₽"]
        assert await store.inbox_pending() == []
        assert not store.health.failing
    finally:
        await client.aclose()


async def test_of_twenty_operators_claiming_at_once_exactly_one_gets_the_chat(
    clients: list[Redis],
) -> None:
    stores = [RedisStore(c) for c in clients]
    await stores[0].queue_put(ALICE.id, "telegram", "support", "оператора!")

    claims = await asyncio.gather(
        *(s.queue_assign(ALICE.id, f"op{i}", only_if_unassigned=True) for i, s in enumerate(stores))
    )

    assert claims.count(True) == 1
    entry = await stores[0].queue_get(ALICE.id)
    assert entry is not None
    assert entry.operator == f"op{claims.index(True)}"


async def test_the_same_delivery_from_twenty_processes_is_recorded_once(
    clients: list[Redis],
) -> None:
    inbound = Inbound(ALICE, "m1", "text", text="привет")
    ids = await asyncio.gather(*(RedisStore(c).inbox_put("vk", "ev-1", inbound) for c in clients))
    assert len([i for i in ids if i is not None]) == 1
    assert len(await RedisStore(clients[0]).inbox_pending()) == 1


async def test_outbox_replies_before_bulk_across_shards_and_each_chat_in_order(
    redis_url: str,
) -> None:
    client = connect(redis_url)
    store = RedisStore(client)
    try:
        chats = keys_in_distinct_shards(4)
        for n, key in enumerate(chats):
            await store.commit_turn(
                TurnRecord(Conversation(key), (), deliver=(TranscriptLine("bot", f"bulk {n}"),),
                           priority=PRIORITY_BULK)
            )  # fmt: skip
            await store.commit_turn(turn(key, f"reply {n}a", f"reply {n}b"))
        pending = await store.outbox_pending()
        assert [i.priority for i in pending] == [PRIORITY_REPLY] * 8 + [PRIORITY_BULK] * 4
        for lane in (pending[:8], pending[8:]):
            assert [i.id for i in lane] == sorted(i.id for i in lane)
        for n, key in enumerate(chats):
            mine = [i.text for i in pending if i.conversation_id == key.id]
            assert mine == [f"reply {n}a", f"reply {n}b", f"bulk {n}"]
        assert await store.outbox_pending(limit=5) == pending[:5]
        assert await store.outbox_pending(limit=10) == pending[:10]
    finally:
        await client.aclose()


async def test_answered_inbounds_expire_with_the_ingress_window(redis_url: str) -> None:
    assert INBOX_DONE_TTL_SECONDS == REMEMBER_SECONDS == KEEP_DELIVERY_IDS_DAYS * 86_400
    client = connect(redis_url)
    store = RedisStore(client)
    try:
        inbox_id = await store.inbox_put("telegram", "u1", Inbound(ALICE, "m1", "text", text="да"))
        assert inbox_id is not None
        keys = [k async for k in client.scan_iter(match="isp-bot:*:seen:*")]
        assert len(keys) == 1
        assert await client.ttl(keys[0]) == -1  # pending: never forgotten
        await store.commit_turn(turn(ALICE, "ok", inbox_id=inbox_id))
        assert 0 < await client.ttl(keys[0]) <= INBOX_DONE_TTL_SECONDS
        assert await store.inbox_put("telegram", "u1", Inbound(ALICE, "m1", "text")) is None
    finally:
        await client.aclose()


async def test_redis_down_raises_store_unavailable_and_health_fails(
    own_redis: RedisServer,
) -> None:
    client = connect(own_redis.url)
    store = RedisStore(client)
    try:
        assert await store.ping() is True
        await store.close()  # the shared client stays open for the others
        assert await client.ping()
        own_redis.stop()
        with pytest.raises(StoreUnavailable) as raised:
            await store.load_conversation(ALICE)
        assert raised.value.op == "load_conversation"
        with pytest.raises(StoreUnavailable):
            await store.outbox_pending()
        assert store.health.failing
    finally:
        await client.aclose()
