"""Operator accounts, console sessions and login throttling in Redis, shared by every gateway
process (REDIS_URL): a session made in one process is valid in all of them at once, and a
logout, a disabled account or a new password ends it in all of them at once (every request
reads Redis; open console sockets elsewhere hear of it at once, see below).

Behaves exactly like ``SqliteOperatorStore`` (the login check and its throttling policy live in
``OperatorStore``; this is storage). Every key carries the ``{operators}`` hash tag, so each
multi-key step is one Lua script in one Redis Cluster slot. Scripts that derive further keys
(a login's sessions, an address's failures) build them with the same tag: still one slot.

Keys (``P`` = ``isp-bot:{operators}``):

- ``P:op:<login>`` hash: name, departments (JSON), max_chats, role, disabled, password_hash,
  created_at, password_changed_at; ``P:logins`` set of every login.
- ``P:session:<sha256 of the token>`` hash: login, csrf, created_at, expires_at; the token
  itself is never stored (as in SQLite). Expires in Redis when the session can no longer be
  valid; the times inside decide (the injected clock), Redis' TTL only collects garbage.
  ``P:sessions:<login>`` set of a login's session digests (ending them all).
- Failed logins, like SQLite's ``login_failures`` rows: sorted sets scored by the time of the
  failure, one per (login digest, address), per address and per login digest, holding the same
  members (``<seq>:<address>``) so a success or a new password removes exactly those rows from
  every count. ``P:failseq`` numbers the members.

Ending sessions is also announced on ``P:sessions-ended`` (pub/sub: origin, login or token
digest, never a token), so console sockets open in other processes close at once; a message
lost while Redis is unreachable leaves them to their periodic re-check of the session.

Redis failing (refused, timeout, OOM, a read-only replica) raises ``StoreUnavailable`` through
``RedisCalls`` and is reported to the gateway's store health: a login or console call answers
503 (the app's middleware), ``/healthz`` fails, and it all works again when Redis does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.handoff.operators import (
    Operator,
    OperatorError,
    OperatorStore,
    Role,
    SessionsEndedListener,
    ThrottlePolicy,
    _checked,
    _failure_key,
    _token_digest,
    _unknown,
    hash_password,
    normalize_login,
    validate_password,
)
from bot.pubsub import Subscriber
from bot.storage.health import StoreHealth
from bot.storage.redis.client import RedisCalls
from bot.storage.redis.keys import global_key

T = TypeVar("T")
log = logging.getLogger(__name__)

AREA = "operators"
_FIELDS = ("name", "departments", "max_chats", "role", "disabled")

# KEYS: operator, logins. ARGV: login, then field/value pairs.
_ADD = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
redis.call('hset', KEYS[1], unpack(ARGV, 2))
redis.call('sadd', KEYS[2], ARGV[1])
return 1
"""

# KEYS: operator. ARGV: field/value pairs.
_UPDATE = """
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hset', KEYS[1], unpack(ARGV))
return 1
"""

# Shared by the scripts below: end every session of a login (its set lists the digests).
_END_SESSIONS = """
local function end_sessions(prefix, set)
  local ended = 0
  for _, digest in ipairs(redis.call('smembers', set)) do
    ended = ended + redis.call('del', prefix .. ':session:' .. digest)
  end
  redis.call('del', set)
  return ended
end
"""

# KEYS: sessions of the login. ARGV: prefix.
_DELETE_SESSIONS = (
    _END_SESSIONS
    + """
return end_sessions(ARGV[1], KEYS[1])
"""
)

# KEYS: operator, sessions of the login, failures of the login digest.
# ARGV: prefix, password hash, now, login digest.
# Like SQLite: the sessions and the failures go whether or not the account exists.
_SET_PASSWORD = (
    _END_SESSIONS
    + """
local changed = 0
if redis.call('exists', KEYS[1]) == 1 then
  redis.call('hset', KEYS[1], 'password_hash', ARGV[2], 'password_changed_at', ARGV[3])
  changed = 1
end
end_sessions(ARGV[1], KEYS[2])
for _, member in ipairs(redis.call('zrange', KEYS[3], 0, -1)) do
  local ip = string.sub(member, string.find(member, ':', 1, true) + 1)
  redis.call('zrem', ARGV[1] .. ':fail:ip:' .. ip, member)
  redis.call('del', ARGV[1] .. ':fail:pair:' .. ARGV[4] .. ':' .. ip)
end
redis.call('del', KEYS[3])
return changed
"""
)

