"""The REST channel (CONTRACTS.md §2): integrations and the acceptance suite talk to the bot with
plain JSON, and get the replies in the response body.

Who may read what (the REST API is a door for the provider's own site, not a window on every
customer):

- it reads only its own conversations (``rest:<sender>:<sender>``); another channel's transcript
  answers 404 exactly like a conversation that does not exist, so ids cannot be probed;
- ``BOT_REST_TOKEN`` is scoped to one sender per request: ``GET`` names it (``?sender=``), a
  ``POST`` names it in the body, and only that sender's conversation and files are served;
- ``BOT_ADMIN_TOKEN`` (the provider's own back office) is scoped to every REST conversation, as
  is a direct loopback call on a gateway without ``BOT_REST_TOKEN`` and ``BOT_PUBLIC_URL`` (the
  demo), never one that came through a proxy (bot/client_address.py);
- every other channel's transcript is read through the operator API, with a session.

Every field of a body passes the untrusted-input boundary (bot/untrusted.py): text is cleaned
and capped, identifiers must be clean already (a lone surrogate in a ``sender`` is refused with
400 rather than silently naming another conversation).
"""

from __future__ import annotations

import hmac
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.client_address import loopback_exempt
from bot.files import file_response
from bot.gateway import Gateway
from bot.handoff.messages import files_json
from bot.http import json_response
from bot.identity import verify_contract
from bot.models import ConversationKey, FileRef, Inbound, Location, RenderedReply
from bot.serialize import attachments_of
from bot.storage.base import Store
from bot.storage.files import FileStore
from bot.untrusted import (
    SHORT_TEXT_LIMIT,
    UntrustedInput,
    bounded_int,
    clean_text,
    loads,
    text_limit,
)

CHANNEL = "rest"
MAX_TEXT = text_limit(CHANNEL)
MAX_PAYLOAD = 1024
MAX_SENDER = 128
MAX_MESSAGE_ID = 128
MAX_BODY = 256 * 1024  # a message with every optional field is a few kilobytes
MAX_CURSOR = 2**62  # message ids are SQLite rowids: 63-bit signed
MAX_PAGE = 500
FILES_PATH = "/api/v1/files"


class RequestError(UntrustedInput):
    """A malformed request: answered 400 with the reason, nothing changes."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Whom a request may read: every REST conversation, or one sender's."""

    sender: str | None  # None: scoped to all REST conversations

    def may_read(self, conversation_id: str) -> bool:
        sender = sender_of(conversation_id)
        if sender is None:
            return False  # another channel's conversation, or not an id at all
        if self.sender is not None:
            return sender == self.sender
        return clean_text(sender, len(sender)) == sender


def sender_of(conversation_id: str) -> str | None:
    """The sender of a REST conversation id (``rest:<sender>:<sender>``), else None."""
    prefix = CHANNEL + ":"
    if not conversation_id.startswith(prefix):
        return None
    both = conversation_id[len(prefix) :]
    half = len(both) // 2
    sender = both[:half]
    if not sender or len(both) % 2 != 1 or both[half] != ":" or both[half + 1 :] != sender:
        return None
    return sender


def _bearer(request: web.Request, token: str | None) -> bool:
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Bytes, so a non-ASCII header is a plain mismatch rather than compare_digest's TypeError.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode()
    )


def _clean_id(value: Any, name: str, limit: int) -> str:
    """An identifier as sent, or a 400: it names a conversation or a delivery, so a replaced
    character would silently name another one."""
    if not isinstance(value, str) or not value.strip():
        raise RequestError(f"'{name}' must be a non-empty string of at most {limit} characters")
    if len(value) > limit:
        raise RequestError(f"'{name}' must be a non-empty string of at most {limit} characters")
    if clean_text(value, limit) != value:
        raise RequestError(f"'{name}' holds characters that are not allowed")
    return value


