"""A private Redis for the tests: Debian's ``redis-server`` on 127.0.0.1, a free port, a tmp dir,
nothing saved to disk unless asked. ``scripts/system-deps.sh`` (run by ``scripts/test.sh``)
installs it, so the tests that need it run in CI; they are skipped, saying why, only where the
binary is absent.

Fixtures (registered by ``tests/conftest.py``):

- ``redis_server``: one server for the whole session; stays up.
- ``redis_url``: its URL, emptied (FLUSHALL) before each test, so tests do not see each other.
- ``own_redis``: a server of the test's own, for tests that stop it (Redis dying mid-test).
- ``durable_redis``: a server of the test's own with the append-only file on (``appendfsync
  everysec``, as docs/deploy.md asks), which ``crash`` (SIGKILL) and ``restart`` (same port,
  same directory, so the same AOF) can take down and bring back.
- ``RedisSentinel``: ``redis-server --sentinel`` watching a server, for the Sentinel settings.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="needs Debian's redis-server (scripts/system-deps.sh installs it; ./scripts/test.sh "
    "runs that script)",
)
# How long a fresh server may take to answer PING: only a ceiling for a broken start (a healthy
# one answers in milliseconds), never a measurement a test depends on.
START_TIMEOUT = 30.0
START_ATTEMPTS = 5  # a free port can be taken between choosing it and the server binding it


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process; ``url`` for clients, ``stop`` to kill it (idempotent)."""

    def __init__(
        self, workdir: Path, *, appendonly: bool = False, extra: tuple[str, ...] = ()
    ) -> None:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed (scripts/system-deps.sh)")
        self.workdir = workdir
        self.appendonly = appendonly
        self.extra = extra  # more options, e.g. ("--replicaof", "127.0.0.1", "6379")
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def _start(self, port: int | None = None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(START_ATTEMPTS if port is None else 1):
            self.port = _free_port() if port is None else port
            log = self.workdir / "redis.log"
            command = [
                str(REDIS_SERVER),
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--dir", str(self.workdir),
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec",
                "--protected-mode", "yes",
                "--daemonize", "no",
                "--logfile", str(log),
                *self.extra,
            ]  # fmt: skip
            with log.open("ab") as errors:  # a bad option is reported before the log file opens
                self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.workdir / 'redis.log'}")

    def restart(self) -> None:
        """Start again on the same port with the same directory: with ``appendonly`` the server
        loads its append-only file, as a production Redis does after a crash or a reboot."""
        self.stop()
        self._start(self.port)

    def crash(self) -> None:
        """SIGKILL: no shutdown, no last write; only what is already in the AOF survives."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _wait_ready(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # exited: most likely the port was taken meanwhile
            try:
                with self.client() as client:
                    if client.ping():
                        return True
            except redis.RedisError:
                time.sleep(0.02)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: redis-server exits at once (nothing to save)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RedisSentinel:
    """``redis-server --sentinel`` on 127.0.0.1 watching ``master`` under ``name`` (quorum 1:
    one Sentinel may decide alone, enough for a test, never for production)."""

    def __init__(self, workdir: Path, master: RedisServer, name: str) -> None:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is not installed (scripts/system-deps.sh)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = _free_port()
        config = workdir / "sentinel.conf"  # Sentinel rewrites its file: it must be writable
        config.write_text(
            f"bind 127.0.0.1\nport {self.port}\ndir {workdir}\n"
            f"logfile {workdir / 'sentinel.log'}\n"
            f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {name} 1000\n"
            f"sentinel failover-timeout {name} 5000\n"
        )
        with (workdir / "sentinel.err").open("ab") as errors:
            self.process = subprocess.Popen(
                [str(REDIS_SERVER), str(config), "--sentinel"],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with self.client() as client:
                    if client.sentinel_get_master_addr_by_name(name):
                        return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis sentinel did not start; see {workdir / 'sentinel.log'}")

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis_server.client() as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", appendonly=True)
    try:
        yield server
    finally:
        server.stop()
