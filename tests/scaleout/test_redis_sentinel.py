"""REDIS_SENTINELS + REDIS_SENTINEL_MASTER instead of REDIS_URL: the gateway asks the Sentinels
which server is the master, and asks again after a failover, with no change of settings.

Real servers on 127.0.0.1: a master, its replica, and one ``redis-server --sentinel`` watching
them (Debian's redis-server binary runs in sentinel mode; there is no separate package)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.abuse import AbuseLimits
from bot.channels.telegram import SECRET_HEADER
from bot.config import Settings
from bot.storage.health import StoreHealth, StoreUnavailable
from bot.storage.redis.client import RedisCalls, connect_from_settings, limits_uri
from tests.fakes.telegram import FakeTelegram, text_update
from tests.gateway_process import free_port, start_gateway
from tests.redis_server import RedisSentinel, RedisServer, needs_redis

pytestmark = needs_redis

MASTER_NAME = "isp-bot-test"
FAILOVER_LIMIT = 60.0  # bounds a failover that never happens; measures nothing


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer, RedisSentinel]]:
    master = RedisServer(tmp_path / "master")
    replica = RedisServer(tmp_path / "replica", extra=("--replicaof", "127.0.0.1", "0"))
    sentinel: RedisSentinel | None = None
    try:
        with replica.client() as client:
            client.replicaof("127.0.0.1", master.port)
        sentinel = RedisSentinel(tmp_path / "sentinel", master, MASTER_NAME)
        yield master, replica, sentinel
    finally:
        if sentinel is not None:
            sentinel.stop()
        replica.stop()
        master.stop()


def settings_for(sentinel: RedisSentinel) -> Settings:
    return Settings.from_env(
        {"REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}", "REDIS_SENTINEL_MASTER": MASTER_NAME}
    )


def wait_until(check: object, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + FAILOVER_LIMIT
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


async def test_the_client_finds_the_master_through_the_sentinel_and_follows_a_failover(
    cluster: tuple[RedisServer, RedisServer, RedisSentinel],
) -> None:
    master, replica, sentinel = cluster
    settings = settings_for(sentinel)
    assert settings.uses_redis
    assert settings.redis_url is None
    client = connect_from_settings(settings)
    assert client is not None
    calls = RedisCalls(StoreHealth())
    try:
        await calls.run("write", lambda: client.set("isp-bot:probe", "before"))
        with master.client() as direct:
            assert direct.get("isp-bot:probe") == b"before"  # it went to the master
        with replica.client() as direct:  # the replica has caught up: nothing is lost below
            wait_until(lambda: direct.get("isp-bot:probe") == b"before", "replica never synced")

        # The operator's failover: the replica is promoted, the old master becomes a replica.
        with sentinel.client() as sentinels:
            sentinels.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
            wait_until(
                lambda: sentinels.sentinel_get_master_addr_by_name(MASTER_NAME)[1] == replica.port,
                "the sentinel never promoted the replica",
            )
        with replica.client() as direct:
            wait_until(lambda: direct.info("replication")["role"] == "master", "no promotion")
        # Until the Sentinel has turned the old master into a replica, it still takes writes
        # that the new master never sees (Redis's own failover window, docs/deploy.md): wait
        # for that, then the old connections answer READONLY and the client must move on.
        with master.client() as direct:
            wait_until(lambda: direct.info("replication")["role"] == "slave", "no demotion")

        # The same client, no new settings: a call during the switch may fail as "store
        # unavailable" (the old master answers READONLY, or drops the connection); the next
        # ones reach the new master.
        deadline = time.monotonic() + FAILOVER_LIMIT
        while True:
            try:
                await calls.run("write", lambda: client.set("isp-bot:probe", "after"))
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the client never found the new master"
                await asyncio.sleep(0.2)
        with replica.client() as direct:
            assert direct.get("isp-bot:probe") == b"after"
        assert await calls.run("read", lambda: client.get("isp-bot:probe")) == b"after"
    finally:
        await client.aclose()


async def test_abuse_limits_count_on_the_master_the_sentinel_names(
    cluster: tuple[RedisServer, RedisServer, RedisSentinel],
) -> None:
    master, _, sentinel = cluster
    uri = limits_uri(settings_for(sentinel))
    assert uri == f"redis+sentinel://127.0.0.1:{sentinel.port}/{MASTER_NAME}"
    limits = AbuseLimits(
        storage_uri=uri, secret="test-secret", rates={"id_lookups_per_client": "2/minute"}
    )
    try:
        assert limits.shared
        answers = [await limits.hit("id_lookups_per_client", "client-1") for _ in range(3)]
        assert [a is None for a in answers] == [True, True, False]  # the third is refused
    finally:
        await limits.aclose()
    with master.client() as direct:
        assert direct.keys("isp-bot:limits:*"), "the counters are not on the master"


async def test_a_gateway_on_the_sentinels_answers_and_keeps_its_store_on_the_master(
    cluster: tuple[RedisServer, RedisServer, RedisSentinel], tmp_path: Path
) -> None:
    master, _, sentinel = cluster
    fake = FakeTelegram(token="123456:SENTINEL-token")
    runner = web.AppRunner(fake.app())
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    port = free_port()
    settings = {
        "BOT_VAR_DIR": str(tmp_path / "var"),
        "REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}",
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
        "BOT_IDENTITY_SECRET": "test-identity-secret",
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_WEBHOOK_SECRET": "sentinel-secret",
        "TELEGRAM_API_BASE": f"http://127.0.0.1:{fake_port}",
    }
    process = None
    try:
        async with aiohttp.ClientSession() as http:
            log = tmp_path / "gateway.log"
            process = await start_gateway(http, port=port, settings=settings, log=log, name="gw")
            body = json.dumps(text_update(1, 4242, "Какие тарифы в Братске?"))
            async with http.post(
                f"http://127.0.0.1:{port}/webhooks/telegram",
                data=body,
                headers={SECRET_HEADER: "sentinel-secret"},
            ) as resp:
                assert resp.status == 200
            await fake.wait_for("sendMessage", timeout=30)
        assert "Тарифы в городе Братск" in str(fake.sent(4242)[0]["text"])
        with master.client() as direct:  # the conversation is on the master the Sentinel named
            assert direct.keys("isp-bot:{s*}:*4242*")
        assert not (tmp_path / "var" / "gateway.sqlite3").exists()
    finally:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        await runner.cleanup()