# KEYS: operator, sessions of the login. ARGV: prefix, disabled (0/1).
_SET_DISABLED = (
    _END_SESSIONS
    + """
if ARGV[2] == '1' then end_sessions(ARGV[1], KEYS[2]) end
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hset', KEYS[1], 'disabled', ARGV[2])
return 1
"""
)

# KEYS: operator, logins, sessions of the login. ARGV: prefix, login.
_REMOVE = (
    _END_SESSIONS
    + """
local removed = redis.call('del', KEYS[1])
redis.call('srem', KEYS[2], ARGV[2])
end_sessions(ARGV[1], KEYS[3])
return removed
"""
)

# KEYS: operator, sessions of the login, the new session.
# ARGV: prefix, login, csrf, now, ttl, max_age, digest, expires_at (times as Python's repr: exact
# doubles; Lua's tostring would keep only 14 digits).
# Sessions of the login that have ended are dropped on the way (SQLite drops every ended one).
_CREATE_SESSION = """
local found = redis.call('hget', KEYS[1], 'disabled')
if not found or found ~= '0' then return 0 end
local now, ttl, max_age = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for _, digest in ipairs(redis.call('smembers', KEYS[2])) do
  local key = ARGV[1] .. ':session:' .. digest
  local times = redis.call('hmget', key, 'created_at', 'expires_at')
  if not times[1] or tonumber(times[2]) <= now or tonumber(times[1]) <= now - max_age then
    redis.call('del', key)
    redis.call('srem', KEYS[2], digest)
  end
end
redis.call('hset', KEYS[3], 'login', ARGV[2], 'csrf', ARGV[3], 'created_at', ARGV[4],
           'expires_at', ARGV[8])
redis.call('pexpire', KEYS[3], math.ceil(math.min(ttl, max_age) * 1000))
redis.call('sadd', KEYS[2], ARGV[7])
redis.call('pexpire', KEYS[2], math.ceil(max_age * 1000))
return 1
"""

# KEYS: the session. ARGV: prefix, now, ttl, max_age, touch (0/1), digest, now + ttl.
# Returns nil, or {csrf, login, name, departments, max_chats, role, disabled}.
_SESSION = """
local s = redis.call('hmget', KEYS[1], 'login', 'csrf', 'created_at', 'expires_at')
if not s[1] then return nil end
local op_key = ARGV[1] .. ':op:' .. s[1]
local op = redis.call('hmget', op_key, 'name', 'departments', 'max_chats', 'role', 'disabled')
if not op[1] then return nil end  -- removed meanwhile: SQLite's join finds no row either
local now, ttl, max_age = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local created, expires = tonumber(s[3]), tonumber(s[4])
if expires <= now or created <= now - max_age or op[5] ~= '0' then
  redis.call('del', KEYS[1])
  redis.call('srem', ARGV[1] .. ':sessions:' .. s[1], ARGV[6])
  return nil
end
local slid = tonumber(ARGV[7])
if ARGV[5] == '1' and slid - expires >= 60 then  -- slide, but not on every request
  redis.call('hset', KEYS[1], 'expires_at', ARGV[7])
  local left = math.min(slid, created + max_age) - now
  redis.call('pexpire', KEYS[1], math.max(1, math.ceil(left * 1000)))
end
return {s[2], s[1], op[1], op[2], op[3], op[4], op[5]}
"""

# KEYS: failures of (login, address), of the address, of the login; the member counter.
# ARGV: now, window, free per pair, per address, per login, first delay, max delay, address.
# Counts before the password check, atomically: parallel guesses cannot slip past the limit.
# Returns {counted (0/1), pair n, pair last, address n, address last, login n, login last}
# with the times as Redis' own score strings (exact doubles); login n is -1 when the login-wide
# count was not consulted (a fresh address always reaches the password check).
_BEGIN_ATTEMPT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local first, most = tonumber(ARGV[6]), tonumber(ARGV[7])
local function counted(key)
  redis.call('zremrangebyscore', key, '-inf', now - window)
  local n = redis.call('zcard', key)
  if n == 0 then return 0, '0' end
  return n, redis.call('zrange', key, -1, -1, 'WITHSCORES')[2]
end
local function wait(n, last, free)
  if n < free then return 0 end  -- free: no wait, whatever the clocks of other processes say
  return tonumber(last) + math.min(most, first * 2 ^ math.min(n - free, 40)) - now
