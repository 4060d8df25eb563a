"""Operator console authentication: the login, logout and me routes, and ``authorized()``, the
one check every other operator handler calls.

A session is a random token in an ``HttpOnly; SameSite=Strict`` cookie. Requests that change
anything must also carry the session's CSRF token in ``X-CSRF-Token`` (a header a cross-site form
cannot set) and, when the browser says where they come from, come from this very site.

Sessions end everywhere at once: an HTTP request with an ended session's cookie is a 401, and
an open socket (``SessionSockets``) is closed at once when this process ends the session
(logout, a disabled, removed or re-passworded operator) and within ``SESSION_RECHECK_SECONDS``
when another process did (``python -m bot operators disable …``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.config import IPNetwork
from bot.handoff.audit import (
    AUDIT,
    TRUSTED_PROXIES,
    AuditLog,
    add_audit_routes,
    audit,
    request_address,
    unknown_login,
)
from bot.handoff.operators import (
    MAX_PASSWORD_LENGTH,
    LoginThrottled,
    Operator,
    OperatorError,
    OperatorStore,
    token_digest,
)
from bot.http import json_response
from bot.metrics import Metrics
from bot.untrusted import SHORT_TEXT_LIMIT, UntrustedInput, loads

OPERATORS = web.AppKey("operators", OperatorStore)
# Presence lives in the handoff service; /me reports it so a reloaded console shows the truth.
STATUS_OF: web.AppKey[Callable[[str], Awaitable[str]]] = web.AppKey("operator_status_of")

SESSION_COOKIE = "op_session"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_PATH = "/api/v1/operator/login"
LOGOUT_PATH = "/api/v1/operator/logout"
ME_PATH = "/api/v1/operator/me"

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NO_STORE = {"Cache-Control": "no-store"}
# A login body is two short strings; a bigger one is not a login.
_LOGIN_BODY_BYTES = 16 * 1024
# How often an open socket asks the store whether its session still lives: the bound on how
# long a session ended by another process (the CLI) keeps a socket open.
SESSION_RECHECK_SECONDS = 2.0
AUTH_METRICS = web.AppKey("operator_auth_metrics", Metrics)


def register_metrics(metrics: Metrics) -> None:
    metrics.counter(
        "operator_login_failures_total", "Failed operator logins, by reason (wrong_password, "
        "unknown_login, disabled, malformed)."
    )  # fmt: skip
    metrics.counter(
        "operator_login_throttled_total", "Operator logins refused with 429, by the count that "
        "said wait (login_address, address, login)."
    )  # fmt: skip
    metrics.counter(
        "operator_sockets_closed_total", "Operator sockets closed because their session ended."
    )


def _count(request: web.Request, name: str, **labels: str) -> None:
    metrics = request.config_dict.get(AUTH_METRICS)
    if metrics is not None:
        metrics.inc(name, 1.0, **labels)


@dataclass(frozen=True, slots=True)
class OperatorSession:
    operator: Operator
    csrf_token: str
    token: str


# Per-request cache: a handler may ask more than once, the store is asked once.
_SESSION = web.RequestKey("operator_session", OperatorSession)


class SessionSockets:
    """The open sockets of operator sessions, so that a session that ends closes them.

    In this process the store tells us (``on_sessions_ended``) and the socket's ``ended`` event
    is set before the logout even answers; for a session ended elsewhere each socket re-checks
    the store every ``recheck`` seconds."""

    def __init__(self, store: OperatorStore, *, recheck: float = SESSION_RECHECK_SECONDS) -> None:
        self._store = store
        self._recheck = recheck
        self._open: dict[asyncio.Event, tuple[str, str]] = {}  # event -> (login, digest)
        store.on_sessions_ended(self._ended)

    def _ended(self, login: str | None, digest: str | None) -> None:
        for event, (owner, session) in self._open.items():
            if owner == login or session == digest:
                event.set()

    def __len__(self) -> int:
        return len(self._open)

    @contextlib.asynccontextmanager
    async def watch(self, session: OperatorSession) -> AsyncIterator[asyncio.Event]:
        """An event set when ``session`` ends, for as long as the block runs."""
        ended = asyncio.Event()
        self._open[ended] = (session.operator.login, token_digest(session.token))
        checker = asyncio.create_task(self._check(session.token, ended))
        try:
            yield ended
        finally:
            checker.cancel()
            del self._open[ended]

    async def _check(self, token: str, ended: asyncio.Event) -> None:
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), self._recheck)
                return
            # Not a use of the console: the session's idle clock is not reset by a socket.
            if await self._store.session(token, touch=False) is None:
                ended.set()


SOCKETS = web.AppKey("operator_session_sockets", SessionSockets)


def _refusal(cls: type[web.HTTPException], message: str, **extra: Any) -> web.HTTPException:
    return cls(
        text=json.dumps({"error": message, **extra}, ensure_ascii=False),
        content_type="application/json",
        headers=_NO_STORE,
    )


def _forbidden(message: str) -> web.HTTPException:
    return _refusal(web.HTTPForbidden, message)


def _is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if proto == "https":
        return True
    forwarded = request.forwarded
    return bool(forwarded) and forwarded[0].get("proto", "").lower() == "https"


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def check_origin(request: web.Request) -> None:
    """Refuse (403) a request a browser tells us comes from another site.

    Non-browser clients send neither header and pass; the CSRF token still guards them.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        raise _forbidden("cross-site requests are not accepted")
    origin = request.headers.get("Origin")
    if origin is None:
        return
    netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
    hosts = {request.host.lower()}
    forwarded_host = request.headers.get("X-Forwarded-Host")
    if forwarded_host:  # behind a reverse proxy that rewrites Host
        hosts.add(forwarded_host.split(",")[0].strip().lower())
    if not netloc or netloc not in hosts:
        raise _forbidden("cross-site requests are not accepted")


