"""The record stores on Redis (requests, visits, account operations, outages) report a Redis
outage like the conversation store does: ``StoreUnavailable`` (the ingress retries the turn
in place instead of giving the message up; HTTP doors answer 503) and the shared health
failing (``/healthz``, ``store_failing``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.catalog.catalog import load_catalog
from bot.config import DEMO_CATALOG
from bot.outages.redis_store import RedisOutageStore
from bot.requests.redis_board import RedisRequestBoard
from bot.selfservice.redis_oplog import RedisOperationLog
from bot.storage.health import StoreHealth, StoreUnavailable
from bot.storage.redis.client import connect
from bot.visits.redis_store import RedisVisitStore
from tests.redis_server import RedisServer, needs_redis

pytestmark = needs_redis

Call = Callable[[Any], Awaitable[object]]
CALLS: dict[str, tuple[Callable[..., Any], Call]] = {
    "requests": (lambda r, h: RedisRequestBoard(r, health=h), lambda s: s.get(1)),
    "visits": (lambda r, h: RedisVisitStore(r, health=h), lambda s: s.get(1)),
    "oplog": (lambda r, h: RedisOperationLog(r, health=h), lambda s: s.get("op-1")),
    "outages": (
        lambda r, h: RedisOutageStore(r, catalog=load_catalog(DEMO_CATALOG), health=h),
        lambda s: s.get("outage-1"),
    ),
}


@pytest.fixture
async def client(own_redis: RedisServer) -> AsyncIterator[Any]:
    redis = connect(own_redis.url)
    yield redis
    await redis.aclose()


@pytest.mark.parametrize("area", sorted(CALLS))
async def test_a_redis_outage_is_store_unavailable_and_shows_in_health(
    area: str, own_redis: RedisServer, client: Any
) -> None:
    build, call = CALLS[area]
    health = StoreHealth()
    store = build(client, health)
    await call(store)  # Redis is up: an unknown id, no error
    assert not health.failing

    own_redis.stop()
    with pytest.raises(StoreUnavailable) as raised:
        await call(store)
    assert raised.value.op.startswith(f"{area}.")
    assert health.failing
