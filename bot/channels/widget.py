"""The website widget: one ``<script src=".../widget.js">`` puts a chat on any page.

The script (``widget_static/widget.js``, plain JavaScript, no build step) talks to
``/ws/widget`` over a WebSocket. A visitor is identified by a random session id the browser
keeps in ``localStorage``: it is the only credential of an anonymous visitor, so cookies and the
page's origin are not trusted for anything (the widget is embedded on the provider's own site,
so any origin may connect). A page that knows the customer (the personal account) vouches for
them with the signed identity of CONTRACTS.md in the first frame.

The transcript is the source of truth: on every (re)connect the server sends the conversation
so far, and ``send`` pushes the transcript entries a socket has not seen yet. A reply delivered
while no tab is open is simply shown on the next connect, and a reply is never shown twice.
With several gateway processes (``REDIS_URL``) a reply sent by another process reaches the tabs
held here through ``bot/channels/widget_relay.py`` (a Redis pub/sub nudge per session).

Protocol (JSON text frames):
  client -> server  {"type": "hello", "locale": "ru", "identity": {"contract_number", "hash"}}
                    (first frame; identity optional)
                    {"type": "message", "id": <client id>, "text": ...}
                    {"type": "payload", "id": <client id>, "payload": ..., "title": ...}
                    {"type": "location", "id": <client id>, "lat": ..., "lon": ...}
  server -> client  {"type": "history", "messages": [entry, ...]}   (after the hello)
                    {"type": "reply", "message": entry}              (a new transcript entry)
                    {"type": "ack", "id": <client id>, "duplicate": bool}
                    {"type": "typing"}
                    {"type": "error", "code": ..., "id": <client id> | absent}
  entry = {"id", "from": customer|bot|operator|system, "text", "buttons": [{"title",
  "payload"}], "at", "client_id", "kind", "attachments": [{"id", "name", "content_type",
  "size", "url"}]}

A file the bot sent is downloaded from ``GET /api/v1/widget/files/{id}`` with the session in
the ``X-Widget-Session`` header (not in the URL, where it would land in the browser's history),
and only by the session whose transcript holds it.

The client id of each message makes a resend after a reconnect harmless: the ingress dedupes
on ``<session>:<client id>``.

Everything a client sends is outside input: frames (the hello too) are parsed with
``bot.untrusted.loads`` (size and depth bounded) and their text cleaned (lone surrogates,
control characters) before anything is stored; a bad frame gets an error frame and the socket
stays open. Limits hold per session and per client address (``bot.abuse``), not per socket, so
opening more tabs multiplies nothing: open sockets (``too_many_connections``, then the socket is
closed with 1013 "try again later"), frames (``rate_limited``), uploads and their bytes (HTTP 429
with ``Retry-After``). The client's address is taken with ``bot.client_address`` (forwarding
headers only from ``BOT_TRUSTED_PROXIES``) and travels with each message only as a keyed hash
(``Inbound.raw["client"]``), so identification attempts can be limited per address.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, WSCloseCode, WSMsgType, web
from aiohttp.http_exceptions import HttpProcessingError
from redis.asyncio import Redis

from bot.abuse import CLIENT_FIELD, AbuseLimits, Refusal, SocketLease
from bot.channels.base import Capabilities, Channel, OutboundMessage, RateLimit
from bot.channels.files import ChannelFiles
from bot.channels.inbound_files import sniff as sniff_content
from bot.channels.widget_relay import WidgetRelay
from bot.client_address import client_address
from bot.config import IPNetwork
from bot.files import file_response
from bot.http import json_response
from bot.i18n import Translator
from bot.identity import verify_contract
from bot.ingress import Ingress
from bot.models import Attachment, ConversationKey, FileRef, Inbound, Location, TranscriptEntry
from bot.serialize import attachments_of
from bot.storage.base import Store
from bot.storage.files import FileStore
from bot.storage.health import StoreUnavailable
from bot.untrusted import SHORT_TEXT_LIMIT, UntrustedInput, clean_text, loads, text_limit

if TYPE_CHECKING:  # the registry imports this module to list its factory
    from bot.channels.registry import ChannelDeps

log = logging.getLogger(__name__)

CHANNEL = "widget"
SESSION_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_TEXT = text_limit(CHANNEL)
MAX_PAYLOAD = 1024
MAX_TITLE = 200
MAX_LOCALE = 16
MAX_FRAME = 64 * 1024
MAX_UPLOAD = 10 * 1024 * 1024
MAX_FORM_FIELD = 256
HELLO_TIMEOUT = 10.0
LOCALE_RE = re.compile(r"[A-Za-z0-9_-]{1,16}")
MAX_IDENTITY_FIELD = 128  # a contract number and a hex HMAC-SHA256 are far shorter
TRY_AGAIN_LATER = 1013  # WebSocket close code: the page reconnects later, unlike 1008
HISTORY_LIMIT = 200
UPLOAD_CHUNK = 64 * 1024
JS_PLACEHOLDER = "__ISPW_BUILD__"
FILES_PATH = "/api/v1/widget/files"
SESSION_HEADER = "X-Widget-Session"

# Uploads the widget takes, by extension of the bytes (bot/channels/inbound_files.sniff): images
# and PDF, and the attachment kind each becomes.
_UPLOAD_KINDS = {"png": "image", "jpg": "image", "gif": "image", "webp": "image", "pdf": "document"}

_dumps = partial(json.dumps, ensure_ascii=False)


class FrameError(ValueError):
    """A malformed client frame: answered with an error frame, nothing recorded."""


def sniff(head: bytes) -> tuple[str, str] | None:
    """(extension, attachment kind) of an allowed upload from its first bytes, else None: the
    same recognition as files from the messengers, narrowed to what the widget takes."""
    found = sniff_content(head)
    if found is None or found[1] not in _UPLOAD_KINDS:
        return None
    return found[1], _UPLOAD_KINDS[found[1]]


def conversation_key(session: str) -> ConversationKey:
    return ConversationKey(CHANNEL, session, session)


def _client_id(frame: Mapping[str, Any]) -> str:
    value = frame.get("id")
    if not isinstance(value, str) or not CLIENT_ID_RE.fullmatch(value):
        raise FrameError("'id' must be 1-64 letters, digits, '-' or '_'")
    return value


def _string(frame: Mapping[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = frame.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise FrameError(f"'{name}' must be a non-empty string")
    if len(value) > limit:
        raise FrameError(f"'{name}' is longer than {limit} characters")
    value = clean_text(value, limit)  # no lone surrogates or control characters get stored
    if required and not value.strip():
        raise FrameError(f"'{name}' must be a non-empty string")
    return value


def _location(frame: Mapping[str, Any]) -> Location:
    try:
        lat, lon = float(frame["lat"]), float(frame["lon"])
    except (KeyError, TypeError, ValueError):
        raise FrameError("'lat' and 'lon' must be numbers") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError("'lat'/'lon' are outside the valid range")
    return Location(lat, lon)


def parse_frame(
    session: str, frame: Any, *, locale: str | None, client: str | None = None
) -> Inbound:
    """A customer frame as an ``Inbound``. A button press keeps the button's title as the text,
    so the transcript reads as the customer saw it; the payload is what the dialog acts on.
    ``client``: the keyed hash of the sender's address, for limits on identification."""
    if not isinstance(frame, Mapping):
        raise FrameError("a frame must be a JSON object")
    kind = frame.get("type")
    client_id = _client_id(frame)
    # The record keeps what the frame was, not its text again (that is in the Inbound, cleaned).
    raw: dict[str, Any] = {"type": str(kind)[:16], "id": client_id}
    if client is not None:
        raw[CLIENT_FIELD] = client
    common: dict[str, Any] = {
        "key": conversation_key(session),
        "message_id": client_id,
        "locale": locale,
        "raw": raw,
        "received_at": datetime.now(UTC),
    }
    if kind == "message":
        return Inbound(kind="text", text=_string(frame, "text", MAX_TEXT, required=True), **common)
    if kind == "payload":
        payload = _string(frame, "payload", MAX_PAYLOAD, required=True)
        title = _string(frame, "title", MAX_TITLE, required=False)
        return Inbound(kind="payload", payload=payload, text=title or None, **common)
    if kind == "location":
        return Inbound(kind="location", location=_location(frame), **common)
    raise FrameError("'type' must be message, payload or location")


