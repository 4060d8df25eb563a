"""Contract of ``Delivery``: delivery-id dedupe, the durable inbox and the outbox, as the
ingress, the outbox dispatcher and the channels' webhooks use them. Runs against every backend
(``conftest.py``)."""

from __future__ import annotations

from bot.models import Conversation, ConversationKey, RenderedButton
from bot.storage.base import (
    PRIORITY_BULK,
    PRIORITY_REPLY,
    OutboundItem,
    Store,
    TranscriptLine,
    TurnRecord,
    bulk_delivery,
)
from tests.storage.contract.support import ALICE, BOB, CAROL, file_ref, rich_inbound, text_inbound


async def _deliver(
    store: Store, key: ConversationKey, *texts: str, priority: int | None = None
) -> None:
    """One turn of ``key`` whose replies go through the outbox."""
    lines = tuple(TranscriptLine("bot", text) for text in texts)
    await store.commit_turn(TurnRecord(Conversation(key), lines, deliver=lines, priority=priority))


def _texts(items: list[OutboundItem]) -> list[str]:
    return [item.text for item in items]


# --- dedupe --------------------------------------------------------------------------------------
async def test_remember_once_is_true_once_per_scope_and_id(store: Store) -> None:
    assert await store.remember_once("telegram", "update-42") is True
    assert await store.remember_once("telegram", "update-42") is False  # a redelivery
    assert await store.remember_once("telegram", "update-42") is False
    assert await store.remember_once("vk", "update-42") is True  # another platform's id
    assert await store.remember_once("telegram", "update-43") is True


# --- the inbox -----------------------------------------------------------------------------------
async def test_an_inbound_is_recorded_once_and_comes_back_whole(store: Store) -> None:
    inbound = rich_inbound(ALICE)
    first = await store.inbox_put("telegram", "update-1", inbound)
    assert first is not None
    assert await store.inbox_put("telegram", "update-1", inbound) is None  # a redelivery
    other_scope = await store.inbox_put("vk", "update-1", text_inbound(BOB, "m1"))
    assert other_scope is not None
    assert other_scope != first

    pending = await store.inbox_pending(ALICE.id)
    assert [(p.id, p.inbound, p.attempts) for p in pending] == [(first, inbound, 0)]


async def test_pending_inbounds_oldest_first_overall_and_per_conversation(store: Store) -> None:
    puts = [
        (ALICE, "u1"), (BOB, "u2"), (ALICE, "u3"), (CAROL, "u4"), (BOB, "u5"), (ALICE, "u6"),
    ]  # fmt: skip
    ids = {}
    for key, update in puts:
        ids[update] = await store.inbox_put("telegram", update, text_inbound(key, update))

    everything = await store.inbox_pending()
    assert [p.inbound.message_id for p in everything] == [update for _, update in puts]
    assert [p.id for p in everything] == [ids[update] for _, update in puts]
    alice = await store.inbox_pending(ALICE.id)
    assert [p.inbound.message_id for p in alice] == ["u1", "u3", "u6"]
    assert [p.inbound.message_id for p in await store.inbox_pending(BOB.id)] == ["u2", "u5"]
    assert await store.inbox_pending("telegram:nobody:nobody") == []


async def test_a_failed_inbound_is_retried_until_given_up(store: Store) -> None:
    failing = await store.inbox_put("telegram", "u1", text_inbound(ALICE, "u1"))
    fine = await store.inbox_put("telegram", "u2", text_inbound(BOB, "u2"))
    assert failing is not None
    assert fine is not None

    await store.inbox_retry_later(failing, "billing timed out", give_up=False)
    await store.inbox_retry_later(failing, "billing timed out", give_up=False)
    assert [(p.id, p.attempts) for p in await store.inbox_pending()] == [(failing, 2), (fine, 0)]

    await store.inbox_retry_later(failing, "x" * 10_000, give_up=True)  # long errors are fine
    assert [p.id for p in await store.inbox_pending()] == [fine]
    assert await store.inbox_pending(ALICE.id) == []
    # Parked for inspection, not forgotten: a redelivery of it is still recognised.
    assert await store.inbox_put("telegram", "u1", text_inbound(ALICE, "u1")) is None


async def test_answered_delivery_ids_stay_deduped_for_the_window_then_are_forgotten(
    store: Store,
) -> None:
    answered = await store.inbox_put("telegram", "100", text_inbound(ALICE, "u1"))
    waiting = await store.inbox_put("telegram", "101", text_inbound(BOB, "u2"))
    assert answered is not None
    await store.commit_turn(TurnRecord(Conversation(ALICE), (), inbox_id=answered))

    assert await store.inbox_forget(older_than_days=1) == 0  # answered just now: too recent
    assert await store.inbox_put("telegram", "100", text_inbound(ALICE, "u1")) is None

    # "Older than minus one day" is everything answered: the window has passed for it.
    assert await store.inbox_forget(older_than_days=-1) == 1
    reused = await store.inbox_put("telegram", "100", text_inbound(ALICE, "u9"))
    assert reused is not None  # the platform reused the id: a new message
    # What is not answered yet is never forgotten.
    assert [p.id for p in await store.inbox_pending(BOB.id)] == [waiting]
    assert await store.inbox_put("telegram", "101", text_inbound(BOB, "u2")) is None


