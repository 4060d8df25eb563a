"""Contract of ``Conversations``: the dialog, the console and the notices read and write these.
Runs against every backend (``conftest.py``)."""

from __future__ import annotations

from datetime import datetime

from bot.models import Conversation, ConversationKey, RenderedButton
from bot.serialize import attachments_of
from bot.storage.base import PRIORITY_REPLY, Store, TranscriptLine, TurnRecord
from tests.storage.contract.support import ALICE, BOB, CAROL, DAN, file_ref, text_inbound, tick

IVANOV = "750012345678"
PETROV = "380300112233"


def _conversation(key: ConversationKey = ALICE) -> Conversation:
    return Conversation(
        key=key,
        state="operator",
        locale="en",
        contract_number=IVANOV,
        dialog={
            "flow": "coverage",
            "slots": {"city": "chita", "address": "ул. Бутина, 10, кв. 5", "house": "10а"},
            "history": [{"intent": "приветствие", "score": 0.93}, {"intent": "coverage"}],
            "asked": None,
            "retries": 2,
            "flags": [True, False],
            "emoji": "👍",
        },
    )


# --- conversations -------------------------------------------------------------------------------
async def test_an_unknown_conversation_is_none(store: Store) -> None:
    assert await store.load_conversation(ALICE) is None


async def test_a_conversation_comes_back_as_saved_and_saving_again_replaces_it(
    store: Store,
) -> None:
    await store.save_conversation(_conversation())
    assert await store.load_conversation(ALICE) == _conversation()

    back_to_bot = Conversation(ALICE, state="bot", locale="ru", contract_number=None, dialog={})
    await store.save_conversation(back_to_bot)
    assert await store.load_conversation(ALICE) == back_to_bot


async def test_conversations_are_told_apart_by_channel_chat_and_user(store: Store) -> None:
    group_member = ConversationKey("telegram", "100", "555")  # same chat, another user
    same_ids_elsewhere = ConversationKey("vk", "100", "100")
    await store.save_conversation(Conversation(ALICE, state="queued", locale="ru"))
    await store.save_conversation(Conversation(group_member, state="bot", locale="en"))

    alice = await store.load_conversation(ALICE)
    member = await store.load_conversation(group_member)
    assert alice is not None
    assert member is not None
    assert (alice.state, alice.locale) == ("queued", "ru")
    assert (member.state, member.locale) == ("bot", "en")
    assert await store.load_conversation(same_ids_elsewhere) is None


# --- transcripts ---------------------------------------------------------------------------------
async def test_the_transcript_keeps_order_senders_buttons_and_meta(store: Store) -> None:
    first = await store.append_message(ALICE.id, "customer", "Какой у меня баланс?")
    second = await store.append_message(
        ALICE.id,
        "bot",
        "Баланс: 880,50 ₽",
        buttons=(RenderedButton("История платежей", "/history"), RenderedButton("Меню", "/")),
        meta={"intent": "balance", "score": 0.87, "entities": [{"type": "contract"}]},
    )
    await store.append_message(BOB.id, "customer", "привет")
    third = await store.append_message(ALICE.id, "operator", "Здравствуйте, это Мария.")

    assert first.id < second.id < third.id
    assert isinstance(second.at, datetime)
    assert second.at.tzinfo is not None
    assert await store.messages(ALICE.id) == [first, second, third]
    assert [m.text for m in await store.messages(BOB.id)] == ["привет"]
    assert await store.messages(CAROL.id) == []


async def test_the_transcript_pages_with_after_and_limit(store: Store) -> None:
    sent = [await store.append_message(ALICE.id, "customer", f"сообщение {i}") for i in range(7)]
    await store.append_message(BOB.id, "customer", "чужое")

    first_page = await store.messages(ALICE.id, limit=3)
    assert [m.text for m in first_page] == ["сообщение 0", "сообщение 1", "сообщение 2"]
    assert await store.messages(ALICE.id, after=sent[2].id) == sent[3:]
    page = await store.messages(ALICE.id, after=sent[2].id, limit=2)
    assert [m.text for m in page] == ["сообщение 3", "сообщение 4"]
    assert await store.messages(ALICE.id, after=sent[-1].id) == []

    # A cursor walks the whole transcript once, in order, whatever the page size.
    seen: list[str] = []
    cursor = 0
    while batch := await store.messages(ALICE.id, after=cursor, limit=3):
        seen.extend(m.text for m in batch)
        cursor = batch[-1].id
    assert seen == [f"сообщение {i}" for i in range(7)]


async def test_last_message_overall_and_by_sender(store: Store) -> None:
    assert await store.last_message(ALICE.id) is None
    await store.append_message(ALICE.id, "customer", "первое")
    await store.append_message(ALICE.id, "customer", "второе")
    await store.append_message(BOB.id, "customer", "чужое, позже")
    answer = await store.append_message(ALICE.id, "bot", "ответ")

    assert await store.last_message(ALICE.id) == answer
    customer = await store.last_message(ALICE.id, sender="customer")
    assert customer is not None
    assert customer.text == "второе"
    assert await store.last_message(ALICE.id, sender="operator") is None


