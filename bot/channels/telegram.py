"""Telegram (Bot API, through aiogram 3): a webhook or long polling in, ``sendMessage`` out.

Webhook: ``POST /webhooks/telegram``, authentic only when ``X-Telegram-Bot-Api-Secret-Token``
equals ``TELEGRAM_WEBHOOK_SECRET``; without a configured secret every call is refused, so an
install never accepts unauthenticated updates by accident. Long polling (``TELEGRAM_POLLING``)
is for installs without a public URL: it calls ``getUpdates`` through the same ``Bot`` and feeds
the same handler, so de-duplication by ``update_id`` and everything after it are shared.

Updates are read tolerantly from the JSON (the dozen fields we use, each type-checked) rather
than through aiogram's ``Update`` model: the model rejects shapes older Bot API servers and
clients produce (no ``is_bot``, no ``file_unique_id``, no ``chat.type``) and would turn a change
in a field we never read into a lost customer message. aiogram does all the sending.

Outside text is cut at Telegram's own limits where it is read (4096 characters of a message,
1024 of a caption): a longer one is not a customer's, and nothing after the parser sees more.
The body is parsed with ``untrusted.loads`` (size and depth bounded); an authentic body it
refuses is acknowledged with 200 and kept, so Telegram does not redeliver it for a day.

aiogram is imported only when the channel is configured: building its types takes seconds,
which every start-up of the gateway would otherwise pay.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from bot.channels.base import Capabilities, Channel, OutboundMessage, RateLimit, SendError
from bot.channels.files import MB, ChannelFiles, with_lines
from bot.channels.inbound_files import InboundFiles, TooLarge, Unavailable, read_limited
from bot.config import ConfigError
from bot.intents.entities import e164_phone
from bot.leases import Lease, token_id
from bot.models import (
    Attachment,
    Contact,
    ConversationKey,
    FileRef,
    Inbound,
    Location,
    RenderedButton,
)
from bot.shutdown import Draining
from bot.untrusted import SHORT_TEXT_LIMIT, UntrustedInput, clean_text, loads, text_limit

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods.base import TelegramMethod
    from aiogram.types import InlineKeyboardMarkup, Message

    from bot.channels.registry import ChannelDeps
    from bot.ingress import Ingress
    from bot.storage.base import Store

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
# What we ask Telegram for (setWebhook, getUpdates); anything else is acknowledged and ignored.
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
CALLBACK_DATA_BYTES = 64  # Bot API limit for InlineKeyboardButton.callback_data
START_PAYLOAD = "/greet"  # /start opens the conversation with the greeting
POLL_TIMEOUT = 25  # seconds a getUpdates call waits for news (Telegram allows up to 50)
REQUEST_TIMEOUT = 30.0
# Media the customer can send; the first present becomes the attachment (photo, document, …).
MEDIA = ("photo", "document", "video", "voice", "audio", "video_note", "animation", "sticker")

_START = re.compile(r"/start(?:@\w+)?(?:\s|$)")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token
_BACKOFF_MAX = 60.0
MAX_FILE = 50 * MB  # what a bot may upload through the Bot API (sendDocument)
CAPTION_LIMIT = 1024  # characters of a document's caption
TEXT_LIMIT = text_limit(CHANNEL)  # characters of a message a user can send
_REMEMBERED_STEPS = 1000  # messages of a partly sent reply, so a retry does not repeat them


class Unparsable(ValueError):
    """An authentic update we cannot read: acknowledged, kept for inspection."""


@dataclass(frozen=True, slots=True)
class ParsedUpdate:
    """What one update asks of us; every field empty means "acknowledge and ignore"."""

    update_id: int
    inbound: Inbound | None = None
    callback_id: str | None = None  # answerCallbackQuery, or the button spins for a while
    callback_data: str | None = None  # our payload, or a token standing for a long one
    reachable: tuple[str, bool, str] | None = None  # (conversation id, reachable, reason)


# --- reading updates -------------------------------------------------------------------------


def _obj(parent: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = parent.get(name)
    if not isinstance(value, Mapping):
        raise Unparsable(f"'{name}' is missing or not an object")
    return value


def _opt_obj(parent: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise Unparsable(f"'{name}' is not an object")
    return value


def _int(parent: Mapping[str, Any], name: str) -> int:
    value = parent.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Unparsable(f"'{name}' is missing or not an integer")
    return value


def _opt_int(parent: Mapping[str, Any], name: str) -> int | None:
    return None if parent.get(name) is None else _int(parent, name)


def _opt_str(parent: Mapping[str, Any], name: str) -> str | None:
    value = parent.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unparsable(f"'{name}' is not a string")
    return value


def _coordinate(parent: Mapping[str, Any], name: str, limit: float) -> float:
    value = parent.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise Unparsable(f"'{name}' is missing or not a number")
    if not (math.isfinite(value) and -limit <= value <= limit):
        raise Unparsable(f"'{name}' is out of range")
    return float(value)


def _private(chat: Mapping[str, Any]) -> int | None:
    """The chat id if it is a private chat (the only kind we answer), else None. Old updates
    carry no ``type``; there a positive id means a user (groups and channels are negative)."""
    chat_id = _int(chat, "id")
    kind = _opt_str(chat, "type")
    if kind == "private" or (kind is None and chat_id > 0):
        return chat_id
    return None


def _user(parent: Mapping[str, Any]) -> tuple[int, str | None]:
    sender = _obj(parent, "from")
    return _int(sender, "id"), _opt_str(sender, "language_code")


def contact_phone(raw: str) -> str:
    """E.164 where the number can be told; otherwise as given (the contact still says whose
    number it is, which is what identification needs)."""
    return e164_phone(raw) or raw.strip()


def _short(parent: Mapping[str, Any], name: str) -> str | None:
    """A short field (a name, a phone, a file name), cleaned and cut before anyone reads it."""
    value = _opt_str(parent, name)
    return None if value is None else clean_text(value, SHORT_TEXT_LIMIT)


def _contact(raw: Mapping[str, Any], sender_id: int) -> Contact:
    phone = _short(raw, "phone_number")
    if not phone or not phone.strip():
        raise Unparsable("contact without a phone number")
    names = (_short(raw, "first_name"), _short(raw, "last_name"))
    name = " ".join(n for n in names if n) or None
    # Telegram fills user_id with the sender's own id only for the "share my phone" button: the
    # number is then vouched for by Telegram. A forwarded or typed contact has another or none.
    return Contact(contact_phone(phone), _opt_int(raw, "user_id") == sender_id, name)


def _attachment(message: Mapping[str, Any]) -> Attachment | None:
    """The first media of the message, with its ``file_id`` (to fetch it with getFile later)
    and the size Telegram declares (a file above our limit is refused without fetching)."""
    for kind in MEDIA:
        value = message.get(kind)
        if value is None:
            continue
        if kind == "photo":  # sizes, smallest first: the largest is the photo
            if not isinstance(value, list) or not value or not isinstance(value[-1], Mapping):
                raise Unparsable("'photo' is not a list of sizes")
            value = value[-1]
        if not isinstance(value, Mapping):
            raise Unparsable(f"'{kind}' is not an object")
        return Attachment(
            kind,
            name=_short(value, "file_name"),
            ref=_short(value, "file_id"),
            size=_opt_int(value, "file_size"),
        )
    return None


def _message(update_id: int, message: Mapping[str, Any], common: dict[str, Any]) -> ParsedUpdate:
    chat_id = _private(_obj(message, "chat"))
    if chat_id is None or message.get("from") is None:
        return ParsedUpdate(update_id)  # groups and channels: not a support conversation
    user_id, locale = _user(message)
    key = ConversationKey(CHANNEL, str(chat_id), str(user_id))
    base = dict(common, key=key, locale=locale)
    contact = _opt_obj(message, "contact")
    if contact is not None:
        inbound = Inbound(kind="contact", contact=_contact(contact, user_id), **base)
        return ParsedUpdate(update_id, inbound=inbound)
    location = _opt_obj(message, "location")  # also set for a venue
    if location is not None:
        point = Location(
            _coordinate(location, "latitude", 90.0), _coordinate(location, "longitude", 180.0)
        )
        return ParsedUpdate(update_id, inbound=Inbound(kind="location", location=point, **base))
    text = _opt_str(message, "text")
    if text is not None:
        text = clean_text(text, TEXT_LIMIT)
    if text is not None and text.strip():
        if _START.match(text):  # "/start", "/start@OurBot", "/start <deep-link parameter>"
            inbound = Inbound(kind="payload", text=text, payload=START_PAYLOAD, **base)
        else:
            inbound = Inbound(kind="text", text=text, **base)
        return ParsedUpdate(update_id, inbound=inbound)
    attachment = _attachment(message)
    if attachment is not None:
        caption = clean_text(_opt_str(message, "caption") or "", CAPTION_LIMIT) or None
        inbound = Inbound(kind="attachment", text=caption, attachments=(attachment,), **base)
        return ParsedUpdate(update_id, inbound=inbound)
    return ParsedUpdate(update_id)  # service messages (pinned, joined, …): nothing to answer


def _callback(update_id: int, query: Mapping[str, Any], common: dict[str, Any]) -> ParsedUpdate:
    raw_id = query.get("id")
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or raw_id == "":
        raise Unparsable("callback query without an id")
    callback_id = str(raw_id)
    user_id, locale = _user(query)
    message = _opt_obj(query, "message")
    data = _short(query, "data")
    if message is None or not data:  # an inline-mode message or a game: no chat of ours
        return ParsedUpdate(update_id, callback_id=callback_id)
    chat_id = _private(_obj(message, "chat"))
    if chat_id is None:
        return ParsedUpdate(update_id, callback_id=callback_id)
    key = ConversationKey(CHANNEL, str(chat_id), str(user_id))
    inbound = Inbound(kind="payload", payload=data, **dict(common, key=key, locale=locale))
    return ParsedUpdate(update_id, inbound=inbound, callback_id=callback_id, callback_data=data)


def _membership(update_id: int, member: Mapping[str, Any]) -> ParsedUpdate:
    chat_id = _private(_obj(member, "chat"))
    if chat_id is None:
        return ParsedUpdate(update_id)
    user_id, _ = _user(member)
    status = _opt_str(_obj(member, "new_chat_member"), "status")
    conversation_id = ConversationKey(CHANNEL, str(chat_id), str(user_id)).id
    if status == "kicked":  # the customer blocked the bot
        return ParsedUpdate(update_id, reachable=(conversation_id, False, "kicked"))
    if status == "member":  # … and unblocked it (or pressed "Restart")
        return ParsedUpdate(update_id, reachable=(conversation_id, True, "member"))
    return ParsedUpdate(update_id)


def parse_update(raw: Any, *, received_at: datetime | None = None) -> ParsedUpdate:
    """What an update asks of us. Raises ``Unparsable`` for a shape we cannot read; kinds we
    do not handle (edited messages, inline queries, channel posts, …) come back empty."""
    if not isinstance(raw, Mapping):
        raise Unparsable("the update is not a JSON object")
    update_id = _int(raw, "update_id")
    common: dict[str, Any] = {
        "message_id": str(update_id),
        "raw": raw,
        "received_at": received_at or datetime.now(UTC),
    }
    if "message" in raw:
        return _message(update_id, _obj(raw, "message"), common)
    if "callback_query" in raw:
        return _callback(update_id, _obj(raw, "callback_query"), common)
    if "my_chat_member" in raw:
        return _membership(update_id, _obj(raw, "my_chat_member"))
    return ParsedUpdate(update_id)


def _loose_callback_id(raw: Any) -> str | None:
    """The callback query id of an update we could not otherwise read, to stop the spinner."""
    if not isinstance(raw, Mapping):
        return None
    query = raw.get("callback_query")
    if not isinstance(query, Mapping):
        return None
    value = query.get("id")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


# --- the channel -----------------------------------------------------------------------------


@functools.cache
def _raw_get_updates() -> type[TelegramMethod[list[dict[str, Any]]]]:
    """``getUpdates`` returning plain JSON objects. aiogram's own method validates each update
    into its model, and one update it rejects would make every poll fail at the same offset."""
    from aiogram.methods.base import TelegramMethod

    class GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
        __returning__ = list[dict[str, Any]]
        __api_method__ = "getUpdates"

        offset: int | None = None
        timeout: int | None = None
        allowed_updates: list[str] | None = None

    return GetRawUpdates


class TelegramChannel(Channel):
    """Telegram private chats: text, /start, inline buttons, location, contact, media."""

    name = CHANNEL
    capabilities = Capabilities(
        max_text=4096, buttons=True, max_buttons=10, max_button_title=64, location_request=True
    )
    # Telegram's published limits: about one message a second per chat, 30 a second overall.
    rate_limit = RateLimit(per_chat=1.0, overall=30.0)

    def __init__(
        self,
        *,
        token: str,
        ingress: Ingress,
        store: Store,
        webhook_secret: str | None = None,
        api_base: str = "https://api.telegram.org",
        polling: bool = False,
        public_url: str | None = None,
        poll_timeout: int = POLL_TIMEOUT,
        files: ChannelFiles | None = None,
        lease: Lease | None = None,
    ) -> None:
        """``lease``: polling runs only while it is held (one process per bot; Telegram answers
        a second getUpdates consumer with 409 Conflict). None: always polls."""
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer
        from aiogram.utils.token import TokenValidationError

        if webhook_secret is not None and not _SECRET.fullmatch(webhook_secret):
            raise ConfigError(
                "TELEGRAM_WEBHOOK_SECRET may hold only A-Z, a-z, 0-9, '_' and '-' "
                "(1 to 256 characters): Telegram refuses anything else"
            )
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_base), timeout=REQUEST_TIMEOUT)
        try:
            self._bot: Bot = Bot(token, session=session)
        except TokenValidationError:
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN does not look like a token from @BotFather ('123456:ABC…')"
            ) from None
        self._token = token
        self._ingress = ingress
        self._store = store
        self._secret = webhook_secret
        self._polling = polling
        self._lease = lease or Lease(f"telegram-polling:{token_id(token)}", redis=None)
        self._public_url = public_url.rstrip("/") if public_url else None
        self._poll_timeout = poll_timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._recording = False  # the poller is recording a batch (not to be cut short)
        self._intake_stopped = False
        self._warned_unsecured = False
        self._files = files
        # "<idempotency key>:<step>" -> message id of the steps of a reply already delivered
        self._sent_steps: OrderedDict[str, str] = OrderedDict()
        self._api_server = TelegramAPIServer.from_base(api_base)
        if files is not None:  # customers' files: fetched after the webhook was answered
            ingress.add_preparer(CHANNEL, InboundFiles(files.files, self._fetch_file).prepare)

    # -- incoming ---------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self.webhook)

    async def webhook(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            self._ingress.refused(CHANNEL, "forged")
            return web.Response(status=refused)
        body = await request.read()
        text = body.decode("utf-8", errors="replace")
        try:
            raw = loads(body)
        except UntrustedInput as exc:
            # Authentic (the secret matched) but unusable: acknowledged, or Telegram would
            # redeliver it for a day; kept for people to look at.
            await self._store.keep_unparsed(CHANNEL, text, str(exc))
            self._ingress.refused(CHANNEL, "unreadable")
            return web.Response(status=200)
        await self.handle_update(raw, text)
        return web.Response(status=200)

    def _refusal(self, request: web.Request) -> int | None:
        """The status to refuse a webhook call with, or None when it is authentic."""
        if self._secret is None:
            if not self._warned_unsecured:
                self._warned_unsecured = True
                log.warning("telegram: refusing webhook calls: TELEGRAM_WEBHOOK_SECRET is not set")
            return 403
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return 401
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            return 403
        return None

    async def handle_update(self, raw: Any, body: str) -> None:
        """Act on one authentic update (webhook or polling); returns once it is durable."""
        try:
            parsed = parse_update(raw)
        except Unparsable as exc:
            await self._store.keep_unparsed(CHANNEL, body, str(exc))
            update_id = raw.get("update_id") if isinstance(raw, Mapping) else None
            delivery = str(update_id) if isinstance(update_id, int) else None
            self._ingress.refused(CHANNEL, "unparsable", delivery)
            callback_id = _loose_callback_id(raw)
            if callback_id is not None:
                self._spawn(self._answer_callback(callback_id))
            return
        if parsed.reachable is not None:
            conversation_id, reachable, reason = parsed.reachable
            await self._store.set_reachable(conversation_id, reachable, reason)
        if parsed.inbound is not None:
            inbound = parsed.inbound
            if parsed.callback_data is not None:
                # Long payloads travel as tokens (callback_data holds 64 bytes).
                payload = await self._store.payload_for(parsed.callback_data)
                inbound = replace(inbound, payload=payload or parsed.callback_data)
            if not await self._store.is_reachable(inbound.key.id):
                # Writing to us means the bot is not blocked, whatever we last heard.
                await self._store.set_reachable(inbound.key.id, True, "wrote to us")
            await self._ingress.accept(inbound, scope=CHANNEL, platform_id=str(parsed.update_id))
        if parsed.callback_id is not None:
            self._spawn(self._answer_callback(parsed.callback_id))

    async def _answer_callback(self, callback_id: str) -> None:
        try:
            await self._bot.answer_callback_query(callback_query_id=callback_id)
        except Exception as exc:  # a stale query cannot be answered any more; harmless
            log.info("telegram: answerCallbackQuery failed: %s", self._redact(exc))

    async def _fetch_file(self, attachment: Attachment, limit: int) -> bytes:
        """``getFile`` for the download path, then the file from the Bot API's file URL."""
        from aiogram.exceptions import TelegramAPIError

        if not attachment.ref:
            raise Unavailable("no file_id")
        try:
            found = await self._bot.get_file(attachment.ref)
            if found.file_size is not None and found.file_size > limit:
                raise TooLarge
            if not found.file_path:
                raise Unavailable("no file_path")
            url = self._api_server.file_url(self._token, found.file_path)
            chunks = self._bot.session.stream_content(url, timeout=int(REQUEST_TIMEOUT))
            return await read_limited(chunks, limit)
        except (TelegramAPIError, aiohttp.ClientError) as exc:
            # "file is too big" from getFile (above the Bot API's 20 MB) is a TelegramBadRequest.
            if "too big" in str(exc).lower():
                raise TooLarge from None
            raise Unavailable(self._redact(exc)) from None

    # -- outgoing ---------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> str | None:
        """The text (with its buttons), then each file as a document; one file under a short
        text goes as a single document with the text as its caption. Files above the Bot API's
        upload limit (or gone from the store) become a link or a note in the text."""
        from aiogram.types import BufferedInputFile

        try:
            chat_id = int(message.chat_id)
        except ValueError:
            raise SendError("not a Telegram chat id", permanent=True) from None
        markup = await self._markup(message.buttons)
        documents, text = await self._documents(message)
        if len(documents) == 1 and len(text) <= CAPTION_LIMIT:
            ref, data = documents[0]
            return await self._step(
                message,
                "doc0",
                lambda: self._bot.send_document(
                    chat_id=chat_id,
                    document=BufferedInputFile(data, filename=ref.name),
                    caption=text or None,
                    reply_markup=markup,
                ),
            )
        ids: list[str] = []
        if text:
            ids.append(
                await self._step(
                    message,
                    "text",
                    lambda: self._bot.send_message(chat_id=chat_id, text=text, reply_markup=markup),
                )
            )
        for index, (ref, data) in enumerate(documents):
            document = BufferedInputFile(data, filename=ref.name)
            ids.append(
                await self._step(
                    message,
                    f"doc{index}",
                    functools.partial(self._bot.send_document, chat_id=chat_id, document=document),
                )
            )
        return ",".join(ids) or None

    async def _documents(self, message: OutboundMessage) -> tuple[list[tuple[FileRef, bytes]], str]:
        """The files to upload, and the text with a line for each file that cannot be."""
        if not message.attachments or self._files is None:
            return [], message.text
        documents: list[tuple[FileRef, bytes]] = []
        instead: list[FileRef] = []
        for ref in message.attachments:
            data = await self._files.load(ref) if ref.size <= MAX_FILE else None
            if data is None:
                instead.append(ref)
            else:
                documents.append((ref, data))
        key = ConversationKey(CHANNEL, message.chat_id, message.chat_id)
        return documents, with_lines(message.text, await self._files.instead(key, instead))

    async def _step(
        self, message: OutboundMessage, step: str, call: Callable[[], Awaitable[Message]]
    ) -> str:
        """One Bot API message of a reply, sent once: a retry of the reply after a later step
        failed finds this one already delivered."""
        done_key = f"{message.idempotency_key}:{step}"
        done = self._sent_steps.get(done_key)
        if done is not None:
            return done
        sent = await self._call(message, call)
        self._sent_steps[done_key] = str(sent.message_id)
        while len(self._sent_steps) > _REMEMBERED_STEPS:
            self._sent_steps.popitem(last=False)
        return str(sent.message_id)

    async def _call(
        self, message: OutboundMessage, call: Callable[[], Awaitable[Message]]
    ) -> Message:
        from aiogram.exceptions import (
            ClientDecodeError,
            TelegramAPIError,
            TelegramEntityTooLarge,
            TelegramForbiddenError,
            TelegramNetworkError,
            TelegramRetryAfter,
            TelegramServerError,
        )

        try:
            return await call()
        except TelegramRetryAfter as exc:
            raise SendError(self._redact(exc), retry_after=float(exc.retry_after)) from None
        except TelegramForbiddenError as exc:
            # We answer private chats only, where the chat id is the customer's user id.
            conversation_id = ConversationKey(CHANNEL, message.chat_id, message.chat_id).id
            await self._store.set_reachable(conversation_id, False, "blocked")
            raise SendError(self._redact(exc), permanent=True) from None
        except TelegramEntityTooLarge as exc:  # a network error by class, final by nature
            raise SendError(self._redact(exc), permanent=True) from None
        except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as exc:
            raise SendError(self._redact(exc)) from None
        except TelegramAPIError as exc:  # bad request, chat not found, bad token: final
            raise SendError(self._redact(exc), permanent=True) from None

    async def _markup(self, buttons: tuple[RenderedButton, ...]) -> InlineKeyboardMarkup | None:
        from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

        if not buttons:
            return None
        rows = [
            [InlineKeyboardButton(text=b.title, callback_data=await self._callback_data(b.payload))]
            for b in buttons
        ]  # one per row: titles stay readable on a phone
        return InlineKeyboardMarkup(inline_keyboard=rows)

    async def _callback_data(self, payload: str) -> str:
        if len(payload.encode()) <= CALLBACK_DATA_BYTES:
            return payload
        return await self._store.payload_token(payload)

    # -- lifetime ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._polling:
            self._poller = asyncio.create_task(
                self._lease.hold(self._poll), name="telegram-polling"
            )
            self._tasks.add(self._poller)
            self._poller.add_done_callback(self._tasks.discard)
        elif self._secret is None:
            log.warning(
                "telegram: TELEGRAM_WEBHOOK_SECRET is not set, so %s refuses every update; "
                "set it (and BOT_PUBLIC_URL) or use TELEGRAM_POLLING=1", WEBHOOK_PATH,
            )  # fmt: skip
        elif self._public_url is not None:
            self._spawn(self._register_webhook(self._public_url + WEBHOOK_PATH))
        else:
            log.info(
                "telegram: BOT_PUBLIC_URL is not set: register <public URL>%s with setWebhook "
                "(secret_token = TELEGRAM_WEBHOOK_SECRET) yourself", WEBHOOK_PATH,
            )  # fmt: skip

    async def stop_intake(self) -> None:
        """No further getUpdates. A poller waiting on one is cancelled (what it would have got
        stays unconfirmed at Telegram); one recording a batch finishes it (the ingress refuses
        the rest, unconfirmed too) and stops before fetching again."""
        self._intake_stopped = True
        if self._poller is not None and not self._recording:
            self._poller.cancel()

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._bot.session.close()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _register_webhook(self, url: str) -> None:
        await self._until_done(
            "setWebhook",
            lambda: self._bot.set_webhook(
                url=url, secret_token=self._secret, allowed_updates=list(ALLOWED_UPDATES)
            ),
        )
        log.info("telegram: webhook registered at %s", url)

    async def _poll(self) -> None:
        # Telegram refuses getUpdates while a webhook is set.
        await self._until_done("deleteWebhook", lambda: self._bot.delete_webhook())
        log.info("telegram: long polling for updates")
        offset: int | None = None
        failures = 0
        while not self._intake_stopped:
            try:
                method = _raw_get_updates().model_validate(
                    {
                        "offset": offset,
                        "timeout": self._poll_timeout,
                        "allowed_updates": list(ALLOWED_UPDATES),
                    }
                )
                updates = await self._bot(method, request_timeout=self._poll_timeout + 10)
                self._recording = True
                try:
                    for raw in updates:
                        await self.handle_update(raw, json.dumps(raw, ensure_ascii=False))
                        update_id = raw.get("update_id")
                        if isinstance(update_id, int):  # confirmed: not sent again
                            offset = max(offset or 0, update_id + 1)
                finally:
                    self._recording = False
                failures = 0
            except Draining:
                return  # shutting down: the rest of the batch stays unconfirmed at Telegram
            except Exception as exc:
                # Unconfirmed updates come again from the same offset; redeliveries are
                # recognised by update_id.
                failures += 1
                await asyncio.sleep(self._pause(exc, failures, "getUpdates"))

    async def _until_done(self, what: str, call: Callable[[], Awaitable[Any]]) -> None:
        failures = 0
        while True:
            try:
                await call()
                return
            except Exception as exc:
                failures += 1
                await asyncio.sleep(self._pause(exc, failures, what))

    def _pause(self, exc: Exception, failures: int, what: str) -> float:
        from aiogram.exceptions import TelegramRetryAfter

        if isinstance(exc, TelegramRetryAfter):
            return float(exc.retry_after)
        log.warning("telegram: %s failed (%d in a row): %s", what, failures, self._redact(exc))
        return min(_BACKOFF_MAX, 2.0 ** (failures - 1))

    def _redact(self, exc: BaseException) -> str:
        """The error text without the bot token (URLs in network errors contain it)."""
        return str(exc).replace(self._token, "<token>")


def create(deps: ChannelDeps) -> Channel | None:
    """The Telegram channel when ``TELEGRAM_BOT_TOKEN`` is set."""
    settings = deps.settings
    if not settings.telegram_token:
        return None
    return TelegramChannel(
        token=settings.telegram_token,
        ingress=deps.ingress,
        store=deps.store,
        webhook_secret=settings.telegram_webhook_secret,
        api_base=settings.telegram_api_base,
        polling=settings.telegram_polling,
        public_url=settings.public_url,
        files=ChannelFiles.from_deps(deps),
        lease=deps.leases.lease(f"telegram-polling:{token_id(settings.telegram_token)}",
                                channel=CHANNEL) if deps.leases and settings.telegram_polling
        else None,
    )  # fmt: skip
