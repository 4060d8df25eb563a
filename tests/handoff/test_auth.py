"""Operator accounts, console sessions and the ``operators`` commands.

The store runs on a real SQLite file with an injected clock (nothing sleeps); the HTTP checks go
through a real aiohttp test server with only the auth routes and a few handlers that call
``authorized()`` the way the operator API does.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import itertools
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

import bot.handoff.operators as operators_module
from bot.config import Settings
from bot.handoff.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    authorized,
    setup_operator_auth,
)
from bot.handoff.operators import (
    LoginThrottled,
    Operator,
    OperatorError,
    OperatorStore,
    SqliteOperatorStore,
    ThrottlePolicy,
    add_operator_commands,
    check_password,
    cmd_add,
    cmd_disable,
    cmd_enable,
    cmd_list,
    cmd_passwd,
    cmd_remove,
    default_operators_path,
    hash_password,
)
from bot.handoff.redis_operators import RedisOperatorStore
from bot.storage.redis.client import connect

PASSWORD = "correct horse battery"
OTHER_PASSWORD = "another long secret"
IVAN = Operator("ivan", "Иван Петров", ("billing", "technical"), 3)
LOGIN = "/api/v1/operator/login"
LOGOUT = "/api/v1/operator/logout"
ME = "/api/v1/operator/me"
HOUR = 3600.0
Client = TestClient[web.Request, web.Application]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


OpenStore = Callable[..., OperatorStore]


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every store test runs on both backends: the SQLite file and the shared Redis."""
    return str(request.param)


@pytest.fixture
async def open_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[OpenStore]:
    """Opens a store of the test's backend (with the test's clock) and closes it afterwards."""
    opened: list[OperatorStore] = []
    client: Redis | None = None
    if backend == "redis":
        client = connect(request.getfixturevalue("redis_url"))  # emptied for this test

    def make(**options: Any) -> OperatorStore:
        store: OperatorStore
        if client is not None:
            store = RedisOperatorStore(client, clock=clock, **options)
        else:
            store = SqliteOperatorStore(tmp_path / "var" / "operators.sqlite3", clock=clock,
                                        **options)  # fmt: skip
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
    if client is not None:
        await client.aclose()


@pytest.fixture
def store(open_store: OpenStore) -> OperatorStore:
    return open_store()


# --- passwords -----------------------------------------------------------------------------------
def test_hash_names_scrypt_and_its_parameters_with_a_fresh_salt() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    for encoded in (first, second):
        scheme, n, r, p, salt, key = encoded.split("$")
        assert (scheme, n, r, p) == ("scrypt", str(2**14), "8", "1")
        assert len(bytes.fromhex(salt)) == 16
        assert len(bytes.fromhex(key)) == 32
        assert PASSWORD not in encoded
        assert check_password(PASSWORD, encoded)
        assert not check_password(PASSWORD + "x", encoded)


@pytest.mark.parametrize(
    "encoded",
    ["", "scrypt", "bcrypt$16384$8$1$00$00", "scrypt$x$8$1$00$00", "scrypt$1073741824$8$1$00$00"],
)
def test_a_damaged_hash_never_matches(encoded: str) -> None:
    assert not check_password(PASSWORD, encoded)


def test_unicode_composition_does_not_change_the_password() -> None:
    composed = "пароль-ёжик-1234"  # ё as one code point
    decomposed = composed.replace("ё", "е\u0308")
    assert check_password(decomposed, hash_password(composed))


# --- accounts ------------------------------------------------------------------------------------
async def test_add_then_verify(store: OperatorStore) -> None:
    added = await store.add(IVAN, PASSWORD)
    assert added == IVAN
    assert await store.get("ivan") == IVAN
    assert await store.get("IVAN") == IVAN
    assert await store.list() == (IVAN,)
    assert await store.verify("ivan", PASSWORD) == IVAN
    assert await store.verify(" Ivan ", PASSWORD) == IVAN


