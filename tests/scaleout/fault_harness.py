"""Kill a gateway process at a random moment while several of them serve one Redis, and count
what customers would notice.

The set-up is production's, shrunk: ``processes`` real ``python -m bot run`` on one Redis, each
with a var directory of its own (nothing may rely on a local file), a fake Telegram Bot API
(``tests/fakes/telegram.py``; the real aiogram client sends to it), and a sender that behaves
like Telegram's webhook delivery behind a load balancer:

- every chat sends its messages one after the other; an update is delivered again, to another
  process, until one answers 200 (a refused connection, a 503 while draining or a reset while
  the process dies all count as "not acknowledged");
- now and then an update that was acknowledged is delivered once more (Telegram does that when
  our 200 was lost on the way), which the gateway must recognise.

One process is killed with SIGKILL at a random moment during the load and started again on the
same port. Then the harness waits until every acknowledged message is answered and reads:

- ``lost``: acknowledged messages never answered (must be 0);
- ``order_violations``: chats whose replies (the city named in each, at the platform) or whose
  transcript (the number in each customer line, in the store) are out of order (must be 0);
- ``duplicates``: replies the platform received more than once; allowed only for a send that was
  in flight when its process died (at most one per chat per kill) and only when the gateway
  counted it (``outbox_uncertain_total``);
- ``recovery_seconds``: from the kill until the restarted process answers ``/healthz``.

``tests/scaleout/test_sigkill_fault.py`` runs one trial in the test suite;
``scripts/fault_trials.py`` runs hundreds with random timings and prints the totals.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.models import ConversationKey
from bot.storage.redis.client import connect
from tests.fakes.telegram import FakeTelegram, text_update
from tests.gateway_process import free_port, start_gateway

TOKEN = "123456:FAULT-token"
SECRET = "fault-trial-secret"
# Cities of the demo catalog and how a question names them: message k of a chat asks about
# CITIES[k % 4], so two messages in a row never share a city and a swap shows in the replies.
CITIES = (
    ("Братск", "Братске"),
    ("Иркутск", "Иркутске"),
    ("Хабаровск", "Хабаровске"),
    ("Чита", "Чите"),
)
REPLY_CITY = re.compile(r"Тарифы в городе (\S+?):")
QUESTION_NUMBER = re.compile(r"№(\d+)$")
ANSWER_LIMIT = 180.0  # seconds to wait for the last reply: bounds a hang, measures nothing


@dataclass(frozen=True)
class TrialPlan:
    processes: int = 3
    chats: int = 100
    per_chat: int = 25
    kill_after: float = 5.0  # seconds into the load
    restart_after: float = 1.0  # seconds the killed process stays down
    redeliver: float = 0.02  # share of acknowledged updates delivered once more
    lease_ttl: float = 3.0  # BOT_POLLING_LEASE_TTL and the conversation leases' ttl
    seed: int = 0


@dataclass
class TrialResult:
    acknowledged: int = 0
    redelivered: int = 0
    answered: int = 0
    lost: int = 0
    order_violations: int = 0
    duplicates: int = 0
    duplicate_chats: int = 0
    max_duplicates_in_a_chat: int = 0
    uncertain_counted: int = 0
    refused_deliveries: int = 0  # non-200 answers and connection errors the sender retried
    recovery_seconds: float = 0.0
    kills: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Gateway:
    index: int
    var_dir: Path
    log: Path
    settings: dict[str, str]
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    up: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, http: aiohttp.ClientSession) -> None:
        self.process = await start_gateway(
            http, port=self.port, settings=self.settings, log=self.log, name=f"gateway-{self.index}"
        )
        self.up = True

    def kill(self) -> None:
        self.up = False
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        self.up = False
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def metric(self, http: aiohttp.ClientSession, name: str) -> float:
        """Sum of a counter over its labels on this process's ``/metrics``."""
        total = 0.0
        async with http.get(f"{self.url}/metrics") as resp:
            for line in (await resp.text()).splitlines():
                if line.startswith(f"isp_bot_{name}") and not line.startswith("#"):
                    total += float(line.rsplit(" ", 1)[1])
        return total


class _Sender:
    def __init__(self, gateways: Sequence[Gateway], http: aiohttp.ClientSession, rng: random.Random,
                 result: TrialResult, plan: TrialPlan) -> None:  # fmt: skip
        self._gateways = gateways
        self._http = http
        self._rng = rng
        self._result = result
        self._plan = plan
        self.acknowledged: dict[int, list[int]] = {}  # chat -> message numbers acknowledged

    async def _deliver(self, update: dict[str, object]) -> None:
        """Until some process answers 200, like Telegram retrying a webhook."""
        delay = 0.05
        while True:
            live = [g for g in self._gateways if g.up] or list(self._gateways)
            gateway = self._rng.choice(live)
            try:
                async with self._http.post(
                    f"{gateway.url}/webhooks/telegram",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError, ConnectionError):
                pass
            self._result.refused_deliveries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def chat(self, chat_id: int) -> None:
        done = self.acknowledged.setdefault(chat_id, [])
        for number in range(self._plan.per_chat):
            _, where = CITIES[number % len(CITIES)]
            update = text_update(
                chat_id * 1000 + number, chat_id, f"Какие тарифы в {where}? №{number}"
            )
            await self._deliver(update)
            done.append(number)
            self._result.acknowledged += 1
            if self._rng.random() < self._plan.redeliver:
                await self._deliver(update)  # our 200 "lost on the way": Telegram sends it again
                self._result.redelivered += 1