def entry_json(entry: TranscriptEntry) -> dict[str, Any]:
    meta = entry.meta or {}
    return {
        "id": entry.id,
        "from": entry.sender,
        "text": entry.text,
        "buttons": [{"title": b.title, "payload": b.payload} for b in entry.buttons],
        "at": entry.at.isoformat(),
        "client_id": meta.get("message_id"),
        "kind": meta.get("kind"),
        "attachments": [
            {
                "id": f.file_id,
                "name": f.name,
                "content_type": f.content_type,
                "size": f.size,
                "url": f"{FILES_PATH}/{f.file_id}",
            }
            for f in attachments_of(meta)
        ],
    }


def widget_strings(translator: Translator) -> dict[str, dict[str, str]]:
    """The widget's UI texts per locale (``widget.*`` of ``locales/<lang>/widget.yml``)."""
    strings: dict[str, dict[str, str]] = {}
    for locale, catalog in translator.catalogs.items():
        strings[locale] = {
            key.removeprefix("widget."): message
            for key, message in catalog.items()
            if key.startswith("widget.") and isinstance(message, str)
        }
    return strings


def _static(name: str) -> str:
    return (resources.files("bot.channels.widget_static") / name).read_text(encoding="utf-8")


def build_script(strings: Mapping[str, Mapping[str, str]], default_locale: str) -> str:
    """``widget.js`` with its texts and styles filled in, so a page loads one file."""
    build = {
        "strings": strings,
        "defaultLocale": default_locale if default_locale in strings else next(iter(strings)),
        "css": _static("widget.css"),
        "maxUpload": MAX_UPLOAD,
    }
    template = _static("widget.js")
    if template.count(JS_PLACEHOLDER) != 1:
        raise RuntimeError(f"widget.js must contain {JS_PLACEHOLDER} exactly once")
    return template.replace(JS_PLACEHOLDER, _dumps(build))


