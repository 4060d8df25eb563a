"""Requests older versions kept in the conversation store, on Redis: read once at start by the
request board and taken over. ``{requests}:all`` is a sorted set of JSON records by id."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.storage.base import Records, StoredRequest
from bot.storage.redis.common import RedisPart, from_us, now_us
from bot.storage.redis.keys import global_key

REQUESTS_SEQ = global_key("requests", "seq")
REQUESTS = global_key("requests", "all")


def stored_request(raw: Any) -> StoredRequest:
    r = json.loads(raw)
    return StoredRequest(r["id"], r["kind"], r["conversation"], r["data"], from_us(r["at"]))


class RedisRecords(RedisPart, Records):
    async def add_request(
        self, kind: str, conversation_id: str, data: Mapping[str, Any]
    ) -> StoredRequest:
        at = now_us()

        async def add() -> int:
            req_id = int(await self._redis.incr(REQUESTS_SEQ))
            record = {
                "id": req_id, "kind": kind, "conversation": conversation_id,
                "data": dict(data), "at": at,
            }  # fmt: skip
            await self._redis.zadd(REQUESTS, {json.dumps(record, ensure_ascii=False): req_id})
            return req_id

        req_id = await self._calls.run("add_request", add)
        return StoredRequest(req_id, kind, conversation_id, dict(data), from_us(at))

    async def requests(self, kind: str | None = None) -> list[StoredRequest]:
        rows = await self._calls.run("requests", lambda: self._redis.zrange(REQUESTS, 0, -1))
        found = [stored_request(r) for r in rows]
        return [r for r in found if kind is None or r.kind == kind]
