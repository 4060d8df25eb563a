"""Contract of ``Store`` as a whole: ping, close, several processes on one data set, retention
(``delete_older_than``, ``files_in_use``), and the guard that every interface method is covered
by these suites. Runs against every backend (``conftest.py``)."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.models import Conversation
from bot.storage.base import (
    ChannelBookkeeping,
    Conversations,
    Delivery,
    HandoffQueue,
    Records,
    Store,
    TranscriptLine,
    TurnRecord,
)
from tests.storage.contract.conftest import OpenStore
from tests.storage.contract.support import ALICE, BOB, CAROL, DAN, file_ref, text_inbound

HERE = Path(__file__).resolve().parent
# Which suite covers which interface: a method added to an interface must be called in its suite.
SUITES: dict[type, str] = {
    Conversations: "test_conversations.py",
    Delivery: "test_delivery.py",
    HandoffQueue: "test_handoff_queue.py",
    ChannelBookkeeping: "test_channel_bookkeeping.py",
    Records: "test_records.py",
    Store: "test_store_lifecycle.py",
}


def _now() -> datetime:
    return datetime.now(UTC)


# --- the backend as a whole ----------------------------------------------------------------------
async def test_ping_answers_true(store: Store) -> None:
    assert await store.ping() is True


async def test_another_process_sees_what_one_wrote_also_after_it_closed(
    open_store: OpenStore,
) -> None:
    first = open_store()
    await first.save_conversation(Conversation(ALICE, state="queued", locale="en"))
    line = await first.append_message(ALICE.id, "customer", "оператора!")
    await first.queue_put(ALICE.id, "telegram", "support", "оператора!")
    assert await first.remember_once("telegram", "update-1") is True
    await first.close()

    second = open_store()
    assert await second.ping() is True
    assert await second.load_conversation(ALICE) == Conversation(ALICE, "queued", "en")
    assert await second.messages(ALICE.id) == [line]
    assert [e.conversation_id for e in await second.queue_entries()] == [ALICE.id]
    assert await second.remember_once("telegram", "update-1") is False
    newer = await second.append_message(ALICE.id, "bot", "ждите")
    assert newer.id > line.id  # a cursor handed out by the first stays valid


async def test_closing_twice_is_harmless(open_store: OpenStore) -> None:
    # Shutdown paths may both close it (a signal during start-up's failure handling).
    store = open_store()
    await store.ping()
    await store.close()
    await store.close()


# --- retention -----------------------------------------------------------------------------------
async def _turn(store: Store, conversation: Conversation, *texts: str, **more: Any) -> None:
    lines = tuple(TranscriptLine("customer", text) for text in texts)
    await store.commit_turn(TurnRecord(conversation, lines, **more))


async def _populate(store: Store) -> None:
    """Alice waits in the queue and Dan is with an operator (open: kept whatever their age);
    Bob's chat with the bot is over; Carol has an inbound and a reply still in flight."""
    await _turn(store, Conversation(ALICE, state="queued"), "оператора!", "срочно")
    await store.queue_put(ALICE.id, "telegram", "support", "оператора!")
    await store.add_note(ALICE.id, "maria", "звонил вчера")
    await store.link_identity(ALICE, "750012345678", "signed")
    await store.set_reachable(ALICE.id, False, "blocked")

    await _turn(store, Conversation(DAN, state="operator"), "где мастер?")
    await store.queue_put(DAN.id, "rest", "visits", "мастер")
    await store.queue_assign(DAN.id, "ivan")

    inbox_id = await store.inbox_put("vk", "event-1", text_inbound(BOB, "m1"))
    reply = TranscriptLine("bot", "Баланс: 100 ₽")
    await _turn(store, Conversation(BOB), "баланс", "спасибо", deliver=(reply,), inbox_id=inbox_id)
    [sent] = await store.outbox_pending(conversation_id=BOB.id)
    await store.outbox_done(sent.id, platform_message_id="vk-1")
    await store.add_note(BOB.id, "ivan", "старая заметка")
    await store.link_identity(BOB, "380300112233", "operator")
    await store.set_reachable(BOB.id, False, "unsubscribed")
    await store.add_csat(BOB.id, 5, "ivan")
    await store.remember_once("viber", "token-1")
    await store.record_receipt("viber", "token-1", "delivered")
    await store.add_request("callback", BOB.id, {"when": "завтра"})
    await store.keep_unparsed("vk", "{broken", "not JSON")

    await store.inbox_put("telegram", "update-9", text_inbound(CAROL, "m9"))
    await _turn(store, Conversation(CAROL), "привет", deliver=(TranscriptLine("bot", "Привет!"),))


async def _observable(store: Store) -> dict[str, Any]:
    """Everything of ``_populate`` a reader can see through the interfaces."""
    seen: dict[str, Any] = {
        "queue": await store.queue_entries(),
        "inbox": await store.inbox_pending(),
        "outbox": await store.outbox_pending(),
        "requests": await store.requests(),
        "receipts": await store.receipts("viber", "token-1"),
    }
    for key in (ALICE, BOB, CAROL, DAN):
        seen[key.id] = (
            await store.load_conversation(key),
            await store.messages(key.id),
            await store.notes(key.id),
            await store.identity(key),
            await store.is_reachable(key.id),
        )
    return seen