end
local pn, pl = counted(KEYS[1])
local an, al = counted(KEYS[2])
local ln, ll = -1, '0'
local longest = math.max(wait(pn, pl, tonumber(ARGV[3])), wait(an, al, tonumber(ARGV[4])))
if pn > 0 then
  ln, ll = counted(KEYS[3])
  longest = math.max(longest, wait(ln, ll, tonumber(ARGV[5])))
end
if longest > 0 then return {0, pn, pl, an, al, ln, ll} end
local member = redis.call('incr', KEYS[4]) .. ':' .. ARGV[8]
local keep = math.ceil(window * 1000)
for i = 1, 3 do
  redis.call('zadd', KEYS[i], ARGV[1], member)
  redis.call('pexpire', KEYS[i], keep)
end
return {1, pn, pl, an, al, ln, ll}
"""

# KEYS: failures of (login, address), of the address, of the login.
_ATTEMPT_SUCCEEDED = """
local members = redis.call('zrange', KEYS[1], 0, -1)
for i = 1, #members, 1000 do
  local chunk = {unpack(members, i, math.min(i + 999, #members))}
  redis.call('zrem', KEYS[2], unpack(chunk))
  redis.call('zrem', KEYS[3], unpack(chunk))
end
redis.call('del', KEYS[1])
return #members
"""


def _text(value: bytes | str | None) -> str:
    assert value is not None  # a field every record has
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _safe(part: str) -> str:
    """A key part from untrusted text: lone surrogates (only ever sent by a prober) cannot be
    encoded; no real login or address has them, so replacing them loses nothing."""
    return part.encode("utf-8", "replace").decode("utf-8")


def _operator_from(login: str, values: Sequence[bytes | str | None]) -> Operator:
    name, departments, max_chats, role, disabled = (_text(v) for v in values[:5])
    return Operator(
        login=login,
        name=name,
        departments=tuple(json.loads(departments)),
        max_chats=int(max_chats),
        role=cast(Role, role),
        disabled=disabled != "0",
    )


class RedisOperatorStore(OperatorStore):
    """Accounts and sessions in the shared Redis; ``redis`` is the gateway's one client (not
    closed here: ``Services.close`` closes it last)."""

    def __init__(
        self,
        redis: Redis,
        *,
        health: StoreHealth | None = None,
        session_ttl: float = 12 * 3600,
        session_max_age: float = 7 * 24 * 3600,
        throttle: ThrottlePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            session_ttl=session_ttl, session_max_age=session_max_age, throttle=throttle, clock=clock
        )
        self._redis = redis
        self._calls = RedisCalls(health or StoreHealth())
        self._prefix = global_key(AREA)
        self._add = redis.register_script(_ADD)
        self._update = redis.register_script(_UPDATE)
        self._set_password = redis.register_script(_SET_PASSWORD)
        self._set_disabled = redis.register_script(_SET_DISABLED)
        self._remove = redis.register_script(_REMOVE)
        self._create_session = redis.register_script(_CREATE_SESSION)
        self._session = redis.register_script(_SESSION)
        self._delete_sessions = redis.register_script(_DELETE_SESSIONS)
        self._begin = redis.register_script(_BEGIN_ATTEMPT)
        self._succeeded = redis.register_script(_ATTEMPT_SUCCEEDED)
        # Sessions ended by any process (the CLI included) are announced on one channel, so
        # open console sockets everywhere close at once rather than at their next re-check.
        self._origin = secrets.token_hex(8)
        self._channel = self._key("sessions-ended")
        self._subscriber = Subscriber(redis, self._heard, name="operator sessions")
        self._listening: asyncio.Task[None] | None = None

    # keys
    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def _op(self, login: str) -> str:
        return self._key("op", _safe(login))

    def _sessions(self, login: str) -> str:
        return self._key("sessions", _safe(login))

    def _failures(self, kind: str, *parts: str) -> str:
        return self._key("fail", kind, *(_safe(p) for p in parts))

    async def _run(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        self._listen()
        return await self._calls.run(op, call)

    # sessions ended elsewhere
    def on_sessions_ended(self, listener: SessionsEndedListener) -> Callable[[], None]:
        unsubscribe = super().on_sessions_ended(listener)
        with contextlib.suppress(RuntimeError):  # no loop yet: the first store call starts it
            self._listen()
        return unsubscribe

    def _listen(self) -> None:
        if self._listening is None and self._ended_listeners:
            self._listening = asyncio.get_running_loop().create_task(
                self.listen(), name="operator sessions subscribe"
            )

    async def listen(self) -> None:
        """Hear sessions other processes end (started by itself once someone listens in this
        process); returns once Redis confirmed the subscription."""
        await self._subscriber.add(self._channel)

    async def _ended(self, *, login: str | None = None, digest: str | None = None) -> None:
        """Tell this process's listeners, then the other processes (best effort: a message
        lost while Redis is unreachable leaves their sockets to the periodic re-check)."""
        self._sessions_ended(login=login, digest=digest)
        message = json.dumps({"origin": self._origin, "login": login, "digest": digest})
        try:
            await self._redis.publish(self._channel, message)
        except (RedisError, OSError) as exc:
            log.warning("operator sessions: announcing an ended session failed (%s)",
                        type(exc).__name__)  # fmt: skip

    async def _heard(self, channel: str, data: bytes) -> None:
        try:
            message = json.loads(data)
            origin, login, digest = message["origin"], message["login"], message["digest"]
        except (ValueError, KeyError, TypeError):
            log.warning("operator sessions: a malformed message ignored")
            return
        if origin != self._origin:
            self._sessions_ended(login=login, digest=digest)

    async def _script(self, op: str, script: Any, keys: list[str], args: list[Any]) -> Any:
        return await self._run(op, lambda: script(keys=keys, args=args))

    # accounts
    async def add(self, operator: Operator, password: str) -> Operator:
        operator = _checked(operator)
        validate_password(password)
        encoded = await asyncio.to_thread(hash_password, password)
        now = repr(self._clock())
        fields = {
            **self._profile(operator),
            "disabled": str(int(operator.disabled)),
            "password_hash": encoded,
            "created_at": now,
            "password_changed_at": now,
        }
        args = [operator.login, *(x for pair in fields.items() for x in pair)]
        keys = [self._op(operator.login), self._key("logins")]
        if not await self._script("add", self._add, keys, args):
            raise OperatorError(f"operator {operator.login!r} already exists")
        return operator

    @staticmethod
    def _profile(operator: Operator) -> dict[str, str]:
        return {
            "name": operator.name,
            "departments": json.dumps(list(operator.departments)),
            "max_chats": str(operator.max_chats),
            "role": operator.role,
        }

    async def get(self, login: str) -> Operator | None:
        key = normalize_login(login)
        values = await self._run("get", lambda: self._redis.hmget(self._op(key), _FIELDS))
        return None if values[0] is None else _operator_from(key, values)

    async def list(self) -> tuple[Operator, ...]:
        async def read() -> list[tuple[str, list[Any]]]:
            logins = sorted(_text(x) for x in await self._redis.smembers(self._key("logins")))
            async with self._redis.pipeline(transaction=True) as pipe:
                for login in logins:
                    pipe.hmget(self._op(login), _FIELDS)
                rows = await pipe.execute()
            return list(zip(logins, rows, strict=True))

        rows = await self._run("list", read)
        return tuple(_operator_from(login, row) for login, row in rows if row[0] is not None)

    async def update(self, operator: Operator) -> Operator:
        operator = _checked(operator)
        args = [x for pair in self._profile(operator).items() for x in pair]
        if not await self._script("update", self._update, [self._op(operator.login)], args):
            raise _unknown(operator.login)
        current = await self.get(operator.login)
        assert current is not None
        return current

    async def set_password(self, login: str, password: str) -> None:
        validate_password(password)
        key = normalize_login(login)
        encoded = await asyncio.to_thread(hash_password, password)
        digest = _failure_key(key)
        changed = await self._script(
            "set_password",
            self._set_password,
            [self._op(key), self._sessions(key), self._failures("login", digest)],
            [self._prefix, encoded, repr(self._clock()), digest],
        )
        await self._ended(login=key)
        if not changed:
            raise _unknown(login)

    async def set_disabled(self, login: str, disabled: bool) -> Operator:
        key = normalize_login(login)
        changed = await self._script(
            "set_disabled",
            self._set_disabled,
            [self._op(key), self._sessions(key)],
            [self._prefix, str(int(disabled))],
        )
        if disabled:
            await self._ended(login=key)
        if not changed:
            raise _unknown(login)
        operator = await self.get(key)
        assert operator is not None
        return operator

    async def remove(self, login: str) -> None:
        key = normalize_login(login)
        removed = await self._script(
            "remove",
            self._remove,
            [self._op(key), self._key("logins"), self._sessions(key)],
            [self._prefix, _safe(key)],
        )
        await self._ended(login=key)
        if not removed:
            raise _unknown(login)

    # sessions
    async def create_session(self, login: str) -> tuple[str, str]:
        key = normalize_login(login)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        digest = _token_digest(token)
        now = self._clock()
        created = await self._script(
            "create_session",
            self._create_session,
            [self._op(key), self._sessions(key), self._key("session", digest)],
            [self._prefix, _safe(key), csrf, repr(now), repr(self.session_ttl),
             repr(self.session_max_age), digest, repr(now + self.session_ttl)],
        )  # fmt: skip
        if not created:
            raise _unknown(login)
        return token, csrf

    async def session(self, token: str, *, touch: bool = True) -> tuple[Operator, str] | None:
        digest = _token_digest(token)
        now = self._clock()
        found = await self._script(
            "session",
            self._session,
            [self._key("session", digest)],
            [self._prefix, repr(now), repr(self.session_ttl), repr(self.session_max_age),
             str(int(touch)), digest, repr(now + self.session_ttl)],
        )  # fmt: skip
        if found is None:
            return None
        csrf, login, *profile = found
        return _operator_from(_text(login), profile), _text(csrf)

    async def delete_session(self, token: str) -> None:
        # The digest stays in the login's set until that set is next cleaned: harmless, its
        # session key is gone and nothing reads a session through the set.
        digest = _token_digest(token)
        await self._run("delete_session", lambda: self._redis.delete(self._key("session", digest)))
        await self._ended(digest=digest)

    async def delete_sessions(self, login: str) -> int:
        key = normalize_login(login)
        ended = await self._script(
            "delete_sessions", self._delete_sessions, [self._sessions(key)], [self._prefix]
        )
        await self._ended(login=key)
        return int(ended)

    # login throttling
    async def _begin_attempt(self, key: str, ip: str, now: float) -> tuple[float, str]:
        policy = self.throttle
        ip = _safe(ip)
        reply = await self._script(
            "begin_attempt",
            self._begin,
            [self._failures("pair", key, ip), self._failures("ip", ip),
             self._failures("login", key), self._key("failseq")],
            [repr(now), repr(policy.window), policy.free_per_login_address,
             policy.free_per_address, policy.free_per_login, repr(policy.first_delay),
             repr(policy.max_delay), ip],
        )  # fmt: skip
        counted, pair_n, pair_last, ip_n, ip_last, login_n, login_last = reply
        if counted:
            return 0.0, ""
        # The same arithmetic as SqliteOperatorStore on the counts the script saw, so the wait
        # and the scope (ties: the same max over (wait, scope)) are exactly SQLite's.
        checks = [
            ("login_address", int(pair_n), float(pair_last), policy.free_per_login_address),
            ("address", int(ip_n), float(ip_last), policy.free_per_address),
        ]
        if int(login_n) >= 0:
            checks.append(("login", int(login_n), float(login_last), policy.free_per_login))
        # Under the free count there is no wait at all: with several processes a failure may be
        # stamped a little later than this attempt's "now" (their clocks, the order of arrival).
        wait, scope = max(
            ((last + policy.delay(count, free) - now) if count >= free else 0.0, scope)
            for scope, count, last, free in checks
        )
        # The script refused to count it, so it saw a wait; a rounding difference must not turn
        # a refusal into an uncounted pass.
        return (wait if wait > 0 else math.ulp(now)), scope

    async def _attempt_succeeded(self, key: str, ip: str) -> None:
        ip = _safe(ip)
        await self._script(
            "attempt_succeeded",
            self._succeeded,
            [self._failures("pair", key, ip), self._failures("ip", ip),
             self._failures("login", key)],
            [],
        )  # fmt: skip

    async def _credentials(self, key: str) -> tuple[Operator, str] | None:
        values = await self._run(
            "credentials", lambda: self._redis.hmget(self._op(key), (*_FIELDS, "password_hash"))
        )
        if values[0] is None:
            return None
        return _operator_from(key, values), _text(values[5])

    async def close(self) -> None:
        """Stops listening; the Redis client itself is the gateway's (closed by it)."""
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._listening
        await self._subscriber.close()
