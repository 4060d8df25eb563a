"""Operator accounts: who may log into the console, their passwords, sessions and login throttling.

Passwords are hashed with scrypt (memory-hard, in the standard library); sessions are random
tokens of which only a SHA-256 is stored, so a leaked database opens no console. The
``python -m bot operators …`` commands at the bottom manage the accounts.

Login throttling slows guessing down without letting a guesser lock the real operator out:
failures are counted per (login, address), per address and per login, each with a few free
failures and then delays that double (1 s, 2 s, 4 s … up to 15 minutes) from the last failure.
The login-wide count only delays addresses that have themselves failed on that login, so the
operator's first attempt from their own machine always reaches the password check, however
many failures an attacker piled up elsewhere. The counters live with the accounts (the SQLite
file, or with REDIS_URL the shared Redis: ``bot.handoff.redis_operators``), kept across
restarts and updated atomically with the attempt, which is why this is hand-written rather than
the ``limits`` library: that counts hits in windows, not growing delays since the last failure,
and its storages do not live with our accounts.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import sys
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar, cast

from redis.asyncio import Redis

from bot.config import Settings
from bot.storage.health import StoreHealth
from bot.storage.redis.client import connect_from_settings
from bot.storage.sqlite_db import SqliteDb

T = TypeVar("T")

Role = Literal["operator", "supervisor"]
ROLES: tuple[Role, ...] = ("operator", "supervisor")

MIN_PASSWORD_LENGTH = 10
# Hashing megabytes of "password" is a cheap way to make a login request expensive.
MAX_PASSWORD_LENGTH = 1024

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
# n=2**14, r=8 needs 16 MiB; OpenSSL's default ceiling is 32 MiB, and a stored hash with bigger
# parameters (a future upgrade) must still verify.
_SCRYPT_MAXMEM = 256 * 1024 * 1024
_MAX_N = 2**20

_LOGIN_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_DEPARTMENT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# Unknown logins are throttled too (so a 429 does not reveal which logins exist); the key is
# bounded so a flood of long junk logins cannot bloat the table.
_THROTTLE_KEY_LENGTH = 128


class OperatorError(ValueError):
    """A request the account store refuses: a duplicate login, an unknown one, a weak password."""


class LoginThrottled(Exception):
    """Too many failed logins for this login or from this address; retry after ``retry_after`` s.

    ``scope`` says which count it was: ``login_address``, ``address`` or ``login``."""

    def __init__(self, retry_after: float, scope: str = "login_address") -> None:
        super().__init__(f"too many failed login attempts; retry in {retry_after:.0f} s")
        self.retry_after = retry_after
        self.scope = scope


LoginReason = Literal["ok", "wrong_password", "unknown_login", "disabled"]


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a login attempt came to; ``operator`` only when ``reason`` is ``ok``. ``known`` says
    the login names an account (the audit may then write it as given)."""

    operator: Operator | None
    reason: LoginReason
    login: str
    known: bool