async def test_a_cutoff_before_everything_deletes_nothing(store: Store) -> None:
    await _populate(store)
    before = await _observable(store)

    counts = await store.delete_older_than(_now() - timedelta(days=1))

    assert counts  # how many of each kind, for /metrics
    assert set(counts.values()) == {0}, counts
    assert await _observable(store) == before
    assert await store.remember_once("viber", "token-1") is False


async def test_old_data_goes_but_open_conversations_and_unfinished_deliveries_stay(
    store: Store,
) -> None:
    await _populate(store)
    before = await _observable(store)

    counts = await store.delete_older_than(_now() + timedelta(days=1))  # all of it is "old"

    # Open conversations, whatever their age: an operator is reading them.
    for key in (ALICE, DAN):
        assert (await _observable(store))[key.id] == before[key.id]
    assert await store.queue_entries() == before["queue"]
    # Unfinished deliveries: Carol's inbound still gets answered, her reply still sent.
    assert [p.inbound.message_id for p in await store.inbox_pending()] == ["m9"]
    assert [o.text for o in await store.outbox_pending()] == ["Привет!"]
    # Finished conversations go with their transcript, notes and identity link.
    for key in (BOB, CAROL):
        assert await store.load_conversation(key) is None
        assert await store.messages(key.id) == []
        assert await store.notes(key.id) == []
        assert await store.identity(key) is None
    assert await store.is_reachable(BOB.id) is True  # the stale "unsubscribed" mark is gone
    assert await store.requests() == []
    assert await store.receipts("viber", "token-1") == []
    assert await store.remember_once("viber", "token-1") is True  # its dedupe key is gone
    # Counted per kind, as /metrics shows them (retention_deleted_total{kind}).
    expected = {
        "messages": 3,  # Bob's two lines and Carol's one
        "conversations": 2,
        "identity_links": 1,
        "unreachable": 1,
        "notes": 1,
        "csat": 1,
        "inbox": 1,  # Bob's answered inbound; Carol's pending one stays
        "unparsed": 1,
        "outbox": 1,  # Bob's sent reply; Carol's pending one stays
        "dedupe": 1,
        "receipts": 1,
        "legacy_requests": 1,
    }
    assert {kind: counts.get(kind) for kind in expected} == expected


async def test_a_dry_run_counts_what_a_run_deletes_and_changes_nothing(store: Store) -> None:
    await _populate(store)
    before = await _observable(store)
    cutoff = _now() + timedelta(days=1)

    dry = await store.delete_older_than(cutoff, dry_run=True)

    assert await _observable(store) == before
    assert dry["messages"] > 0
    assert await store.delete_older_than(cutoff) == dry
    again = await store.delete_older_than(cutoff)
    assert set(again.values()) == {0}, again  # nothing left that is old


async def test_files_in_use_are_those_of_kept_lines_open_conversations_and_unsent_replies(
    store: Store,
) -> None:
    in_queue, in_transcript, unsent, sent = (file_ref(n) for n in range(1, 5))
    await store.commit_turn(
        TurnRecord(
            Conversation(ALICE, state="queued"),
            (TranscriptLine("customer", "фото роутера", attachments=(in_queue,)),),
        )
    )
    await store.queue_put(ALICE.id, "telegram", "support", "роутер")
    await store.commit_turn(
        TurnRecord(
            Conversation(BOB),
            (TranscriptLine("bot", "Ваш счёт", attachments=(in_transcript,)),),
            deliver=(
                TranscriptLine("bot", "Счёт", attachments=(unsent,)),
                TranscriptLine("bot", "Акт", attachments=(sent,)),
            ),
        )
    )
    _, delivered = await store.outbox_pending(conversation_id=BOB.id)
    await store.outbox_done(delivered.id, platform_message_id="vk-2")
    await store.append_message(CAROL.id, "customer", "без файлов")

    ids = {ref.file_id for ref in (in_queue, in_transcript, unsent)}
    assert await store.files_in_use(_now() - timedelta(days=1)) == ids
    # At a later cutoff every line is old: only the open conversation's and the unsent reply's
    # files are still named by what retention keeps.
    later = await store.files_in_use(_now() + timedelta(days=1))
    assert later == {in_queue.file_id, unsent.file_id}


# --- the guard -----------------------------------------------------------------------------------
def _interface_methods(interface: type) -> set[str]:
    """The methods ``interface`` itself declares: its abstract ones, and for ``Store`` the
    retention methods it defines with a default (a backend without them keeps everything)."""
    own = {
        name
        for name, value in vars(interface).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }
    return own | (set(interface.__abstractmethods__) - _inherited(interface))


def _inherited(interface: type) -> set[str]:
    return {
        name for base in interface.__mro__[1:] for name in getattr(base, "__abstractmethods__", ())
    }


def test_every_method_is_covered() -> None:
    missing: list[str] = []
    for interface, suite in SUITES.items():
        source = (HERE / suite).read_text(encoding="utf-8")
        for name in sorted(_interface_methods(interface)):
            if not re.search(rf"\.{name}\(", source):
                missing.append(f"{interface.__name__}.{name} (not called in {suite})")
    assert not missing, "every interface method needs a contract test: " + ", ".join(missing)
    covered = set().union(*map(_interface_methods, SUITES))
    assert covered >= set(Store.__abstractmethods__)  # no interface left out of SUITES
    assert {"delete_older_than", "files_in_use", "ping", "close"} <= covered
