"""The operator console's static files: headers, no inline code, text never parsed as HTML; and
the real page driven in headless Chromium against a stub of the operator API (the shapes of
/tmp/operator_api.md), so the script is exercised before and apart from the real API."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from bot.handoff.console_routes import add_console_routes
from tests.conftest import ROOT
from tests.console_browser import launch, needs_chromium, serve_app

CONSOLE = ROOT / "bot" / "handoff" / "console"

TESTIDS = (
    "login-form", "login-input", "password-input", "login-submit", "status-toggle", "queue-list",
    "queue-item", "claim-button", "my-list", "conversation-view", "message", "composer-input",
    "composer-send", "note-toggle", "canned-select", "transfer-button", "release-button",
    "close-button", "customer-card", "history-list", "connection-indicator",
)  # fmt: skip


@pytest.fixture
async def console(aiohttp_client: Any) -> TestClient:
    app = web.Application()
    add_console_routes(app)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def test_the_page_is_served_with_a_strict_policy(console: TestClient) -> None:
    resp = await console.get("/operator/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'", "ws:", "wss:"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"

    html = await resp.text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I)
    assert scripts, "the page loads console.js"
    for attributes, body in scripts:
        assert 'src="/operator/console.js"' in attributes
        assert body.strip() == ""  # nothing inline
    assert not re.search(r"<style\b", html, flags=re.I)
    assert not re.search(r"\sstyle\s*=", html, flags=re.I)
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I)  # no inline handlers
    assert not re.search(r"(src|href)\s*=\s*\"(https?:)?//", html, flags=re.I)  # nothing external
    assert '<html lang="ru">' in html


async def test_the_bare_path_redirects(console: TestClient) -> None:
    resp = await console.get("/operator", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/operator/"


async def test_script_and_styles_are_served(console: TestClient) -> None:
    js = await console.get("/operator/console.js")
    assert js.status == 200
    assert js.content_type == "text/javascript"
    assert js.charset == "utf-8"
    assert js.headers["X-Content-Type-Options"] == "nosniff"
    assert "На линии" in await js.text()
    cached = await console.get(
        "/operator/console.js", headers={"If-None-Match": js.headers["ETag"]}
    )
    assert cached.status == 304

    css = await console.get("/operator/console.css")
    assert css.status == 200
    assert css.content_type == "text/css"
    assert css.headers["X-Content-Type-Options"] == "nosniff"


def test_the_script_never_parses_text_as_html() -> None:
    source = (CONSOLE / "console.js").read_text(encoding="utf-8")
    for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink
    assert "new Function" not in source
    assert "localStorage" not in source  # the CSRF token lives in memory only
    assert 'setAttribute("style"' not in source  # the policy would refuse it anyway
    for testid in TESTIDS:
        assert f'"{testid}"' in source, testid


# --- the page in a real browser, against a stub of the operator API ------------------------------
CONV_ID = "telegram:1001:1001"
VIBER_ID = "viber:AbC/def==:AbC/def=="
XSS = '<img src=x onerror="window.__xss=1">'
CSRF = "csrf-token-1"
JSON = "application/json"


def entry(
    id: int,
    sender: str,
    text: str,
    hhmm: str,
    buttons: tuple[tuple[str, str], ...] = (),
    *,
    day: str = "03-01",
) -> dict[str, Any]:
    """A transcript line as the operator API shows it."""
    return {
        "id": id,
        "from": sender,
        "text": text,
        "at": f"2026-{day}T{hhmm}:00Z",
        "buttons": [{"title": title, "payload": payload} for title, payload in buttons],
    }


class StubApi:
    """Just enough of the operator API for the page: one operator, two queued conversations."""

    def __init__(self) -> None:
        self.logged_in = False
        self.refuse_events = False
        self.posts: list[tuple[str, dict[str, Any], str | None]] = []
        self.sockets: set[web.WebSocketResponse] = set()
        self.next_id = 100
        self.operator = {"login": "anna", "name": "Анна Петрова", "departments": ["billing"]}
        self.conversations: dict[str, dict[str, Any]] = {
            CONV_ID: {
                "conversation_id": CONV_ID,
                "channel": "telegram",
                "department": "billing",
                "reason": "operator_request",
                "state": "queued",
                "operator": None,
                "waiting_seconds": 75,
                "position": 1,
                "customer": {"name": XSS, "contract": "750012345678"},
                "last_message": {"from": "customer", "text": XSS, "at": "2026-03-01T09:00:00Z"},
            },
            VIBER_ID: {
                "conversation_id": VIBER_ID,
                "channel": "viber",
                "department": "technical",
                "reason": "no_internet",
                "state": "queued",
                "operator": None,
                "waiting_seconds": 5,
                "position": 2,
                "customer": {"name": None, "contract": None},
                "last_message": None,
            },
        }
        self.messages: dict[str, list[dict[str, Any]]] = {
            CONV_ID: [
                entry(1, "customer", "нет интернета", "08:58"),
                entry(2, "bot", "Соединяю с оператором", "08:59", [("Отмена", "/cancel")]),
                entry(3, "customer", XSS, "09:00"),
            ],
            VIBER_ID: [],
        }
        self.notes: dict[str, list[dict[str, Any]]] = {CONV_ID: [], VIBER_ID: []}

    def app(self) -> web.Application:
        app = web.Application()
        add_console_routes(app)
        base = "/api/v1/operator"
        app.router.add_get(base + "/me", self.me)
        app.router.add_post(base + "/login", self.login)
        app.router.add_post(base + "/logout", self.logout)
        app.router.add_post(base + "/status", self.status)
        app.router.add_get(base + "/queue", self.queue)
        app.router.add_get(base + "/live", self.live)
        app.router.add_get(base + "/events", self.events)
        app.router.add_route("*", base + "/conversations/{tail:.+}", self.conversation)
        return app

    def _auth(self, request: web.Request, *, post: bool) -> None:
        if not self.logged_in or request.cookies.get("op_session") != "s1":
            raise web.HTTPUnauthorized(text='{"error":"unauthorized"}', content_type=JSON)
        if post and request.headers.get("X-CSRF-Token") != CSRF:
            raise web.HTTPForbidden(text='{"error":"csrf"}', content_type=JSON)

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = await request.json()
        self.posts.append((request.path, body, request.headers.get("X-CSRF-Token")))
        return body

    async def me(self, request: web.Request) -> web.Response:
        self._auth(request, post=False)
        return web.json_response({"operator": self.operator, "status": "away", "csrf_token": CSRF})

    async def login(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if body != {"login": "anna", "password": "secret"}:
            return web.json_response({"error": "bad credentials"}, status=401)
        self.logged_in = True
        resp = web.json_response({"csrf_token": CSRF, "operator": self.operator})
        resp.set_cookie("op_session", "s1", httponly=True, samesite="Strict", path="/")
        return resp

    async def logout(self, request: web.Request) -> web.Response:
        self._auth(request, post=True)
        await self._record(request)
        self.logged_in = False
        return web.json_response({})

    async def status(self, request: web.Request) -> web.Response:
        self._auth(request, post=True)
        body = await self._record(request)
        return web.json_response({"status": body["status"]})

    async def queue(self, request: web.Request) -> web.Response:
        self._auth(request, post=False)
        return web.json_response({"conversations": list(self.conversations.values())})

    async def live(self, request: web.Request) -> web.Response:
        self._auth(request, post=False)
        return web.json_response({"conversations": []})  # nobody talking to the bot

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        self._auth(request, post=False)
        if self.refuse_events:
            raise web.HTTPServiceUnavailable()
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self.sockets.discard(ws)
        return ws

    async def push(self, event: dict[str, Any]) -> None:
        for ws in list(self.sockets):
            await ws.send_str(json.dumps(event, ensure_ascii=False))

    async def conversation(self, request: web.Request) -> web.Response:
        tail = request.match_info["tail"]
        action = None
        for name in ("claim", "messages", "notes", "transfer", "release", "close"):
            if tail.endswith("/" + name):
                tail, action = tail[: -len(name) - 1], name
        conv_id = tail
        if conv_id not in self.conversations:
            return web.json_response({"error": "not found"}, status=404)
        conv = self.conversations[conv_id]
        if request.method == "GET" and action is None:
            self._auth(request, post=False)
            return web.json_response(self._detail(conv_id))
        self._auth(request, post=True)
        body = await self._record(request)
        if action == "claim":
            conv.update(state="operator", operator="anna")
            await self.push({"type": "queue"})
            return web.json_response({"state": "operator"})
        if action == "messages":
            self.next_id += 1
            sent = entry(self.next_id, "operator", body["text"], "09:05")
            self.messages[conv_id].append(sent)
            # The live event may well beat the HTTP answer: the page must show it once.
            await self.push({"type": "message", "conversation_id": conv_id, "message": sent})
            return web.json_response({"message": sent})
        if action == "notes":
            note = {"author": "anna", "text": body["text"], "at": "2026-03-01T09:06:00Z"}
            self.notes[conv_id].append(note)
            await self.push({"type": "note", "conversation_id": conv_id, "note": note})
            return web.json_response({"note": note})
        if action == "close":
            conv.update(state="closed", operator=None)
            event = {"type": "conversation", "conversation_id": conv_id, "state": "closed"}
            await self.push({**event, "operator": None})
            return web.json_response({})
        return web.json_response({})

    def _detail(self, conv_id: str) -> dict[str, Any]:
        conv = self.conversations[conv_id]
        return {
            "conversation_id": conv_id,
            "channel": conv["channel"],
            "state": conv["state"],
            "department": conv["department"],
            "operator": conv["operator"],
            "locale": "ru",
            "messages": self.messages[conv_id],
            "notes": self.notes[conv_id],
            "card": {
                "contract": "750012345678",
                "holder_name": XSS,
                "tariff": {"name": "Домашний 100", "price": "650"},
                "balance": "-150.50",  # decimals travel as strings
                "bonus_points": 120,
                "next_charge_date": "2026-03-15",
                "status": "blocked",
                "city": "Чита",
                "address": "ул. Ленина, 1, кв. 5",
            },
            "history": [
                {
                    "conversation_id": "vk:55:55",
                    "channel": "vk",
                    "started_at": "2026-02-10T12:00:00Z",
                    "messages": [entry(7, "customer", "старое " + XSS, "12:00", day="02-10")],
                },
            ],
            "canned": [{"id": "hello", "title": "Приветствие", "text": "Здравствуйте, Анна!"}],
        }


@pytest.fixture
async def stub_server() -> AsyncIterator[tuple[str, StubApi]]:
    stub = StubApi()
    async with serve_app(stub.app(), shutdown_timeout=1.0) as base:
        yield base, stub
        for ws in list(stub.sockets):
            await ws.close()


@needs_chromium
async def test_the_console_in_headless_chromium(stub_server: tuple[str, StubApi]) -> None:
    from playwright.async_api import async_playwright, expect

    base, stub = stub_server
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await launch(p)
        try:
            page = await browser.new_page(locale="ru-RU", viewport={"width": 1400, "height": 850})
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            # Expected: 401 (the first /me, the final expired session), 503 (refused sockets).
            expected = re.compile(r"status of 401|response code: 503|status of 503")
            page.on(
                "console",
                lambda m: (
                    problems.append(m.text)
                    if m.type == "error" and not expected.search(m.text)
                    else None
                ),
            )
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status == 404 else None,
            )
            tid = page.get_by_test_id
            await page.goto(base + "/operator/")

            # Log in (a wrong password first)
            await tid("login-input").fill("anna")
            await tid("password-input").fill("wrong")
            await tid("login-submit").click()
            await expect(page.get_by_role("alert")).to_have_text("Неверный логин или пароль.")
            await tid("password-input").fill("secret")
            await tid("password-input").press("Enter")
            await expect(page.get_by_text("Анна Петрова")).to_be_visible()
            await expect(tid("status-toggle")).to_have_text("Отошёл")
            await tid("status-toggle").click()
            await expect(tid("status-toggle")).to_have_text("На линии")

            # The queue: customer text shown as text, waiting time ticking
            items = tid("queue-list").get_by_test_id("queue-item")
            await expect(items).to_have_count(2)
            first = items.first
            await expect(first).to_have_attribute("data-conversation-id", CONV_ID)
            await expect(first).to_contain_text("Telegram")
            await expect(first).to_contain_text(XSS)
            await expect(first.locator(".time")).to_have_text(re.compile(r"01:1[5-9]"))
            await expect(items.nth(1)).to_contain_text("Viber")

            # Open, read-only until claimed
            await first.locator(".item-open").click()
            view = tid("conversation-view")
            messages = view.get_by_test_id("message")
            await expect(messages).to_have_count(3)
            await expect(messages.nth(2)).to_have_attribute("data-from", "customer")
            await expect(messages.nth(2).locator(".text")).to_have_text(XSS)
            await expect(messages.nth(1).locator("button.chip")).to_be_disabled()
            await expect(tid("composer-input")).to_be_disabled()
            await expect(tid("close-button")).to_be_disabled()
            card = tid("customer-card")
            await expect(card).to_contain_text(XSS)
            await expect(card.locator("dd.negative")).to_contain_text("150,50")
            await expect(card).to_contain_text("Заблокирован")
            await expect(card).to_contain_text("15.03.2026")

            await tid("claim-conversation").click()
            await expect(tid("composer-input")).to_be_enabled()
            await expect(tid("composer-input")).to_be_focused()
            await expect(tid("my-list").get_by_test_id("my-item")).to_have_count(1)
            await expect(items).to_have_count(1)

            # Canned answer, then Enter sends; the live event and the answer show it once
            await tid("canned-select").select_option(label="Приветствие")
            await expect(tid("composer-input")).to_have_value("Здравствуйте, Анна!")
            await tid("composer-input").press("Shift+Enter")
            await tid("composer-input").press_sequentially("Чем помочь?")
            await tid("composer-input").press("Enter")
            await expect(messages).to_have_count(4)
            await expect(messages.nth(3)).to_have_attribute("data-from", "operator")
            await expect(messages.nth(3).locator(".text")).to_have_text(
                "Здравствуйте, Анна!\nЧем помочь?"
            )
            await expect(tid("composer-input")).to_have_value("")

            # A customer message over the WebSocket is appended without a refetch
            thanks = entry(500, "customer", "<b>спасибо</b>", "09:07")
            stub.messages[CONV_ID].append(thanks)
            await stub.push({"type": "message", "conversation_id": CONV_ID, "message": thanks})
            await expect(messages).to_have_count(5)
            await expect(messages.nth(4).locator(".text")).to_have_text("<b>спасибо</b>")

            # An internal note
            await tid("note-toggle").check()
            await tid("composer-input").fill("клиент раздражён")
            await tid("composer-send").click()
            note = view.get_by_test_id("note")
            await expect(note).to_contain_text("Заметка")
            await expect(note).to_contain_text("клиент раздражён")
            await expect(tid("note-toggle")).not_to_be_checked()
            await expect(note).to_have_count(1)  # the answer and the live event: shown once

            # History expands to its transcript
            history = tid("history-list")
            await expect(history).to_contain_text("VK")
            await history.locator("summary").first.click()
            await expect(history.get_by_test_id("message")).to_have_text(
                re.compile(re.escape("старое " + XSS))
            )

            await page.screenshot(path=str(artifacts / "operator-console.png"))

            # A reload keeps the session (cookie) and gets the CSRF token back from /me
            await page.reload()
            await expect(tid("conversation-view").get_by_test_id("message")).to_have_count(5)
            await expect(tid("login-form")).to_be_hidden()
            dialog = tid("transfer-dialog")
            await tid("transfer-button").click()
            await expect(dialog).to_be_visible()
            await page.keyboard.press("Escape")
            await expect(dialog).to_be_hidden()
            await tid("transfer-button").click()
            await dialog.get_by_label("Оператору").check()
            await tid("transfer-operator").fill("boris")
            await tid("transfer-note").fill("просит перезвонить")
            await tid("transfer-submit").click()
            await expect(dialog).to_be_hidden()
            transfer = {"to_operator": "boris", "note": "просит перезвонить"}
            assert (
                f"/api/v1/operator/conversations/{CONV_ID}/transfer",
                transfer,
                CSRF,
            ) in stub.posts
            await tid("close-button").click()
            await expect(tid("composer-input")).to_be_disabled()
            await expect(tid("conversation-view")).to_contain_text("Диалог завершён.")

            # The Viber id with '/' and '=' travels encoded
            await tid("queue-list").get_by_test_id("queue-item").first.locator(".item-open").click()
            await expect(view.locator(".placeholder")).to_be_hidden()
            await expect(tid("customer-card")).to_be_visible()

            # No connection: the indicator shows, and goes away on reconnect
            stub.refuse_events = True
            for ws in list(stub.sockets):
                await ws.close()
            await expect(tid("connection-indicator")).to_be_visible(timeout=10000)
            await expect(tid("connection-indicator")).to_have_text("нет связи")
            stub.refuse_events = False
            await expect(tid("connection-indicator")).to_be_hidden(timeout=15000)

            # Logout, and a 401 shows the login again
            stub.logged_in = False
            await tid("status-toggle").click()
            await expect(tid("login-form")).to_be_visible()

            assert await page.evaluate("window.__xss") is None
            assert problems == []
        finally:
            await browser.close()

    posts = [(path, token) for path, _, token in stub.posts if not path.endswith("/login")]
    assert posts, "the page posted"
    assert all(token == CSRF for _, token in posts), posts
    assert ("/api/v1/operator/conversations/" + CONV_ID + "/claim", CSRF) in posts
    assert ("/api/v1/operator/status", {"status": "online"}, CSRF) in stub.posts