@dataclass(frozen=True, slots=True)
class Operator:
    login: str
    name: str
    departments: tuple[str, ...] = ("general",)
    max_chats: int = 3
    role: Role = "operator"
    disabled: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "name": self.name,
            "departments": list(self.departments),
            "max_chats": self.max_chats,
            "role": self.role,
        }


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Free failures per count within ``window`` seconds; past them, the next attempt waits
    ``first_delay`` doubled for every further failure (at most ``max_delay``) after the last
    failure. Attempts refused while waiting are not failures: they do not lengthen the wait."""

    free_per_login_address: int = 3  # a typo or two, then the caps-lock key
    free_per_address: int = 10  # one address trying many logins
    free_per_login: int = 20  # many addresses trying one login; delays only those that failed
    first_delay: float = 1.0
    max_delay: float = 15 * 60
    window: float = 24 * 3600  # longer than max_delay, or a patient guesser never slows down

    def delay(self, failures: int, free: int) -> float:
        """The wait after the last of ``failures`` failures, when ``free`` are free."""
        if failures < free:
            return 0.0
        # The exponent is bounded: 2.0 ** 2000 is an OverflowError, not a big number.
        return min(self.max_delay, self.first_delay * 2.0 ** min(failures - free, 40))


# --- passwords ---------------------------------------------------------------------------
def normalize_login(login: str) -> str:
    return login.strip().lower()


def validate_login(login: str) -> str:
    normalized = normalize_login(login)
    if not _LOGIN_RE.fullmatch(normalized):
        raise OperatorError(
            f"login {login!r}: use 1-64 latin letters, digits and . _ @ - (starting with a letter "
            "or digit)"
        )
    return normalized


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise OperatorError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long")
    if not password.strip():
        raise OperatorError("the password must not be blank")


def _password_bytes(password: str) -> bytes:
    # The same password typed on two keyboards can differ in Unicode composition (NIST 800-63B).
    # A lone surrogate (only ever sent by someone probing us) is encoded as is rather than
    # raising: such a password cannot be set, so it simply never matches.
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$n$r$p$salt_hex$hash_hex`` with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(
        _password_bytes(password), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=_KEY_BYTES
    )
    return f"scrypt${n}${r}${p}${salt.hex()}${key.hex()}"


def check_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against a ``hash_password`` string."""
    try:
        scheme, n_s, r_s, p_s, salt_hex, key_hex = encoded.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(key_hex)
    except ValueError:
        return False
    if scheme != "scrypt" or not (2 <= n <= _MAX_N and 1 <= r <= 32 and 1 <= p <= 16):
        return False  # a damaged row must not make us allocate gigabytes
    if len(password) > MAX_PASSWORD_LENGTH or not expected:
        return False
    key = hashlib.scrypt(
        _password_bytes(password), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM,
        dklen=len(expected),
    )  # fmt: skip
    return hmac.compare_digest(key, expected)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _throttle_key(login: str) -> str:
    # Lone surrogates cannot be stored in SQLite; no real login has them.
    key = normalize_login(login[: _THROTTLE_KEY_LENGTH * 2])[:_THROTTLE_KEY_LENGTH]
    return key.encode("utf-8", "replace").decode("utf-8")


