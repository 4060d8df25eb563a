"""VK (ВКонтакте) community messages: Callback API at ``/webhooks/vk`` or Bots Long Poll, replies
through ``messages.send`` with vk-api (API 5.199).

vk-api is synchronous (requests), so every call runs in ``asyncio.to_thread``; its session is
rebased onto ``VK_API_BASE`` (vk-api hard-codes the official host). Keyboards go only to clients
whose ``client_info`` (sent with each ``message_new``) says they can show them; others get the
buttons as a numbered list, which the gateway maps back when the customer types a number.

Outside text is cut at VK's own limit (4096 characters) where it is read, and bodies are parsed
with ``untrusted.loads`` (size and depth bounded). The shared secret travels inside the body, so
a body we cannot parse cannot be told authentic: it is refused with 400, like a forged one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import aiohttp
import requests
import vk_api
from aiohttp import web
from jconfig import MemoryConfig  # type: ignore[import-untyped]  # vk-api's config store
from vk_api.exceptions import ApiError, ApiHttpError, VkApiError

from bot.channels.base import Capabilities, Channel, OutboundMessage, RateLimit, SendError
from bot.channels.files import MB, ChannelFiles, with_lines
from bot.channels.fit import numbered
from bot.channels.inbound_files import InboundFiles, UrlFetcher
from bot.leases import Lease
from bot.models import (
    Attachment,
    ConversationKey,
    FileRef,
    Inbound,
    InboundKind,
    Location,
    RenderedButton,
)
from bot.shutdown import Draining
from bot.untrusted import (
    SHORT_TEXT_LIMIT,
    UntrustedInput,
    clean_text,
    loads,
    text_limit,
)

if TYPE_CHECKING:  # the registry imports this module: no import cycle at run time
    from bot.channels.registry import ChannelDeps
    from bot.config import Settings
    from bot.ingress import Ingress
    from bot.storage.base import Store

log = logging.getLogger(__name__)

CHANNEL = "vk"
API_VERSION = "5.199"
WEBHOOK_PATH = "/webhooks/vk"
# The hosts vk-api writes into its URLs; requests to them are sent to VK_API_BASE instead.
_VK_METHOD_PREFIXES = ("https://api.vk.ru/method/", "https://api.vk.com/method/")
MAX_PAYLOAD_BYTES = 255  # VK's limit for a button payload
TEXT_LIMIT = text_limit(CHANNEL)  # VK's limit for a message's text
# VK's Start button ("Начать") sends this payload; it opens the conversation with a greeting.
START_PAYLOAD = "/greet"
# client_info.lang_id -> our locale; other languages keep the conversation's locale.
_LANG_IDS = {0: "ru", 3: "en"}
_RATE_LIMITED = {6, 9, 29}  # too many requests per second, flood control, daily limit
_UNREACHABLE = {900, 901, 902}  # blacklisted us, no permission to write, privacy settings
_RETRYABLE = {1, 10}  # unknown error, internal server error
_INLINE_MAX_ROWS = 6
_MAX_CLIENTS = 100_000  # client_info remembered per peer (least recently seen forgotten)
MAX_FILE = 200 * MB  # VK's limit for a document
_MAX_UPLOADED = 1000  # documents remembered per (peer, file): a retry does not upload again
# "[club123|@support] привет" in a group chat: the mention of the community is not the question.
# Where VK keeps what customers send (photos on *.userapi.com, documents on vk.com/doc…): the
# only hosts a customer's file is fetched from, next to VK_API_BASE's own (a proxy, a fake).
FILE_HOSTS = ("vk.com", "vk.ru", "userapi.com", "vkuserphoto.ru", "vk-cdn.net", "vkuseraudio.net")
_MENTION = re.compile(r"^\s*\[(?:club|public)\d+\|[^\]]*\]\s*[,:]?\s*")

ButtonAction = Literal["text", "callback"]


class ParseError(ValueError):
    """An authentic delivery whose shape we do not understand."""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the customer's VK client can show (``message_new`` ``object.client_info``)."""

    keyboard: bool
    inline_keyboard: bool
    button_actions: frozenset[str]
    user_id: str

    @property
    def shows_buttons(self) -> bool:
        # Clients list the button kinds they know; an empty list predates the field.
        text_buttons = "text" in self.button_actions or not self.button_actions
        return (self.inline_keyboard or self.keyboard) and text_buttons

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any], user_id: str) -> ClientInfo:
        actions = raw.get("button_actions") or ()
        return cls(
            keyboard=bool(raw.get("keyboard")),
            inline_keyboard=bool(raw.get("inline_keyboard")),
            button_actions=frozenset(str(a) for a in actions if isinstance(a, str)),
            user_id=user_id,
        )


