"""``python -m bot run --workers N``: N gateway processes on one machine, one listening port.

One Python process runs the dialog on one core; a busy ISP wants the others too. The parent
started here serves nothing: it starts N children (``python -m bot run`` with the same options
and ``BOT_WORKER_INDEX`` set), each binding the same host and port with ``SO_REUSEPORT``, so the
kernel spreads new connections over them (Linux). The parent

- forwards SIGTERM and SIGINT to every child: each drains by itself (bot/shutdown.py,
  ``BOT_SHUTDOWN_TIMEOUT``) and the parent exits when all have;
- starts again a child that dies unexpectedly (a crash, the OOM killer), after a pause that
  doubles with each quick death (``RESTART_BACKOFF``), so a child that cannot run does not spin;
- gives up (stopping the others, exit 2) when a child fails at start-up (exit code 2: a bad
  catalog, a port taken by another program): starting it again would fail the same way.

N > 1 needs Redis (REDIS_URL or REDIS_SENTINELS): without it each process keeps its own
in-memory locks, so two processes could run turns of one conversation at once over the shared
SQLite file, and the abuse limits and polling leases would be per process. ``supervise``
refuses to start then, saying so.

On several machines, or under systemd or Kubernetes, run one ``python -m bot run`` per unit
or replica instead (deploy/, docs/deploy.md): this parent is for one machine without a
process manager of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from bot.config import ConfigError, Settings

log = logging.getLogger("bot.workers")

WORKER_INDEX_ENV = "BOT_WORKER_INDEX"  # set in each child: 0 … N-1; also means SO_REUSEPORT
STARTUP_FAILURE = 2  # bot.__main__'s exit code for STARTUP_ERRORS
RESTART_BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)  # seconds before restart n (then the last)
STABLE_AFTER = 60.0  # a child that ran this long starts the backoff afresh when it dies
POLL_SECONDS = 0.2


def check_can_run(settings: Settings, workers: int) -> None:
    """Refuse what cannot work, before any child starts (a ConfigError: exit 2, one line)."""
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers == 1:
        return
    if not settings.uses_redis:
        raise ConfigError(
            f"--workers {workers} needs REDIS_URL (or REDIS_SENTINELS): without Redis each "
            "process has its own in-memory conversation locks over the shared SQLite store, so "
            "two processes could answer one conversation at once, and abuse limits and the "
            "long-polling lease would not be shared; set REDIS_URL or run one process"
        )
    if not sys.platform.startswith("linux"):
        raise ConfigError(
            f"--workers {workers} shares one port with SO_REUSEPORT, which spreads connections "
            "over processes on Linux only; run one process per port behind a load balancer"
        )


@dataclass
class Child:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0  # deaths in a row, each before STABLE_AFTER: the backoff step
    restart_at: float | None = None  # when a dead child is due to start again


@dataclass
class Supervisor:
    command: Sequence[str]  # the child's command line (``python -m bot run …``)
    workers: int
    children: list[Child] = field(default_factory=list)
    stopping: bool = False
    failed: bool = False

    def _start(self, child: Child) -> None:
        env = {**os.environ, WORKER_INDEX_ENV: str(child.index)}
        # Children share the parent's stdout and stderr: one stream, one log for the operator.
        # Our own interpreter and options, never input from a request.
        child.process = subprocess.Popen(list(self.command), env=env)  # noqa: S603
        child.started_at = time.monotonic()
        child.restart_at = None
        log.info("worker %d started (pid %d)", child.index, child.process.pid)

    def _signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("%s: stopping %d worker(s)", signal.Signals(signum).name, self.workers)
        self.stopping = True
        self._forward(signal.SIGTERM)  # a second signal is forwarded too: harmless, bounded

    def _forward(self, signum: int) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signum)

    def _died(self, child: Child, code: int) -> None:
        assert child.process is not None
        pid, child.process = child.process.pid, None
        if self.stopping:
            log.info("worker %d (pid %d) exited with %d", child.index, pid, code)
            return
        if code == STARTUP_FAILURE:
            log.error("worker %d could not start (exit 2, see above): stopping", child.index)
            self.failed = True
            self.stopping = True
            self._forward(signal.SIGTERM)
            return
        ran = time.monotonic() - child.started_at
        child.quick_deaths = 0 if ran >= STABLE_AFTER else child.quick_deaths + 1
        pause = RESTART_BACKOFF[min(max(child.quick_deaths - 1, 0), len(RESTART_BACKOFF) - 1)]
        child.restart_at = time.monotonic() + pause
        log.error(
            "worker %d (pid %d) died unexpectedly (exit %d after %.0f s); restarting in %.0f s",
            child.index, pid, code, ran, pause,
        )  # fmt: skip

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._signal)
        self.children = [Child(index) for index in range(self.workers)]
        for child in self.children:
            self._start(child)
        while True:
            for child in self.children:
                if child.process is not None:
                    code = child.process.poll()
                    if code is not None:
                        self._died(child, code)
                elif (
                    not self.stopping
                    and child.restart_at is not None
                    and time.monotonic() >= child.restart_at
                ):
                    self._start(child)
            if all(child.process is None for child in self.children) and (
                self.stopping or self.failed
            ):
                return STARTUP_FAILURE if self.failed else 0
            time.sleep(POLL_SECONDS)


def supervise(settings: Settings, workers: int, *, data: str | None = None) -> int:
    """Run ``workers`` children of ``python -m bot run`` on the host and port of ``settings``
    (and ``--data`` when given) until a signal stops them; the exit code."""
    check_can_run(settings, workers)
    print(
        f"Supervisor (pid {os.getpid()}): {workers} workers on "
        f"http://{settings.host}:{settings.port} (SO_REUSEPORT)",
        flush=True,
    )
    command = [sys.executable, "-m", "bot", "run", "--host", settings.host]
    command += ["--port", str(settings.port), *(["--data", data] if data else [])]
    return Supervisor(command, workers).run()
