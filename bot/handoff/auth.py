"""Operator console authentication: the login, logout and me routes, and ``authorized()``, the
one check every other operator handler calls.

A session is a random token in an ``HttpOnly; SameSite=Strict`` cookie. Requests that change
anything must also carry the session's CSRF token in ``X-CSRF-Token`` (a header a cross-site form
cannot set) and, when the browser says where they come from, come from this very site.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.handoff.operators import LoginThrottled, Operator, OperatorError, OperatorStore
from bot.http import json_response

OPERATORS = web.AppKey("operators", OperatorStore)
# Presence lives in the handoff service; /me reports it so a reloaded console shows the truth.
STATUS_OF: web.AppKey[Callable[[str], str]] = web.AppKey("operator_status_of")

SESSION_COOKIE = "op_session"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_PATH = "/api/v1/operator/login"
LOGOUT_PATH = "/api/v1/operator/logout"
ME_PATH = "/api/v1/operator/me"

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class OperatorSession:
    operator: Operator
    csrf_token: str
    token: str


# Per-request cache: a handler may ask more than once, the store is asked once.
_SESSION = web.RequestKey("operator_session", OperatorSession)


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


async def login(request: web.Request) -> web.Response:
    check_origin(request)  # no logging a victim's browser into the attacker's account
    if request.content_type != "application/json":
        # A cross-site <form> can only send form or text bodies; JSON needs a CORS preflight.
        raise _refusal(web.HTTPUnsupportedMediaType, "send a JSON body")
    try:
        body = await request.json()
    except ValueError:
        raise _refusal(web.HTTPBadRequest, "the body is not valid JSON") from None
    login_name = body.get("login") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(login_name, str) or not isinstance(password, str):
        raise _refusal(web.HTTPBadRequest, 'send {"login": ..., "password": ...}')
    store = request.config_dict[OPERATORS]
    try:
        operator = await store.verify(login_name, password, ip=request.remote)
    except LoginThrottled as exc:
        retry_after = math.ceil(exc.retry_after)
        raise web.HTTPTooManyRequests(
            text=json.dumps(
                {"error": "too many failed attempts; try again later", "retry_after": retry_after}
            ),
            content_type="application/json",
            headers={**_NO_STORE, "Retry-After": str(retry_after)},
        ) from None
    # One message for every failure: which part was wrong is for the attacker to guess.
    wrong = _refusal(web.HTTPUnauthorized, "wrong login or password")
    if operator is None:
        raise wrong
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # a fresh token on every login: a planted cookie is never promoted
        await store.delete_session(previous)
    try:
        token, csrf = await store.create_session(operator.login)
    except OperatorError:  # removed or disabled between the check and now
        raise wrong from None
    response = json_response({"csrf_token": csrf, "operator": operator.as_json()})
    response.headers.update(_NO_STORE)
    _set_session_cookie(response, request, token)
    return response


async def logout(request: web.Request) -> web.Response:
    await authorized(request, write=True)
    session = await current_session(request)
    await request.config_dict[OPERATORS].delete_session(session.token)
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
    status = status_of(session.operator.login) if status_of else "away"
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
    app: web.Application, store: OperatorStore, *, close_store: bool = True
) -> None:
    """Put ``store`` under ``OPERATORS``, add the routes, and close the store with the app."""
    app[OPERATORS] = store
    add_auth_routes(app)
    if close_store:

        async def lifetime(app: web.Application) -> AsyncIterator[None]:
            yield
            await store.close()

        app.cleanup_ctx.append(lifetime)