def require_csrf(request: web.Request, csrf: str) -> None:
    """403 unless the request's ``X-CSRF-Token`` equals the session's token."""
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode("utf-8"), csrf.encode("utf-8")):
        raise _forbidden("missing or wrong X-CSRF-Token")


async def current_session(request: web.Request) -> OperatorSession:
    """The live session of the request's cookie; 401 when there is none or it has expired."""
    if _SESSION in request:
        return request[_SESSION]
    token = request.cookies.get(SESSION_COOKIE)
    found = await request.config_dict[OPERATORS].session(token) if token else None
    if found is None or token is None:
        raise _refusal(web.HTTPUnauthorized, "not logged in")
    session = OperatorSession(operator=found[0], csrf_token=found[1], token=token)
    request[_SESSION] = session
    return session


async def current_operator(request: web.Request) -> Operator:
    return (await current_session(request)).operator


async def authorized(request: web.Request, *, write: bool, supervisor: bool = False) -> Operator:
    """The operator making this request, or an HTTP error raised for the handler.

    ``write`` (implied for every method but GET/HEAD/OPTIONS) demands a same-site origin and the
    CSRF header. A WebSocket upgrade cannot carry the header, so its origin is checked instead;
    ``supervisor`` demands that role (403 otherwise).
    """
    write = write or request.method not in _SAFE_METHODS
    if write or _is_websocket(request):
        check_origin(request)
    session = await current_session(request)
    if write:
        require_csrf(request, session.csrf_token)
    if supervisor and session.operator.role != "supervisor":
        raise _forbidden("only a supervisor may do this")
    return session.operator


def _set_session_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, path="/", httponly=True, samesite="Strict", secure=_is_https(request)
    )


async def _login_body(request: web.Request) -> tuple[str, str]:
    try:
        body = loads(await request.read(), max_bytes=_LOGIN_BODY_BYTES)
    except UntrustedInput as exc:
        raise _refusal(web.HTTPBadRequest, str(exc)) from None
    login_name = body.get("login") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(login_name, str) or not isinstance(password, str):
        raise _refusal(web.HTTPBadRequest, 'send {"login": ..., "password": ...}')
    if len(login_name) > SHORT_TEXT_LIMIT or len(password) > MAX_PASSWORD_LENGTH:
        raise _refusal(web.HTTPBadRequest, "the login or the password is too long")
    return login_name, password


