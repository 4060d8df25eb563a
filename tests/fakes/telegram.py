"""A fake Telegram Bot API server for tests: the real aiogram client talks HTTP to it.

It serves ``POST /bot<token>/<method>`` like api.telegram.org (form-encoded, multipart or JSON
parameters; ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description",
"parameters"}``), records every call, serves queued updates to ``getUpdates`` (holding the
request a moment when there are none, like long polling), and can be told to fail a method
(429 with ``retry_after``, 403 "blocked by the user", 400, 500). ``sendDocument`` takes a
multipart upload up to the Bot API's 50 MB and keeps the bytes (``documents``).

Files customers sent (``add_file``) are served like Telegram does: ``getFile`` answers the
``file_path`` (or "file is too big" above the Bot API's 20 MB), and ``GET
/file/bot<token>/<file_path>`` the bytes, after ``file_delay`` seconds (a slow file server).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# Parameters the Bot API takes as JSON-serialised strings.
JSON_PARAMS = frozenset(
    {"reply_markup", "allowed_updates", "entities", "link_preview_options", "reply_parameters"}
)

# Parameters that may carry an uploaded file: the part itself, or "attach://<part name>".
UPLOAD_PARAMS = frozenset({"document", "photo", "audio", "video", "voice", "animation"})
MAX_UPLOAD = 50 * 1024 * 1024  # what a bot may upload
MAX_CAPTION = 1024
MAX_GET_FILE = 20 * 1024 * 1024  # what getFile hands a bot

FAILURES: dict[str, tuple[int, str]] = {
    "429": (429, "Too Many Requests: retry after {retry_after}"),
    "403": (403, "Forbidden: bot was blocked by the user"),
    "400": (400, "Bad Request: chat not found"),
    "500": (500, "Internal Server Error"),
}


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    ok: bool  # answered {"ok": true}
    at: float  # time.monotonic() when it arrived


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Document:
    """A document Telegram accepted and showed in the chat."""

    chat_id: int
    message_id: int
    filename: str
    data: bytes
    caption: str | None
    reply_markup: dict[str, Any] | None


@dataclass(frozen=True)
class Failure:
    kind: str  # a key of FAILURES
    retry_after: int = 1


class FakeTelegram:
    def __init__(self, *, token: str = "123456:TEST-token", poll_wait: float = 0.2) -> None:
        self.token = token
        self.bot_id = int(token.split(":")[0])
        self.calls: list[Call] = []
        self.documents: list[Document] = []
        self.updates: list[dict[str, Any]] = []  # kept until a getUpdates offset confirms them
        self.poll_wait = poll_wait  # how long an empty getUpdates is held (capped for tests)
        self._failures: dict[str, list[Failure]] = {}
        self._next_message_id = 500
        self._news = asyncio.Event()
        self._changed = asyncio.Event()
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self.file_delay = 0.0
        self.file_downloads: list[str] = []  # file paths served, in order

    # --- test controls -------------------------------------------------------------------
    def fail(self, method: str, kind: str, *, times: int = 1, retry_after: int = 1) -> None:
        self._failures.setdefault(method, []).extend([Failure(kind, retry_after)] * times)

    def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for getUpdates."""
        self.updates.extend(updates)
        self._news.set()

    def add_file(self, file_id: str, data: bytes, path: str) -> None:
        """A file a customer sent, for getFile and the file URL."""
        self.files[file_id] = (path, data)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    def sent(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """sendMessage calls that succeeded, optionally to one chat."""
        return [
            c.params
            for c in self.calls
            if c.method == "sendMessage"
            and c.ok
            and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
        ]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.calls_to(method)) < count:
                self._changed.clear()
                await self._changed.wait()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)  # room for uploads
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        return app

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        found = next((data for p, data in self.files.values() if p == path), None)
        if found is None:
            return web.Response(status=404)
        await asyncio.sleep(self.file_delay)
        self.file_downloads.append(path)
        return web.Response(body=found, content_type="application/octet-stream")

    async def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            raise _Refused(400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        if len(data) > MAX_GET_FILE:
            raise _Refused(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data),
                "file_path": path}  # fmt: skip

    # --- the API ---------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        arrived = time.monotonic()
        params = await _params(request)
        response = await self._answer(method, params)
        self.calls.append(Call(method, params, response.status == 200, arrived))
        self._changed.set()
        return response

    async def _answer(self, method: str, params: dict[str, Any]) -> web.Response:
        queued = self._failures.get(method)
        if queued:
            failure = queued.pop(0)
            status, description = FAILURES[failure.kind]
            extra = {"retry_after": failure.retry_after} if failure.kind == "429" else None
            return _error(status, description.format(retry_after=failure.retry_after), extra)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        try:
            return web.json_response({"ok": True, "result": await handler(params)})
        except _Refused as refused:
            return _error(refused.status, refused.description)

    async def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._me()

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        self._next_message_id += 1
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": self._next_message_id,
            "from": self._me(),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "date": int(time.time()),
            "text": params["text"],
        }
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        upload = params.get("document")
        if not isinstance(upload, Upload):
            raise _Refused(400, "Bad Request: there is no document in the request")
        if len(upload.data) > MAX_UPLOAD:
            raise _Refused(413, "Request Entity Too Large")
        caption = params.get("caption")
        if caption is not None and len(caption) > MAX_CAPTION:
            raise _Refused(400, "Bad Request: message caption is too long")
        self._next_message_id += 1
        chat_id = int(params["chat_id"])
        markup = params.get("reply_markup")
        markup = markup if isinstance(markup, dict) else None
        self.documents.append(
            Document(chat_id, self._next_message_id, upload.filename, upload.data, caption, markup)
        )
        message: dict[str, Any] = {
            "message_id": self._next_message_id,
            "from": self._me(),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "date": int(time.time()),
            "document": {
                "file_id": f"doc-{self._next_message_id}",
                "file_unique_id": f"u-{self._next_message_id}",
                "file_name": upload.filename,
                "mime_type": upload.content_type,
                "file_size": len(upload.data),
            },
        }
        if caption is not None:
            message["caption"] = caption
        if markup is not None:
            message["reply_markup"] = markup
        return message

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if offset:  # confirms everything before it
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            self._news.clear()
            wait = min(float(params.get("timeout") or 0), self.poll_wait)
            try:
                async with asyncio.timeout(wait):
                    await self._news.wait()
            except TimeoutError:
                return []
        return list(self.updates)

    def _me(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Fake", "username": "fake_bot"}


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body) if isinstance(body, dict) else {}
    form = await request.post()
    params: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    for name, value in form.items():
        if isinstance(value, str):
            text = value
        elif isinstance(value, bytes):
            text = value.decode()
        elif value.filename and value.filename != name:  # a file: its bytes as they arrived
            uploads[name] = Upload(value.filename, value.content_type, value.file.read())
            continue
        else:  # a parameter sent as a part
            text = value.file.read().decode()
        params[name] = json.loads(text) if name in JSON_PARAMS else text
    for name in UPLOAD_PARAMS:  # aiogram sends document="attach://<part>" and the part
        value = params.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            params[name] = uploads.get(value.removeprefix("attach://"), value)
        elif name in uploads:
            params[name] = uploads[name]
    return params


class _Refused(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def text_update(update_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """A private-chat text message as Telegram delivers it (sender id = chat id)."""
    person = {"id": chat_id, "is_bot": False, "first_name": "Анна", "language_code": "ru"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": person,
            "chat": {"id": chat_id, "type": "private", "first_name": "Анна"},
            "date": 1_700_000_000,
            "text": text,
        },
    }
