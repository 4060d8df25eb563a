"""The Viber channel: REST Bot API callbacks in at ``/webhooks/viber``, replies out through
viberbot's ``send_message``.

Authenticity comes first: ``X-Viber-Content-Signature`` must be the hex HMAC-SHA256 of the raw
body under the auth token, compared in constant time before the body is even parsed (viberbot's
own ``verify_signature`` uses ``==``). Bodies are parsed with ``json.loads`` straight from the
bytes: ``message_token`` is a 64-bit integer above 2**53 and must never pass through a float.

Outside text is cut at Viber's own limit (7000 characters) where it is read; bodies are parsed
with ``untrusted.loads`` (size and depth bounded), and an authentic one it refuses is
acknowledged and kept. A user id must arrive clean: it names the conversation, so a lone
surrogate in it makes the callback unparsable rather than silently another customer's.

One Viber rule shapes this module: the welcome message for ``conversation_started`` can only be
given in the body of the webhook response (the customer is not subscribed yet, so
``send_message`` would be refused). It is the one reply that does not go through the outbox,
and it does not reach the dialog engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from aiohttp import web
from viberbot import Api, BotConfiguration
from viberbot.api.messages import FileMessage, KeyboardMessage, TextMessage

from bot.channels.base import Capabilities, Channel, OutboundMessage, RateLimit, SendError
from bot.channels.files import MB, ChannelFiles, with_lines
from bot.channels.inbound_files import InboundFiles, UrlFetcher
from bot.http import json_response
from bot.i18n import Translator
from bot.ingress import Ingress
from bot.intents.entities import e164_phone
from bot.models import (
    Attachment,
    Contact,
    ConversationKey,
    FileRef,
    Inbound,
    Location,
    RenderedButton,
    Text,
)
from bot.storage.base import Store
from bot.untrusted import (
    SHORT_TEXT_LIMIT,
    UntrustedInput,
    clean_text,
    loads,
    text_limit,
)

if TYPE_CHECKING:  # the registry imports this module: no import cycle at run time
    from bot.channels.registry import ChannelDeps

log = logging.getLogger(__name__)

CHANNEL = "viber"
WEBHOOK_PATH = "/webhooks/viber"
SIGNATURE_HEADER = "X-Viber-Content-Signature"
# Callbacks asked for at set_webhook; "message", "subscribed", "unsubscribed" come regardless.
WEBHOOK_EVENTS = (
    "delivered", "seen", "failed", "subscribed", "unsubscribed", "conversation_started",
)  # fmt: skip
RECEIPT_EVENTS = frozenset({"delivered", "seen", "failed"})
# Longer button payloads travel as a short store token: Viber caps ActionBody, and every byte
# of it is echoed back in the customer's message.
MAX_ACTION_BODY = 200
# location-picker and share-phone buttons exist from client API level 3 (Viber 7.6+); a message
# that carries them must say so, or older clients get a keyboard they cannot draw.
PICKER_API_VERSION = 3
# viberbot posts with requests and no timeout: one hung connection must not stall a chat.
SEND_TIMEOUT = 30.0
# set_webhook makes Viber call our URL at once, so it can only succeed once we listen; start()
# runs before the server binds, hence a background retry.
WEBHOOK_RETRY_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 120.0)
# A file message carries a URL Viber downloads from (it takes no uploads), up to 50 MB.
MAX_FILE = 50 * MB
# Where Viber keeps what customers send (dl-media.viber.com …): the only hosts a customer's
# file is fetched from, next to VIBER_API_BASE's own (a proxy, a fake).
FILE_HOSTS = ("viber.com",)
_REMEMBERED_STEPS = 1000  # messages of a partly sent reply, so a retry does not repeat them
TEXT_LIMIT = text_limit(CHANNEL)  # what Viber lets a user send (7000 characters)

# send_message status codes (REST Bot API, "Error codes").
RECEIVER_NOT_REGISTERED = 5
RECEIVER_NOT_SUBSCRIBED = 6
WEBHOOK_NOT_SET = 10
TOO_MANY_REQUESTS = 12

# The main menu (flows/dialog.yml ``menu``) shown with the welcome: conversation_started never
# reaches the engine, so the channel names the topics itself.
MAIN_MENU: tuple[tuple[str, str], ...] = (
    ("button.tariffs", "/tariffs"),
    ("button.check_address", "/coverage"),
    ("button.offices", "/offices"),
    ("button.balance", "/balance"),
    ("button.operator", "/human_operator"),
)
# Buttons after which the bot wants to know who the customer is: offer "share my number" there.
PHONE_REQUEST_PAYLOADS = frozenset({"/identify"})

# A pressed reply button sends its ActionBody as the message text: our payload (``/name`` or
# ``/name{json}``) or a store token ``~…`` for a long one.
_PAYLOAD = re.compile(r"/[A-Za-z_]\w*(?:\{.*\})?", re.DOTALL)
# viberbot reports a non-zero status only as Exception("failed with status: N, message: …").
_STATUS = re.compile(r"failed with status: (-?\d+)")


class ViberParseError(ValueError):
    """An authentic callback we cannot turn into an ``Inbound``: acknowledged and kept."""


# --- authenticity -------------------------------------------------------------------------
def signature_for(auth_token: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of the raw body under the auth token, as Viber signs callbacks."""
    return hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(auth_token: str, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    expected = signature_for(auth_token, body).encode()
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


# --- parsing ------------------------------------------------------------------------------
def _mapping(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, Mapping):
        raise ViberParseError(f"'{name}' must be an object")
    return value


def _string(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ViberParseError(f"'{name}' must be a non-empty string")
    return value


def _optional_string(
    data: Mapping[str, Any], name: str, limit: int = SHORT_TEXT_LIMIT
) -> str | None:
    value = data.get(name)
    return clean_text(value, limit) if isinstance(value, str) and value else None


def _identifier(data: Mapping[str, Any], name: str) -> str:
    """A user id: it names the conversation, so it must arrive clean and short."""
    value = _string(data, name)
    if len(value) > SHORT_TEXT_LIMIT or clean_text(value, SHORT_TEXT_LIMIT) != value:
        raise ViberParseError(f"'{name}' is not a Viber id")
    return value


def message_token(data: Mapping[str, Any]) -> str:
    """The callback's ``message_token`` as exact decimal text (never via a float)."""
    value = data.get("message_token")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ViberParseError("'message_token' must be an integer")
    text = str(value)
    if not text.isdigit():
        raise ViberParseError("'message_token' must be an integer")
    return text


def _coordinate(raw: Mapping[str, Any], name: str) -> float:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ViberParseError(f"'location.{name}' must be a number")
    return float(value)


def _location(message: Mapping[str, Any]) -> Location:
    raw = _mapping(message, "location")
    lat, lon = _coordinate(raw, "lat"), _coordinate(raw, "lon")
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ViberParseError("'location' is outside the valid range")
    return Location(lat, lon)


def _contact(message: Mapping[str, Any]) -> Contact:
    raw = _mapping(message, "contact")
    phone = e164_phone(clean_text(_string(raw, "phone_number"), SHORT_TEXT_LIMIT))
    if phone is None:
        raise ViberParseError("'contact.phone_number' is not a phone number")
    # Viber does not say whose number it is (any contact can be shared), so it is not vouched.
    return Contact(phone, verified=False, name=_optional_string(raw, "name"))


def parse_message(data: Mapping[str, Any], *, received_at: datetime | None = None) -> Inbound:
    """A ``message`` callback as an ``Inbound`` (pure; payload tokens are resolved later)."""
    sender = _mapping(data, "sender")
    user_id = _identifier(sender, "id")
    message = _mapping(data, "message")
    kind = message.get("type")
    base = Inbound(
        key=ConversationKey(CHANNEL, user_id, user_id),
        message_id=message_token(data),
        kind="text",
        locale=_optional_string(sender, "language"),
        raw=data,
        received_at=received_at or datetime.now(UTC),
    )
    if kind == "text":
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ViberParseError("a text message without text")
        text = clean_text(text, TEXT_LIMIT)  # cut before anything reads it
        if not text.strip():
            raise ViberParseError("a text message without text")
        if _PAYLOAD.fullmatch(text.strip()):
            return replace(base, kind="payload", payload=text.strip())
        return replace(base, text=text)
    if kind == "location":
        # Any text beside the pin is Viber's, not the customer's: the location is the message.
        return replace(base, kind="location", location=_location(message))
    if kind == "contact":
        return replace(base, kind="contact", contact=_contact(message))
    if kind in ("picture", "video", "file", "sticker"):
        size = message.get("size")
        attachment = Attachment(
            str(kind),
            _optional_string(message, "media", 2048),
            _optional_string(message, "file_name"),
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        )
        caption = _optional_string(message, "text", TEXT_LIMIT) if kind == "picture" else None
        return replace(base, kind="attachment", attachments=(attachment,), text=caption)
    if kind == "url":
        return replace(base, text=clean_text(_string(message, "media"), TEXT_LIMIT))
    raise ViberParseError(f"unsupported message type {kind!r}")


# --- the channel --------------------------------------------------------------------------
class ViberChannel(Channel):
    """Viber through viberbot (synchronous: every call runs in a worker thread)."""

    name = CHANNEL
    capabilities = Capabilities(
        max_text=7000, buttons=True, max_buttons=12, max_button_title=40, location_request=True
    )
    # Viber documents no per-second cap for bots; it answers status 12 "too many requests"
    # when one sends too fast (retried after a second). Two a second per chat keeps a split
    # answer in order and readable; fifty overall is a conservative ceiling for one bot.
    rate_limit = RateLimit(per_chat=2.0, overall=50.0)

    def __init__(
        self,
        *,
        auth_token: str,
        ingress: Ingress,
        store: Store,
        translator: Translator,
        api_base: str,
        bot_name: str,
        avatar: str | None = None,
        public_url: str | None = None,
        default_locale: str = "ru",
        menu: Sequence[tuple[str, str]] = MAIN_MENU,
        webhook_retry_seconds: Sequence[float] = WEBHOOK_RETRY_SECONDS,
        files: ChannelFiles | None = None,
    ) -> None:
        self._auth_token = auth_token
        self._ingress = ingress
        self._store = store
        self._translator = translator
        self._bot_name = bot_name
        self._avatar = avatar
        self._public_url = public_url
        self._default_locale = default_locale
        self._menu = tuple(menu)
        self._webhook_retry = tuple(webhook_retry_seconds)
        self._files = files
        self._sent_steps: OrderedDict[str, str] = OrderedDict()
        self._downloads = UrlFetcher((*FILE_HOSTS, urlsplit(api_base).hostname or ""))
        if files is not None:  # customers' files: fetched after the webhook was answered
            ingress.add_preparer(CHANNEL, InboundFiles(files.files, self._downloads.fetch).prepare)
        self._api = Api(BotConfiguration(auth_token, bot_name, avatar))
        # The module constant is read once at Api(); the base lives on the request sender.
        self._api._request_sender._viber_bot_api_url = api_base.rstrip("/")
        _mute_sdk_logging(self._api)
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: Mapping[str, Callable[[Mapping[str, Any]], Awaitable[web.Response]]] = {
            "webhook": self._on_webhook_check,
            "conversation_started": self._on_conversation_started,
            "message": self._on_message,
            "subscribed": self._on_subscribed,
            "unsubscribed": self._on_unsubscribed,
            **{event: self._on_receipt for event in RECEIPT_EVENTS},
        }

    # --- lifetime -------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self._webhook)

    async def start(self) -> None:
        if self._public_url:
            task = asyncio.create_task(
                self._register_webhook(self._public_url + WEBHOOK_PATH), name="viber-webhook"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._downloads.close()

    async def _register_webhook(self, url: str) -> None:
        for attempt, delay in enumerate(self._webhook_retry, start=1):
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await asyncio.to_thread(self._api.set_webhook, url, list(WEBHOOK_EVENTS))
            except Exception as exc:  # retried: the usual cause is that we did not listen yet
                log.warning("viber: set_webhook attempt %d failed: %s", attempt, _describe(exc))
                continue
            log.info("viber: webhook set to %s", url)
            return
        log.error("viber: could not set the webhook to %s; Viber will not call us", url)

    # --- inbound --------------------------------------------------------------------------
    async def _webhook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_signature(self._auth_token, body, request.headers.get(SIGNATURE_HEADER)):
            self._ingress.refused(CHANNEL, "forged")
            return web.Response(status=403, text="bad signature")
        try:
            data = loads(body)  # ints stay exact: message_token is above 2**53
        except UntrustedInput as exc:
            return await self._unparsed(body, str(exc), "unreadable")
        try:
            if not isinstance(data, dict):
                raise ViberParseError("the body must be a JSON object")
            event = _string(data, "event")
            handler = self._handlers.get(event)
            if handler is None:
                raise ViberParseError(f"unsupported event {event!r}")
            return await handler(data)
        except ViberParseError as exc:
            return await self._unparsed(body, str(exc))

    async def _unparsed(
        self, body: bytes, problem: str, reason: str = "unparsable"
    ) -> web.Response:
        # Authentic but not understood: acknowledged so Viber does not redeliver it forever.
        await self._store.keep_unparsed(CHANNEL, body.decode("utf-8", "replace"), problem)
        self._ingress.refused(CHANNEL, reason)
        return web.Response(status=200)

    async def _on_webhook_check(self, data: Mapping[str, Any]) -> web.Response:
        return web.Response(status=200)  # Viber's probe during set_webhook

    async def _on_conversation_started(self, data: Mapping[str, Any]) -> web.Response:
        user = data.get("user")
        language = user.get("language") if isinstance(user, Mapping) else None
        locale = self._translator.resolve_locale(
            language if isinstance(language, str) and language else self._default_locale
        )
        return json_response(await self._welcome(locale))

    async def _on_message(self, data: Mapping[str, Any]) -> web.Response:
        inbound = await self._resolve_token(parse_message(data))
        conversation_id = inbound.key.id
        # Writing to a bot subscribes the customer again after an unsubscribe.
        if not await self._store.is_reachable(conversation_id):
            await self._store.set_reachable(conversation_id, True, "wrote to the bot")
        # Documentation examples reuse one token across events: the event names the delivery.
        await self._ingress.accept(
            inbound, scope=CHANNEL, platform_id=f"message:{inbound.message_id}"
        )
        return web.Response(status=200)

    async def _on_subscribed(self, data: Mapping[str, Any]) -> web.Response:
        user_id = _identifier(_mapping(data, "user"), "id")
        await self._store.set_reachable(_conversation_id(user_id), True, "subscribed")
        return web.Response(status=200)

    async def _on_unsubscribed(self, data: Mapping[str, Any]) -> web.Response:
        user_id = _identifier(data, "user_id")
        await self._store.set_reachable(_conversation_id(user_id), False, "unsubscribed")
        return web.Response(status=200)

    async def _on_receipt(self, data: Mapping[str, Any]) -> web.Response:
        event = _string(data, "event")
        token = message_token(data)
        # A redelivered receipt is recorded once (at worst lost if we crash in between: it is
        # bookkeeping, not a customer's message).
        if await self._store.remember_once(CHANNEL, f"{event}:{token}"):
            await self._store.record_receipt(CHANNEL, token, event)
        return web.Response(status=200)

    async def _resolve_token(self, inbound: Inbound) -> Inbound:
        text = (inbound.text or "").strip()
        if inbound.kind != "text" or not text.startswith("~") or " " in text:
            return inbound
        payload = await self._store.payload_for(text)
        if payload is None:
            return inbound  # a customer typing a tilde: just text
        return replace(inbound, kind="payload", payload=payload, text=None)

    # --- outbound -------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> str | None:
        key = ConversationKey(CHANNEL, message.chat_id, message.chat_id)
        keyboard: dict[str, Any] | None = None
        api_version: int | None = None
        if message.buttons:
            keyboard = await self._keyboard(message.buttons, await self._locale(key))
            api_version = PICKER_API_VERSION
        files, text = await self._file_messages(message, key, keyboard, api_version)
        outgoing: list[Any] = []
        if text:
            outgoing.append(TextMessage(text=text, keyboard=keyboard, min_api_version=api_version))
        elif keyboard is not None and not files:
            outgoing.append(KeyboardMessage(keyboard=keyboard, min_api_version=api_version))
        outgoing += files
        tokens: list[str] = []
        for index, one in enumerate(outgoing):
            step = f"{message.idempotency_key}:{index}"
            done = self._sent_steps.get(step)
            if done is None:
                done = self._sent_steps[step] = await self._post(message.chat_id, one, key)
                while len(self._sent_steps) > _REMEMBERED_STEPS:
                    self._sent_steps.popitem(last=False)
            tokens.append(done)
        return ",".join(tokens) or None

    async def _file_messages(
        self,
        message: OutboundMessage,
        key: ConversationKey,
        keyboard: dict[str, Any] | None,
        api_version: int | None,
    ) -> tuple[list[Any], str]:
        """File messages pointing at signed public links (with the keyboard, which Viber shows
        only while the latest message carries it), and the text with a line for each file that
        cannot go that way: above Viber's limit (a link) or with no public address (a note)."""
        if not message.attachments or self._files is None:
            return [], message.text
        files: list[Any] = []
        instead: list[FileRef] = []
        for ref in message.attachments:
            url = self._files.public_link(ref) if ref.size <= MAX_FILE else None
            if url is None:
                instead.append(ref)
                continue
            files.append(
                FileMessage(
                    media=url,
                    size=ref.size,
                    file_name=ref.name,
                    keyboard=keyboard,
                    min_api_version=api_version,
                )
            )
        return files, with_lines(message.text, await self._files.instead(key, instead))

    async def _post(self, chat_id: str, outgoing: Any, key: ConversationKey) -> str:
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                tokens = await asyncio.to_thread(self._api.send_messages, chat_id, [outgoing])
        except TimeoutError:
            raise SendError(f"Viber did not answer within {SEND_TIMEOUT:.0f} s") from None
        except requests.HTTPError as exc:
            raise _http_error(exc) from None
        except requests.RequestException as exc:
            raise SendError(f"network error: {type(exc).__name__}") from None
        except Exception as exc:  # viberbot: a non-zero status, or a message it refused
            raise await self._status_error(exc, key) from None
        return str(tokens[0])  # exact: json.loads keeps the 64-bit token an int

    async def _status_error(self, exc: Exception, key: ConversationKey) -> SendError:
        match = _STATUS.search(str(exc))
        if match is None:
            return SendError(f"viberbot refused the message: {exc}", permanent=True)
        status = int(match.group(1))
        if status in (RECEIVER_NOT_REGISTERED, RECEIVER_NOT_SUBSCRIBED):
            reason = "not subscribed" if status == RECEIVER_NOT_SUBSCRIBED else "not registered"
            await self._store.set_reachable(key.id, False, f"viber: receiver {reason}")
            return SendError(f"Viber status {status}: receiver {reason}", permanent=True)
        if status == TOO_MANY_REQUESTS:
            return SendError("Viber status 12: too many requests", retry_after=1.0)
        if status == WEBHOOK_NOT_SET:  # right after start-up, before set_webhook succeeded
            return SendError("Viber status 10: webhook not set yet")
        return SendError(f"Viber refused the message: {exc}", permanent=True)

    async def _locale(self, key: ConversationKey) -> str:
        conversation = await self._store.load_conversation(key)
        return conversation.locale if conversation else self._default_locale

    async def _welcome(self, locale: str) -> dict[str, Any]:
        """The welcome message for the response body of ``conversation_started``."""
        buttons = tuple(
            RenderedButton(self._translator.render(locale, Text(title)), payload)
            for title, payload in self._menu
        )
        sender: dict[str, str] = {"name": self._bot_name}
        if self._avatar:
            sender["avatar"] = self._avatar
        return {
            "sender": sender,
            "type": "text",
            "text": self._translator.render(locale, Text("viber.welcome")),
            "keyboard": await self._keyboard(buttons, locale),
            "min_api_version": PICKER_API_VERSION,
        }

    async def _keyboard(self, buttons: Sequence[RenderedButton], locale: str) -> dict[str, Any]:
        """Viber keyboard JSON: one full-width reply button per row, then a row with the
        location picker (a shared location always finds the nearest office: flows/dialog.yml
        ``location_intent``) and, where the bot asks who the customer is, share-phone. Both
        need ``min_api_version`` = ``PICKER_API_VERSION`` on the message."""
        rows: list[dict[str, Any]] = [
            {
                "Columns": 6,
                "Rows": 1,
                "ActionType": "reply",
                "ActionBody": await self._action_body(b.payload),
                "Text": html.escape(b.title, quote=False),  # Text is HTML-like markup
                # The ActionBody is machine text; the customer need not see it echoed.
                "Silent": True,
            }
            for b in buttons
        ]
        extras = [("location-picker", "location", "viber.share_location")]
        if any(b.payload in PHONE_REQUEST_PAYLOADS for b in buttons):
            extras.append(("share-phone", "phone", "viber.share_phone"))
        for action, body, title in extras:
            rows.append(
                {
                    "Columns": 6 // len(extras),
                    "Rows": 1,
                    "ActionType": action,
                    "ActionBody": body,
                    "Text": html.escape(self._translator.render(locale, Text(title)), quote=False),
                }
            )
        return {"Type": "keyboard", "DefaultHeight": False, "Buttons": rows}

    async def _action_body(self, payload: str) -> str:
        if len(payload) <= MAX_ACTION_BODY:
            return payload
        return await self._store.payload_token(payload)


def _conversation_id(user_id: str) -> str:
    return ConversationKey(CHANNEL, user_id, user_id).id


def _http_error(exc: requests.HTTPError) -> SendError:
    response = exc.response
    if response is None:
        return SendError("HTTP error from Viber")
    status = response.status_code
    if status == 429:
        retry_after = _seconds(response.headers.get("Retry-After"))
        return SendError("HTTP 429 Too Many Requests", retry_after=retry_after or 1.0)
    if status >= 500:
        return SendError(f"HTTP {status} from Viber")
    return SendError(f"HTTP {status} from Viber", permanent=True)


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__  # its text may carry the request; ours carries no secret
    return str(exc) or type(exc).__name__


def _mute_sdk_logging(api: Any) -> None:
    """viberbot logs whole request payloads (the auth token and customers' texts) at debug and
    error level; this module logs what happened without them."""
    muted = logging.Logger("viberbot.muted", level=logging.CRITICAL + 1)
    api._logger = muted
    api._request_sender._logger = muted
    api._message_sender._logger = muted


def create(deps: ChannelDeps) -> Channel | None:
    """The Viber channel when ``VIBER_AUTH_TOKEN`` is set; None otherwise."""
    settings = deps.settings
    if not settings.viber_auth_token:
        return None
    return ViberChannel(
        auth_token=settings.viber_auth_token,
        ingress=deps.ingress,
        store=deps.store,
        translator=deps.translator,
        api_base=settings.viber_api_base,
        bot_name=settings.viber_bot_name,
        avatar=settings.viber_avatar,
        public_url=settings.public_url,
        default_locale=settings.default_locale,
        files=ChannelFiles.from_deps(deps),
    )
