"""The operator API (CONTRACTS.md §2) that the console at /operator/ uses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from bot.billing import Billing
from bot.billing.base import BillingUnavailable
from bot.catalog.catalog import Catalog
from bot.handoff.audit import audit
from bot.handoff.auth import AUTH_METRICS, SOCKETS, authorized, current_session
from bot.handoff.customers import CustomerDesk
from bot.handoff.files import OPERATOR_FILES, UploadRefused, read_upload
from bot.handoff.messages import message_json
from bot.handoff.service import HandoffError, HandoffService
from bot.http import json_response
from bot.i18n import Translator
from bot.models import Button, Conversation, ConversationKey, Text
from bot.selfservice.service import AccountActions
from bot.storage.base import QueueEntry, Store
from bot.untrusted import SHORT_TEXT_LIMIT, UntrustedInput, clean_text, loads, text_limit

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What an operator may write in one message or note: what the console's own door takes.
TEXT_LIMIT = text_limit("operator")
# channel:chat:user, each part short; a longer id names no conversation.
_ID_LIMIT = 512


def _errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except HandoffError as exc:
            return json_response({"error": str(exc)}, status=exc.status)

    return wrapped


class OperatorApi:
    def __init__(
        self,
        *,
        service: HandoffService,
        store: Store,
        catalog: Catalog,
        billing: Billing,
        translator: Translator,
        menu: Sequence[Button],
        account_actions: AccountActions | None = None,
    ) -> None:
        self._service = service
        self._store = store
        self._catalog = catalog
        self._billing = billing
        self._translator = translator
        self._menu = tuple(menu)
        self._customers = CustomerDesk(billing=billing, catalog=catalog, actions=account_actions)

    def routes(self, app: web.Application) -> None:
        base = "/api/v1/operator"
        app.router.add_post(f"{base}/status", _errors(self.status))
        app.router.add_get(f"{base}/queue", _errors(self.queue))
        app.router.add_get(f"{base}/live", _errors(self.live))
        app.router.add_get(f"{base}/events", self.events)
        conv = f"{base}/conversations/{{conversation_id}}"
        app.router.add_get(conv, _errors(self.conversation))
        app.router.add_post(f"{conv}/claim", _errors(self.claim))
        app.router.add_post(f"{conv}/messages", _errors(self.reply))
        app.router.add_post(f"{conv}/files", _errors(self.send_file))
        app.router.add_post(f"{conv}/notes", _errors(self.note))
        app.router.add_post(f"{conv}/transfer", _errors(self.transfer))
        app.router.add_post(f"{conv}/release", _errors(self.release))
        app.router.add_post(f"{conv}/close", _errors(self.close))
        self._customers.routes(app, base)  # the customer card and account actions

    @staticmethod
    def _id(request: web.Request) -> str:
        """The conversation id of the path; 404 for one that cannot name a conversation (it
        is looked up in the store, which must not see lone surrogates or megabytes)."""
        raw = unquote(request.match_info["conversation_id"])
        conversation_id = clean_text(raw, _ID_LIMIT)
        if conversation_id != raw or conversation_id.count(":") < 2:
            raise HandoffError("no such conversation", 404)
        return conversation_id

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = loads(await request.read())
        except UntrustedInput as exc:
            raise HandoffError(str(exc), 400) from None
        if not isinstance(body, dict):
            raise HandoffError("the body must be a JSON object", 400)
        return body

    @staticmethod
    def _text(body: dict[str, Any], key: str = "text") -> str:
        text = body.get(key)
        if not isinstance(text, str) or len(text) > TEXT_LIMIT:
            raise HandoffError(f"'{key}' must be a string of at most {TEXT_LIMIT} characters", 400)
        return clean_text(text, TEXT_LIMIT)

    @staticmethod
    def _short(body: dict[str, Any], key: str) -> str | None:
        value = body.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or len(value) > SHORT_TEXT_LIMIT:
            raise HandoffError(f"'{key}' must be a string", 400)
        return clean_text(value, SHORT_TEXT_LIMIT)

    async def status(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        status = (await self._body(request)).get("status")
        if status not in ("online", "away"):
            raise HandoffError("status must be online or away", 400)
        await self._service.set_online(operator.login, status == "online")
        if status == "online":
            await self._service.assign_waiting()
        return json_response({"status": status})

    async def queue(self, request: web.Request) -> web.StreamResponse:
        await authorized(request, write=False)
        out = []
        now = self._service.now()
        waiting_rank: dict[str, int] = {}
        for entry in await self._store.queue_entries():
            if entry.operator is None:
                waiting_rank[entry.department] = waiting_rank.get(entry.department, 0) + 1
            out.append(await self._queue_item(entry, now, waiting_rank.get(entry.department)))
        return json_response({"conversations": out})

    async def live(self, request: web.Request) -> web.StreamResponse:
        """Conversations the bot is having now, newest first: an operator may take one over."""
        await authorized(request, write=False)
        out = []
        for conversation_id in await self._store.recent_conversations(state="bot", limit=50):
            last = await self._store.last_message(conversation_id)
            out.append(
                {
                    "conversation_id": conversation_id,
                    "channel": ConversationKey.parse(conversation_id).channel,
                    "last_message": message_json(last) if last else None,
                }
            )
        return json_response({"conversations": out})

    async def _queue_item(self, entry: QueueEntry, now: Any, rank: int | None) -> dict[str, Any]:
        conversation = await self._store.load_conversation(
            ConversationKey.parse(entry.conversation_id)
        )
        last = await self._store.last_message(entry.conversation_id, sender="customer")
        contract = conversation.contract_number if conversation else None
        account = await self._billing.account(contract) if contract else None
        return {
            "conversation_id": entry.conversation_id,
            "channel": entry.channel,
            "department": entry.department,
            "reason": entry.reason,
            "state": "operator" if entry.operator else "queued",
            "operator": entry.operator,
            "waiting_seconds": int((now - entry.queued_at).total_seconds()),
            "position": None if entry.operator else rank,
            "customer": {"name": account.holder_name if account else None, "contract": contract},
            "last_message": message_json(last) if last else None,
        }

    async def conversation(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=False)
        conversation_id = self._id(request)
        conversation = await self._store.load_conversation(ConversationKey.parse(conversation_id))
        if conversation is None:
            raise HandoffError("no such conversation", 404)
        # The transcript, and with it the customer's card and other conversations.
        await audit(
            request, "conversation.open", login=operator.login, target=conversation_id,
            contract=conversation.contract_number,
        )  # fmt: skip
        entry = await self._store.queue_get(conversation_id)
        messages = await self._store.messages(conversation_id, limit=10_000)
        return json_response(
            {
                "conversation_id": conversation_id,
                "channel": conversation.key.channel,
                "state": conversation.state,
                "department": entry.department if entry else None,
                "operator": entry.operator if entry else None,
                "locale": conversation.locale,
                "messages": [message_json(m) for m in messages],
                "notes": [
                    {"author": n.author, "text": n.text, "at": n.at.isoformat()}
                    for n in await self._store.notes(conversation_id)
                ],
                "card": await self._card(conversation),
                "history": await self._history(conversation),
                "canned": await self._canned(conversation, operator.name),
            }
        )

    async def _card(self, conversation: Conversation) -> dict[str, Any] | None:
        """The same card as ``GET /customers/{contract}``, so the console renders one thing."""
        if not conversation.contract_number:
            return None
        try:
            card = await self._customers.card_of(conversation.contract_number)
        except BillingUnavailable:
            # The transcript still opens; the card says why it is empty.
            return {"contract": conversation.contract_number, "unavailable": True}
        return card or {"contract": conversation.contract_number}

    async def _history(self, conversation: Conversation) -> list[dict[str, Any]]:
        """Every other conversation of the same contract, on any channel, bot turns included."""
        if not conversation.contract_number:
            return []
        out = []
        for other in await self._store.conversations_of_contract(conversation.contract_number):
            if other == conversation.id:
                continue
            messages = await self._store.messages(other, limit=10_000)
            out.append(
                {
                    "conversation_id": other,
                    "channel": ConversationKey.parse(other).channel,
                    "started_at": messages[0].at.isoformat() if messages else None,
                    "messages": [message_json(m) for m in messages],
                }
            )
        return out

    async def _canned(self, conversation: Conversation, operator_name: str) -> list[dict[str, str]]:
        account = (
            await self._billing.account(conversation.contract_number)
            if conversation.contract_number
            else None
        )
        locale = conversation.locale
        name = (
            account.holder_name.split()[1] if account and len(account.holder_name.split()) > 1
            else self._translator.render(locale, Text("handoff.customer"))
        )  # fmt: skip
        values = {"name": name, "contract": conversation.contract_number or "—",
                  "operator": operator_name}  # fmt: skip
        out = []
        for key in self._service.config.canned:
            title = self._translator.render(locale, Text(f"canned.{key}.title"))
            text = self._translator.render(locale, Text(f"canned.{key}.text", values))
            out.append({"id": key, "title": title, "text": text})
        return out

    async def claim(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        conversation_id = self._id(request)
        await self._service.claim(conversation_id, operator)
        await audit(request, "conversation.claim", login=operator.login, target=conversation_id)
        return json_response({"state": "operator"})

    async def reply(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        conversation_id = self._id(request)
        text = self._text(await self._body(request))
        entry = await self._service.reply(conversation_id, operator, text)
        return json_response({"message": message_json(entry)})

    async def send_file(self, request: web.Request) -> web.StreamResponse:
        """A file for the customer (multipart ``file``), sent through their channel like the
        bot's invoice. Checked before anything is stored: the session and CSRF token, that this
        operator has the conversation, the size and the type (by content)."""
        operator = await authorized(request, write=True)
        conversation_id = self._id(request)
        await self._service.check_owned(conversation_id, operator)
        files = request.app.get(OPERATOR_FILES)
        if files is None:
            raise HandoffError("this gateway keeps no files", 404)
        try:
            name, data, content_type = await read_upload(request)
        except UploadRefused as refused:
            raise HandoffError(refused.code, refused.status) from None
        ref = await files.put(data, name, content_type)
        entry = await self._service.reply(conversation_id, operator, "", (ref,))
        return json_response({"message": message_json(entry)})

    async def note(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        conversation_id = self._id(request)
        text = self._text(await self._body(request))
        return json_response({"note": await self._service.note(conversation_id, operator, text)})

    async def transfer(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        conversation_id = self._id(request)
        body = await self._body(request)
        to_operator = self._short(body, "to_operator")
        to_department = self._short(body, "to_department")
        note = self._text(body, "note") if body.get("note") is not None else None
        await self._service.transfer(
            conversation_id,
            operator,
            to_operator=to_operator,
            to_department=to_department,
            note=note,
        )
        await audit(
            request, "conversation.transfer", login=operator.login, target=conversation_id,
            to_operator=to_operator, to_department=to_department,
        )  # fmt: skip
        return json_response({"ok": True})

    async def release(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        conversation_id = self._id(request)
        await self._service.release(conversation_id, operator, self._menu)
        await audit(request, "conversation.release", login=operator.login, target=conversation_id)
        return json_response({"state": "bot"})

    async def close(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        conversation_id = self._id(request)
        await self._service.close_chat(conversation_id, operator)
        await audit(request, "conversation.close", login=operator.login, target=conversation_id)
        return json_response({"state": "closed"})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Live events for the console, for as long as the session lives: the socket closes
        (code 4401) as soon as this process ends the session, and within the re-check interval
        (``SESSION_RECHECK_SECONDS``) when another process did."""
        await authorized(request, write=False)
        session = await current_session(request)
        socket = web.WebSocketResponse(heartbeat=30)
        await socket.prepare(request)
        async with (
            request.config_dict[SOCKETS].watch(session) as ended,
            self._service.events.subscribe() as queue,
        ):
            reader = asyncio.ensure_future(self._drain(socket))
            ending = asyncio.ensure_future(ended.wait())
            getter: asyncio.Future[Any] | None = None
            try:
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {getter, reader, ending}, return_when=asyncio.FIRST_COMPLETED
                    )
                    # The session first: an event that arrived with the logout is not sent.
                    if ended.is_set():
                        metrics = request.config_dict.get(AUTH_METRICS)
                        if metrics is not None:
                            metrics.inc("operator_sockets_closed_total")
                        await socket.close(code=4401, message=b"session ended")
                        break
                    if reader in done:  # the console went away
                        break
                    await socket.send_json(getter.result())
                    getter = None
            except ConnectionResetError:
                pass
            finally:
                for task in (reader, ending, getter):
                    if task is not None:
                        task.cancel()
                with contextlib.suppress(Exception):
                    await socket.close()
        return socket

    @staticmethod
    async def _drain(socket: web.WebSocketResponse) -> None:
        async for message in socket:  # consoles only listen; read to see the close
            if message.type == WSMsgType.ERROR:
                return
