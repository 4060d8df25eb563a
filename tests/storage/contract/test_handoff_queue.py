"""Contract of ``HandoffQueue``: the operators' queue, the compare-and-set claim, notes and
scores. Runs against every backend (``conftest.py``)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from bot.storage.base import Store
from tests.storage.contract.conftest import OpenStore
from tests.storage.contract.support import ALICE, BOB, CAROL, DAN, tick

CLAIMS = 20


async def test_a_queued_conversation_comes_back_and_an_unknown_one_is_none(store: Store) -> None:
    assert await store.queue_get(ALICE.id) is None
    put = await store.queue_put(ALICE.id, "telegram", "billing", "оператора!")

    assert (put.conversation_id, put.channel, put.department, put.reason) == (
        ALICE.id,
        "telegram",
        "billing",
        "оператора!",
    )
    assert isinstance(put.queued_at, datetime)
    assert put.queued_at.tzinfo is not None
    assert (put.operator, put.assigned_at, put.first_response_at, put.notified_position) == (
        None,
        None,
        None,
        None,
    )
    assert await store.queue_get(ALICE.id) == put
    assert await store.queue_get(BOB.id) is None


async def test_queueing_again_moves_it_keeps_its_place_and_unassigns_it(store: Store) -> None:
    first = await store.queue_put(ALICE.id, "telegram", "support", "нет интернета")
    assert await store.queue_assign(ALICE.id, "maria") is True
    await tick()

    moved = await store.queue_put(ALICE.id, "telegram", "billing", "вопрос по счёту")
    assert (moved.department, moved.reason) == ("billing", "вопрос по счёту")
    assert moved.queued_at == first.queued_at  # the wait so far still counts
    assert (moved.operator, moved.assigned_at) == (None, None)
    assert await store.queue_entries() == [moved]


async def test_the_queue_lists_everything_with_people_oldest_first(store: Store) -> None:
    # Ids put in an order that is neither alphabetical nor reversed.
    for key in (CAROL, ALICE, DAN, BOB):
        await store.queue_put(key.id, key.channel, "support", "помогите")
        await tick()
    await store.queue_assign(DAN.id, "maria")  # with an operator: still listed, in its place
    await store.queue_put(ALICE.id, "telegram", "billing", "переведён")  # moved: keeps its place

    entries = await store.queue_entries()
    assert [e.conversation_id for e in entries] == [CAROL.id, ALICE.id, DAN.id, BOB.id]
    assert [e.queued_at for e in entries] == sorted(e.queued_at for e in entries)
    assert [(e.operator, e.department) for e in entries] == [
        (None, "support"),
        (None, "billing"),
        ("maria", "support"),
        (None, "support"),
    ]


async def test_of_many_simultaneous_claims_exactly_one_wins(open_store: OpenStore) -> None:
    # Two gateway processes (two stores on the same data), operators clicking "take" at once.
    first, second = open_store(), open_store()
    await first.queue_put(ALICE.id, "telegram", "support", "помогите")
    operators = [f"operator-{n}" for n in range(CLAIMS)]

    won = await asyncio.gather(
        *(
            (first if n % 2 else second).queue_assign(ALICE.id, name, only_if_unassigned=True)
            for n, name in enumerate(operators)
        )
    )

    assert won.count(True) == 1, won
    winner = operators[won.index(True)]
    for reader in (first, second):
        entry = await reader.queue_get(ALICE.id)
        assert entry is not None
        assert entry.operator == winner
        assert entry.assigned_at is not None
    # Once taken, a further claim loses; only an explicit reassignment moves it.
    assert await second.queue_assign(ALICE.id, "late", only_if_unassigned=True) is False


async def test_assignment_takes_over_clears_and_can_be_claimed_again(store: Store) -> None:
    await store.queue_put(ALICE.id, "telegram", "support", "помогите")
    assert await store.queue_assign(ALICE.id, "maria", only_if_unassigned=True) is True
    assert await store.queue_assign(ALICE.id, "ivan") is True  # a supervisor reassigns
    entry = await store.queue_get(ALICE.id)
    assert entry is not None
    assert entry.operator == "ivan"

    assert await store.queue_assign(ALICE.id, None) is True  # back to the queue
    cleared = await store.queue_get(ALICE.id)
    assert cleared is not None
    assert (cleared.operator, cleared.assigned_at) == (None, None)
    assert await store.queue_assign(ALICE.id, "olga", only_if_unassigned=True) is True


async def test_claiming_a_conversation_no_longer_queued_fails_and_queues_nothing(
    store: Store,
) -> None:
    # It went back to the bot while the operator was clicking.
    assert await store.queue_assign(BOB.id, "maria", only_if_unassigned=True) is False
    assert await store.queue_assign(BOB.id, "maria") is False
    assert await store.queue_get(BOB.id) is None
    assert await store.queue_entries() == []


async def test_the_first_response_is_recorded_once(store: Store) -> None:
    await store.queue_put(ALICE.id, "telegram", "support", "помогите")
    await store.queue_assign(ALICE.id, "maria")
    await store.queue_responded(ALICE.id)
    entry = await store.queue_get(ALICE.id)
    assert entry is not None
    assert entry.first_response_at is not None
    assert entry.first_response_at.tzinfo is not None
    await tick()

    await store.queue_responded(ALICE.id)  # the operator's second message
    again = await store.queue_get(ALICE.id)
    assert again is not None
    assert again.first_response_at == entry.first_response_at
    await store.queue_responded(BOB.id)  # not queued: nothing to record, nothing created
    assert await store.queue_get(BOB.id) is None


async def test_the_position_the_customer_was_told_is_kept(store: Store) -> None:
    await store.queue_put(ALICE.id, "telegram", "support", "помогите")
    await store.queue_put(BOB.id, "vk", "support", "помогите")
    await store.queue_notified(ALICE.id, 3)
    await store.queue_notified(ALICE.id, 2)

    alice, bob = await store.queue_get(ALICE.id), await store.queue_get(BOB.id)
    assert alice is not None
    assert bob is not None
    assert (alice.notified_position, bob.notified_position) == (2, None)


async def test_a_removed_conversation_leaves_the_queue(store: Store) -> None:
    await store.queue_put(ALICE.id, "telegram", "support", "помогите")
    bob = await store.queue_put(BOB.id, "vk", "support", "помогите")
    await store.queue_remove(ALICE.id)
    await store.queue_remove(ALICE.id)  # closed twice (two operators): harmless
    await store.queue_remove(CAROL.id)  # never queued: harmless

    assert await store.queue_get(ALICE.id) is None
    assert await store.queue_entries() == [bob]
    assert await store.queue_assign(ALICE.id, "maria", only_if_unassigned=True) is False


async def test_notes_in_the_order_written_per_conversation(store: Store) -> None:
    assert await store.notes(ALICE.id) == []
    first = await store.add_note(ALICE.id, "maria", "Клиент просит перезвонить после 18:00")
    await store.add_note(BOB.id, "ivan", "чужая заметка")
    second = await store.add_note(ALICE.id, "ivan", "Передал в биллинг 👍")

    assert first.at.tzinfo is not None
    assert await store.notes(ALICE.id) == [first, second]
    assert [(n.author, n.text) for n in await store.notes(BOB.id)] == [("ivan", "чужая заметка")]


async def test_scores_are_accepted_with_or_without_an_operator(store: Store) -> None:
    # Nothing reads scores back through the store (reports read them elsewhere); the contract
    # is that a customer's score is taken, whoever was with them, and retention counts it.
    await store.add_csat(ALICE.id, 5, "maria")
    await store.add_csat(BOB.id, 1, None)
    await store.add_csat(ALICE.id, 4, "maria")  # scored again after a second conversation
    assert await store.ping() is True
