"""Serving files sent to customers over HTTP, and the signed public links some platforms need.

Viber sends a file by URL (its servers fetch it), and a file above a platform's upload limit is
sent as a link: both need an address that works without our credentials. ``GET
/files/{file_id}/{token}`` is that address; the token is ``<expiry>.<HMAC>`` over the id and the
expiry, so a link cannot be made for another file, nor kept working past its expiry.

The HMAC key is random, made once per installation and kept in ``var/files/link.key`` (mode
0600): nothing to configure, and deleting the file revokes every link given out.
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

from aiohttp import web

from bot.config import Settings
from bot.models import FileRef
from bot.storage.files import FileStore

PUBLIC_PATH = "/files"
LINK_TTL = 7 * 24 * 3600.0  # long enough for a customer to open a link a few days later
KEY_FILE = "link.key"


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
            handle.write(secrets.token_bytes(32))
    key = path.read_bytes()
    if len(key) < 32:
        raise RuntimeError(f"{path} is truncated: delete it to make a new one")
    return key


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
        return cls(load_link_key(files_folder(settings)), public)

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