async def test_wrong_password_and_unknown_login_are_refused(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    assert await store.verify("ivan", OTHER_PASSWORD) is None
    assert await store.verify("ivan", "") is None
    assert await store.verify("nobody", PASSWORD) is None


async def test_unknown_login_costs_one_scrypt_like_a_known_one(
    store: OperatorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.add(IVAN, PASSWORD)
    checked: list[str] = []
    real = operators_module.check_password

    def counting(password: str, encoded: str) -> bool:
        checked.append(encoded)
        return real(password, encoded)

    monkeypatch.setattr(operators_module, "check_password", counting)
    await store.verify("nobody", PASSWORD)
    await store.verify("ivan", OTHER_PASSWORD)
    assert len(checked) == 2
    assert all(e.startswith("scrypt$16384$8$1$") for e in checked)


async def test_duplicates_are_refused(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    with pytest.raises(OperatorError, match="already exists"):
        await store.add(replace(IVAN, name="Другой"), OTHER_PASSWORD)
    with pytest.raises(OperatorError, match="already exists"):
        await store.add(replace(IVAN, login="IVAN"), OTHER_PASSWORD)
    assert await store.verify("ivan", PASSWORD) == IVAN


@pytest.mark.parametrize(
    ("operator", "password", "problem"),
    [
        (IVAN, "short", "at least 10"),
        (IVAN, " " * 12, "blank"),
        (replace(IVAN, login="иван"), PASSWORD, "login"),
        (replace(IVAN, login=""), PASSWORD, "login"),
        (replace(IVAN, departments=()), PASSWORD, "department"),
        (replace(IVAN, departments=("billing dept",)), PASSWORD, "department"),
        (replace(IVAN, max_chats=0), PASSWORD, "max chats"),
    ],
)
async def test_invalid_accounts_are_refused(
    store: OperatorStore, operator: Operator, password: str, problem: str
) -> None:
    with pytest.raises(OperatorError, match=problem):
        await store.add(operator, password)
    assert await store.list() == ()


async def test_disable_refuses_login_and_ends_sessions(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    token, _ = await store.create_session("ivan")
    disabled = await store.disable("ivan")
    assert disabled.disabled
    assert await store.session(token) is None
    assert await store.verify("ivan", PASSWORD) is None
    with pytest.raises(OperatorError):
        await store.create_session("ivan")
    await store.enable("ivan")
    assert await store.verify("ivan", PASSWORD) == IVAN
    with pytest.raises(OperatorError, match="no operator"):
        await store.disable("nobody")


async def test_remove_deletes_the_account_and_its_sessions(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    token, _ = await store.create_session("ivan")
    await store.remove("ivan")
    assert await store.get("ivan") is None
    assert await store.session(token) is None
    assert await store.verify("ivan", PASSWORD) is None
    with pytest.raises(OperatorError, match="no operator"):
        await store.remove("ivan")


async def test_password_change_ends_every_session(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    first, _ = await store.create_session("ivan")
    second, _ = await store.create_session("ivan")
    await store.set_password("ivan", OTHER_PASSWORD)
    assert await store.session(first) is None
    assert await store.session(second) is None
    assert await store.verify("ivan", PASSWORD) is None
    assert await store.verify("ivan", OTHER_PASSWORD) == IVAN
    with pytest.raises(OperatorError, match="at least"):
        await store.set_password("ivan", "short")
    with pytest.raises(OperatorError, match="no operator"):
        await store.set_password("nobody", OTHER_PASSWORD)


async def test_update_changes_the_profile_not_the_password(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    changed = await store.update(replace(IVAN, departments=("sales",), role="supervisor"))
    assert changed.departments == ("sales",)
    assert changed.role == "supervisor"
    assert await store.verify("ivan", PASSWORD) == changed


# --- sessions ------------------------------------------------------------------------------------
async def test_session_gives_the_operator_and_csrf_token(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    token, csrf = await store.create_session("ivan")
    assert token != csrf
    assert await store.session(token) == (IVAN, csrf)
    assert await store.session(token + "x") is None
    assert await store.session("") is None
    await store.delete_session(token)
    assert await store.session(token) is None


async def test_only_a_digest_of_the_token_is_stored(
    store: OperatorStore, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    await store.add(IVAN, PASSWORD)
    token, csrf = await store.create_session("ivan")
    if backend == "sqlite":
        path = tmp_path / "var" / "operators.sqlite3"
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT * FROM operator_sessions").fetchall()
            hashes = db.execute("SELECT password_hash FROM operators").fetchall()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = repr(rows) + repr(hashes)
    else:
        stored = _everything_in_redis(request.getfixturevalue("redis_url"))
        assert csrf in stored  # the dump does show what is stored
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert PASSWORD not in stored


def _everything_in_redis(url: str) -> str:
    """Every key and value in the test's Redis, as text."""
    with redis.Redis.from_url(url, decode_responses=True) as client:
        dump = []
        for key in client.scan_iter():
            kind = client.type(key)
            value: Any = {
                "hash": client.hgetall, "set": client.smembers, "string": client.get,
                "zset": lambda k: client.zrange(k, 0, -1),
            }[kind](key)  # fmt: skip
            dump.append(f"{key} {value!r}")
        return "\n".join(dump)


async def test_session_expires_after_12_idle_hours_and_slides_with_use(
    store: OperatorStore, clock: Clock
) -> None:
    await store.add(IVAN, PASSWORD)
    token, _ = await store.create_session("ivan")
    clock.advance(11 * HOUR)
    assert await store.session(token) is not None  # used: another 12 hours from now
    clock.advance(11 * HOUR)
    assert await store.session(token) is not None
    clock.advance(12 * HOUR + 1)
    assert await store.session(token) is None
    assert await store.session(token) is None


async def test_session_has_an_absolute_limit_even_when_used(
    open_store: OpenStore, clock: Clock
) -> None:
    store = open_store(session_ttl=HOUR, session_max_age=3 * HOUR)
    await store.add(IVAN, PASSWORD)
    token, _ = await store.create_session("ivan")
    for _ in range(5):
        clock.advance(0.5 * HOUR)
        assert await store.session(token) is not None
    clock.advance(0.5 * HOUR + 1)
    assert await store.session(token) is None


async def test_a_session_read_without_touch_does_not_slide(
    store: OperatorStore, clock: Clock
) -> None:
    """What an open socket's re-check does: an idle console still expires."""
    await store.add(IVAN, PASSWORD)
    token, _ = await store.create_session("ivan")
    clock.advance(11 * HOUR)
    assert await store.session(token, touch=False) is not None
    clock.advance(HOUR + 1)
    assert await store.session(token, touch=False) is None


async def test_sessions_of_one_login_end_together(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    await store.add(replace(IVAN, login="olga", name="Ольга"), PASSWORD)
    mine = [await store.create_session("ivan") for _ in range(3)]
    hers, _ = await store.create_session("olga")
    assert await store.delete_sessions("ivan") == 3
    assert all([await store.session(token) is None for token, _ in mine])
    assert await store.session(hers) is not None


# --- throttling ----------------------------------------------------------------------------------
async def _fail_until_throttled(
    store: OperatorStore, login: str, ip: str, *, password: str = OTHER_PASSWORD
) -> LoginThrottled:
    for _ in range(1000):
        try:
            assert await store.verify(login, password, ip=ip) is None
        except LoginThrottled as refused:
            return refused
    raise AssertionError("never throttled")


async def _failures(store: OperatorStore, clock: Clock, login: str, ip: str, n: int) -> None:
    """``n`` failed attempts from ``ip``, each after waiting as long as we are told to."""
    done = 0
    while done < n:
        try:
            assert await store.verify(login, OTHER_PASSWORD, ip=ip) is None
            done += 1
        except LoginThrottled as refused:
            clock.advance(refused.retry_after)


async def test_delays_after_failures_grow_and_are_capped(
    store: OperatorStore, clock: Clock
) -> None:
    await store.add(IVAN, PASSWORD)
    for _ in range(3):  # typos are free
        assert await store.verify("ivan", OTHER_PASSWORD, ip="10.0.0.1") is None
    waits = []
    for _ in range(14):
        refused = await _fail_until_throttled(store, "ivan", "10.0.0.1")
        waits.append(refused.retry_after)
        clock.advance(refused.retry_after)
    assert waits[:5] == [1, 2, 4, 8, 16]
    assert all(later >= earlier for earlier, later in itertools.pairwise(waits))
    assert max(waits) == 15 * 60
    # Waiting is not failing: asking again during the wait does not make it longer.
    assert await store.verify("ivan", OTHER_PASSWORD, ip="10.0.0.1") is None
    first = await _fail_until_throttled(store, "ivan", "10.0.0.1")
    clock.advance(10)
    again = await _fail_until_throttled(store, "ivan", "10.0.0.1")
    assert again.retry_after == first.retry_after - 10


async def test_an_attackers_failures_do_not_lock_the_operator_out(
    store: OperatorStore, clock: Clock
) -> None:
    await store.add(IVAN, PASSWORD)
    await _failures(store, clock, "ivan", "203.0.113.66", 100)
    with pytest.raises(LoginThrottled):  # the guesser is slowed down …
        await store.verify("ivan", PASSWORD, ip="203.0.113.66")
    # … the operator at their own desk is not.
    assert await store.verify("ivan", PASSWORD, ip="198.51.100.7") == IVAN


async def test_guessing_from_many_addresses_slows_only_those_addresses(
    store: OperatorStore, clock: Clock
) -> None:
    await store.add(IVAN, PASSWORD)
    for n in range(40):  # 40 addresses, 2 guesses each: past the login-wide 20 free failures
        await _failures(store, clock, "ivan", f"203.0.113.{n}", 2)
    refused = await _fail_until_throttled(store, "ivan", "203.0.113.5")
    assert refused.scope == "login"
    assert await store.verify("ivan", PASSWORD, ip="198.51.100.7") == IVAN  # a fresh address


async def test_one_address_guessing_many_logins_is_slowed(
    store: OperatorStore, clock: Clock
) -> None:
    await store.add(IVAN, PASSWORD)
    for n in range(10):
        assert await store.verify(f"user{n}", PASSWORD, ip="203.0.113.9") is None
    with pytest.raises(LoginThrottled) as refused:
        await store.verify("ivan", PASSWORD, ip="203.0.113.9")
    assert refused.value.scope == "address"
    assert await store.verify("ivan", PASSWORD, ip="198.51.100.1") == IVAN


async def test_a_success_forgets_the_failures_of_that_address_only(
    store: OperatorStore, clock: Clock
) -> None:
    await store.add(IVAN, PASSWORD)
    for _ in range(3):
        await store.verify("ivan", OTHER_PASSWORD, ip="10.0.0.1")
    for _ in range(2):
        await store.verify("ivan", OTHER_PASSWORD, ip="10.0.0.2")
    clock.advance(1)
    assert await store.verify("ivan", PASSWORD, ip="10.0.0.1") == IVAN
    for _ in range(3):  # free again from here
        assert await store.verify("ivan", OTHER_PASSWORD, ip="10.0.0.1") is None
    assert await store.verify("ivan", OTHER_PASSWORD, ip="10.0.0.2") is None
    with pytest.raises(LoginThrottled):  # not from there
        await store.verify("ivan", OTHER_PASSWORD, ip="10.0.0.2")


async def test_unknown_logins_are_throttled_like_real_ones(store: OperatorStore) -> None:
    for _ in range(3):
        assert await store.verify("ghost", PASSWORD) is None
    with pytest.raises(LoginThrottled):
        await store.verify("ghost", PASSWORD)


async def test_parallel_guesses_cannot_pass_the_limit(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    results = await asyncio.gather(
        *(store.verify("ivan", OTHER_PASSWORD, ip="10.0.0.1") for _ in range(8)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 3
    assert sum(isinstance(r, LoginThrottled) for r in results) == 5


def test_the_delay_never_overflows() -> None:
    policy = ThrottlePolicy()
    assert policy.delay(2, 3) == 0
    assert policy.delay(3, 3) == 1
    assert policy.delay(10**6, 3) == 15 * 60


async def test_attempt_says_why_for_the_audit(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    assert (await store.attempt("ivan", OTHER_PASSWORD)).reason == "wrong_password"
    unknown = await store.attempt("nobody", PASSWORD)
    assert (unknown.reason, unknown.known) == ("unknown_login", False)
    await store.disable("ivan")
    assert (await store.attempt("ivan", PASSWORD)).reason == "disabled"


async def test_lone_surrogates_never_reach_sqlite(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    assert await store.verify("iv\ud800an", PASSWORD) is None
    assert await store.verify("ivan", "\udfff" * 12) is None
    assert await store.verify("ivan", PASSWORD) == IVAN


async def test_a_new_password_lifts_the_lock(store: OperatorStore) -> None:
    await store.add(IVAN, PASSWORD)
    for _ in range(3):
        await store.verify("ivan", OTHER_PASSWORD)
    with pytest.raises(LoginThrottled):
        await store.verify("ivan", PASSWORD)
    await store.set_password("ivan", OTHER_PASSWORD)
    assert await store.verify("ivan", OTHER_PASSWORD) == IVAN


# --- HTTP ----------------------------------------------------------------------------------------
async def _write(request: web.Request) -> web.Response:
    operator = await authorized(request, write=True)
    return web.json_response({"done_by": operator.login})


async def _read(request: web.Request) -> web.Response:
    operator = await authorized(request, write=False)
    return web.json_response({"seen_by": operator.login})


async def _supervise(request: web.Request) -> web.Response:
    operator = await authorized(request, write=True, supervisor=True)
    return web.json_response({"done_by": operator.login})


@pytest.fixture
async def http(aiohttp_client: Any, store: OperatorStore) -> Client:
    await store.add(IVAN, PASSWORD)
    app = web.Application()
    setup_operator_auth(app, store, close_store=False)
    app.router.add_post("/api/v1/operator/status", _write)
    app.router.add_get("/api/v1/operator/queue", _read)
    app.router.add_post("/api/v1/operator/reassign", _supervise)
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def _login(http: Client, login: str = "ivan", password: str = PASSWORD, **kwargs: Any) -> Any:
    return await http.post(LOGIN, json={"login": login, "password": password}, **kwargs)


async def _logged_in(http: Client) -> str:
    resp = await _login(http)
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["csrf_token"])


def _set_cookie(resp: Any) -> str:
    cookies = [c for c in resp.headers.getall("Set-Cookie") if c.startswith(SESSION_COOKIE + "=")]
    assert len(cookies) == 1
    return str(cookies[0])


async def test_login_sets_a_strict_httponly_cookie(http: Client) -> None:
    resp = await _login(http)
    assert resp.status == 200
    body = await resp.json()
    assert body["operator"] == {
        "login": "ivan",
        "name": "Иван Петров",
        "departments": ["billing", "technical"],
        "max_chats": 3,
        "role": "operator",
    }
    assert len(body["csrf_token"]) >= 32
    cookie = _set_cookie(resp)
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert body["csrf_token"] not in cookie
    assert resp.headers["Cache-Control"] == "no-store"


async def test_cookie_is_secure_behind_an_https_proxy(http: Client) -> None:
    resp = await _login(http, headers={"X-Forwarded-Proto": "https"})
    assert resp.status == 200
    assert "Secure" in _set_cookie(resp)


async def test_me_needs_the_session(http: Client) -> None:
    resp = await http.get(ME)
    assert resp.status == 401
    assert (await resp.json())["error"]
    csrf = await _logged_in(http)
    resp = await http.get(ME)
    assert resp.status == 200
    body = await resp.json()
    assert body["operator"]["login"] == "ivan"
    assert body["csrf_token"] == csrf
    assert (await http.get("/api/v1/operator/queue")).status == 200


async def test_bad_credentials_get_one_generic_answer(http: Client) -> None:
    wrong_password = await _login(http, password=OTHER_PASSWORD)
    unknown_login = await _login(http, login="nobody")
    assert wrong_password.status == unknown_login.status == 401
    assert await wrong_password.json() == await unknown_login.json()
    assert "Set-Cookie" not in wrong_password.headers
    assert (await http.get(ME)).status == 401


@pytest.mark.parametrize(
    "body", [{"login": "ivan"}, {"login": "ivan", "password": 12345678901}, ["ivan", PASSWORD]]
)
async def test_malformed_login_is_400(http: Client, body: Any) -> None:
    assert (await http.post(LOGIN, json=body)).status == 400


async def test_login_takes_only_json(http: Client) -> None:
    resp = await http.post(LOGIN, data={"login": "ivan", "password": PASSWORD})
    assert resp.status == 415
    resp = await http.post(
        LOGIN,
        data=f'{{"login": "ivan", "password": "{PASSWORD}"}}',
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status == 415


async def test_post_without_csrf_header_is_403(http: Client) -> None:
    await _logged_in(http)
    resp = await http.post("/api/v1/operator/status", json={"status": "online"})
    assert resp.status == 403
    assert "CSRF" in (await resp.json())["error"]


async def test_post_with_wrong_csrf_header_is_403(http: Client) -> None:
    csrf = await _logged_in(http)
    for wrong in (csrf[:-1], csrf + "x", "x" * len(csrf), "токен"):
        resp = await http.post(
            "/api/v1/operator/status", json={"status": "online"}, headers={CSRF_HEADER: wrong}
        )
        assert resp.status == 403, wrong


async def test_post_with_the_right_csrf_header_passes(http: Client) -> None:
    csrf = await _logged_in(http)
    resp = await http.post(
        "/api/v1/operator/status", json={"status": "online"}, headers={CSRF_HEADER: csrf}
    )
    assert resp.status == 200
    assert await resp.json() == {"done_by": "ivan"}


async def test_post_without_a_session_is_401_even_with_a_token(http: Client) -> None:
    resp = await http.post("/api/v1/operator/status", headers={CSRF_HEADER: "anything"})
    assert resp.status == 401


async def test_logout_needs_csrf_and_ends_the_session(http: Client) -> None:
    csrf = await _logged_in(http)
    token = http.session.cookie_jar.filter_cookies(http.make_url("/"))[SESSION_COOKIE].value
    assert (await http.post(LOGOUT)).status == 403
    assert (await http.get(ME)).status == 200
    resp = await http.post(LOGOUT, headers={CSRF_HEADER: csrf})
    assert resp.status == 200
    assert (await http.get(ME)).status == 401
    # The old token is dead on the server, not just forgotten by this browser.
    http.session.cookie_jar.update_cookies({SESSION_COOKIE: token}, http.make_url("/"))
    assert (await http.get(ME)).status == 401
    resp = await http.post("/api/v1/operator/status", headers={CSRF_HEADER: csrf})
    assert resp.status == 401


async def test_login_replaces_the_previous_session(http: Client) -> None:
    await _logged_in(http)
    first = http.session.cookie_jar.filter_cookies(http.make_url("/"))[SESSION_COOKIE].value
    await _logged_in(http)
    second = http.session.cookie_jar.filter_cookies(http.make_url("/"))[SESSION_COOKIE].value
    assert first != second
    http.session.cookie_jar.update_cookies({SESSION_COOKIE: first}, http.make_url("/"))
    assert (await http.get(ME)).status == 401


async def test_failures_then_429_with_retry_after(http: Client) -> None:
    for _ in range(3):
        assert (await _login(http, password=OTHER_PASSWORD)).status == 401
    resp = await _login(http)  # even the right password, from this address
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) == 1
    assert (await resp.json())["retry_after"] == 1
    assert "Set-Cookie" not in resp.headers


async def test_session_expiry_is_a_401(http: Client, clock: Clock) -> None:
    await _logged_in(http)
    clock.advance(12 * HOUR + 1)
    assert (await http.get(ME)).status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
async def test_cross_site_posts_are_refused(http: Client, headers: dict[str, str]) -> None:
    csrf = await _logged_in(http)
    resp = await http.post("/api/v1/operator/status", headers={CSRF_HEADER: csrf, **headers})
    assert resp.status == 403
    resp = await _login(http, headers=headers)
    assert resp.status == 403
    assert "Set-Cookie" not in resp.headers
    resp = await http.post(LOGOUT, headers={CSRF_HEADER: csrf, **headers})
    assert resp.status == 403
    assert (await http.get(ME)).status == 200


async def test_same_origin_posts_pass(http: Client) -> None:
    origin = f"http://{http.host}:{http.port}"
    resp = await _login(http, headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert resp.status == 200
    csrf = (await resp.json())["csrf_token"]
    resp = await http.post("/api/v1/operator/status", headers={CSRF_HEADER: csrf, "Origin": origin})
    assert resp.status == 200


async def test_origin_may_match_the_proxys_forwarded_host(http: Client) -> None:
    headers = {"Origin": "https://support.isp.example", "X-Forwarded-Host": "support.isp.example"}
    assert (await _login(http, headers=headers)).status == 200


async def test_supervisor_only_actions(http: Client, store: OperatorStore) -> None:
    csrf = await _logged_in(http)
    resp = await http.post("/api/v1/operator/reassign", headers={CSRF_HEADER: csrf})
    assert resp.status == 403
    await store.update(replace(IVAN, role="supervisor"))
    resp = await http.post("/api/v1/operator/reassign", headers={CSRF_HEADER: csrf})
    assert resp.status == 200


async def test_disabling_an_operator_logs_them_out(http: Client, store: OperatorStore) -> None:
    await _logged_in(http)
    await store.disable("ivan")
    assert (await http.get(ME)).status == 401
    assert (await _login(http)).status == 401


# --- python -m bot operators … -------------------------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _answers(*replies: str) -> Callable[[str], str]:
    queue: Iterator[str] = iter(replies)
    return lambda prompt: next(queue)


@pytest.fixture
def cli_settings(tmp_path: Path) -> Settings:
    return replace(Settings(), var_dir=tmp_path / "cli-var")


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot")
    add_operator_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def _on_store(settings: Settings, work: Callable[[SqliteOperatorStore], Any]) -> Any:
    async def go() -> Any:
        store = SqliteOperatorStore(default_operators_path(settings))
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def _add(settings: Settings, *argv: str, stdin: io.StringIO) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cmd_add(_parse("operators", "add", *argv), settings, stdin=stdin, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_add_reads_the_password_from_stdin(cli_settings: Settings) -> None:
    code, out, err = _add(
        cli_settings,
        "Olga",
        "--name", "Ольга Смирнова",
        "--departments", "billing, technical",
        "--max-chats", "5",
        "--supervisor",
        stdin=io.StringIO(PASSWORD + "\nignored second line\n"),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "olga" in out
    operator = _on_store(cli_settings, lambda s: s.verify("olga", PASSWORD))
    assert operator == Operator("olga", "Ольга Смирнова", ("billing", "technical"), 5, "supervisor")
    assert default_operators_path(cli_settings) == cli_settings.var_dir / "operators.sqlite3"


def test_cli_add_defaults(cli_settings: Settings) -> None:
    assert _add(cli_settings, "ivan", stdin=io.StringIO(PASSWORD + "\r\n"))[0] == 0
    operator = _on_store(cli_settings, lambda s: s.verify("ivan", PASSWORD))
    assert operator == Operator("ivan", "ivan", ("general",), 3, "operator")


@pytest.mark.parametrize(
    ("stdin", "problem"),
    [("short\n", "at least 10"), ("", "no password"), ("\n", "at least 10")],
)
def test_cli_add_refuses_a_missing_or_weak_password(
    cli_settings: Settings, stdin: str, problem: str
) -> None:
    code, out, err = _add(cli_settings, "ivan", stdin=io.StringIO(stdin))
    assert code == 1
    assert problem in err
    assert out == ""
    assert _on_store(cli_settings, lambda s: s.list()) == ()


def test_cli_add_refuses_duplicates_and_bad_logins(cli_settings: Settings) -> None:
    assert _add(cli_settings, "ivan", stdin=io.StringIO(PASSWORD))[0] == 0
    code, _, err = _add(cli_settings, "IVAN", stdin=io.StringIO(OTHER_PASSWORD))
    assert code == 1
    assert "already exists" in err
    code, _, err = _add(cli_settings, "bad login", stdin=io.StringIO(PASSWORD))
    assert code == 1
    assert "login" in err
    assert _on_store(cli_settings, lambda s: s.verify("ivan", PASSWORD)) is not None


def test_cli_add_on_a_terminal_asks_twice(cli_settings: Settings) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = _parse("operators", "add", "ivan")
    code = cmd_add(args, cli_settings, stdin=Terminal(), stdout=out, stderr=err,
                   getpass_fn=_answers(PASSWORD, PASSWORD + "!"))  # fmt: skip
    assert code == 1
    assert "do not match" in err.getvalue()
    code = cmd_add(args, cli_settings, stdin=Terminal(), stdout=out, stderr=err,
                   getpass_fn=_answers(PASSWORD, PASSWORD))  # fmt: skip
    assert code == 0
    assert _on_store(cli_settings, lambda s: s.verify("ivan", PASSWORD)) is not None


def test_cli_password_is_never_an_argument() -> None:
    with pytest.raises(SystemExit):
        _parse("operators", "add", "ivan", "--password", PASSWORD)


def test_cli_list(cli_settings: Settings) -> None:
    out = io.StringIO()
    assert cmd_list(_parse("operators", "list"), cli_settings, stdout=out) == 0
    assert "no operators yet" in out.getvalue()
    _add(cli_settings, "ivan", "--name", "Иван", stdin=io.StringIO(PASSWORD))
    _add(cli_settings, "anna", "--departments", "sales", stdin=io.StringIO(PASSWORD))
    out = io.StringIO()
    assert cmd_list(_parse("operators", "list"), cli_settings, stdout=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["LOGIN", "NAME", "ROLE", "DEPARTMENTS", "MAX", "CHATS", "STATUS"]
    assert lines[1].split() == ["anna", "anna", "operator", "sales", "3", "active"]
    assert lines[2].split() == ["ivan", "Иван", "operator", "general", "3", "active"]
    out = io.StringIO()
    assert cmd_list(_parse("operators", "list", "--json"), cli_settings, stdout=out) == 0
    assert '"login": "anna"' in out.getvalue().splitlines()[0]
    assert PASSWORD not in out.getvalue()
    assert "scrypt" not in out.getvalue()


def test_cli_passwd_disable_enable_remove(cli_settings: Settings) -> None:
    _add(cli_settings, "ivan", stdin=io.StringIO(PASSWORD))
    token, _ = _on_store(cli_settings, lambda s: s.create_session("ivan"))
    out, err = io.StringIO(), io.StringIO()

    args = _parse("operators", "passwd", "ivan")
    code = cmd_passwd(args, cli_settings, stdin=io.StringIO(OTHER_PASSWORD + "\n"), stdout=out,
                      stderr=err)  # fmt: skip
    assert code == 0, err.getvalue()
    assert _on_store(cli_settings, lambda s: s.session(token)) is None
    assert _on_store(cli_settings, lambda s: s.verify("ivan", OTHER_PASSWORD)) is not None

    assert cmd_disable(_parse("operators", "disable", "ivan"), cli_settings, stdout=out) == 0
    assert _on_store(cli_settings, lambda s: s.verify("ivan", OTHER_PASSWORD)) is None
    out = io.StringIO()
    cmd_list(_parse("operators", "list"), cli_settings, stdout=out)
    assert "disabled" in out.getvalue()
    assert cmd_enable(_parse("operators", "enable", "ivan"), cli_settings, stdout=out) == 0
    assert _on_store(cli_settings, lambda s: s.verify("ivan", OTHER_PASSWORD)) is not None

    assert cmd_remove(_parse("operators", "remove", "ivan"), cli_settings, stdout=out) == 0
    assert _on_store(cli_settings, lambda s: s.get("ivan")) is None


@pytest.mark.parametrize("command", ["passwd", "disable", "enable", "remove"])
def test_cli_unknown_login_is_an_error(cli_settings: Settings, command: str) -> None:
    err = io.StringIO()
    functions = {"passwd": cmd_passwd, "disable": cmd_disable, "enable": cmd_enable,
                 "remove": cmd_remove}  # fmt: skip
    kwargs: dict[str, Any] = {"stdout": io.StringIO(), "stderr": err}
    if command == "passwd":
        kwargs["stdin"] = io.StringIO(PASSWORD)
    code = functions[command](_parse("operators", command, "nobody"), cli_settings, **kwargs)
    assert code == 1
    assert "no operator 'nobody'" in err.getvalue()


def test_registered_commands_use_bot_var_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_VAR_DIR", str(tmp_path / "env-var"))
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    args = _parse("operators", "add", "ivan", "--departments", "billing")
    assert args.func(args) == 0
    assert (tmp_path / "env-var" / "operators.sqlite3").exists()
    list_args = _parse("operators", "list")
    assert list_args.func(list_args) == 0
    assert "ivan" in capsys.readouterr().out