@dataclass(eq=False)
class _Socket:
    """One open tab. ``cursor``: the last transcript entry this tab has been sent; pushes to it
    are serialised by ``lock`` so history and live replies never interleave or repeat.
    ``address``: the client's address (for limits), ``client``: its keyed hash (for the record).
    """

    ws: web.WebSocketResponse
    address: str = "unknown"
    client: str | None = None
    cursor: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, frame: Mapping[str, Any]) -> None:
        if self.ws.closed:
            return
        # A tab that went away mid-send is removed by its own handler; nothing to do here.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(_dumps(frame))


class _UploadRefused(Exception):
    def __init__(self, status: int, code: str, retry_after: int | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @classmethod
    def limited(cls, refusal: Refusal) -> _UploadRefused:
        return cls(429, "too_many_uploads", refusal.retry_after)

    def response(self) -> web.StreamResponse:
        body: dict[str, Any] = {"error": self.code}
        if self.retry_after is not None:  # in the body too: a page on another origin reads it
            body["retry_after"] = self.retry_after
        response = json_response(body, status=self.status)
        if self.retry_after is not None:
            response.headers["Retry-After"] = str(self.retry_after)
        return _cors(response)


def _cors(response: web.StreamResponse) -> web.StreamResponse:
    # The widget runs on the provider's site, another origin; no cookies are involved.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


class WidgetChannel(Channel):
    """Serves the widget script and demo page, and runs the widget's WebSocket protocol."""

    name = CHANNEL
    capabilities = Capabilities(max_text=10000, buttons=True, max_buttons=10, max_button_title=64)
    rate_limit = RateLimit(per_chat=50.0, overall=500.0)

    def __init__(
        self,
        *,
        ingress: Ingress,
        store: Store,
        identity_secret: str | None,
        uploads_dir: Path,
        strings: Mapping[str, Mapping[str, str]],
        default_locale: str = "ru",
        files: FileStore | None = None,
        abuse: AbuseLimits | None = None,
        trusted_proxies: tuple[IPNetwork, ...] = (),
    ) -> None:
        self._ingress = ingress
        # The process's shared limits arrive with attach_abuse; until then (a channel built on
        # its own, in tests) the widget still keeps limits of its own.
        self._abuse = abuse if abuse is not None else AbuseLimits()
        self._trusted_proxies = trusted_proxies
        self._files = files
        self._store = store
        self._identity_secret = identity_secret
        self._uploads_dir = uploads_dir
        script = build_script(strings, default_locale).encode()
        self._script = script
        self._script_etag = '"' + hashlib.sha256(script).hexdigest()[:32] + '"'
        self._demo = _static("demo.html").encode()
        self._sockets: dict[str, set[_Socket]] = {}
        self._relay: WidgetRelay | None = None  # several processes: bot/channels/widget_relay.py

    def attach_relay(self, redis: Redis) -> None:
        """Replies sent by other processes reach this process's tabs (REDIS_URL)."""
        self._relay = WidgetRelay(redis, self._nudged, self._push_everywhere)

    def attach_abuse(self, limits: AbuseLimits) -> None:
        self._abuse = limits

    def _address(self, request: web.Request) -> str:
        return client_address(request, self._trusted_proxies)

    # --- routes ---------------------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.demo_page)
        app.router.add_get("/widget.js", self.script)
        app.router.add_get("/ws/widget", self.websocket)
        app.router.add_post("/api/v1/widget/upload", self.upload)
        app.router.add_get(FILES_PATH + "/{file_id}", self.download)
        app.router.add_route("OPTIONS", FILES_PATH + "/{file_id}", self.download_preflight)
        app.on_shutdown.append(self._shutdown)

    async def demo_page(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._demo,
            content_type="text/html",
            charset="utf-8",
            headers={
                # The widget needs no inline script, no eval and no third-party host.
                "Content-Security-Policy": (
                    "default-src 'self'; script-src 'self'; connect-src 'self'; "
                    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
                ),
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def script(self, request: web.Request) -> web.Response:
        headers = {
            "Cache-Control": "public, max-age=300",
            "ETag": self._script_etag,
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("If-None-Match") == self._script_etag:
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=self._script,
            content_type="text/javascript",
            charset="utf-8",
            headers=headers,
        )

    # --- the WebSocket --------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        session = request.query.get("session", "")
        if not SESSION_RE.fullmatch(session):
            return json_response({"error": "'session' must be 16-64 letters or digits"}, status=400)
        address = self._address(request)
        # Counted from the upgrade on, the hello wait included: a socket that never says hello
        # still holds a place.
        lease = self._abuse.open_socket(session, address)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_FRAME)
        try:
            await ws.prepare(request)
            if isinstance(lease, Refusal):
                refused = {"type": "error", "code": "too_many_connections",
                           "retry_after": lease.retry_after}  # fmt: skip
                await ws.send_str(_dumps(refused))
                await ws.close(code=TRY_AGAIN_LATER, message=b"too many connections")
                return ws
            await self._serve(ws, session, address)
        finally:
            if isinstance(lease, SocketLease):
                lease.release()
        return ws

    async def _serve(self, ws: web.WebSocketResponse, session: str, address: str) -> None:
        hello = await self._hello(ws)
        if hello is None:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"hello expected")
            return
        key = conversation_key(session)
        refusal = await self._check_identity(key, hello.get("identity"))
        if refusal is not None:
            await ws.send_str(_dumps({"type": "error", "code": refusal}))
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=refusal.encode())
            return
        locale = self._locale(hello.get("locale"))
        sock = _Socket(ws, address=address, client=self._abuse.tag(address))
        try:
            async with sock.lock:  # a reply pushed meanwhile waits for the history
                self._sockets.setdefault(session, set()).add(sock)
                if self._relay is not None:  # before the history: no reply falls in between
                    await self._relay.hold(session)
                await self._send_history(sock, key)
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._on_frame(sock, session, locale, message.data)
                elif message.type == WSMsgType.ERROR:
                    break
        except StoreUnavailable:
            # Nothing of the frame was recorded and it was not acknowledged. Closing as an
            # internal error makes the page reconnect with its backoff and send what is still
            # unacknowledged again (1013 would read as "too many tabs", an error frame as
            # "not sent" for good).
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"store unavailable")
        finally:
            tabs = self._sockets.get(session)
            if tabs is not None:
                tabs.discard(sock)
                if not tabs:
                    del self._sockets[session]
                    if self._relay is not None:
                        await self._relay.release(session)

    async def _hello(self, ws: web.WebSocketResponse) -> Mapping[str, Any] | None:
        """The first frame when it is a hello, through the same bounded parser as the rest."""
        try:
            message = await ws.receive(timeout=HELLO_TIMEOUT)
        except TimeoutError:
            return None
        if message.type != WSMsgType.TEXT:
            return None
        try:
            hello = loads(message.data, max_bytes=MAX_FRAME)
        except UntrustedInput:
            return None
        if not isinstance(hello, Mapping) or hello.get("type") != "hello":
            return None
        return hello

    def _locale(self, value: Any) -> str | None:
        if not isinstance(value, str) or not LOCALE_RE.fullmatch(value):
            return None
        return value

    async def _check_identity(self, key: ConversationKey, claim: Any) -> str | None:
        """None when the hello may proceed (anonymous, or a valid signature now linked);
        otherwise the error code, and nothing is recorded."""
        if claim is None:
            return None
        if not isinstance(claim, Mapping):
            return "identity_invalid"
        contract, signature = claim.get("contract_number"), claim.get("hash")
        if not isinstance(contract, str) or not isinstance(signature, str):
            return "identity_invalid"
        if not _identity_field(contract) or not _identity_field(signature):
            # Not what a site signs: a lone surrogate or other non-ASCII text would not even
            # encode for the HMAC.
            return "identity_invalid"
        if not verify_contract(self._identity_secret, contract, signature):
            return "identity_invalid"
        linked = await self._store.identity(key)
        if linked is not None and linked.contract_number != contract:
            # Another customer's conversation: never show its history to this one.
            return "session_conflict"
        if linked is None:
            await self._store.link_identity(key, contract, "signed")
        return None

    async def _send_history(self, sock: _Socket, key: ConversationKey) -> None:
        """The conversation so far (its latest entries); the caller holds ``sock.lock``."""
        entries: list[TranscriptEntry] = []
        after = 0
        while True:  # the store pages from the start; keep the latest ones
            page = await self._store.messages(key.id, after=after, limit=500)
            entries = [*entries, *page][-HISTORY_LIMIT:]
            if len(page) < 500:
                break
            after = page[-1].id
        if entries:
            sock.cursor = entries[-1].id
        await sock.send({"type": "history", "messages": [entry_json(e) for e in entries]})

    async def _push_new(self, sock: _Socket, conversation_id: str) -> None:
        async with sock.lock:
            entries = await self._store.messages(conversation_id, after=sock.cursor, limit=500)
            for entry in entries:
                await sock.send({"type": "reply", "message": entry_json(entry)})
                sock.cursor = entry.id

    async def _broadcast(self, session: str, frame: Mapping[str, Any]) -> None:
        for sock in list(self._sockets.get(session, ())):
            await sock.send(frame)

    async def _on_frame(self, sock: _Socket, session: str, locale: str | None, data: str) -> None:
        # Every frame counts, a malformed one too: per session and per address, never per
        # socket (more tabs must not mean more frames).
        limited = await self._abuse.hit_all(
            (("widget_frames_per_session", session), ("widget_frames_per_address", sock.address))
        )
        frame: Any = None
        problem: str | None = None
        try:
            frame = loads(data, max_bytes=MAX_FRAME)  # size and depth bounded: never a 500
        except UntrustedInput as exc:
            problem = str(exc)
        client_id = _known_id(frame)
        if limited is not None:
            await sock.send(_error("rate_limited", client_id, retry_after=limited.retry_after))
            return
        try:
            if problem is not None:
                raise FrameError(problem)
            inbound = parse_frame(session, frame, locale=locale, client=sock.client)
        except FrameError as exc:
            await sock.send(_error("bad_request", client_id, detail=str(exc)))
            return
        accepted = await self._ingress.accept(
            inbound, scope=CHANNEL, platform_id=f"{session}:{inbound.message_id}"
        )
        await sock.send({"type": "ack", "id": inbound.message_id, "duplicate": not accepted})
        if accepted:
            await self._typing(session, inbound.key.id)

    async def _typing(self, session: str, conversation_id: str) -> None:
        """Show "печатает…" only when the bot will answer: not while a person has the chat."""
        if await self._store.queue_get(conversation_id) is None:
            await self._broadcast(session, {"type": "typing"})

    # --- uploads --------------------------------------------------------------------------------
    async def upload(self, request: web.Request) -> web.StreamResponse:
        """``multipart/form-data`` with ``session``, ``id`` (client id), optional ``locale``, and
        ``file`` (an image or a PDF, at most ``MAX_UPLOAD`` bytes)."""
        declared = request.content_length
        if declared is not None and declared > MAX_UPLOAD + UPLOAD_CHUNK:  # room for the form
            return _cors(json_response({"error": "file_too_large"}, status=413))
        address = self._address(request)
        # Every attempt from an address counts before a byte is read; the session's share and
        # the bytes are counted once they are known.
        limited = await self._abuse.hit("widget_uploads_per_address", address)
        if limited is not None:
            return _UploadRefused.limited(limited).response()
        stored: Path | None = None
        try:
            fields, stored, original, kind = await self._read_upload(request)
            session, client_id = fields.get("session", ""), fields.get("id", "")
            if not SESSION_RE.fullmatch(session) or not CLIENT_ID_RE.fullmatch(client_id):
                raise _UploadRefused(400, "bad_request")
            await self._upload_quota(session, address, stored)
            # Into the file store as well, so operators open it from the console like files
            # from the messengers (the uploads folder stays the widget's own record).
            ref = await self._keep(stored, original)
            inbound = Inbound(
                key=conversation_key(session),
                message_id=client_id,
                kind="attachment",
                attachments=(Attachment(kind, f"uploads/{stored.name}", original, file=ref),),
                locale=self._locale(fields.get("locale")),
                raw={
                    "type": "upload",
                    "id": client_id,
                    "file": stored.name,
                    "name": original,
                    CLIENT_FIELD: self._abuse.tag(address),
                },
                received_at=datetime.now(UTC),
            )
            accepted = await self._ingress.accept(
                inbound, scope=CHANNEL, platform_id=f"{session}:{client_id}"
            )
        except _UploadRefused as refused:
            if stored is not None:
                stored.unlink(missing_ok=True)
            return refused.response()
        if not accepted:  # a resend of an upload already taken
            stored.unlink(missing_ok=True)
        else:
            await self._typing(session, conversation_key(session).id)
        file = {"name": original, "kind": kind}
        return _cors(json_response({"id": client_id, "duplicate": not accepted, "file": file}))

    async def _upload_quota(self, session: str, address: str, stored: Path) -> None:
        """The session's number of uploads and the bytes of the session and of the address."""
        size = (await asyncio.to_thread(stored.stat)).st_size
        limited = await self._abuse.hit("widget_uploads_per_session", session)
        if limited is None:
            limited = await self._abuse.hit_all(
                (
                    ("widget_upload_bytes_per_session", session),
                    ("widget_upload_bytes_per_address", address),
                ),
                cost=max(1, size),
            )
        if limited is not None:
            raise _UploadRefused.limited(limited)

    async def _keep(self, path: Path, name: str | None) -> FileRef | None:
        if self._files is None:
            return None
        data = await asyncio.to_thread(path.read_bytes)
        found = sniff_content(data[:16])  # the upload passed sniff(): always found
        content_type = found[0] if found else "application/octet-stream"
        return await self._files.put(data, name or path.name, content_type)

    async def _read_upload(
        self, request: web.Request
    ) -> tuple[dict[str, str], Path, str | None, str]:
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            raise _UploadRefused(400, "bad_request") from None
        fields: dict[str, str] = {}
        stored: tuple[Path, str | None, str] | None = None
        try:
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader):
                    raise _UploadRefused(400, "bad_request")
                if part.name == "file" and stored is None:
                    stored = await self._store_file(part)
                elif part.name in ("session", "id", "locale"):
                    fields[part.name] = await _small_field(part)
                else:
                    await part.release()
        except _UploadRefused:
            if stored is not None:
                stored[0].unlink(missing_ok=True)
            raise
        except (ValueError, HttpProcessingError):  # a malformed part header is aiohttp's latter
            if stored is not None:
                stored[0].unlink(missing_ok=True)
            raise _UploadRefused(400, "bad_request") from None
        if stored is None:
            raise _UploadRefused(400, "bad_request")
        path, original, kind = stored
        return fields, path, original, kind

    async def _store_file(self, part: BodyPartReader) -> tuple[Path, str | None, str]:
        """Stream one file part to ``uploads/``; refused (and removed) when too large or not an
        allowed type, judged by its content."""
        await asyncio.to_thread(self._uploads_dir.mkdir, parents=True, exist_ok=True)
        file_id = uuid.uuid4().hex
        partial_path = self._uploads_dir / f"{file_id}.part"
        size = 0
        head = b""
        detected: tuple[str, str] | None = None
        handle = await asyncio.to_thread(partial_path.open, "wb")
        try:
            while chunk := await part.read_chunk(UPLOAD_CHUNK):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise _UploadRefused(413, "file_too_large")
                if detected is None:
                    head += chunk  # until there are enough bytes to tell the type
                    if len(head) >= 16 and (detected := sniff(head)) is None:
                        raise _UploadRefused(415, "file_type")
                await asyncio.to_thread(handle.write, chunk)
            if detected is None and (detected := sniff(head)) is None:
                raise _UploadRefused(415, "file_type")
        except BaseException:
            await asyncio.to_thread(handle.close)
            partial_path.unlink(missing_ok=True)
            raise
        await asyncio.to_thread(handle.close)
        ext, kind = detected
        final = self._uploads_dir / f"{file_id}.{ext}"
        partial_path.rename(final)
        return final, _display_name(part.filename), kind

    # --- files the bot sent -------------------------------------------------------------------
    async def download(self, request: web.Request) -> web.StreamResponse:
        session = request.headers.get(SESSION_HEADER, "")
        file_id = request.match_info["file_id"]
        if not SESSION_RE.fullmatch(session):
            return _cors(json_response({"error": "not authorized"}, status=403))
        # The same 404 for another session's file and for no file: ids cannot be probed.
        found = None
        if self._files is not None and await _holds(self._store, session, file_id):
            found = await self._files.get(file_id)
        if found is None:
            return _cors(json_response({"error": "not found"}, status=404))
        return _cors(file_response(*found))

    async def download_preflight(self, request: web.Request) -> web.StreamResponse:
        # The session travels in a header, so a page on another origin asks first.
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET"
        response.headers["Access-Control-Allow-Headers"] = SESSION_HEADER
        response.headers["Access-Control-Max-Age"] = "600"
        return _cors(response)

    # --- delivery -------------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> str | None:
        """Push what the session's open tabs have not seen. The reply is already in the
        transcript (committed with the turn), so with no tab open there is nothing to do: the
        next connect shows it."""
        await self._nudged(message.chat_id)
        if self._relay is not None:  # tabs of this session held by other processes
            await self._relay.nudge(message.chat_id)
        return None

    async def _nudged(self, session: str) -> None:
        """Push what this process's tabs of ``session`` have not seen yet."""
        conversation_id = conversation_key(session).id
        for sock in list(self._sockets.get(session, ())):
            await self._push_new(sock, conversation_id)

    async def _push_everywhere(self) -> None:
        """After a lost connection to Redis: nudges may have been missed, by any tab."""
        for session in list(self._sockets):
            await self._nudged(session)

    async def _shutdown(self, app: web.Application) -> None:
        await self.close()

    async def stop_intake(self) -> None:
        # 1012 (service restart): the page reconnects with its backoff, to another process
        # behind the load balancer or to this one restarted, and resends what is unacknowledged.
        sockets = [s for tabs in self._sockets.values() for s in tabs]
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"restarting")

    async def close(self) -> None:
        sockets = [s for tabs in self._sockets.values() for s in tabs]
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        if self._relay is not None:
            await self._relay.close()