async def run_trial(redis_url: str, workdir: Path, plan: TrialPlan) -> TrialResult:
    rng = random.Random(plan.seed)
    result = TrialResult()
    fake = FakeTelegram(token=TOKEN, poll_wait=0.2)
    runner = web.AppRunner(fake.app())
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    settings = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE": f"http://127.0.0.1:{fake_port}",
        "REDIS_URL": redis_url,
        "BOT_POLLING_LEASE_TTL": str(plan.lease_ttl),
        "BOT_CONVERSATION_LEASE_TTL": str(plan.lease_ttl),
        "BOT_SHUTDOWN_TIMEOUT": "5",
    }
    gateways = [
        Gateway(i, workdir / f"var-{i}", workdir / f"gateway-{i}.log",
                {**settings, "BOT_VAR_DIR": str(workdir / f"var-{i}")})
        for i in range(plan.processes)
    ]  # fmt: skip
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            await asyncio.gather(*(g.start(http) for g in gateways))
            sender = _Sender(gateways, http, rng, result, plan)
            load = asyncio.gather(*(sender.chat(10_000 + c) for c in range(plan.chats)))
            await asyncio.sleep(plan.kill_after)
            victim = rng.choice(gateways)
            killed_at = time.monotonic()
            victim.kill()
            result.kills += 1
            await asyncio.sleep(plan.restart_after)
            await victim.start(http)
            result.recovery_seconds = time.monotonic() - killed_at
            await load
            await _await_answers(fake, sender, result)
            await asyncio.sleep(1.0)  # a late duplicate would show up now
            for gateway in gateways:
                result.uncertain_counted += int(
                    await gateway.metric(http, "outbox_uncertain_total")
                )
            _count(fake, sender, result)
            await _check_transcripts(redis_url, sender, result)
        finally:
            for gateway in gateways:
                with contextlib.suppress(Exception):
                    await gateway.stop()
            await runner.cleanup()
    return result


def _replies(fake: FakeTelegram, chat_id: int) -> list[str]:
    """The cities named by the tariff replies the platform received in this chat, in order."""
    cities = []
    for call in fake.sent(chat_id):
        match = REPLY_CITY.search(str(call.get("text", "")))
        if match:
            cities.append(match.group(1))
    return cities


async def _await_answers(fake: FakeTelegram, sender: _Sender, result: TrialResult) -> None:
    deadline = time.monotonic() + ANSWER_LIMIT
    while time.monotonic() < deadline:
        if all(
            len(_replies(fake, chat)) >= len(done) for chat, done in sender.acknowledged.items()
        ):
            return
        await asyncio.sleep(0.5)
    result.notes.append("gave up waiting for replies")


def _count(fake: FakeTelegram, sender: _Sender, result: TrialResult) -> None:
    for chat, done in sender.acknowledged.items():
        expected = [CITIES[n % len(CITIES)][0] for n in done]
        got = _replies(fake, chat)
        # A resent in-flight reply arrives right after its first copy (a chat is sent in order,
        # and two messages in a row never name the same city).
        collapsed: list[str] = []
        for city in got:
            if not collapsed or collapsed[-1] != city:
                collapsed.append(city)
        dups = len(got) - len(collapsed)
        if dups:
            result.duplicates += dups
            result.duplicate_chats += 1
            result.max_duplicates_in_a_chat = max(result.max_duplicates_in_a_chat, dups)
        result.answered += min(len(collapsed), len(expected))
        missing = Counter(expected) - Counter(collapsed)
        result.lost += sum(missing.values())
        if collapsed != expected[: len(collapsed)] or len(collapsed) > len(expected):
            result.order_violations += 1
            result.notes.append(f"chat {chat}: expected {expected} got {got}")


async def _check_transcripts(redis_url: str, sender: _Sender, result: TrialResult) -> None:
    """In the shared store, each chat's customer lines are its messages once each, in order,
    and each is followed by the bot's answer."""
    from bot.storage.redis.store import RedisStore

    client = connect(redis_url)
    try:
        store = RedisStore(client)
        for chat, done in sender.acknowledged.items():
            conversation = ConversationKey("telegram", str(chat), str(chat)).id
            lines = await store.messages(conversation, limit=10_000)
            numbers = []
            for line in lines:
                if line.sender == "customer":
                    match = QUESTION_NUMBER.search(line.text)
                    if match:
                        numbers.append(int(match.group(1)))
            if numbers != done:
                result.order_violations += 1
                result.notes.append(f"chat {chat}: transcript has {numbers}, sent {done}")
            senders = [line.sender for line in lines]
            unanswered = sum(
                1 for i, s in enumerate(senders)
                if s == "customer" and (i + 1 == len(senders) or senders[i + 1] == "customer")
            )  # fmt: skip
            if unanswered:
                result.notes.append(f"chat {chat}: {unanswered} customer lines without an answer")
    finally:
        await client.aclose()


def summary(results: Sequence[TrialResult]) -> dict[str, float]:
    total: Counter[str] = Counter()
    for r in results:
        for name in ("acknowledged", "redelivered", "answered", "lost", "order_violations",
                     "duplicates", "duplicate_chats", "uncertain_counted", "refused_deliveries",
                     "kills"):  # fmt: skip
            total[name] += getattr(r, name)
    recoveries = sorted(r.recovery_seconds for r in results) or [0.0]
    return {
        **total,
        "trials": len(results),
        "recovery_min_s": round(recoveries[0], 2),
        "recovery_max_s": round(recoveries[-1], 2),
        "max_duplicates_in_a_chat": max((r.max_duplicates_in_a_chat for r in results), default=0),
    }