@dataclass(frozen=True, slots=True)
class Parsed:
    """One event understood: the inbound to accept (if any) and what else it tells us."""

    inbound: Inbound | None = None
    client: ClientInfo | None = None
    reachable: tuple[str, bool] | None = None  # (conversation id, reachable)
    event_answer: Mapping[str, str] | None = None  # sendMessageEventAnswer parameters


def random_id(peer_id: str, idempotency_key: str) -> int:
    """VK's de-duplication key for ``messages.send``: derived from our own outbound id, so a
    retried send is not delivered twice (vk-api's ``get_random_id`` is random)."""
    digest = hashlib.sha256(f"vk:{peer_id}:{idempotency_key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1  # 0 would turn the check off


def platform_id(event: Mapping[str, Any], body: bytes) -> str:
    """The delivery's id for de-duplication. Real deliveries carry ``event_id``; documentation
    examples do not, so fall back to a hash of the body (a redelivery is byte-identical)."""
    event_id = event.get("event_id")
    if isinstance(event_id, str) and event_id:
        return clean_text(event_id, SHORT_TEXT_LIMIT)  # it is a key in the store
    return "sha256:" + hashlib.sha256(body).hexdigest()


def without_secret(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event as we keep it: never store the shared secret."""
    return {k: v for k, v in event.items() if k != "secret"}


# --- parsing -------------------------------------------------------------------------------


def _int_str(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParseError(f"{what} is missing or not a number")
    try:
        return str(int(value))
    except ValueError:
        raise ParseError(f"{what} is not a number") from None


def _largest_photo_url(photo: Mapping[str, Any]) -> str | None:
    sizes = [s for s in photo.get("sizes") or () if isinstance(s, Mapping) and s.get("url")]
    if not sizes:
        return None
    best = max(sizes, key=lambda s: _dimension(s.get("width")) * _dimension(s.get("height")))
    return str(best["url"])


def _dimension(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _attachment(raw: Mapping[str, Any]) -> Attachment:
    kind = str(raw.get("type") or "unknown")
    body = raw.get(kind)
    if not isinstance(body, Mapping):
        return Attachment(kind)
    url: Any = None
    name: Any = body.get("title")
    if kind == "photo":
        url = _largest_photo_url(body)
    elif kind == "audio_message":
        url = body.get("link_mp3") or body.get("link_ogg")
    elif kind == "sticker":
        images = [i for i in body.get("images") or () if isinstance(i, Mapping)]
        url = images[-1].get("url") if images else None
    elif kind == "wall" and body.get("id") is not None:
        owner = body.get("owner_id", body.get("to_id", body.get("from_id")))
        url = f"https://vk.com/wall{owner}_{body['id']}"
    else:  # doc, graffiti, audio, link, market …
        url = body.get("url")
    size = body.get("size") if kind == "doc" else None  # a photo's "size" is not bytes
    return Attachment(
        kind,
        str(url) if url else None,
        str(name) if name else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def _location(message: Mapping[str, Any]) -> Location | None:
    geo = message.get("geo")
    if not isinstance(geo, Mapping):
        return None
    coordinates = geo.get("coordinates")
    if not isinstance(coordinates, Mapping):
        raise ParseError("geo without coordinates")
    try:
        lat, lon = float(coordinates["latitude"]), float(coordinates["longitude"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ParseError("geo coordinates are not numbers") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also refuses NaN
        raise ParseError("geo coordinates are out of range")
    return Location(lat, lon)


def _locale(client_info: Mapping[str, Any] | None) -> str | None:
    if not client_info:
        return None
    lang_id = client_info.get("lang_id")
    return _LANG_IDS.get(lang_id) if isinstance(lang_id, int) else None


def decode_payload(raw: Any) -> tuple[str | None, str | None]:
    """A button payload as (our payload, our payload token); (None, None) when the button is
    not ours (VK sends ``message.payload`` as a JSON string, ``message_event`` as an object)."""
    if isinstance(raw, str):
        try:
            # Our own payloads are at most 255 bytes; anything bigger or deeper is not ours.
            raw = loads(raw, max_bytes=4 * MAX_PAYLOAD_BYTES, max_depth=4)
        except UntrustedInput:
            return None, None
    if not isinstance(raw, Mapping):
        return None, None
    if isinstance(raw.get("p"), str):
        return clean_text(raw["p"], 4 * SHORT_TEXT_LIMIT), None
    if isinstance(raw.get("t"), str):
        return None, clean_text(raw["t"], SHORT_TEXT_LIMIT)
    if raw.get("command") == "start":
        return START_PAYLOAD, None
    return None, None


def parse_event(event: Mapping[str, Any]) -> Parsed:
    """What one Callback API body / Long Poll update means to us. Pure; raises ``ParseError``.

    Button payload tokens are left in ``Inbound.payload`` prefixed with ``token:``; the channel
    resolves them through the store (see ``VkChannel._resolve``)."""
    kind = event.get("type")
    obj = event.get("object")
    if not isinstance(kind, str):
        raise ParseError("no event type")
    if kind == "message_new":
        if not isinstance(obj, Mapping):
            raise ParseError("message_new without an object")
        return _parse_message_new(event, obj)
    if kind == "message_event":
        if not isinstance(obj, Mapping):
            raise ParseError("message_event without an object")
        return _parse_message_event(event, obj)
    if kind in ("message_allow", "message_deny"):
        if not isinstance(obj, Mapping):
            raise ParseError(f"{kind} without an object")
        user = _int_str(obj.get("user_id"), "user_id")
        return Parsed(reachable=(ConversationKey(CHANNEL, user, user).id, kind == "message_allow"))
    return Parsed()  # message_reply, message_edit, typing, group_join …: nothing to answer


def _parse_message_new(event: Mapping[str, Any], obj: Mapping[str, Any]) -> Parsed:
    # API >= 5.103 wraps the message with client_info; older versions put it in ``object``.
    message = obj.get("message") if "message" in obj else obj
    if not isinstance(message, Mapping):
        raise ParseError("message_new without a message")
    user = _int_str(message.get("from_id"), "from_id")
    peer = _int_str(message.get("peer_id", message.get("from_id")), "peer_id")
    raw_info = obj.get("client_info") if isinstance(obj.get("client_info"), Mapping) else None
    client = ClientInfo.from_raw(raw_info, user) if raw_info is not None else None
    if message.get("out") == 1 or message.get("action") or int(user) < 0:
        # Our own messages, chat service messages (invite, kick …) and other communities.
        return Parsed(client=client)
    # Cut before anything reads it: VK never sends more than its limit.
    said = clean_text(message["text"], TEXT_LIMIT) if isinstance(message.get("text"), str) else ""
    text = _MENTION.sub("", said)
    payload, token = decode_payload(message.get("payload"))
    location = _location(message)
    attachments = tuple(
        _attachment(a) for a in message.get("attachments") or () if isinstance(a, Mapping)
    )
    inbound_kind: InboundKind
    if payload is not None or token is not None:
        inbound_kind = "payload"
    elif location is not None and not text:
        inbound_kind = "location"
    elif text:
        inbound_kind = "text"
    elif attachments:
        inbound_kind = "attachment"
    else:
        return Parsed(client=client)  # nothing a customer said (an empty forward, a call …)
    message_id = message.get("conversation_message_id") or message.get("id") or message.get("date")
    inbound = Inbound(
        key=ConversationKey(CHANNEL, peer, user),
        message_id=f"{peer}_{message_id}",
        kind=inbound_kind,
        text=text or None,
        payload=payload if token is None else f"token:{token}",
        location=location,
        attachments=attachments,
        locale=_locale(raw_info),
        raw=without_secret(event),
        received_at=datetime.now(UTC),
    )
    return Parsed(inbound=inbound, client=client)


def _parse_message_event(event: Mapping[str, Any], obj: Mapping[str, Any]) -> Parsed:
    user = _int_str(obj.get("user_id"), "user_id")
    peer = _int_str(obj.get("peer_id", obj.get("user_id")), "peer_id")
    press_id = obj.get("event_id")
    if not isinstance(press_id, str) or not press_id:
        raise ParseError("message_event without event_id")
    answer = {"event_id": press_id, "user_id": user, "peer_id": peer}
    payload, token = decode_payload(obj.get("payload"))
    if payload is None and token is None:
        # A callback button we did not make (another bot's old keyboard): stop its spinner,
        # but its payload means nothing to our dialog.
        return Parsed(event_answer=answer)
    inbound = Inbound(
        key=ConversationKey(CHANNEL, peer, user),
        message_id=f"event:{press_id}",
        kind="payload",
        payload=payload if token is None else f"token:{token}",
        raw=without_secret(event),
        received_at=datetime.now(UTC),
    )
    return Parsed(inbound=inbound, event_answer=answer)


# --- keyboards -----------------------------------------------------------------------------


def encode_payload(payload: str) -> str | None:
    """Our payload as a VK button payload, or None when it is too long (use a token)."""
    encoded = json.dumps({"p": payload}, ensure_ascii=False, separators=(",", ":"))
    return encoded if len(encoded.encode()) <= MAX_PAYLOAD_BYTES else None


def keyboard_json(buttons: Sequence[tuple[str, str]], *, inline: bool, action: ButtonAction) -> str:
    """A VK keyboard for (title, encoded payload) pairs: one button per row while they fit,
    two per row beyond the six rows an inline keyboard allows."""
    per_row = 1 if not inline or len(buttons) <= _INLINE_MAX_ROWS else 2
    cells = [
        {"action": {"type": action, "label": title, "payload": payload}}
        for title, payload in buttons
    ]
    rows = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    keyboard: dict[str, Any] = {"buttons": rows, "inline": inline}
    if not inline:
        keyboard["one_time"] = True  # the next reply brings its own buttons
    return json.dumps(keyboard, ensure_ascii=False, separators=(",", ":"))


# --- the rebased HTTP session --------------------------------------------------------------


class RebasedSession(requests.Session):
    """A requests session that sends vk-api's calls to ``base`` (a proxy, a local fake) and
    never waits forever (vk-api passes no timeout)."""

    def __init__(self, base: str, timeout: float = 30.0) -> None:
        super().__init__()
        self._base = base.rstrip("/") + "/"
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        for prefix in _VK_METHOD_PREFIXES:
            if url.startswith(prefix):
                request.url = self._base + url[len(prefix) :]
                break
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def make_api(settings: Settings) -> Any:
    """A vk-api client for the community token: our session, API 5.199, no config file, and
    errors surfaced to us (its own retry of error 6 sleeps and recurses without a bound)."""
    api = vk_api.VkApi(
        token=settings.vk_group_token,
        api_version=API_VERSION,
        session=RebasedSession(settings.vk_api_base),
        config=MemoryConfig,
    )
    api.error_handlers.pop(6, None)  # too many requests: the outbox waits and retries
    api.RPS_DELAY = 1 / 20  # a community token may make 20 calls a second (vk-api assumes 3)
    return api


# --- the channel ---------------------------------------------------------------------------


class VkChannel(Channel):
    """VK community messages over the Callback API or Bots Long Poll."""

    name = CHANNEL
    capabilities = Capabilities(max_text=4096, buttons=True, max_buttons=10, max_button_title=40)
    rate_limit = RateLimit(per_chat=3.0, overall=20.0)

    def __init__(
        self,
        *,
        settings: Settings,
        ingress: Ingress,
        store: Store,
        api: Any | None = None,
        button_action: ButtonAction = "text",
        longpoll_wait: int = 25,
        files: ChannelFiles | None = None,
        lease: Lease | None = None,
    ) -> None:
        """``lease``: long poll runs only while it is held (one process per community; VK
        hands each event to whichever ``a_check`` asks first). None: always polls.

        ``button_action`` "callback" sends callback buttons to clients that support them
        (presses arrive as ``message_event``, nothing is posted in the chat); "text" buttons
        post their title as the customer's message and work in every client."""
        if not settings.vk_group_token or not settings.vk_group_id:
            raise ValueError("VK needs VK_GROUP_TOKEN and VK_GROUP_ID")
        self._settings = settings
        self._group_id = str(settings.vk_group_id)
        self._ingress = ingress
        self._store = store
        self._api = api if api is not None else make_api(settings)
        self._button_action = button_action
        self._longpoll_wait = longpoll_wait
        self._lease = lease or Lease(f"vk-longpoll:{self._group_id}", redis=None)
        self._clients: OrderedDict[str, ClientInfo] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._recording = False  # the poller is recording a batch (not to be cut short)
        self._intake_stopped = False
        self._http: aiohttp.ClientSession | None = None
        self._files = files
        self._uploaded: OrderedDict[tuple[str, str], str] = OrderedDict()
        api_host = urlsplit(settings.vk_api_base).hostname or ""
        self._downloads = UrlFetcher((*FILE_HOSTS, api_host))
        if files is not None:  # customers' files: fetched after the webhook was answered
            ingress.add_preparer(CHANNEL, InboundFiles(files.files, self._downloads.fetch).prepare)

    # --- lifetime ----------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_post(WEBHOOK_PATH, self.webhook)

    async def start(self) -> None:
        if not self._settings.vk_longpoll:
            if not self._settings.vk_secret:
                log.warning("vk: VK_SECRET is not set; Callback API deliveries are refused")
            return
        self._http = aiohttp.ClientSession()
        self._poller = asyncio.create_task(self._lease.hold(self._poll_forever), name="vk-longpoll")

    async def stop_intake(self) -> None:
        """No further a_check. A poller waiting on one is cancelled (ts has not moved: VK
        gives those updates again); one recording a batch finishes it (the ingress refuses
        the rest) and stops before fetching again."""
        self._intake_stopped = True
        if self._poller is not None and not self._recording:
            self._poller.cancel()

    async def close(self) -> None:
        tasks = [t for t in (self._poller, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._poller = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self._downloads.close()
        with contextlib.suppress(Exception):
            self._api.http.close()

    # --- Callback API ------------------------------------------------------------------
    async def webhook(self, request: web.Request) -> web.Response:
        """Authenticity first (``secret`` in the body), then durable, then "ok"."""
        body = await request.read()
        try:
            event = loads(body)
        except UntrustedInput:
            self._ingress.refused(CHANNEL, "unreadable")
            return web.Response(status=400, text="not JSON")
        if not isinstance(event, dict):
            self._ingress.refused(CHANNEL, "unreadable")
            return web.Response(status=400, text="not a JSON object")
        if event.get("type") == "confirmation":
            return self._confirm(event)
        if not self._authentic(event.get("secret")):
            self._ingress.refused(CHANNEL, "forged")
            return web.Response(status=403, text="forbidden")
        await self.handle_event(event, body)
        return web.Response(text="ok")

    def _confirm(self, event: Mapping[str, Any]) -> web.Response:
        """VK checks the server by asking for the community's confirmation code."""
        code = self._settings.vk_confirmation
        if code is None:
            log.warning("vk: confirmation requested but VK_CONFIRMATION is not set")
            return web.Response(status=403, text="forbidden")
        right_group = hmac.compare_digest(
            str(event.get("group_id", "")).encode(), self._group_id.encode()
        )
        secret = event.get("secret")
        if not right_group or (secret is not None and not self._authentic(secret)):
            return web.Response(status=403, text="forbidden")
        return web.Response(text=code)

    def _authentic(self, secret: Any) -> bool:
        expected = self._settings.vk_secret
        if not expected or not isinstance(secret, str):
            return False
        return hmac.compare_digest(secret.encode(), expected.encode())

    # --- events (webhook and long poll) --------------------------------------------------
    async def handle_event(self, event: Mapping[str, Any], body: bytes) -> None:
        """Record what an authentic event asks of us. Returns once durable, so the caller may
        acknowledge it; a store failure raises (the platform delivers again)."""
        try:
            parsed = parse_event(event)
        except ParseError as exc:
            # ASCII escapes: a lone surrogate in an authentic body is kept, not a crash.
            kept = json.dumps(without_secret(event))
            await self._store.keep_unparsed(CHANNEL, kept, str(exc))
            self._ingress.refused(CHANNEL, "unparsable", platform_id(event, body))
            return
        if parsed.client is not None and parsed.inbound is not None:
            self._remember(parsed.inbound.key.chat_id, parsed.client)
        if parsed.reachable is not None:
            conversation_id, reachable = parsed.reachable
            reason = "message_allow" if reachable else "message_deny"
            await self._store.set_reachable(conversation_id, reachable, reason)
        delivery = platform_id(event, body)
        if parsed.inbound is None:
            if parsed.event_answer is not None and await self._store.remember_once(
                CHANNEL, delivery
            ):
                self._spawn(self._answer_event(parsed.event_answer))
            return
        inbound = await self._resolve(parsed.inbound)
        conversation_id = inbound.key.id
        if not await self._store.is_reachable(conversation_id):
            # Writing to the community lets it answer again.
            await self._store.set_reachable(conversation_id, True, "customer wrote")
        accepted = await self._ingress.accept(inbound, scope=CHANNEL, platform_id=delivery)
        if accepted and parsed.event_answer is not None:
            self._spawn(self._answer_event(parsed.event_answer))

    async def _resolve(self, inbound: Inbound) -> Inbound:
        """A long payload travelled as a token: put the payload back."""
        if not inbound.payload or not inbound.payload.startswith("token:"):
            return inbound
        payload = await self._store.payload_for(inbound.payload.removeprefix("token:"))
        if payload is not None:
            return replace(inbound, kind="payload", payload=payload)
        # An unknown token (another installation, a wiped store): keep what was typed.
        if inbound.text:
            return replace(inbound, kind="text", payload=None)
        return replace(inbound, payload="/menu")

    async def _answer_event(self, params: Mapping[str, str]) -> None:
        """Stop the button's spinner; the reply itself comes through the outbox."""
        try:
            await self._call("messages.sendMessageEventAnswer", dict(params))
        except Exception as exc:
            log.warning("vk: sendMessageEventAnswer failed: %s", _describe(exc))

    def _remember(self, peer_id: str, client: ClientInfo) -> None:
        self._clients[peer_id] = client
        self._clients.move_to_end(peer_id)
        while len(self._clients) > _MAX_CLIENTS:
            self._clients.popitem(last=False)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sending ------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> str | None:
        peer = message.chat_id
        client = self._clients.get(peer)
        text = message.text
        params: dict[str, Any] = {
            "peer_id": peer,
            "random_id": random_id(peer, message.idempotency_key),
        }
        if message.buttons:
            if client is not None and client.shows_buttons:
                params["keyboard"] = await self._keyboard(message.buttons, client)
                text = text or numbered(message.buttons)  # VK refuses an empty message
            else:
                listed = numbered(message.buttons)
                text = f"{text}\n\n{listed}" if text else listed
        documents, text = await self._documents(message, text, client)
        if documents:
            params["attachment"] = ",".join(documents)
        elif not text:
            return None  # nothing to show
        if text:
            params["message"] = text
        try:
            result = await self._call("messages.send", params)
        except ApiError as exc:
            raise await self._send_error(exc, peer, client) from None
        except (VkApiError, requests.RequestException, ValueError) as exc:
            raise SendError(f"VK unavailable: {_describe(exc)}") from None
        except Exception as exc:  # the outbox retries; an unexpected error must not stop it
            log.exception("vk: messages.send failed unexpectedly")
            raise SendError(f"VK send failed: {_describe(exc)}") from None
        return _message_id(result)

    async def _documents(
        self, message: OutboundMessage, text: str, client: ClientInfo | None
    ) -> tuple[list[str], str]:
        """The message's files uploaded as documents (``doc<owner>_<id>``, attached to the
        one message), and the text with a line for each file VK will not take."""
        if not message.attachments or self._files is None:
            return [], text
        peer = message.chat_id
        documents: list[str] = []
        instead: list[FileRef] = []
        for ref in message.attachments:
            document = await self._document(peer, ref, client) if ref.size <= MAX_FILE else None
            if document is None:
                instead.append(ref)
            else:
                documents.append(document)
        user = client.user_id if client is not None else peer
        key = ConversationKey(CHANNEL, peer, user)
        return documents, with_lines(text, await self._files.instead(key, instead))

    async def _document(self, peer: str, ref: FileRef, client: ClientInfo | None) -> str | None:
        """Upload through ``docs.getMessagesUploadServer`` → the upload server → ``docs.save``
        (vk-api's ``VkUpload``); None when the file is gone or VK refuses it for good."""
        done = self._uploaded.get((peer, ref.file_id))
        if done is not None:
            return done
        assert self._files is not None
        data = await self._files.load(ref)
        if data is None:
            return None
        try:
            saved = await asyncio.to_thread(self._upload, peer, ref, data)
        except ApiError as exc:
            error = await self._send_error(exc, peer, client)
            if not error.permanent or exc.code in _UNREACHABLE:
                raise error from None
            log.warning("vk: document %s refused, sending a link: %s", ref.file_id, exc)
            return None
        except (VkApiError, requests.RequestException, ValueError) as exc:
            raise SendError(f"VK upload failed: {_describe(exc)}") from None
        except (KeyError, TypeError) as exc:
            raise SendError(f"VK upload answered oddly: {_describe(exc)}") from None
        self._uploaded[(peer, ref.file_id)] = saved
        while len(self._uploaded) > _MAX_UPLOADED:
            self._uploaded.popitem(last=False)
        return saved

    def _upload(self, peer: str, ref: FileRef, data: bytes) -> str:
        handle = io.BytesIO(data)
        handle.name = ref.name  # vk-api names the upload after it (and VK reads the extension)
        saved = vk_api.VkUpload(self._api).document_message(handle, title=ref.name, peer_id=peer)
        doc = saved["doc"] if "doc" in saved else saved[0]  # API 5.199 / older answers
        return f"doc{doc['owner_id']}_{doc['id']}"

    async def _keyboard(self, buttons: Sequence[RenderedButton], client: ClientInfo) -> str:
        action: ButtonAction = "text"
        if (
            self._button_action == "callback"
            and client.inline_keyboard
            and "callback" in client.button_actions
        ):
            action = "callback"
        cells: list[tuple[str, str]] = []
        for button in buttons:
            encoded = encode_payload(button.payload)
            if encoded is None:
                token = await self._store.payload_token(button.payload)
                encoded = json.dumps({"t": token}, separators=(",", ":"))
            cells.append((button.title, encoded))
        return keyboard_json(cells, inline=client.inline_keyboard, action=action)

    async def _send_error(self, exc: ApiError, peer: str, client: ClientInfo | None) -> SendError:
        code = exc.code
        text = f"VK error {code}: {exc.error.get('error_msg', '')}"
        if code in _RATE_LIMITED:
            return SendError(text, retry_after=1.0)
        if code in _UNREACHABLE:
            user = client.user_id if client is not None else peer
            await self._store.set_reachable(
                ConversationKey(CHANNEL, peer, user).id, False, f"VK error {code}"
            )
            return SendError(text, permanent=True)
        return SendError(text, permanent=code not in _RETRYABLE)

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        return await asyncio.to_thread(self._api.method, method, params)

    # --- Bots Long Poll -----------------------------------------------------------------
    async def _poll_forever(self) -> None:
        """``groups.getLongPollServer``, then ``a_check`` in a loop; ``failed`` handled as VK
        documents it (1: new ts; 2: new key; 3: new key and ts). The ts moves on only after
        every update of a batch is durable, so a failure never loses one."""
        server: dict[str, str] | None = None
        errors = 0
        while not self._intake_stopped:
            try:
                if server is None:
                    server = await self._longpoll_server()
                answer = await self._check(server)
                failed = answer.get("failed")
                if failed == 1:
                    server["ts"] = str(answer["ts"])
                elif failed == 2:
                    fresh = await self._longpoll_server()
                    server = {**fresh, "ts": server["ts"]}
                elif failed is not None:
                    server = None
                else:
                    self._recording = True
                    try:
                        for update in answer.get("updates") or ():
                            if isinstance(update, Mapping):
                                raw = json.dumps(update, sort_keys=True).encode()
                                await self.handle_event(update, raw)
                    finally:
                        self._recording = False
                    server["ts"] = str(answer["ts"])
                errors = 0
            except asyncio.CancelledError:
                raise
            except Draining:
                return  # shutting down: ts stays where it was, VK gives the rest again
            except Exception as exc:
                errors += 1
                log.warning("vk: long poll failed (%d in a row): %s", errors, _describe(exc))
                if errors >= 3:
                    server = None  # start over with a fresh server
                await asyncio.sleep(min(30.0, 0.5 * 2 ** min(errors, 6)))

    async def _longpoll_server(self) -> dict[str, str]:
        answer = await self._call("groups.getLongPollServer", {"group_id": self._group_id})
        return {"server": str(answer["server"]), "key": str(answer["key"]), "ts": str(answer["ts"])}

    async def _check(self, server: Mapping[str, str]) -> dict[str, Any]:
        assert self._http is not None
        params = {
            "act": "a_check",
            "key": server["key"],
            "ts": server["ts"],
            "wait": str(self._longpoll_wait),
        }
        timeout = aiohttp.ClientTimeout(total=self._longpoll_wait + 10)
        async with self._http.get(server["server"], params=params, timeout=timeout) as resp:
            resp.raise_for_status()
            answer = await resp.json(content_type=None)
        if not isinstance(answer, dict):
            raise ValueError("long poll answer is not an object")
        return answer


def _message_id(result: Any) -> str | None:
    if isinstance(result, list) and result and isinstance(result[0], Mapping):
        result = result[0].get("message_id")
    elif isinstance(result, Mapping):
        result = result.get("message_id")
    return None if result is None else str(result)


def _describe(exc: BaseException) -> str:
    """An error for the log without URLs (a long-poll URL carries its key)."""
    if isinstance(exc, ApiError):
        return str(exc)
    if isinstance(exc, ApiHttpError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    return type(exc).__name__


def create(deps: ChannelDeps) -> Channel | None:
    """The VK channel, on when VK_GROUP_TOKEN and VK_GROUP_ID are set."""
    settings = deps.settings
    if not settings.vk_group_token or not settings.vk_group_id:
        return None
    return VkChannel(
        settings=settings,
        ingress=deps.ingress,
        store=deps.store,
        files=ChannelFiles.from_deps(deps),
        lease=deps.leases.lease(f"vk-longpoll:{settings.vk_group_id}", channel=CHANNEL)
        if deps.leases and settings.vk_longpoll
        else None,
    )