async def login(request: web.Request) -> web.Response:
    check_origin(request)  # no logging a victim's browser into the attacker's account
    if request.content_type != "application/json":
        # A cross-site <form> can only send form or text bodies; JSON needs a CORS preflight.
        raise _refusal(web.HTTPUnsupportedMediaType, "send a JSON body")
    login_name, password = await _login_body(request)
    store = request.config_dict[OPERATORS]
    address = request_address(request)
    try:
        result = await store.attempt(login_name, password, ip=address)
    except LoginThrottled as exc:
        retry_after = math.ceil(exc.retry_after)
        _count(request, "operator_login_throttled_total", scope=exc.scope)
        known = await store.get(login_name) is not None if login_name.isascii() else False
        await audit(
            request, "login_throttled",
            login=login_name.strip().lower() if known else unknown_login(login_name),
            scope=exc.scope, retry_after=retry_after,
        )  # fmt: skip
        raise web.HTTPTooManyRequests(
            text=json.dumps(
                {"error": "too many failed attempts; try again later", "retry_after": retry_after}
            ),
            content_type="application/json",
            headers={**_NO_STORE, "Retry-After": str(retry_after)},
        ) from None
    # One message for every failure: which part was wrong is for the attacker to guess.
    wrong = _refusal(web.HTTPUnauthorized, "wrong login or password")
    who = result.login if result.known else unknown_login(login_name)
    operator = result.operator
    if operator is None:
        _count(request, "operator_login_failures_total", reason=result.reason)
        await audit(request, "login_failed", login=who, reason=result.reason)
        raise wrong
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # a fresh token on every login: a planted cookie is never promoted
        await store.delete_session(previous)
    try:
        token, csrf = await store.create_session(operator.login)
    except OperatorError:  # removed or disabled between the check and now
        _count(request, "operator_login_failures_total", reason="disabled")
        await audit(request, "login_failed", login=who, reason="disabled")
        raise wrong from None
    await audit(request, "login", login=operator.login)
    response = json_response({"csrf_token": csrf, "operator": operator.as_json()})
    response.headers.update(_NO_STORE)
    _set_session_cookie(response, request, token)
    return response


async def logout(request: web.Request) -> web.Response:
    await authorized(request, write=True)
    session = await current_session(request)
    # Ending the session in the store also closes this session's open sockets (SessionSockets).
    await request.config_dict[OPERATORS].delete_session(session.token)
    await audit(request, "logout", login=session.operator.login)
    response = json_response({"ok": True})
    response.headers.update(_NO_STORE)
    response.del_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="Strict", secure=_is_https(request)
    )
    return response


async def me(request: web.Request) -> web.Response:
    """Who is logged in, and the CSRF token again (a reloaded console page has lost it)."""
    await authorized(request, write=False)
    session = await current_session(request)
    status_of = request.app.get(STATUS_OF)
    status = await status_of(session.operator.login) if status_of else "away"
    response = json_response(
        {
            "operator": session.operator.as_json(),
            "csrf_token": session.csrf_token,
            "status": status,
        }
    )
    response.headers.update(_NO_STORE)
    return response


def add_auth_routes(app: web.Application) -> None:
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_post(LOGOUT_PATH, logout)
    app.router.add_get(ME_PATH, me)


def setup_operator_auth(
    app: web.Application,
    store: OperatorStore,
    *,
    close_store: bool = True,
    trusted_proxies: Sequence[IPNetwork] = (),
    audit_log: AuditLog | None = None,
    metrics: Metrics | None = None,
    recheck: float = SESSION_RECHECK_SECONDS,
) -> None:
    """Put ``store`` under ``OPERATORS``, add the routes, and close the store with the app.

    ``trusted_proxies`` (``BOT_TRUSTED_PROXIES``) are the peers whose ``X-Forwarded-For`` names
    the client for the login throttle and the audit; ``audit_log`` adds the supervisor's audit
    routes; ``metrics`` counts failed and throttled logins."""
    app[OPERATORS] = store
    app[SOCKETS] = SessionSockets(store, recheck=recheck)
    app[TRUSTED_PROXIES] = tuple(trusted_proxies)
    if metrics is not None:
        register_metrics(metrics)
        app[AUTH_METRICS] = metrics
    add_auth_routes(app)
    if audit_log is not None:
        app[AUDIT] = audit_log
        add_audit_routes(app, authorized)
    if close_store:

        async def lifetime(app: web.Application) -> AsyncIterator[None]:
            yield
            await store.close()

        app.cleanup_ctx.append(lifetime)