async def _holds(store: Store, session: str, file_id: str) -> bool:
    """Whether the session's own transcript carries this file."""
    conversation_id = conversation_key(session).id
    after = 0
    while True:
        page = await store.messages(conversation_id, after=after, limit=500)
        if any(f.file_id == file_id for e in page for f in attachments_of(e.meta)):
            return True
        if len(page) < 500:
            return False
        after = page[-1].id


def _known_id(frame: Any) -> str | None:
    """The frame's client id when it is a valid one: an error frame names it, so the page marks
    that message as not sent."""
    found = frame.get("id") if isinstance(frame, Mapping) else None
    return found if isinstance(found, str) and CLIENT_ID_RE.fullmatch(found) else None


def _error(code: str, client_id: str | None, **details: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "error", "code": code, **details}
    if client_id is not None:
        error["id"] = client_id
    return error


def _identity_field(value: str) -> bool:
    return 0 < len(value) <= MAX_IDENTITY_FIELD and value.isascii()


async def _small_field(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(MAX_FORM_FIELD + 1):
        data.extend(chunk)
        if len(data) > MAX_FORM_FIELD:
            raise _UploadRefused(400, "bad_request")
    return clean_text(data.decode("utf-8", errors="replace"), MAX_FORM_FIELD).strip()


def _display_name(filename: str | None) -> str | None:
    """The customer's file name, for people to read: no path, no control characters."""
    if not filename:
        return None
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in clean_text(name, SHORT_TEXT_LIMIT) if ch.isprintable()).strip()
    return name[:120] or None


def create(deps: ChannelDeps) -> Channel | None:
    """The widget needs no credentials: always on (CONTRACTS.md: ``GET /widget.js``)."""
    settings = deps.settings
    return WidgetChannel(
        ingress=deps.ingress,
        store=deps.store,
        identity_secret=settings.identity_secret,
        uploads_dir=settings.var_dir / "uploads",
        strings=widget_strings(deps.translator),
        default_locale=settings.default_locale,
        files=ChannelFiles.from_deps(deps).files,
        trusted_proxies=tuple(settings.trusted_proxies),
    )