def _failure_key(key: str) -> str:
    """How a login is kept among the failures: a digest, as the login field is also where
    people type their password by mistake, and failures are kept for a day."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def token_digest(token: str) -> str:
    """The stored form of a session token (and the key ``on_sessions_ended`` reports)."""
    return _token_digest(token)


SessionsEndedListener = Callable[[str | None, str | None], None]


# --- the store ---------------------------------------------------------------------------
class OperatorStore(ABC):
    """Operator accounts and console sessions.

    Implementations provide storage primitives; the login check itself lives here, so every
    backend is equally constant-time and equally throttled.
    """

    def __init__(
        self,
        *,
        session_ttl: float = 12 * 3600,
        session_max_age: float = 7 * 24 * 3600,
        throttle: ThrottlePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session_ttl = session_ttl  # sliding: every use extends the session by this much
        self.session_max_age = session_max_age  # absolute: then the operator logs in again
        self.throttle = throttle or ThrottlePolicy()
        self._clock = clock
        self._dummy_hash: str | None = None
        self._ended_listeners: list[SessionsEndedListener] = []

    def on_sessions_ended(self, listener: SessionsEndedListener) -> Callable[[], None]:
        """Call ``listener(login, token_digest)`` whenever this process ends sessions: one
        session (``token_digest``) or every session of ``login``. Returns the unsubscriber.
        Sessions ended by another process (the CLI) are not heard here; open sockets re-check
        the store for those (``bot.handoff.auth.SessionSockets``)."""
        self._ended_listeners.append(listener)
        return lambda: self._ended_listeners.remove(listener)

    def _sessions_ended(self, *, login: str | None = None, digest: str | None = None) -> None:
        for listener in tuple(self._ended_listeners):
            listener(login, digest)

    # accounts
    @abstractmethod
    async def add(self, operator: Operator, password: str) -> Operator:
        """Create an account; ``OperatorError`` if the login is taken or the password is weak."""

    @abstractmethod
    async def get(self, login: str) -> Operator | None: ...

    @abstractmethod
    async def list(self) -> tuple[Operator, ...]: ...

    @abstractmethod
    async def update(self, operator: Operator) -> Operator:
        """Change name, departments, max chats or role; ``OperatorError`` if unknown."""

    @abstractmethod
    async def set_password(self, login: str, password: str) -> None:
        """Replace the password and end every session of the operator."""

    @abstractmethod
    async def set_disabled(self, login: str, disabled: bool) -> Operator:
        """Disabling also ends every session of the operator."""

    async def disable(self, login: str) -> Operator:
        return await self.set_disabled(login, True)

    async def enable(self, login: str) -> Operator:
        return await self.set_disabled(login, False)

    @abstractmethod
    async def remove(self, login: str) -> None:
        """Delete the account and its sessions; ``OperatorError`` if unknown."""

    # sessions
    @abstractmethod
    async def create_session(self, login: str) -> tuple[str, str]:
        """A new session: ``(token, csrf_token)``. Only a digest of the token is stored."""

    @abstractmethod
    async def session(self, token: str, *, touch: bool = True) -> tuple[Operator, str] | None:
        """The operator and CSRF token of a live session (extending it unless ``touch`` is
        false: an open socket re-checking is not the operator using the console), else None."""

    @abstractmethod
    async def delete_session(self, token: str) -> None: ...

    @abstractmethod
    async def delete_sessions(self, login: str) -> int:
        """End every session of ``login``; returns how many there were."""

    @abstractmethod
    async def close(self) -> None: ...

    # login
    async def verify(self, login: str, password: str, *, ip: str | None = None) -> Operator | None:
        """The operator if the credentials are right and the account is enabled, else None.
        Raises ``LoginThrottled`` like ``attempt``."""
        return (await self.attempt(login, password, ip=ip)).operator

    async def attempt(self, login: str, password: str, *, ip: str | None = None) -> LoginResult:
        """Check a login, saying why it failed (for the audit, never for the client).

        Takes one scrypt computation whether or not the login exists. Raises ``LoginThrottled``
        (before looking at the password) while this address must wait (see ``ThrottlePolicy``).
        """
        key = _throttle_key(login)
        address = (ip or "unknown")[:64]
        now = self._clock()
        wait, scope = await self._begin_attempt(_failure_key(key), address, now)
        if wait > 0:
            raise LoginThrottled(wait, scope)
        found = await self._credentials(key)
        encoded = found[1] if found is not None else await self._dummy()
        ok = await asyncio.to_thread(check_password, password, encoded)
        if found is None:
            return LoginResult(None, "unknown_login", key, known=False)
        if not ok:
            return LoginResult(None, "wrong_password", key, known=True)
        if found[0].disabled:
            return LoginResult(None, "disabled", key, known=True)
        await self._attempt_succeeded(_failure_key(key), address)
        return LoginResult(found[0], "ok", key, known=True)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(hash_password, secrets.token_hex(16))
        return self._dummy_hash

    @abstractmethod
    async def _begin_attempt(self, key: str, ip: str, now: float) -> tuple[float, str]:
        """Atomically: if this attempt must wait (``ThrottlePolicy``), return the seconds and
        the scope that says so; otherwise count it as a failure and return ``(0, "")``.
        Counting before the check means parallel guesses cannot slip past the limit."""

    @abstractmethod
    async def _attempt_succeeded(self, key: str, ip: str) -> None:
        """Forget the failures of ``key`` from ``ip`` (the attempt's own included); failures
        from other addresses stay: a success here must not reset a guesser elsewhere."""

    @abstractmethod
    async def _credentials(self, key: str) -> tuple[Operator, str] | None:
        """The operator and their password hash."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS operators (
    login TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    departments TEXT NOT NULL,       -- JSON list
    max_chats INTEGER NOT NULL,
    role TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    password_changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS operator_sessions (
    token_sha256 TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS operator_sessions_by_login ON operator_sessions (login);
CREATE TABLE IF NOT EXISTS login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL,
    ip TEXT,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_by_login ON login_failures (login, at);
CREATE INDEX IF NOT EXISTS login_failures_by_ip ON login_failures (ip, at);
CREATE INDEX IF NOT EXISTS login_failures_by_at ON login_failures (at);
CREATE INDEX IF NOT EXISTS login_failures_by_pair ON login_failures (login, ip, at);
-- Lockouts of earlier versions (a fixed 15 minutes for everyone): replaced by growing delays.
DROP TABLE IF EXISTS login_lockouts;
"""

_OPERATOR_COLUMNS = "login, name, departments, max_chats, role, disabled"


def _operator(row: tuple[Any, ...]) -> Operator:
    login, name, departments, max_chats, role, disabled = row[:6]
    return Operator(
        login=login,
        name=name,
        departments=tuple(json.loads(departments)),
        max_chats=int(max_chats),
        role=cast(Role, role),
        disabled=bool(disabled),
    )


def _checked(operator: Operator) -> Operator:
    login = validate_login(operator.login)
    name = operator.name.strip() or login
    departments = tuple(dict.fromkeys(d.strip().lower() for d in operator.departments))
    for department in departments:
        if not _DEPARTMENT_RE.fullmatch(department):
            raise OperatorError(f"department {department!r}: use latin letters, digits, _ and -")
    if not departments:
        raise OperatorError("an operator needs at least one department")
    if not 1 <= operator.max_chats <= 100:
        raise OperatorError("max chats must be between 1 and 100")
    if operator.role not in ROLES:
        raise OperatorError(f"role must be one of {', '.join(ROLES)}")
    return Operator(login, name, departments, operator.max_chats, operator.role, operator.disabled)


def _unknown(login: str) -> OperatorError:
    return OperatorError(f"no operator {login!r}")


def default_operators_path(settings: Settings) -> Path:
    return settings.var_dir / "operators.sqlite3"


class SqliteOperatorStore(OperatorStore):
    """Accounts in their own SQLite file (default ``var/operators.sqlite3``), readable by the
    owner only; calls run on one worker thread like ``bot.storage.sqlite.SqliteStore``."""

    def __init__(
        self,
        path: Path,
        *,
        session_ttl: float = 12 * 3600,
        session_max_age: float = 7 * 24 * 3600,
        throttle: ThrottlePolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            session_ttl=session_ttl, session_max_age=session_max_age, throttle=throttle, clock=clock
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # password hashes are nobody else's business
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._path = path
        self._db = SqliteDb(path, schema=_SCHEMA, thread_name="operator-store")
        self._run = self._db.run
        self._transaction = self._db.transaction

    # accounts
    async def add(self, operator: Operator, password: str) -> Operator:
        operator = _checked(operator)
        validate_password(password)
        encoded = await asyncio.to_thread(hash_password, password)
        now = self._clock()

        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "INSERT OR IGNORE INTO operators (login, name, departments, max_chats, role,"
                " disabled, password_hash, created_at, password_changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    operator.login, operator.name, json.dumps(list(operator.departments)),
                    operator.max_chats, operator.role, int(operator.disabled), encoded, now, now,
                ),
            )  # fmt: skip
            return cur.rowcount == 1

        if not await self._run(q):
            raise OperatorError(f"operator {operator.login!r} already exists")
        return operator

    async def get(self, login: str) -> Operator | None:
        key = normalize_login(login)
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_OPERATOR_COLUMNS} FROM operators WHERE login = ?",  # noqa: S608
                (key,),
            ).fetchone()
        )
        return None if row is None else _operator(row)

    async def list(self) -> tuple[Operator, ...]:
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {_OPERATOR_COLUMNS} FROM operators ORDER BY login"  # noqa: S608
            ).fetchall()
        )
        return tuple(_operator(r) for r in rows)

    async def update(self, operator: Operator) -> Operator:
        operator = _checked(operator)

        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE operators SET name = ?, departments = ?, max_chats = ?, role = ?"
                " WHERE login = ?",
                (operator.name, json.dumps(list(operator.departments)), operator.max_chats,
                 operator.role, operator.login),
            )  # fmt: skip
            return cur.rowcount == 1

        if not await self._run(q):
            raise _unknown(operator.login)
        current = await self.get(operator.login)
        assert current is not None
        return current

    async def set_password(self, login: str, password: str) -> None:
        validate_password(password)
        key = normalize_login(login)
        encoded = await asyncio.to_thread(hash_password, password)
        now = self._clock()

        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE operators SET password_hash = ?, password_changed_at = ? WHERE login = ?",
                (encoded, now, key),
            )
            db.execute("DELETE FROM operator_sessions WHERE login = ?", (key,))
            db.execute("DELETE FROM login_failures WHERE login = ?", (_failure_key(key),))
            return cur.rowcount == 1

        changed = await self._transaction(q)
        self._sessions_ended(login=key)
        if not changed:
            raise _unknown(login)

    async def set_disabled(self, login: str, disabled: bool) -> Operator:
        key = normalize_login(login)

        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE operators SET disabled = ? WHERE login = ?", (int(disabled), key)
            )
            if disabled:
                db.execute("DELETE FROM operator_sessions WHERE login = ?", (key,))
            return cur.rowcount == 1

        changed = await self._transaction(q)
        if disabled:
            self._sessions_ended(login=key)
        if not changed:
            raise _unknown(login)
        operator = await self.get(key)
        assert operator is not None
        return operator

    async def remove(self, login: str) -> None:
        key = normalize_login(login)

        def q(db: sqlite3.Connection) -> bool:
            cur = db.execute("DELETE FROM operators WHERE login = ?", (key,))
            db.execute("DELETE FROM operator_sessions WHERE login = ?", (key,))
            return cur.rowcount == 1

        removed = await self._transaction(q)
        self._sessions_ended(login=key)
        if not removed:
            raise _unknown(login)

    # sessions
    async def create_session(self, login: str) -> tuple[str, str]:
        key = normalize_login(login)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._clock()

        def q(db: sqlite3.Connection) -> bool:
            found = db.execute(
                "SELECT 1 FROM operators WHERE login = ? AND disabled = 0", (key,)
            ).fetchone()
            if found is None:
                return False
            db.execute(
                "DELETE FROM operator_sessions WHERE expires_at <= ? OR created_at <= ?",
                (now, now - self.session_max_age),
            )
            db.execute(
                "INSERT INTO operator_sessions (token_sha256, login, csrf_token, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?)",
                (_token_digest(token), key, csrf, now, now + self.session_ttl),
            )
            return True

        if not await self._transaction(q):
            raise _unknown(login)
        return token, csrf

    async def session(self, token: str, *, touch: bool = True) -> tuple[Operator, str] | None:
        digest = _token_digest(token)
        now = self._clock()
        expires = now + self.session_ttl

        def q(db: sqlite3.Connection) -> tuple[Any, ...] | None:
            row = db.execute(
                "SELECT s.created_at, s.expires_at, s.csrf_token,"
                " o.login, o.name, o.departments, o.max_chats, o.role, o.disabled"
                " FROM operator_sessions s JOIN operators o ON o.login = s.login"
                " WHERE s.token_sha256 = ?",
                (digest,),
            ).fetchone()
            if row is None:
                return None
            created_at, expires_at = row[0], row[1]
            if expires_at <= now or created_at <= now - self.session_max_age or row[8]:
                db.execute("DELETE FROM operator_sessions WHERE token_sha256 = ?", (digest,))
                return None
            if touch and expires - expires_at >= 60:  # slide, but not on every request
                db.execute(
                    "UPDATE operator_sessions SET expires_at = ? WHERE token_sha256 = ?",
                    (expires, digest),
                )
            return cast("tuple[Any, ...]", row)

        row = await self._run(q)
        if row is None:
            return None
        return _operator(row[3:]), row[2]

    async def delete_session(self, token: str) -> None:
        digest = _token_digest(token)
        await self._run(
            lambda db: db.execute("DELETE FROM operator_sessions WHERE token_sha256 = ?", (digest,))
        )
        self._sessions_ended(digest=digest)

    async def delete_sessions(self, login: str) -> int:
        key = normalize_login(login)
        ended: int = await self._run(
            lambda db: db.execute("DELETE FROM operator_sessions WHERE login = ?", (key,)).rowcount
        )
        self._sessions_ended(login=key)
        return ended

    # login throttling
    async def _begin_attempt(self, key: str, ip: str, now: float) -> tuple[float, str]:
        policy = self.throttle

        def counted(db: sqlite3.Connection, where: str, args: tuple[str, ...]) -> tuple[int, float]:
            count, last = db.execute(
                f"SELECT COUNT(*), MAX(at) FROM login_failures WHERE {where}",  # noqa: S608
                args,
            ).fetchone()
            return int(count), float(last or 0.0)

        def q(db: sqlite3.Connection) -> tuple[float, str]:
            db.execute("DELETE FROM login_failures WHERE at <= ?", (now - policy.window,))
            pair = counted(db, "login = ? AND ip = ?", (key, ip))
            checks = [
                ("login_address", pair, policy.free_per_login_address),
                ("address", counted(db, "ip = ?", (ip,)), policy.free_per_address),
            ]
            if pair[0] > 0:  # a fresh address always reaches the password check
                checks.append(("login", counted(db, "login = ?", (key,)), policy.free_per_login))
            waits = [
                (last + policy.delay(count, free) - now, scope)
                for scope, (count, last), free in checks
            ]
            wait, scope = max(waits)
            if wait > 0:
                return wait, scope
            db.execute(
                "INSERT INTO login_failures (login, ip, at) VALUES (?, ?, ?)", (key, ip, now)
            )
            return 0.0, ""

        return await self._transaction(q)

    async def _attempt_succeeded(self, key: str, ip: str) -> None:
        await self._run(
            lambda db: db.execute(
                "DELETE FROM login_failures WHERE login = ? AND ip = ?", (key, ip)
            )
        )

    async def _credentials(self, key: str) -> tuple[Operator, str] | None:
        row = await self._run(
            lambda db: db.execute(
                f"SELECT {_OPERATOR_COLUMNS}, password_hash FROM operators"  # noqa: S608
                " WHERE login = ?",
                (key,),
            ).fetchone()
        )
        return None if row is None else (_operator(row), row[6])

    async def close(self) -> None:
        await self._db.close()


# --- python -m bot operators … ------------------------------------------------------------
GetPass = Callable[[str], str]


def read_password(stdin: TextIO, *, getpass_fn: GetPass = getpass.getpass) -> str:
    """The new password: asked twice on a terminal, else the first line of stdin (never argv,
    where every user of the machine can read it in the process list)."""
    if stdin.isatty():
        first = getpass_fn("Password: ")
        second = getpass_fn("Repeat the password: ")
        if first != second:
            raise OperatorError("the passwords do not match")
        password = first
    else:
        line = stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not line:
            raise OperatorError("no password on stdin (send it as the first line)")
    validate_password(password)
    return password


def _departments(raw: str) -> tuple[str, ...]:
    return tuple(d.strip() for d in raw.split(",") if d.strip())


def open_operator_store(
    settings: Settings, redis: Redis | None = None, *, health: StoreHealth | None = None
) -> OperatorStore:
    """The accounts every part of the gateway (and these commands) uses: with ``redis`` (the
    gateway's shared client: REDIS_URL or Sentinel) the shared Redis, else the SQLite file."""
    if redis is not None:
        from bot.handoff.redis_operators import RedisOperatorStore  # imports this module

        return RedisOperatorStore(redis, health=health)
    return SqliteOperatorStore(default_operators_path(settings))


def _with_store(settings: Settings, work: Callable[[OperatorStore], Coroutine[Any, Any, T]]) -> T:
    async def go() -> T:
        # The same choice as the gateway's: with REDIS_URL an account added here can log in on
        # every gateway process, and a disabled one is refused by all of them at once.
        redis = connect_from_settings(settings)
        store = open_operator_store(settings, redis)
        try:
            return await work(store)
        finally:
            await store.close()
            if redis is not None:
                await redis.aclose()

    return asyncio.run(go())


def _fail(stderr: TextIO, exc: Exception) -> int:
    print(f"error: {exc}", file=stderr)
    return 1


def _describe(operator: Operator) -> str:
    return (
        f"{operator.login} ({operator.name}): {operator.role}, "
        f"departments {', '.join(operator.departments)}, up to {operator.max_chats} chats"
        + (", DISABLED" if operator.disabled else "")
    )


def cmd_add(
    args: argparse.Namespace,
    settings: Settings,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    getpass_fn: GetPass = getpass.getpass,
) -> int:
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    try:
        operator = _checked(
            Operator(
                login=args.login,
                name=args.name or "",
                departments=_departments(args.departments),
                max_chats=args.max_chats,
                role="supervisor" if args.supervisor else "operator",
            )
        )
        password = read_password(stdin, getpass_fn=getpass_fn)
        added = _with_store(settings, lambda store: store.add(operator, password))
    except OperatorError as exc:
        return _fail(stderr, exc)
    print(f"added {_describe(added)}", file=stdout)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings, *, stdout: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    operators = _with_store(settings, lambda store: store.list())
    if getattr(args, "json", False):
        for op in operators:
            print(json.dumps({**op.as_json(), "disabled": op.disabled}, ensure_ascii=False),
                  file=stdout)  # fmt: skip
        return 0
    if not operators:
        print("no operators yet; add one with: python -m bot operators add LOGIN", file=stdout)
        return 0
    rows = [("LOGIN", "NAME", "ROLE", "DEPARTMENTS", "MAX CHATS", "STATUS")]
    rows += [
        (op.login, op.name, op.role, ",".join(op.departments), str(op.max_chats),
         "disabled" if op.disabled else "active")
        for op in operators
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(),
              file=stdout)  # fmt: skip
    return 0


def cmd_passwd(
    args: argparse.Namespace,
    settings: Settings,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    getpass_fn: GetPass = getpass.getpass,
) -> int:
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    try:
        if _with_store(settings, lambda store: store.get(args.login)) is None:
            raise _unknown(args.login)  # before asking for a password that would be wasted
        password = read_password(stdin, getpass_fn=getpass_fn)
        _with_store(settings, lambda store: store.set_password(args.login, password))
    except OperatorError as exc:
        return _fail(stderr, exc)
    print(f"password of {normalize_login(args.login)} changed; their sessions ended", file=stdout)
    return 0


def _simple(
    action: Callable[[OperatorStore, str], Awaitable[object]], done: str
) -> Callable[..., int]:
    def command(
        args: argparse.Namespace,
        settings: Settings,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> int:
        async def work(store: OperatorStore) -> None:
            await action(store, args.login)

        try:
            _with_store(settings, work)
        except OperatorError as exc:
            return _fail(stderr or sys.stderr, exc)
        print(done.format(login=normalize_login(args.login)), file=stdout or sys.stdout)
        return 0

    return command


cmd_disable = _simple(lambda s, login: s.disable(login), "{login} disabled; their sessions ended")
cmd_enable = _simple(lambda s, login: s.enable(login), "{login} enabled")
cmd_remove = _simple(lambda s, login: s.remove(login), "{login} removed")


def _bound(command: Callable[..., int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return command(args, Settings.from_env())

    return run


def add_operator_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``operators add|list|passwd|disable|enable|remove`` on the top-level parser."""
    ops = subparsers.add_parser(
        "operators",
        help="manage operator console accounts",
        description="Operator console accounts, stored in $BOT_VAR_DIR/operators.sqlite3, or in "
        "REDIS_URL's Redis when set (the gateway's processes share them there). "
        "Passwords are read from stdin (first line) or asked twice on a terminal.",
    )
    sub = ops.add_subparsers(dest="operators_command", required=True)

    add = sub.add_parser("add", help="create an account; the password comes from stdin")
    add.add_argument("login")
    add.add_argument("--name", help="shown to customers and colleagues (default: the login)")
    add.add_argument(
        "--departments", default="general", help="comma-separated, e.g. billing,technical"
    )
    add.add_argument("--max-chats", type=int, default=3, help="simultaneous conversations")
    add.add_argument("--supervisor", action="store_true", help="may see and reassign all chats")
    add.set_defaults(func=_bound(cmd_add))

    ls = sub.add_parser("list", help="show the accounts")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_bound(cmd_list))

    for name, command, what in (
        ("passwd", cmd_passwd, "set a new password (from stdin); ends their sessions"),
        ("disable", cmd_disable, "refuse logins and end their sessions"),
        ("enable", cmd_enable, "allow logins again"),
        ("remove", cmd_remove, "delete the account"),
    ):
        parser = sub.add_parser(name, help=what)
        parser.add_argument("login")
        parser.set_defaults(func=_bound(command))
