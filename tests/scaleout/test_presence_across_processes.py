"""Operator presence across gateway processes (issue 11): two ``HandoffService`` instances with
``RedisPresence`` on one real ``redis-server`` (each with its own client) stand for two
processes. An operator who went online through A counts in B's routing and queue notices; when
A stops renewing (it died), the operator is offline everywhere after the TTL; a process that
set someone online does not keep them online after they went away through another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.config import Settings
from bot.handoff.operators import Operator
from bot.handoff.presence import RedisPresence
from bot.handoff.service import HandoffService
from bot.intents.nlu import Nlu
from bot.models import Conversation, ConversationKey, Text
from bot.services import Services, build_services

TTL = 1.0  # short, so that expiry is quick; production default 30 s
EXPIRY_LIMIT = TTL + 10.0  # ends as soon as the operator is offline; only stops a hang


@pytest.fixture
async def two_processes(
    redis_url: str, settings: Settings, demo_nlu: Nlu
) -> AsyncIterator[tuple[Services, Services]]:
    """Two service sets on one Redis, sharing the operators' database (one var dir)."""
    shared = replace(settings, redis_url=redis_url)
    built = [build_services(shared, nlu=demo_nlu) for _ in range(2)]
    for services in built:
        assert services.redis is not None
        await services.handoff.presence.close()
        services.handoff.presence = RedisPresence(services.redis, ttl=TTL)
    await built[0].operators.add(
        Operator("anna", "Анна", departments=("general",)), "secret password 1"
    )
    yield built[0], built[1]
    for services in built:
        await services.close()


async def _offline_in(service: HandoffService, login: str) -> None:
    async with asyncio.timeout(EXPIRY_LIMIT):
        while await service.is_online(login):
            await asyncio.sleep(0.05)


async def test_online_through_a_counts_in_b(two_processes: tuple[Services, Services]) -> None:
    a, b = two_processes
    assert await b.handoff.online_in("general") == 0
    await a.handoff.set_online("anna", True)
    assert await b.handoff.online_in("general") == 1
    assert await b.handoff.is_online("anna")
    await b.handoff.set_online("anna", False)  # away through the other process
    assert await a.handoff.online_in("general") == 0
    assert not await a.handoff.is_online("anna")


async def test_a_chat_queued_in_b_goes_to_the_operator_online_through_a(
    two_processes: tuple[Services, Services],
) -> None:
    a, b = two_processes
    conversation = Conversation(ConversationKey("rest", "c-1", "c-1"))
    await b.store.save_conversation(conversation)
    nobody = await b.handoff.enqueue(conversation, "general", "asked")
    assert nobody[0].parts[0] == Text("handoff.nobody_online")  # nobody anywhere yet

    await a.handoff.set_online("anna", True)
    await b.handoff.assign_waiting()  # B routes the chat: to Anna, online through A
    entry = await b.store.queue_get(conversation.id)
    assert entry is not None
    assert entry.operator == "anna"


async def test_operators_of_a_process_that_stopped_renewing_fall_offline_after_the_ttl(
    two_processes: tuple[Services, Services],
) -> None:
    a, b = two_processes
    await a.handoff.set_online("anna", True)
    # Renewed by A's heartbeat: still online well past the TTL while A lives.
    await asyncio.sleep(TTL * 2)
    assert await b.handoff.is_online("anna")
    await a.handoff.presence.close()  # A dies: nobody renews
    await _offline_in(b.handoff, "anna")
    assert await b.handoff.online_in("general") == 0


async def test_going_online_again_elsewhere_takes_the_operator_over(
    two_processes: tuple[Services, Services],
) -> None:
    a, b = two_processes
    await a.handoff.set_online("anna", True)
    await b.handoff.set_online("anna", True)  # a new console tab, served by B
    await a.handoff.presence.close()  # A dies: B keeps Anna online
    await asyncio.sleep(TTL * 2)
    assert await a.handoff.is_online("anna")
    # Away through A (still serving requests): B's renewal must not bring her back.
    await a.handoff.set_online("anna", False)
    await asyncio.sleep(TTL * 2)
    assert not await b.handoff.is_online("anna")