# --- a turn's commit -----------------------------------------------------------------------------
async def test_commit_turn_writes_state_lines_replies_and_marks_the_inbound_done(
    store: Store,
) -> None:
    earlier = await store.append_message(ALICE.id, "system", "разговор начат")
    inbox_id = await store.inbox_put("telegram", "update-1", text_inbound(ALICE, "m1"))
    assert inbox_id is not None
    invoice = file_ref(1)
    turn = TurnRecord(
        conversation=_conversation(),
        lines=(
            TranscriptLine("customer", "пришлите счёт", meta={"intent": "invoice"}),
            TranscriptLine(
                "bot",
                "Вот ваш счёт",
                buttons=(RenderedButton("Оплатить", "/pay"),),
                attachments=(invoice,),
            ),
        ),
        deliver=(
            TranscriptLine("bot", "Вот ваш счёт", attachments=(invoice,)),
            TranscriptLine("bot", "Что-нибудь ещё?", buttons=(RenderedButton("Нет", "/no"),)),
        ),
        inbox_id=inbox_id,
    )

    entries = await store.commit_turn(turn)

    assert [(e.sender, e.text) for e in entries] == [
        ("customer", "пришлите счёт"),
        ("bot", "Вот ваш счёт"),
    ]
    assert earlier.id < entries[0].id < entries[1].id
    assert all(e.conversation_id == ALICE.id and e.at.tzinfo is not None for e in entries)
    assert entries[0].meta["intent"] == "invoice"
    assert entries[1].buttons == (RenderedButton("Оплатить", "/pay"),)
    assert attachments_of(entries[1].meta) == (invoice,)  # readers find the files in the meta
    assert await store.messages(ALICE.id) == [earlier, *entries]
    assert await store.load_conversation(ALICE) == _conversation()

    outbox = await store.outbox_pending(conversation_id=ALICE.id)
    assert [(o.text, o.attachments, o.buttons) for o in outbox] == [
        ("Вот ваш счёт", (invoice,), ()),
        ("Что-нибудь ещё?", (), (RenderedButton("Нет", "/no"),)),
    ]
    assert all(o.priority == PRIORITY_REPLY for o in outbox)
    assert await store.inbox_pending() == []  # answered: not processed again after a restart


async def test_commit_turn_with_nothing_to_deliver_or_mark(store: Store) -> None:
    inbox_id = await store.inbox_put("vk", "event-1", text_inbound(BOB, "m1"))
    assert await store.commit_turn(TurnRecord(Conversation(BOB, state="bot"), ())) == []

    conversation = await store.load_conversation(BOB)
    assert conversation is not None
    assert conversation.state == "bot"
    assert await store.messages(BOB.id) == []
    assert await store.outbox_pending() == []
    assert [p.id for p in await store.inbox_pending()] == [inbox_id]  # not this turn's to mark


async def test_recent_conversations_are_by_state_most_recently_active_first(
    store: Store,
) -> None:
    await store.save_conversation(Conversation(ALICE, state="bot"))
    await tick()
    await store.save_conversation(Conversation(BOB, state="bot"))
    await tick()
    await store.save_conversation(Conversation(CAROL, state="queued"))
    await tick()
    await store.commit_turn(TurnRecord(Conversation(DAN, state="bot"), ()))
    await tick()
    await store.save_conversation(Conversation(ALICE, state="bot", locale="en"))  # active again

    assert await store.recent_conversations(state="bot") == [ALICE.id, DAN.id, BOB.id]
    assert await store.recent_conversations(state="bot", limit=2) == [ALICE.id, DAN.id]
    assert await store.recent_conversations(state="queued") == [CAROL.id]
    assert await store.recent_conversations(state="closed") == []

    await tick()
    await store.save_conversation(Conversation(BOB, state="operator"))  # taken over: not "bot"
    assert await store.recent_conversations(state="bot") == [ALICE.id, DAN.id]


async def test_conversations_of_a_contract_on_any_channel_oldest_first(store: Store) -> None:
    # Alice identified in the dialog (the contract is on her conversation) and wrote first;
    # Bob's VK account was linked to the same contract later; Carol has another contract.
    await store.save_conversation(Conversation(ALICE, contract_number=IVANOV))
    await store.append_message(ALICE.id, "customer", "баланс")
    await tick()
    await store.append_message(BOB.id, "customer", "привет")
    await store.save_conversation(Conversation(BOB))
    await store.link_identity(BOB, IVANOV, "signed")
    await store.save_conversation(Conversation(CAROL, contract_number=PETROV))
    await store.append_message(CAROL.id, "customer", "привет")

    assert await store.conversations_of_contract(IVANOV) == [ALICE.id, BOB.id]
    assert await store.conversations_of_contract(PETROV) == [CAROL.id]
    assert await store.conversations_of_contract("000000000000") == []

    assert await store.revoke_identity(BOB) is True
    await store.save_conversation(Conversation(ALICE, contract_number=None))  # signed out
    assert await store.conversations_of_contract(IVANOV) == []


# --- identity links ------------------------------------------------------------------------------
async def test_identity_link_relink_and_revoke(store: Store) -> None:
    assert await store.identity(ALICE) is None

    await store.link_identity(ALICE, IVANOV, "signed")
    link = await store.identity(ALICE)
    assert link is not None
    assert (link.key, link.contract_number, link.method) == (ALICE, IVANOV, "signed")
    assert link.linked_at.tzinfo is not None
    assert await store.identity(BOB) is None

    await store.link_identity(ALICE, PETROV, "operator")
    relinked = await store.identity(ALICE)
    assert relinked is not None
    assert (relinked.contract_number, relinked.method) == (PETROV, "operator")

    await store.link_identity(BOB, IVANOV, "signed")
    assert await store.revoke_identity(ALICE) is True
    assert await store.identity(ALICE) is None
    assert await store.revoke_identity(ALICE) is False  # nothing left to revoke
    bob = await store.identity(BOB)
    assert bob is not None
    assert bob.contract_number == IVANOV
