"""Serving files sent to customers over HTTP, and the signed public links some platforms need.

Viber sends a file by URL (its servers fetch it), and a file above a platform's upload limit is
sent as a link: both need an address that works without our credentials. ``GET
/files/{file_id}/{token}`` is that address; the token is ``<expiry>.<HMAC>`` over the id and the
expiry, so a link cannot be made for another file, nor kept working past its expiry.

The HMAC key is random, made once per installation and kept in ``var/files/link.key`` (mode
0600): nothing to configure, and deleting the file revokes every link given out. With
``REDIS_URL`` (or the Sentinels) several processes on several machines serve the same files, so
the key lives in Redis instead (``isp-bot:{files}:link-key``, made with SET NX by the first
process, read by every one): a link signed by one process opens on any other. Deleting that key
revokes every link once the processes restart.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import redis
from aiohttp import web
from redis.sentinel import Sentinel

from bot.config import Settings
from bot.models import FileRef
from bot.storage.files import FileStore
from bot.storage.redis.client import COMMAND_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS
from bot.storage.redis.keys import global_key

PUBLIC_PATH = "/files"
LINK_TTL = 7 * 24 * 3600.0  # long enough for a customer to open a link a few days later
KEY_FILE = "link.key"
SHARED_KEY = global_key("files", "link-key")
KEY_BYTES = 32


def files_folder(settings: Settings) -> Path:
    return settings.var_dir / "files"


def load_link_key(folder: Path) -> bytes:
    """The installation's link key, created on first use (two processes racing agree: the
    loser of the exclusive create reads the winner's key)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / KEY_FILE
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise RuntimeError(f"{path} is truncated: delete it to make a new one")
    return key


def load_shared_link_key(client: redis.Redis) -> bytes:
    """The key every process of the installation shares, created on first use: SET NX of a
    random key, then GET, so processes racing at start-up all read the one that won."""
    client.set(SHARED_KEY, secrets.token_bytes(KEY_BYTES), nx=True)
    key = client.get(SHARED_KEY)
    if not isinstance(key, bytes) or len(key) < KEY_BYTES:
        raise RuntimeError(f"Redis key {SHARED_KEY} is not a link key: delete it to make a new one")
    return key


def link_key(settings: Settings) -> bytes:
    """From Redis when the processes share one, else from ``var/files``. Read once at start-up
    with a short-lived blocking client (signing and verifying stay synchronous and need no
    Redis afterwards); a Redis that cannot be reached then stops the start with its error."""
    client: redis.Redis
    options = {
        "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "socket_timeout": COMMAND_TIMEOUT_SECONDS,
    }
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, **options)
    elif settings.redis_sentinels and settings.redis_sentinel_master:
        # redis-py leaves Sentinel's constructor unannotated.
        sentinel = Sentinel(list(settings.redis_sentinels), sentinel_kwargs=options, **options)  # type: ignore[no-untyped-call]
        client = sentinel.master_for(settings.redis_sentinel_master, redis_class=redis.Redis)  # type: ignore[no-untyped-call]
    else:
        return load_link_key(files_folder(settings))
    with client:
        return load_shared_link_key(client)


@dataclass(frozen=True, slots=True)
class FileLinks:
    """Signed, expiring public links to stored files; ``public_url`` None means the gateway
    has no public address (BOT_PUBLIC_URL unset) and no link can be given."""

    key: bytes
    public_url: str | None
    ttl: float = LINK_TTL

    @classmethod
    def from_settings(cls, settings: Settings) -> FileLinks:
        public = settings.public_url.rstrip("/") if settings.public_url else None
        return cls(link_key(settings), public)

    def token(self, file_id: str, expires: int) -> str:
        mac = hmac.new(self.key, f"{file_id}.{expires}".encode(), hashlib.sha256).digest()
        return f"{expires}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def verify(self, file_id: str, token: str, *, now: float | None = None) -> bool:
        expires_text, _, _ = token.partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12:
            return False
        expires = int(expires_text)
        if expires < (time.time() if now is None else now):
            return False
        return hmac.compare_digest(token.encode(), self.token(file_id, expires).encode())

    def public(self, file_id: str, *, now: float | None = None) -> str | None:
        if self.public_url is None:
            return None
        expires = int((time.time() if now is None else now) + self.ttl)
        return f"{self.public_url}{PUBLIC_PATH}/{file_id}/{self.token(file_id, expires)}"


def file_response(ref: FileRef, data: bytes) -> web.Response:
    """The bytes as a download under their own name, never rendered by the browser."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in ref.name)
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(ref.name)}"
    return web.Response(
        body=data,
        headers={
            "Content-Type": ref.content_type,
            "Content-Disposition": disposition,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


def add_public_file_route(app: web.Application, files: FileStore, links: FileLinks) -> None:
    async def public_file(request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        # The same answer for a bad token and a missing file: no probing for ids.
        if not links.verify(file_id, request.match_info["token"]):
            raise web.HTTPNotFound()
        found = await files.get(file_id)
        if found is None:
            raise web.HTTPNotFound()
        return file_response(*found)

    app.router.add_get(PUBLIC_PATH + "/{file_id}/{token}", public_file)
