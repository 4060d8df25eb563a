"""A real ``python -m bot run`` for tests that need a process of their own (signals, SIGKILL,
several gateways on one Redis): started on a free port of 127.0.0.1 with a clean environment,
ready when ``/healthz`` answers 200."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parent.parent
STARTUP_LIMIT = 60.0  # training the intent model included; bounds a hang, measures nothing
# The developer's own settings must not leak into the process under test.
FOREIGN_ENV = ("BOT_", "TELEGRAM_", "VK_", "VIBER_", "REDIS")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_gateway(
    http: aiohttp.ClientSession,
    *,
    port: int,
    settings: Mapping[str, str],
    log: Path,
    name: str,
    args: Sequence[str] = (),
) -> asyncio.subprocess.Process:
    """Start the gateway with ``settings`` (environment variables) and more ``args`` for
    ``run`` (``--workers 2``), and wait until it is healthy; its stderr goes to ``log``. The
    test fails with that log if it exits during start-up."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(FOREIGN_ENV)}
    env.update(settings, PYTHONUNBUFFERED="1", NO_PROXY="*")
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port), *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err,
            cwd=ROOT, env=env,
        )  # fmt: skip
    async with asyncio.timeout(STARTUP_LIMIT):
        while True:
            if process.returncode is not None:
                logged = log.read_text(encoding="utf-8", errors="replace")
                pytest.fail(f"{name} exited with {process.returncode}:\n{logged}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
