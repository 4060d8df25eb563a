"""Telling a customer something outside a conversation turn (a payment arrived, services are
back on): in the channel they last wrote from, through the outbox, if they allow such messages
in a messenger (their notification preferences)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bot.catalog.models import Account
from bot.i18n import Translator
from bot.models import ConversationKey, Reply, Text
from bot.storage.base import Locks, Store, TranscriptLine, TurnRecord

log = logging.getLogger(__name__)


class CustomerNotices:
    def __init__(
        self,
        *,
        store: Store,
        locks: Locks,
        translator: Translator,
        delivers: Callable[[str], bool],
        notify_outbox: Callable[[], None],
    ) -> None:
        self._store = store
        self._locks = locks
        self._translator = translator
        self._delivers = delivers
        self._notify_outbox = notify_outbox

    async def last_conversation(self, contract: str) -> str | None:
        """The contract's conversation with the newest message (any channel)."""
        newest: tuple[str, str] | None = None
        for conversation_id in await self._store.conversations_of_contract(contract):
            last = await self._store.last_message(conversation_id)
            if last is None:
                continue
            stamp = last.at.isoformat()
            if newest is None or stamp > newest[0]:
                newest = (stamp, conversation_id)
        return newest[1] if newest else None

    async def tell(self, account: Account, topic: str, parts: Sequence[Text]) -> str | None:
        """Send ``parts`` as one system message; the conversation id, or None when the customer
        has no conversation, turned such messages off, or cannot be reached."""
        if "messenger" not in account.notifications.get(topic, ()):
            return None
        conversation_id = await self.last_conversation(account.contract_number)
        if conversation_id is None:
            return None
        return conversation_id if await self._send(conversation_id, topic, parts) else None

    async def tell_conversation(self, conversation_id: str, parts: Sequence[Text]) -> bool:
        """Send ``parts`` as one system message into this very conversation: an answer to what
        the customer asked there (their request is being handled), so no preference applies.
        False when the conversation is unknown or cannot be reached."""
        return await self._send(conversation_id, "conversation", parts)

    async def _send(self, conversation_id: str, topic: str, parts: Sequence[Text]) -> bool:
        if not await self._store.is_reachable(conversation_id):
            return False
        key = ConversationKey.parse(conversation_id)
        async with self._locks.hold(conversation_id):
            conversation = await self._store.load_conversation(key)
            if conversation is None:
                return False
            rendered = self._translator.render_reply(
                conversation.locale, Reply(tuple(parts), sender="system")
            )
            line = TranscriptLine("system", rendered.text, rendered.buttons)
            deliver = (line,) if self._delivers(key.channel) else ()
            await self._store.commit_turn(TurnRecord(conversation, (line,), deliver))
        if deliver:
            self._notify_outbox()
        log.info("customer notice (%s) in %s", topic, key.channel)
        return True
