"""A fake Viber REST Bot API (``https://chatapi.viber.com/pa``) for tests.

The real viberbot client talks HTTP to it. It answers like Viber: ``{"status": 0, ...}`` with a
64-bit ``message_token`` above 2**53, the documented error statuses in a 200 body, and plain
HTTP errors where Viber's front end gives them. ``set_webhook`` calls the URL back with a signed
``webhook`` event, as Viber does, and refuses the URL unless it answers 200. Every request is
recorded; ``failures`` makes the next ``send_message`` calls fail, in order. A ``file``
message names a URL Viber downloads the file from: the fake downloads it too, at once, and keeps
what it got (``fetched``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiohttp import web

# Far above 2**53, and odd, so a float round trip would visibly change it.
FIRST_TOKEN = 5466297578174182639

Failure = Literal["not_registered", "not_subscribed", "too_many", "http_429", "http_500"]
_STATUS = {
    "not_registered": (5, "receiverNotRegistered"),
    "not_subscribed": (6, "receiverNotSubscribed"),
    "too_many": (12, "tooManyRequests"),
}
PICKER_ACTIONS = {"location-picker", "share-phone"}
BUTTON_ACTIONS = {"reply", "open-url", "none", *PICKER_ACTIONS}
MAX_FILE = 50 * 1024 * 1024  # Viber's limit for a file message


@dataclass(frozen=True)
class Fetched:
    """What Viber got when it downloaded a file message's ``media``."""

    url: str
    file_name: str
    status: int
    data: bytes


def sign(auth_token: str, body: bytes) -> str:
    return hmac.new(auth_token.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeViber:
    auth_token: str
    base: str = ""  # where the test server serves it: the value for VIBER_API_BASE
    calls: list[Call] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    retry_after: str | None = None  # Retry-After header of an HTTP 429
    webhook_url: str | None = None
    webhook_events: list[str] = field(default_factory=list)
    delivered: list[dict[str, Any]] = field(default_factory=list)  # accepted send_message bodies
    fetched: list[Fetched] = field(default_factory=list)  # media of file messages, downloaded
    # Files customers sent, served at GET /media/<name> (the "media" URL of a message)
    files: dict[str, bytes] = field(default_factory=dict)
    file_delay: float = 0.0
    file_downloads: list[str] = field(default_factory=list)
    _tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(FIRST_TOKEN, 2))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/pa/{method}", self._handle)
        app.router.add_get("/media/{name}", self._media)
        return app

    async def _media(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self.files:
            return web.Response(status=404)
        await asyncio.sleep(self.file_delay)
        self.file_downloads.append(name)
        return web.Response(body=self.files[name], content_type="application/octet-stream")

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            body = json.loads(await request.read())  # exact ints, like Viber's own parser
        except ValueError:
            return _status(3, "badData")
        self.calls.append(Call(method, body, dict(request.headers)))
        # The REST API takes the token as a header; viberbot 1.0.12 puts it in the body.
        given = request.headers.get("X-Viber-Auth-Token") or body.get("auth_token") or ""
        if not hmac.compare_digest(str(given).encode(), self.auth_token.encode()):
            return _status(2, "invalidAuthToken")
        if method == "send_message":
            return await self._send_message(body)
        if method == "set_webhook":
            return await self._set_webhook(body)
        if method == "get_account_info":
            return web.json_response(
                {"status": 0, "status_message": "ok", "id": "pa:fake", "name": "Fake",
                 "webhook": self.webhook_url or "", "event_types": self.webhook_events},
            )  # fmt: skip
        return web.Response(status=404)

    async def _send_message(self, body: dict[str, Any]) -> web.Response:
        if self.failures:
            failure = self.failures.pop(0)
            if failure == "http_500":
                return web.Response(status=500, text="internal error")
            if failure == "http_429":
                headers = {"Retry-After": self.retry_after} if self.retry_after else {}
                return web.Response(status=429, text="too many requests", headers=headers)
            return _status(*_STATUS[failure])
        problem = _check_message(body)
        if problem:
            return _status(3, f"badData: {problem}")
        if body.get("type") == "file":
            await self._download(body)
        self.delivered.append(body)
        token = next(self._tokens)
        return web.json_response(
            {"status": 0, "status_message": "ok", "message_token": token,
             "chat_hostname": "SN-CHAT-01_", "billing_status": 1},
        )  # fmt: skip

    async def _download(self, body: dict[str, Any]) -> None:
        url = str(body["media"])
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                status, data = resp.status, await resp.read()
        except aiohttp.ClientError:
            status, data = 0, b""
        self.fetched.append(Fetched(url, str(body["file_name"]), status, data))

    async def _set_webhook(self, body: dict[str, Any]) -> web.Response:
        url = body.get("url")
        if not url:  # removing the webhook
            self.webhook_url = None
            return _status(0, "ok")
        # Viber checks the URL at once with a signed "webhook" callback.
        probe = json.dumps(
            {"event": "webhook", "timestamp": 1595347748566, "chat_hostname": "SN-CHAT-22_",
             "message_token": next(self._tokens)},
        ).encode()  # fmt: skip
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url,
                    data=probe,
                    headers={
                        "X-Viber-Content-Signature": sign(self.auth_token, probe),
                        "Content-Type": "application/json",
                    },
                ) as resp,
            ):
                answered = resp.status
        except aiohttp.ClientError:
            answered = 0
        if answered != 200:
            return _status(1, "invalidUrl")
        self.webhook_url = url
        self.webhook_events = list(body.get("event_types") or [])
        return web.json_response(
            {"status": 0, "status_message": "ok", "event_types": self.webhook_events}
        )


def _status(status: int, message: str) -> web.Response:
    return web.json_response({"status": status, "status_message": message})


def _check_message(body: dict[str, Any]) -> str | None:
    """What Viber would refuse as badData (the parts our channel relies on)."""
    if not body.get("receiver"):
        return "no receiver"
    if not (body.get("sender") or {}).get("name"):
        return "no sender name"
    if body.get("type") == "text" and not (0 < len(body.get("text") or "") <= 7000):
        return "text length"
    if body.get("type") == "file":
        media, size, name = body.get("media"), body.get("size"), body.get("file_name")
        if not isinstance(media, str) or not media.startswith(("http://", "https://")):
            return "file media must be a URL"
        if not isinstance(size, int) or not 0 < size <= MAX_FILE:
            return "file size"
        if not isinstance(name, str) or not 0 < len(name) <= 256 or "." not in name:
            return "file_name"
    keyboard = body.get("keyboard")
    if keyboard is None:
        return None if body.get("type") else "neither a message type nor a keyboard"
    if keyboard.get("Type") != "keyboard":
        return "keyboard.Type"
    buttons = keyboard.get("Buttons") or []
    if not buttons:
        return "keyboard without buttons"
    for button in buttons:
        if button.get("ActionType") not in BUTTON_ACTIONS:
            return f"ActionType {button.get('ActionType')!r}"
        if not 1 <= int(button.get("Columns", 6)) <= 6:
            return "Columns"
        if button.get("ActionType") in PICKER_ACTIONS and int(body.get("min_api_version", 1)) < 3:
            return "location-picker / share-phone need min_api_version 3"
    return None
