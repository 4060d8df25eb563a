"""A fake VK API server for tests: the real vk-api client talks HTTP to it.

It serves ``POST/GET /method/<name>`` like api.vk.com (form parameters; ``{"response": ...}`` or
``{"error": {"error_code", "error_msg"}}``), de-duplicates ``messages.send`` by ``random_id`` the
way VK does, hands out a Bots Long Poll server on itself (``/lp``) whose ``a_check`` serves
queued updates, and can be told to fail (a VK error code, HTTP 500, or a "lost answer": the
message is delivered but the client sees HTTP 500). Documents go the way VK takes them:
``docs.getMessagesUploadServer`` names an upload URL on itself (``/upload``), the multipart
upload answers a ``file`` string, ``docs.save`` turns it into a document (``saved_docs``) that
``messages.send`` may attach as ``doc<owner_id>_<id>``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

MAX_DOC = 200 * 1024 * 1024  # VK's limit for a document

ERROR_MESSAGES = {
    3: "Unknown method passed",
    5: "User authorization failed: invalid access_token",
    6: "Too many requests per second",
    9: "Flood control",
    10: "Internal server error",
    100: "One of the parameters specified was missing or invalid",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    911: "Keyboard format is invalid",
}


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, str]


@dataclass(frozen=True)
class Delivered:
    """A message VK accepted and showed the customer (once per random_id)."""

    message_id: int
    peer_id: str
    text: str
    random_id: str
    keyboard: dict[str, Any] | None
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class SavedDoc:
    """A document uploaded for a conversation and saved with ``docs.save``."""

    owner_id: int
    id: int
    peer_id: str
    title: str
    filename: str  # the name of the uploaded part
    data: bytes

    @property
    def attachment(self) -> str:
        return f"doc{self.owner_id}_{self.id}"


@dataclass(frozen=True)
class Failure:
    error: int | None = None  # a VK error code
    http: int | None = None  # an HTTP status instead of an API answer
    lost: bool = False  # deliver, then answer HTTP 500 (the answer got lost on the way)


class FakeVk:
    def __init__(self, *, token: str = "vk-group-token", group_id: str = "123456") -> None:
        self.token = token
        self.group_id = group_id
        self.calls: list[Call] = []
        self.delivered: list[Delivered] = []
        self.event_answers: list[dict[str, str]] = []
        self.lp_key = "lp-key-1"
        self.lp_checks: list[dict[str, str]] = []
        self.lp_answers: list[dict[str, Any]] = []  # served (in order) before any updates
        self._failures: dict[str, list[Failure]] = {}
        self._by_random: dict[tuple[str, str], int] = {}
        self._next_message_id = 1000
        self._ts_base = 100
        self._events: list[dict[str, Any]] = []
        self.saved_docs: list[SavedDoc] = []
        self._uploads: dict[str, tuple[str, str, bytes]] = {}  # file string -> peer, name, data
        self._next_doc_id = 600000
        # Files customers sent, served at GET /files/<name> (photo size and doc URLs point here)
        self.files: dict[str, bytes] = {}
        self.file_delay = 0.0
        self.file_downloads: list[str] = []

    # --- test controls -------------------------------------------------------------------
    def fail(self, method: str, failure: Failure, times: int = 1) -> None:
        self._failures.setdefault(method, []).extend([failure] * times)

    def push(self, *updates: dict[str, Any]) -> None:
        """Queue Bots Long Poll updates."""
        self._events.extend(updates)

    @property
    def ts(self) -> int:
        return self._ts_base + len(self._events)

    def expire_key(self) -> None:
        self.lp_key = f"lp-key-{int(self.lp_key.rsplit('-', 1)[1]) + 1}"

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, peer_id: str | int) -> list[Delivered]:
        return [d for d in self.delivered if d.peer_id == str(peer_id)]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_DOC + 1024 * 1024)  # room for uploads
        app.router.add_route("*", "/method/{name}", self._method)
        app.router.add_post("/upload", self._upload)
        app.router.add_get("/lp", self._a_check)
        app.router.add_get("/files/{name}", self._file)
        return app

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self.files:
            return web.Response(status=404)
        await asyncio.sleep(self.file_delay)
        self.file_downloads.append(name)
        return web.Response(body=self.files[name], content_type="application/octet-stream")

    # --- the API -------------------------------------------------------------------------
    async def _method(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        params = {k: v for k, v in request.query.items()}
        if request.method == "POST":
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
        self.calls.append(Call(name, params))
        failures = self._failures.get(name)
        failure = failures.pop(0) if failures else None
        if failure is not None and failure.http is not None:
            return web.Response(status=failure.http, text="Internal Server Error")
        if failure is not None and failure.error is not None:
            return _error(failure.error)
        if params.get("access_token") != self.token:
            return _error(5)
        handler = {
            "messages.send": self._send,
            "messages.sendMessageEventAnswer": self._event_answer,
            "groups.getLongPollServer": self._longpoll_server,
            "docs.getMessagesUploadServer": self._upload_server,
            "docs.save": self._save_doc,
        }.get(name)
        if handler is None:
            return _error(3)
        answer = handler(params, request)
        if failure is not None and failure.lost and "response" in answer:
            return web.Response(status=500, text="Internal Server Error")
        return web.json_response(answer)

    def _send(self, params: dict[str, str], request: web.Request) -> dict[str, Any]:
        peer, random_id = params.get("peer_id"), params.get("random_id")
        attachments = tuple(a for a in params.get("attachment", "").split(",") if a)
        if not peer or random_id is None or not (params.get("message") or attachments):
            return _error_body(100)
        known_docs = {d.attachment: d for d in self.saved_docs}
        if any(a not in known_docs or known_docs[a].peer_id != peer for a in attachments):
            return _error_body(100)
        keyboard = None
        if "keyboard" in params:
            keyboard = json.loads(params["keyboard"])
            if not _valid_keyboard(keyboard):
                return _error_body(911)
        known = self._by_random.get((peer, random_id))
        if known is not None and random_id != "0":  # VK: same random_id, same message
            return {"response": known}
        self._next_message_id += 1
        message_id = self._next_message_id
        self._by_random[(peer, random_id)] = message_id
        self.delivered.append(
            Delivered(message_id, peer, params.get("message", ""), random_id, keyboard, attachments)
        )
        return {"response": message_id}

    def _upload_server(self, params: dict[str, str], request: web.Request) -> dict[str, Any]:
        peer = params.get("peer_id")
        if not peer:
            return _error_body(100)
        url = f"{request.url.origin()}/upload?peer_id={peer}"
        return {"response": {"upload_url": url}}

    async def _upload(self, request: web.Request) -> web.Response:
        """VK's upload server: one multipart ``file``; answers ``{"file": "..."}``."""
        form = await request.post()
        part = form.get("file")
        if part is None or isinstance(part, str | bytes):
            return web.json_response({"error": "no file"})
        data = part.file.read()
        if len(data) > MAX_DOC:
            return web.json_response({"error": "file too large"})
        token = secrets.token_hex(8)
        self._uploads[token] = (request.query.get("peer_id", ""), part.filename, data)
        return web.json_response({"file": token})

    def _save_doc(self, params: dict[str, str], request: web.Request) -> dict[str, Any]:
        upload = self._uploads.pop(params.get("file", ""), None)
        if upload is None:
            return _error_body(100)
        peer, filename, data = upload
        self._next_doc_id += 1
        title = params.get("title") or filename
        doc = SavedDoc(-int(self.group_id), self._next_doc_id, peer, title, filename, data)
        self.saved_docs.append(doc)
        body = {
            "id": doc.id,
            "owner_id": doc.owner_id,
            "title": title,
            "size": len(data),
            "ext": filename.rsplit(".", 1)[-1],
            "url": f"https://vk.com/doc{doc.id}",
        }
        return {"response": {"type": "doc", "doc": body}}

    def _event_answer(self, params: dict[str, str], request: web.Request) -> dict[str, Any]:
        if not all(params.get(k) for k in ("event_id", "user_id", "peer_id")):
            return _error_body(100)
        self.event_answers.append(params)
        return {"response": 1}

    def _longpoll_server(self, params: dict[str, str], request: web.Request) -> dict[str, Any]:
        if params.get("group_id") != self.group_id:
            return _error_body(100)
        server = f"{request.url.origin()}/lp"
        return {"response": {"key": self.lp_key, "server": server, "ts": str(self.ts)}}

    async def _a_check(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.lp_checks.append(query)
        if query.get("act") != "a_check" or query.get("key") != self.lp_key:
            return web.json_response({"failed": 2})
        if self.lp_answers:
            return web.json_response(self.lp_answers.pop(0))
        try:
            ts = int(query["ts"])
        except (KeyError, ValueError):
            return web.json_response({"failed": 3})
        deadline = time.monotonic() + float(query.get("wait", "25"))
        while ts >= self.ts and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        updates = self._events[max(ts - self._ts_base, 0) :]
        return web.json_response({"ts": str(self.ts), "updates": updates})


def _error_body(code: int) -> dict[str, Any]:
    return {"error": {"error_code": code, "error_msg": ERROR_MESSAGES.get(code, "Error")}}


def _error(code: int) -> web.Response:
    return web.json_response(_error_body(code))


def _valid_keyboard(keyboard: Any) -> bool:
    """VK's limits: inline 6 rows / 10 buttons, standard 10 rows / 40; 5 a row; labels of 40
    characters; payloads of 255; no ``one_time`` on an inline keyboard."""
    if not isinstance(keyboard, dict) or not isinstance(keyboard.get("buttons"), list):
        return False
    inline = bool(keyboard.get("inline"))
    if inline and "one_time" in keyboard:
        return False
    rows = keyboard["buttons"]
    count = sum(len(r) for r in rows)
    if len(rows) > (6 if inline else 10) or count > (10 if inline else 40):
        return False
    for row in rows:
        if len(row) > 5:
            return False
        for button in row:
            action = button.get("action") or {}
            if action.get("type") not in ("text", "callback", "location", "open_link"):
                return False
            if (
                action["type"] in ("text", "callback")
                and not 0 < len(action.get("label", "")) <= 40
            ):
                return False
            payload = action.get("payload", "")
            if len(payload) > 255:
                return False
            if payload and not _is_json(payload):  # VK refuses a payload that is not JSON
                return False
    return True


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
