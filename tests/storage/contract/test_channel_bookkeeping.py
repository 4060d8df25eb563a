"""Contract of ``ChannelBookkeeping``: button payload tokens, reachability and delivery
receipts, as the channels use them. Runs against every backend (``conftest.py``)."""

from __future__ import annotations

from bot.storage.base import Store
from tests.storage.contract.conftest import OpenStore
from tests.storage.contract.support import ALICE, BOB

# Telegram's callback_data holds 64 bytes (bot/channels/telegram.py CALLBACK_DATA_BYTES); VK
# wraps the token in {"t": ...} inside a 255-byte payload. Viber tells a token from typed
# text by its leading "~" and the absence of spaces (bot/channels/viber.py _resolve_token).
TELEGRAM_CALLBACK_BYTES = 64
LONG_PAYLOAD = "/tariff/select?" + "&".join(f"option{n}=значение-{n}" for n in range(30))


async def test_a_long_payload_gets_a_short_stable_token_every_process_resolves(
    open_store: OpenStore,
) -> None:
    first, second = open_store(), open_store()  # two gateway processes
    token = await first.payload_token(LONG_PAYLOAD)

    assert len(token.encode()) <= TELEGRAM_CALLBACK_BYTES
    assert token.startswith("~")
    assert token.isascii()
    assert " " not in token
    assert await first.payload_token(LONG_PAYLOAD) == token  # the same button, rendered again
    assert await second.payload_token(LONG_PAYLOAD) == token
    # The customer presses the button rendered by one process; another receives the press.
    assert await second.payload_for(token) == LONG_PAYLOAD

    other = await second.payload_token(LONG_PAYLOAD + "&more=1")
    assert other != token
    assert await first.payload_for(other) == LONG_PAYLOAD + "&more=1"


async def test_an_unknown_token_resolves_to_nothing(store: Store) -> None:
    await store.payload_token(LONG_PAYLOAD)
    assert await store.payload_for("~0123456789abcdef0123") is None
    assert await store.payload_for("~привет") is None  # a customer typing a tilde
    assert await store.payload_for("") is None


async def test_reachable_until_blocked_and_again_when_back(store: Store) -> None:
    assert await store.is_reachable(ALICE.id) is True  # nobody said otherwise

    await store.set_reachable(ALICE.id, False, "blocked by the user")
    assert await store.is_reachable(ALICE.id) is False
    assert await store.is_reachable(BOB.id) is True
    await store.set_reachable(ALICE.id, False, "blocked again")  # told twice: still blocked
    assert await store.is_reachable(ALICE.id) is False

    await store.set_reachable(ALICE.id, True, "wrote to us")
    assert await store.is_reachable(ALICE.id) is True
    await store.set_reachable(BOB.id, True)  # already reachable: harmless
    assert await store.is_reachable(BOB.id) is True


async def test_receipts_per_message_in_the_order_received(store: Store) -> None:
    assert await store.receipts("viber", "msg-1") == []
    await store.record_receipt("viber", "msg-1", "delivered")
    await store.record_receipt("viber", "msg-2", "failed")
    await store.record_receipt("vk", "msg-1", "delivered")
    await store.record_receipt("viber", "msg-1", "seen")

    assert await store.receipts("viber", "msg-1") == ["delivered", "seen"]
    assert await store.receipts("viber", "msg-2") == ["failed"]
    assert await store.receipts("vk", "msg-1") == ["delivered"]
    assert await store.receipts("vk", "msg-2") == []
