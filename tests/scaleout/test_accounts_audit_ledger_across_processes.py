"""Operators, the audit log and the embedded ledger shared by two real gateway processes on one
Redis, each with a var dir of its own (two machines: nothing shared but Redis).

- An operator added with ``python -m bot operators add`` (REDIS_URL) signs in on A; the
  session cookie works on B at once; a logout on B is refused on A at once.
- Wrong passwords on A and B count together: the fourth attempt, wherever, is throttled.
- What happened on A is in the audit log a supervisor reads on B.
- The same billing event (one id) posted to A and to B at the same moment books the payment
  once; different events posted to both all count.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.billing.redis_ledger import RedisLedgerStorage
from bot.selfservice.billing_events import sign
from bot.storage.redis.client import connect
from tests.gateway_process import FOREIGN_ENV, ROOT, free_port, start_gateway
from tests.redis_server import needs_redis

pytestmark = needs_redis

PASSWORD = "correct horse battery"
WRONG = "another long secret"
SECRET = "billing-events-secret"
IVANOV = "750012345678"  # demo catalog: 880.50 ₽
STOP_LIMIT = 30.0
PATIENCE = 30.0  # only stops a broken test from hanging


async def _cli(var_dir: Path, redis_url: str, *argv: str, stdin: str = "") -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(FOREIGN_ENV)}
    env.update(BOT_VAR_DIR=str(var_dir), REDIS_URL=redis_url, NO_PROXY="*")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "operators", *argv,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    out, err = await process.communicate(stdin.encode())
    assert process.returncode == 0, (out + err).decode()


@pytest.fixture
async def gateways(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """A and B: one Redis, a var dir each, a port each."""
    await _cli(tmp_path / "admin", redis_url, "add", "anna", "--supervisor", stdin=PASSWORD)
    processes: list[asyncio.subprocess.Process] = []
    async with aiohttp.ClientSession() as http:
        try:
            bases = []
            for name in ("a", "b"):
                port = free_port()
                settings = {
                    "REDIS_URL": redis_url,
                    "BOT_VAR_DIR": str(tmp_path / f"var-{name}"),
                    "BILLING_WEBHOOK_SECRET": SECRET,
                }
                processes.append(
                    await start_gateway(
                        http, port=port, settings=settings, log=tmp_path / f"{name}.log",
                        name=f"gateway {name}",
                    )
                )  # fmt: skip
                bases.append(f"http://127.0.0.1:{port}")
            yield bases[0], bases[1]
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
                    async with asyncio.timeout(STOP_LIMIT):
                        await process.wait()


async def _login(http: aiohttp.ClientSession, base: str, password: str) -> tuple[int, Any]:
    async with http.post(
        f"{base}/api/v1/operator/login", json={"login": "anna", "password": password}
    ) as resp:
        return resp.status, await resp.json()


async def _status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as resp:
        return resp.status


async def test_sessions_throttling_and_audit_are_shared(gateways: tuple[str, str]) -> None:
    a, b = gateways
    # One cookie jar for both: the cookie is per host, as one browser behind a load balancer.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        status, body = await _login(http, a, PASSWORD)
        assert status == 200
        assert await _status(http, f"{b}/api/v1/operator/me") == 200  # valid on B at once
        console = await http.ws_connect(f"{a}/api/v1/operator/events")  # her console on A
        async with http.post(
            f"{b}/api/v1/operator/logout", headers={"X-CSRF-Token": body["csrf_token"]}
        ) as resp:
            assert resp.status in (200, 204)
        assert await _status(http, f"{a}/api/v1/operator/me") == 401  # ended on A at once
        async with asyncio.timeout(PATIENCE):  # and A closes her console's socket
            while (frame := await console.receive()).type == aiohttp.WSMsgType.TEXT:
                pass
        assert frame.type == aiohttp.WSMsgType.CLOSE
        assert frame.data == 4401

        for base in (a, b, a):
            assert (await _login(http, base, WRONG))[0] == 401
        assert (await _login(http, b, PASSWORD))[0] == 429  # counted across processes

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        # The supervisor at her own address (a fresh pair for the throttle would be another
        # IP; here the same 127.0.0.1 waits out the first delay instead).
        await asyncio.sleep(1.1)
        assert (await _login(http, a, PASSWORD))[0] == 200
        async with http.get(f"{b}/api/v1/operator/audit?login=anna&limit=50") as resp:
            assert resp.status == 200
            entries = (await resp.json())["entries"]
        actions = [e["action"] for e in entries]
        assert actions.count("login") == 2
        assert actions.count("login_failed") == 3
        assert "logout" in actions
        assert "login_throttled" in actions


async def _event(http: aiohttp.ClientSession, base: str, event_id: str, amount: str) -> int:
    body = json.dumps(
        {"id": event_id, "contract": IVANOV, "kind": "payment", "amount_rub": amount}
    ).encode()
    async with http.post(
        f"{base}/api/v1/billing/events", data=body,
        headers={"X-Billing-Signature": sign(SECRET, body), "Content-Type": "application/json"},
    ) as resp:  # fmt: skip
        return resp.status


async def _balance(redis_url: str) -> Decimal:
    client = connect(redis_url)
    try:
        raw = await RedisLedgerStorage(client).account(IVANOV)
    finally:
        await client.aclose()
    assert raw is not None
    return Decimal(json.loads(raw)["balance_rub"])


async def test_billing_events_are_booked_once_across_processes(
    gateways: tuple[str, str], redis_url: str
) -> None:
    a, b = gateways
    async with aiohttp.ClientSession() as http:
        assert await _event(http, a, "warm-up", "0.50") == 200  # the ledger is seeded by now
        before = await _balance(redis_url)
        same = await asyncio.gather(*(_event(http, base, "pay-1", "100") for base in (a, b) * 3))
        assert 200 in same
        assert set(same) <= {200, 409}  # 409: "being processed" by the other, retried later
        for base in (a, b):  # the billing delivers again until it hears 200
            assert await _event(http, base, "pay-1", "100") == 200
        assert await _balance(redis_url) == before + 100
        different = await asyncio.gather(
            *(_event(http, base, f"pay-{base[-5:]}-{n}", "10") for base in (a, b) for n in range(5))
        )
        assert different == [200] * 10
        assert await _balance(redis_url) == before + 200
