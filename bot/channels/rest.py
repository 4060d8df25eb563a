"""The REST channel (CONTRACTS.md §2): integrations and the acceptance suite talk to the bot with
plain JSON, and get the replies in the response body."""

from __future__ import annotations

import hmac
import ipaddress
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.files import file_response
from bot.gateway import Gateway
from bot.handoff.messages import files_json
from bot.http import json_response
from bot.identity import verify_contract
from bot.models import ConversationKey, Inbound, Location, RenderedReply
from bot.serialize import attachments_of
from bot.storage.base import Store
from bot.storage.files import FileStore

CHANNEL = "rest"
MAX_TEXT = 4096
MAX_PAYLOAD = 1024
MAX_SENDER = 128
FILES_PATH = "/api/v1/files"


class RequestError(ValueError):
    """A malformed request: answered 400 with the reason, nothing changes."""


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def authorized(request: web.Request, token: str | None) -> bool:
    """Bearer token when configured; without one, only loopback (the demo works out of the box
    and nothing is open on a real interface by accident)."""
    if token is None:
        return _is_loopback(request.remote)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def _optional_str(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(f"'{name}' must be a string")
    if len(value) > limit:
        raise RequestError(f"'{name}' is longer than {limit} characters")
    return value


def _location(body: Mapping[str, Any]) -> Location | None:
    raw = body.get("location")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise RequestError("'location' must be an object with 'lat' and 'lon'")
    try:
        lat, lon = float(raw["lat"]), float(raw["lon"])
    except (KeyError, TypeError, ValueError):
        raise RequestError("'location' must have numeric 'lat' and 'lon'") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise RequestError("'location' is outside the valid range")
    return Location(lat, lon)


def parse_message(body: Any) -> tuple[Inbound, Mapping[str, Any] | None]:
    """Validate a POST body into an ``Inbound`` and the raw ``identity`` claim (if any)."""
    if not isinstance(body, Mapping):
        raise RequestError("the body must be a JSON object")
    sender = body.get("sender")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER:
        raise RequestError(
            f"'sender' must be a non-empty string of at most {MAX_SENDER} characters"
        )
    text = _optional_str(body, "text", MAX_TEXT)
    payload = _optional_str(body, "payload", MAX_PAYLOAD)
    locale = _optional_str(body, "locale", 16)
    location = _location(body)
    if not (text and text.strip()) and not payload and location is None:
        raise RequestError("one of 'text', 'payload' or 'location' is required")
    identity = body.get("identity")
    if identity is not None and not isinstance(identity, Mapping):
        raise RequestError("'identity' must be an object with 'contract_number' and 'hash'")
    kind = "payload" if payload else ("text" if text else "location")
    inbound = Inbound(
        key=ConversationKey(CHANNEL, sender, sender),
        message_id=str(body.get("message_id") or uuid.uuid4()),
        kind=kind,  # type: ignore[arg-type]
        text=text,
        payload=payload,
        location=location,
        locale=locale,
        raw=body,
        received_at=datetime.now(UTC),
    )
    return inbound, identity


def _reply_json(reply: RenderedReply) -> dict[str, Any]:
    return {
        "text": reply.text,
        "buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons],
        "attachments": files_json(reply.attachments, FILES_PATH),
    }


def _error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


class RestChannel:
    def __init__(
        self,
        *,
        gateway: Gateway,
        store: Store,
        token: str | None,
        identity_secret: str | None,
        files: FileStore | None = None,
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._token = token
        self._identity_secret = identity_secret
        self._files = files

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/messages", self.post_message)
        app.router.add_get("/api/v1/conversations/{conversation_id}/messages", self.get_messages)
        app.router.add_get(FILES_PATH + "/{file_id}", self.get_file)

    async def post_message(self, request: web.Request) -> web.Response:
        if not authorized(request, self._token):
            return _error(401 if self._token else 403, "not authorized")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not valid JSON")
        try:
            inbound, identity = parse_message(body)
        except RequestError as exc:
            return _error(400, str(exc))
        contract: str | None = None
        if identity is not None:
            claimed = str(identity.get("contract_number") or "")
            signature = str(identity.get("hash") or "")
            if not verify_contract(self._identity_secret, claimed, signature):
                return _error(403, "identity signature is not valid")
            contract = claimed
        handled = await self._gateway.handle(inbound, contract_number=contract)
        return json_response(
            {
                "conversation_id": handled.conversation.id,
                "state": handled.conversation.state,
                "replies": [_reply_json(r) for r in handled.replies],
            }
        )

    async def get_messages(self, request: web.Request) -> web.Response:
        if not authorized(request, self._token):
            return _error(401 if self._token else 403, "not authorized")
        conversation_id = request.match_info["conversation_id"]
        try:
            after = int(request.query.get("after", "0") or 0)
            limit = min(int(request.query.get("limit", "200")), 500)
        except ValueError:
            return _error(400, "'after' and 'limit' must be whole numbers")
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
                        "attachments": files_json(attachments_of(e.meta), FILES_PATH),
                    }
                    for e in entries
                ],
                "cursor": entries[-1].id if entries else after,
            }
        )

    async def get_file(self, request: web.Request) -> web.Response:
        """A file sent in a reply. The REST credentials already read every transcript, so they
        read every file sent in one."""
        if not authorized(request, self._token):
            return _error(401 if self._token else 403, "not authorized")
        found = (
            None if self._files is None else await self._files.get(request.match_info["file_id"])
        )
        if found is None:
            return _error(404, "no such file")
        return file_response(*found)