async def test_an_unparsable_delivery_is_kept_whatever_it_holds(store: Store) -> None:
    # Kept for inspection must never turn into a failed webhook: a lone surrogate (what a
    # broken JSON escape decodes to), a huge body, an empty one.
    await store.keep_unparsed("telegram", '{"text": "\ud83d"}', "bad surrogate \udc00")
    await store.keep_unparsed("vk", "я" * 2_000_000, "too long " * 1000)
    await store.keep_unparsed("viber", "", "")
    assert await store.ping() is True


# --- the outbox ----------------------------------------------------------------------------------
async def test_an_outbox_item_carries_what_the_turn_delivered(store: Store) -> None:
    invoice = file_ref(1)
    line = TranscriptLine(
        "bot", "Ваш счёт", buttons=(RenderedButton("Оплатить", "/pay"),), attachments=(invoice,)
    )
    await store.commit_turn(TurnRecord(Conversation(BOB), (line,), deliver=(line,)))

    [item] = await store.outbox_pending()
    assert (item.conversation_id, item.channel, item.chat_id) == (BOB.id, "vk", "200")
    assert (item.text, item.buttons, item.attachments) == (
        "Ваш счёт",
        (RenderedButton("Оплатить", "/pay"),),
        (invoice,),
    )
    assert (item.attempts, item.priority, item.uncertain) == (0, PRIORITY_REPLY, False)


async def test_replies_go_before_bulk_messages_each_lane_in_id_order(store: Store) -> None:
    with bulk_delivery():  # an outage notice fanned out to every affected customer
        await _deliver(store, ALICE, "авария: Alice")
        await _deliver(store, BOB, "авария: Bob")
        # A turn that names its lane keeps it even inside a broadcast.
        await _deliver(store, CAROL, "ответ Carol", priority=PRIORITY_REPLY)
    await _deliver(store, ALICE, "ответ Alice 1", "ответ Alice 2")
    await _deliver(store, BOB, "плановые работы", priority=PRIORITY_BULK)
    await _deliver(store, BOB, "ответ Bob")

    pending = await store.outbox_pending()
    lanes = [item.priority for item in pending]
    assert lanes == sorted(lanes), "a backlog of bulk messages must never hide a reply"
    replies = [item for item in pending if item.priority == PRIORITY_REPLY]
    bulk = [item for item in pending if item.priority == PRIORITY_BULK]
    assert sorted(_texts(replies)) == sorted(
        ["ответ Carol", "ответ Alice 1", "ответ Alice 2", "ответ Bob"]
    )
    assert sorted(_texts(bulk)) == sorted(["авария: Alice", "авария: Bob", "плановые работы"])
    for lane in (replies, bulk):
        assert [item.id for item in lane] == sorted(item.id for item in lane)
    # Within one chat and lane, in the order the turns committed them.
    assert _texts(await store.outbox_pending(conversation_id=ALICE.id)) == [
        "ответ Alice 1",
        "ответ Alice 2",
        "авария: Alice",
    ]
    assert _texts(await store.outbox_pending(conversation_id=BOB.id)) == [
        "ответ Bob",
        "авария: Bob",
        "плановые работы",
    ]


async def test_the_outbox_per_conversation_and_up_to_a_limit(store: Store) -> None:
    await _deliver(store, ALICE, "a1", "a2", "a3")
    await _deliver(store, BOB, "b1", "b2")
    everything = await store.outbox_pending()
    assert len(everything) == 5

    for limit in (1, 2, 4):
        assert await store.outbox_pending(limit=limit) == everything[:limit]
    assert _texts(await store.outbox_pending(conversation_id=ALICE.id, limit=2)) == ["a1", "a2"]
    assert _texts(await store.outbox_pending(conversation_id=BOB.id)) == ["b1", "b2"]
    assert await store.outbox_pending(conversation_id=CAROL.id) == []


async def test_a_send_without_an_outcome_is_uncertain_until_one_is_recorded(store: Store) -> None:
    await _deliver(store, ALICE, "первое", "второе")
    first, second = await store.outbox_pending(conversation_id=ALICE.id)

    await store.outbox_sending(first.id)  # ... and the sender died before hearing back
    again = await store.outbox_pending(conversation_id=ALICE.id)
    assert [(i.id, i.uncertain) for i in again] == [(first.id, True), (second.id, False)]

    # The platform answered with an error: known not sent, so certain again, and retried.
    await store.outbox_attempt_failed(first.id, "429 Too Many Requests")
    [retry, _] = await store.outbox_pending(conversation_id=ALICE.id)
    assert (retry.id, retry.attempts, retry.uncertain) == (first.id, 1, False)

    await store.outbox_sending(first.id)
    await store.outbox_done(first.id, platform_message_id="tg-555")
    assert [i.id for i in await store.outbox_pending()] == [second.id]


async def test_done_items_leave_the_outbox_sent_or_finally_failed(store: Store) -> None:
    await _deliver(store, ALICE, "отправлено", "не отправить", "ждёт")
    sent, failed, waiting = await store.outbox_pending()

    await store.outbox_attempt_failed(failed.id, "403 bot was blocked")
    await store.outbox_attempt_failed(waiting.id, "timeout")
    await store.outbox_done(sent.id, platform_message_id="tg-1")
    await store.outbox_done(failed.id, error="403 bot was blocked by the user")

    [left] = await store.outbox_pending()
    assert (left.id, left.text, left.attempts) == (waiting.id, "ждёт", 1)
