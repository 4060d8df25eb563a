"""Files customers send in messengers, fetched from the platform and kept in our file store.

A webhook only records the message (with the platform's handle of the file: a Telegram
``file_id``, a VK or Viber URL) and answers; the ingress calls the channel's fetcher in the
background before the message reaches the dialog (``Ingress.add_preparer``), so a slow file
server never delays the acknowledgement a platform waits for. Each attachment then carries the
stored ``FileRef`` (``Attachment.file``), or why it was not stored (``Attachment.problem``):

- ``too_large``: above the limit of its kind (``LIMITS``), judged by the size the platform
  declared and again while reading, so a lying header cannot fill the disk;
- ``type``: the bytes are none of the types we take (``sniff``: images, PDF, office documents,
  video, voice), whatever the name or the server's Content-Type says;
- ``unavailable``: the platform did not hand it over (after a few tries).

A problem is never an error: the message goes on to the dialog, which tells the customer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import replace
from urllib.parse import urlsplit

import aiohttp

from bot.models import Attachment, Inbound
from bot.storage.files import FileStore

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Per kind of what the customer sent: a photo of a router or a receipt is a few megabytes, a
# scanned contract a few more, a short video of blinking lights tens. Telegram's Bot API hands
# bots files up to 20 MB at all, so that is the document limit everywhere.
IMAGE_LIMIT = 10 * MB
DOCUMENT_LIMIT = 20 * MB
MEDIA_LIMIT = 50 * MB
LIMITS: dict[str, int] = {
    "image": IMAGE_LIMIT,
    "document": DOCUMENT_LIMIT,
    "video": MEDIA_LIMIT,
    "audio": DOCUMENT_LIMIT,
}
# The platforms' attachment kinds, as the kind of file they are (for the limit); kinds not
# listed (stickers, links, wall posts, graffiti) are not files a customer means to give us.
KIND_OF: dict[str, str] = {
    "photo": "image",  # Telegram, VK
    "picture": "image",  # Viber
    "image": "image",  # the widget
    "document": "document",  # Telegram
    "doc": "document",  # VK
    "file": "document",  # Viber
    "animation": "video",
    "video": "video",
    "video_note": "video",
    "voice": "audio",
    "audio": "audio",
    "audio_message": "audio",  # VK voice message
}
ATTEMPTS = 3
TIMEOUT = 60.0  # one download, whole; a platform slower than this is tried again later
CHUNK = 64 * 1024

Fetch = Callable[[Attachment, int], Awaitable[bytes]]


class TooLarge(Exception):
    """The file is above the limit of its kind (declared or read)."""


class Unavailable(Exception):
    """The platform did not hand over the file."""


# --- what the bytes are ----------------------------------------------------------------------

_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
    (b"%PDF-", "application/pdf", "pdf"),
    (b"OggS", "audio/ogg", "ogg"),
    (b"ID3", "audio/mpeg", "mp3"),
)
# Office documents are ZIP files; which one is told by the name (the bytes would need unzipping).
_ZIP = b"PK\x03\x04"
_OFFICE: dict[str, str] = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
}
# Images a browser may show inline (the operator console): everything else is a download.
SAFE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def sniff(head: bytes, name: str | None = None) -> tuple[str, str] | None:
    """(content type, extension) of a file we take, from its first bytes; None otherwise."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "webp"
    if head[4:8] == b"ftyp":  # ISO media: mp4, mov, 3gp (phones' videos)
        brand = head[8:12]
        return ("video/quicktime", "mov") if brand == b"qt  " else ("video/mp4", "mp4")
    for signature, content_type, ext in _SIGNATURES:
        if head.startswith(signature):
            return content_type, ext
    if head.startswith(_ZIP) and name:
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if ext in _OFFICE:
            return _OFFICE[ext], ext
    return None


def file_name(attachment: Attachment, ext: str) -> str:
    """The name to keep: the customer's own, else the kind with the extension of the bytes."""
    if attachment.name:
        return attachment.name
    return f"{attachment.kind}.{ext}"


def limit_of(attachment: Attachment) -> int | None:
    """The size limit of the attachment's kind; None for kinds we do not fetch."""
    kind = KIND_OF.get(attachment.kind)
    return None if kind is None else LIMITS[kind]


# --- fetching -------------------------------------------------------------------------------


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, or ``TooLarge`` as soon as it passes ``limit``."""
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise TooLarge
    return bytes(data)


def host_allowed(url: str, hosts: Collection[str]) -> bool:
    """Only http(s) URLs on the platform's own hosts (or subdomains) are fetched: the URL comes
    from an authenticated webhook, and this keeps a forged or odd one from making us fetch
    from anywhere else (our own network included)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return False
    return any(host == h or host.endswith("." + h) for h in hosts)


class UrlFetcher:
    """Downloads from platform URLs (VK, Viber) with one aiohttp session per channel."""

    def __init__(self, hosts: Collection[str]) -> None:
        self.hosts = frozenset(h.lower() for h in hosts if h)
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, attachment: Attachment, limit: int) -> bytes:
        url = attachment.url
        if not url or not host_allowed(url, self.hosts):
            raise Unavailable("no URL on the platform's hosts")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT))
        try:
            async with self._session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise Unavailable(f"HTTP {response.status}")
                declared = response.content_length
                if declared is not None and declared > limit:
                    raise TooLarge
                return await read_limited(response.content.iter_chunked(CHUNK), limit)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(type(exc).__name__) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class InboundFiles:
    """Fetches an inbound's attachments through ``fetch`` and keeps them in ``files``."""

    def __init__(self, files: FileStore, fetch: Fetch, *, retry_seconds: float = 1.0) -> None:
        self._files = files
        self._fetch = fetch
        self._retry_seconds = retry_seconds

    async def prepare(self, inbound: Inbound) -> Inbound:
        """The inbound with each attachment stored or its problem named (never raises)."""
        if not inbound.attachments:
            return inbound
        done = tuple([await self._one(a) for a in inbound.attachments])
        return replace(inbound, attachments=done)

    async def _one(self, attachment: Attachment) -> Attachment:
        limit = limit_of(attachment)
        if limit is None or attachment.file is not None or attachment.problem is not None:
            return attachment  # not a file we take, or already decided (a retried turn)
        if attachment.size is not None and attachment.size > limit:
            return replace(attachment, problem="too_large")
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with asyncio.timeout(TIMEOUT):
                    data = await self._fetch(attachment, limit)
                break
            except TooLarge:
                return replace(attachment, problem="too_large")
            except (Unavailable, TimeoutError) as exc:
                # No URL in the log: VK and Viber URLs are the file's only protection.
                log.warning("inbound file (%s) not fetched, try %d: %s", attachment.kind,
                            attempt, exc or type(exc).__name__)  # fmt: skip
                if attempt == ATTEMPTS:
                    return replace(attachment, problem="unavailable")
                await asyncio.sleep(self._retry_seconds * attempt)
        detected = sniff(data[:64], attachment.name)
        if detected is None:
            return replace(attachment, problem="type")
        content_type, ext = detected
        ref = await self._files.put(data, file_name(attachment, ext), content_type)
        return replace(attachment, file=ref)
