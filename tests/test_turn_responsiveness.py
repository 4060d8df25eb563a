"""A hostile message cannot freeze the process: its text is cut at the channel's limit where
every channel meets (Gateway.handle), the text steps are linear and bounded, so /healthz keeps
answering while the worst messages are processed, and BOT_TURN_TIMEOUT still ends a turn that
hangs. Before, one signed Telegram update with 1 MB of text held the event loop for minutes.

No clock budgets: every duration is compared with one measured in the same run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient

from bot.config import Settings
from bot.dialog.types import Turn
from bot.intents.nlu import Nlu
from bot.models import Conversation, ConversationKey, Inbound
from bot.services import Services, build_services
from bot.untrusted import TEXT_LIMITS

# The shapes that cost the most per character before and after the fix (house numbers with
# letters, "в 5" read as an hour, a street with its house, hour ranges).
WORST = ("1а", "в 5 ", "ул мира 5, ", "с 10-12 ")
_serial = iter(range(1_000_000))


def repeated(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def inbound(channel: str, text: str) -> Inbound:
    n = next(_serial)
    return Inbound(ConversationKey(channel, f"c{n}", f"u{n}"), f"m{n}", "text", text=text)


async def turn_cpu(services: Services, channel: str, text: str, runs: int = 3) -> float:
    """The best CPU time of the event loop's thread over ``runs`` turns of a new conversation."""
    best = float("inf")
    for _ in range(runs):
        started = time.thread_time()
        await services.gateway.handle(inbound(channel, text))
        best = min(best, time.thread_time() - started)
    return best


async def test_a_megabyte_message_costs_what_the_channels_longest_does(
    services: Services,
) -> None:
    limit = TEXT_LIMITS["telegram"]
    for unit in WORST:
        await turn_cpu(services, "telegram", repeated(unit, limit), 1)  # warm caches
        at_limit = await turn_cpu(services, "telegram", repeated(unit, limit))
        huge = await turn_cpu(services, "telegram", repeated(unit, 1024**2))
        # Cleaning a megabyte is one C pass over a bounded slice of it; the turn is the same.
        assert huge < 2 * at_limit + 0.002, (unit, at_limit, huge)
    message = inbound("telegram", repeated("1а", 1024**2) + "\ud800")
    handled = await services.gateway.handle(message)
    lines = await services.store.messages(handled.conversation.id)
    assert len(lines[0].text) == limit  # what is stored is what Telegram itself allows


async def test_a_whole_turn_grows_no_faster_than_its_text(services: Services) -> None:
    """NLU, entities, dialog and the transcript together: 8× the text (875 → 7 000 characters,
    Viber's limit) costs at most 8 × 2.5 the CPU (a 7 000-character turn of "1а" cost 0.3 s
    before the text steps were made linear and bounded, 0.02 s after)."""
    for unit in WORST:
        await turn_cpu(services, "viber", repeated(unit, 7000), 1)  # warm caches
        short = await turn_cpu(services, "viber", repeated(unit, 875))
        long = await turn_cpu(services, "viber", repeated(unit, 7000))
        assert long < 8 * 2.5 * short, (unit, short, long)


async def healthz_latency(client: TestClient) -> float:
    started = time.perf_counter()
    resp = await client.get("/healthz")
    assert resp.status == 200, await resp.text()
    await resp.read()
    return time.perf_counter() - started


async def test_healthz_answers_while_the_worst_messages_are_processed(
    client: TestClient, services: Services
) -> None:
    baseline = max([await healthz_latency(client) for _ in range(10)])
    messages = [repeated(unit, 7000) for unit in WORST for _ in range(3)]
    one_turn = 0.0
    for text in WORST:  # the longest a single worst turn takes, alone
        started = time.perf_counter()
        await services.gateway.handle(inbound("viber", repeated(text, 7000)))
        one_turn = max(one_turn, time.perf_counter() - started)

    async def flood() -> None:
        for text in messages:
            await services.gateway.handle(inbound("viber", text))

    flooding = asyncio.create_task(flood())
    during: list[float] = []
    while not flooding.done():
        during.append(await healthz_latency(client))
    await flooding
    assert len(during) >= len(messages) // 2, "health checks answered while the turns ran"
    # The loop is held at most by the part of one turn between two awaits; a health check
    # (its client and its server share the loop here) waits for no more than that, twice.
    assert max(during) <= baseline + 2 * one_turn, (baseline, one_turn, sorted(during)[-3:])


@pytest.fixture
async def slow_services(settings: Settings, demo_nlu: Nlu) -> AsyncIterator[Services]:
    built = build_services(replace(settings, turn_timeout=0.2), nlu=demo_nlu)
    yield built
    await built.close()


async def test_turn_timeout_still_ends_a_turn_that_hangs(
    slow_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BOT_TURN_TIMEOUT ends a turn waiting on something that never answers, and the customer
    is answered. (It cannot cut a step that computes without awaiting, which is why every text
    step is linear and reads a bounded text.)"""
    hang = asyncio.Event()

    async def stuck(conversation: Conversation, message: Inbound) -> Turn:
        await hang.wait()  # a backend that never answers
        raise AssertionError("unreachable")

    monkeypatch.setattr(slow_services.engine, "step", stuck)
    # Without the turn timeout this would wait for the outer guard (and fail the test).
    message = inbound("viber", repeated("1а", 7000))
    handled = await asyncio.wait_for(slow_services.gateway.handle(message), timeout=30)
    assert handled.replies, "the customer is answered"
    assert slow_services.metrics.value("turn_errors_total", channel="viber") == 1
    monkeypatch.undo()  # and the next message of the conversation is a normal turn
    again = replace(message, message_id="again", text="привет")
    assert (await slow_services.gateway.handle(again)).replies