def _optional_str(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(f"'{name}' must be a string")
    if len(value) > limit:
        raise RequestError(f"'{name}' is longer than {limit} characters")
    return clean_text(value, limit)


def _location(body: Mapping[str, Any]) -> Location | None:
    raw = body.get("location")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise RequestError("'location' must be an object with 'lat' and 'lon'")
    lat_raw, lon_raw = raw.get("lat"), raw.get("lon")
    if not all(isinstance(v, int | float | str) for v in (lat_raw, lon_raw)):
        raise RequestError("'location' must have numeric 'lat' and 'lon'")
    try:
        # str(): a 5000-digit integer is refused by float() quickly, never an OverflowError.
        lat, lon = float(str(lat_raw)[:64]), float(str(lon_raw)[:64])
    except (TypeError, ValueError, OverflowError):
        raise RequestError("'location' must have numeric 'lat' and 'lon'") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise RequestError("'location' is outside the valid range")
    return Location(lat, lon)


def _identity(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """The site's identity claim as (contract number, hash), checked for shape only."""
    identity = body.get("identity")
    if identity is None:
        return None
    if not isinstance(identity, Mapping):
        raise RequestError("'identity' must be an object with 'contract_number' and 'hash'")
    claimed, signature = identity.get("contract_number"), identity.get("hash")
    # A number is what some sites send for a contract; anything else is not a claim we can check.
    if isinstance(claimed, int) and not isinstance(claimed, bool) and 0 <= claimed < 10**30:
        claimed = str(claimed)
    if not isinstance(claimed, str) or not isinstance(signature, str):
        raise RequestError("'identity' must hold 'contract_number' and 'hash' as strings")
    if len(claimed) > SHORT_TEXT_LIMIT or len(signature) > SHORT_TEXT_LIMIT:
        raise RequestError("'identity' fields are too long")
    return claimed, signature


def parse_message(body: Any) -> tuple[Inbound, tuple[str, str] | None]:
    """Validate a POST body into an ``Inbound`` and the ``identity`` claim (if any)."""
    if not isinstance(body, Mapping):
        raise RequestError("the body must be a JSON object")
    sender = _clean_id(body.get("sender"), "sender", MAX_SENDER)
    text = _optional_str(body, "text", MAX_TEXT)
    payload = _optional_str(body, "payload", MAX_PAYLOAD)
    locale = _optional_str(body, "locale", 16)
    location = _location(body)
    if not (text and text.strip()) and not payload and location is None:
        raise RequestError("one of 'text', 'payload' or 'location' is required")
    identity = _identity(body)
    raw_id = body.get("message_id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    message_id = (
        str(uuid.uuid4()) if not raw_id else _clean_id(raw_id, "message_id", MAX_MESSAGE_ID)
    )
    kind = "payload" if payload else ("text" if text else "location")
    inbound = Inbound(
        key=ConversationKey(CHANNEL, sender, sender),
        message_id=message_id,
        kind=kind,  # type: ignore[arg-type]
        text=text,
        payload=payload,
        location=location,
        locale=locale,
        raw={},  # the fields above are the message; the body is not kept a second time
        received_at=datetime.now(UTC),
    )
    return inbound, identity


def _files(refs: tuple[FileRef, ...], sender: str) -> list[dict[str, object]]:
    """Files with URLs that name their sender, so a client holding the sender-scoped token
    fetches them as given."""
    listed = files_json(refs, FILES_PATH)
    for item in listed:
        item["url"] = f"{item['url']}?sender={quote(sender, safe='')}"
    return listed


def _reply_json(reply: RenderedReply, sender: str) -> dict[str, Any]:
    return {
        "text": reply.text,
        "buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons],
        "attachments": _files(reply.attachments, sender),
    }


def _error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


_NOT_FOUND = "no such conversation"


class RestChannel:
    def __init__(
        self,
        *,
        gateway: Gateway,
        store: Store,
        token: str | None,
        identity_secret: str | None,
        files: FileStore | None = None,
        admin_token: str | None = None,
        public_url: str | None = None,
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._token = token
        self._admin_token = admin_token
        self._public_url = public_url
        self._identity_secret = identity_secret
        self._files = files

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/messages", self.post_message)
        app.router.add_get("/api/v1/conversations/{conversation_id}/messages", self.get_messages)
        app.router.add_get(FILES_PATH + "/{file_id}", self.get_file)

    def refusal(self, request: web.Request) -> web.Response | None:
        """The answer for a caller without any REST credential, or None."""
        if _bearer(request, self._admin_token) or _bearer(request, self._token):
            return None
        if self._token is None:
            if loopback_exempt(request, public_url=self._public_url):
                return None
            return _error(403, "not authorized: set BOT_REST_TOKEN and send it as a Bearer token")
        return _error(401, "not authorized")

    def caller(self, request: web.Request, named: str | None) -> Caller | web.Response:
        """The caller's scope, or the refusal to answer with. ``named`` is the sender the
        request names (the query's ``sender``, the body's ``sender``)."""
        refused = self.refusal(request)
        if refused is not None:
            return refused
        scoped_to_all = _bearer(request, self._admin_token) or not _bearer(request, self._token)
        if named is None and not scoped_to_all:
            return _error(400, "name the sender: add ?sender=<the sender of the conversation>")
        return Caller(named)

    def _named(self, request: web.Request) -> str | None:
        raw = request.query.get("sender")
        return None if raw is None else _clean_id(raw, "sender", MAX_SENDER)

    async def post_message(self, request: web.Request) -> web.Response:
        # Authorised before the body is read: a stranger's megabyte is not parsed.
        refused = self.refusal(request)
        if refused is not None:
            return refused
        try:
            body = loads(await request.read(), max_bytes=MAX_BODY)
            inbound, identity = parse_message(body)
        except UntrustedInput as exc:
            return _error(400, str(exc))
        contract: str | None = None
        if identity is not None:
            claimed, signature = identity
            if not (claimed.isascii() and signature.isascii()) or not verify_contract(
                self._identity_secret, claimed, signature
            ):
                return _error(403, "identity signature is not valid")
            contract = claimed
        handled = await self._gateway.handle(inbound, contract_number=contract)
        sender = inbound.key.chat_id
        return json_response(
            {
                "conversation_id": handled.conversation.id,
                "state": handled.conversation.state,
                "replies": [_reply_json(r, sender) for r in handled.replies],
            }
        )

    async def get_messages(self, request: web.Request) -> web.Response:
        refused = self.refusal(request)
        if refused is not None:
            return refused
        try:
            scope = self.caller(request, self._named(request))
            if isinstance(scope, web.Response):
                return scope
            after = bounded_int(
                request.query.get("after"), default=0, lowest=0, highest=MAX_CURSOR, name="after"
            )
            limit = bounded_int(
                request.query.get("limit"), default=200, lowest=1, highest=MAX_PAGE, name="limit"
            )
        except UntrustedInput as exc:
            return _error(400, str(exc))
        conversation_id = request.match_info["conversation_id"]
        if not scope.may_read(conversation_id):
            return _error(404, _NOT_FOUND)
        sender = sender_of(conversation_id) or ""
        entries = await self._store.messages(conversation_id, after=after, limit=limit)
        return json_response(
            {
                "conversation_id": conversation_id,
                "messages": [
                    {
                        "id": e.id,
                        "from": e.sender,
                        "text": e.text,
                        "at": e.at.isoformat(),
                        "buttons": [{"title": b.title, "payload": b.payload} for b in e.buttons],
                        "attachments": _files(attachments_of(e.meta), sender),
                    }
                    for e in entries
                ],
                "cursor": entries[-1].id if entries else after,
            }
        )

    async def get_file(self, request: web.Request) -> web.Response:
        """A file sent in a reply: to a sender-scoped caller only when that sender's own
        transcript carries it (the same 404 as for no file, so ids cannot be probed). A caller
        scoped to all reads any stored file, as the operator console does."""
        refused = self.refusal(request)
        if refused is not None:
            return refused
        try:
            scope = self.caller(request, self._named(request))
        except UntrustedInput as exc:
            return _error(400, str(exc))
        if isinstance(scope, web.Response):
            return scope
        file_id = request.match_info["file_id"]
        if self._files is None:
            return _error(404, "no such file")
        if scope.sender is not None and not await self._holds(scope.sender, file_id):
            return _error(404, "no such file")
        found = await self._files.get(file_id)
        if found is None:
            return _error(404, "no such file")
        return file_response(*found)

    async def _holds(self, sender: str, file_id: str) -> bool:
        conversation_id = ConversationKey(CHANNEL, sender, sender).id
        after = 0
        while True:
            page = await self._store.messages(conversation_id, after=after, limit=MAX_PAGE)
            if any(f.file_id == file_id for e in page for f in attachments_of(e.meta)):
                return True
            if len(page) < MAX_PAGE:
                return False
            after = page[-1].id
