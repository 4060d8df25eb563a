"""``python -m bot run --workers N``: a supervisor and N gateway processes on one port.

The real command in a subprocess on a private Redis; what an operator would notice: it refuses
to start without Redis and says why, both children serve the one port, a child killed with
SIGKILL is replaced while the other keeps answering, and SIGTERM stops everything with exit 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.gateway_process import FOREIGN_ENV, ROOT, free_port, start_gateway

SHUTDOWN_TIMEOUT = 5.0
EXIT_LIMIT = 60.0  # bounds a hang (children still training when SIGTERM comes), measures nothing


def children(pid: int) -> set[int]:
    """The live children of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (each child binds its own)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if row[1] == wanted and row[3] == "0A")  # 0A: LISTEN


def test_several_workers_without_redis_refuse_to_start_and_say_why(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(FOREIGN_ENV)}
    env["BOT_VAR_DIR"] = str(tmp_path / "var")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--workers", "2", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--workers 2 needs REDIS_URL" in done.stderr
    assert "in-memory conversation locks" in done.stderr  # the why, not only the what
    assert not (tmp_path / "var" / "gateway.sqlite3").exists()  # nothing started


async def test_workers_share_the_port_replace_a_killed_one_and_stop_on_sigterm(
    tmp_path: Path, redis_url: str
) -> None:
    port = free_port()
    log = tmp_path / "workers.err"
    settings = {
        "BOT_VAR_DIR": str(tmp_path / "var"),
        "REDIS_URL": redis_url,
        "BOT_IDENTITY_SECRET": "test-identity-secret",
        "BOT_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        supervisor = await start_gateway(
            http, port=port, settings=settings, log=log, name="workers", args=("--workers", "2")
        )
        try:
            async with asyncio.timeout(EXIT_LIMIT):  # the second child may still be training
                while listening_sockets(port) < 2:
                    await asyncio.sleep(0.2)
            first = children(supervisor.pid)
            assert len(first) == 2

            victim = min(first)
            os.kill(victim, signal.SIGKILL)
            # The other child keeps the port answering while the victim is replaced.
            async with asyncio.timeout(EXIT_LIMIT):
                while True:
                    async with http.get(base + "/healthz") as resp:
                        assert resp.status == 200
                    now = children(supervisor.pid)
                    if victim not in now and len(now) == 2:
                        break
                    await asyncio.sleep(0.1)
            assert len(now & first) == 1  # the survivor, plus a new process
            logged = log.read_text(encoding="utf-8", errors="replace")
            assert f"(pid {victim}) died unexpectedly (exit -9" in logged

            supervisor.send_signal(signal.SIGTERM)
            async with asyncio.timeout(SHUTDOWN_TIMEOUT + EXIT_LIMIT):
                code = await supervisor.wait()
            assert code == 0, log.read_text(encoding="utf-8", errors="replace")
            # The supervisor waited for (and reaped) its children: no orphan keeps the port.
            assert not [pid for pid in now if Path(f"/proc/{pid}").exists()]
            assert listening_sockets(port) == 0
        finally:
            if supervisor.returncode is None:
                for pid in children(supervisor.pid):
                    os.kill(pid, signal.SIGKILL)
                supervisor.kill()
                await supervisor.wait()
