"""Files in transcripts, for operators: ``GET /api/v1/operator/files/{id}`` with an operator
session (the console links them under the message), and ``POST
/api/v1/operator/conversations/{id}/files`` to send a customer a file.

An operator reads every transcript, so any file in one: those the bot sent and those customers
sent. A customer's file is untrusted: it is served as a download, except an image of a type a
browser shows safely (PNG, JPEG, GIF, WebP) whose bytes are that type, which the console may
show inline. Every answer carries ``nosniff`` and a sandboxing CSP, so a file never runs as a
page of ours.
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from bot.channels.inbound_files import SAFE_IMAGES, sniff
from bot.files import file_response
from bot.handoff.auth import authorized
from bot.handoff.messages import FILES_PATH
from bot.http import json_response
from bot.models import FileRef
from bot.storage.files import FileStore, display_name

MB = 1024 * 1024
# The file store, for the operator API's upload route (set with the download route).
OPERATOR_FILES = web.AppKey("operator_files", FileStore)
# What an operator may send: what every channel delivers (Telegram and Viber take 50 MB; a
# customer's phone should not download more over a chat).
MAX_SEND = 20 * MB
CHUNK = 64 * 1024


class UploadRefused(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


def checked_type(ref: FileRef, data: bytes) -> str | None:
    """The content type the bytes really are, when they are one we know; None otherwise."""
    detected = sniff(data[:64], ref.name)
    return detected[0] if detected else None


def operator_file_response(ref: FileRef, data: bytes) -> web.Response:
    response = file_response(ref, data)
    actual = checked_type(ref, data)
    if actual in SAFE_IMAGES and actual == ref.content_type:
        # An image the console shows: inline, still nosniff and sandboxed (file_response).
        disposition = response.headers["Content-Disposition"]
        response.headers["Content-Disposition"] = disposition.replace("attachment", "inline", 1)
    elif actual != ref.content_type:
        # The stored type is not what the bytes are: hand them over as opaque bytes.
        response.headers["Content-Type"] = "application/octet-stream"
    return response


async def read_upload(request: web.Request) -> tuple[str, bytes, str]:
    """(name, bytes, content type) of the ``file`` part of a multipart upload: streamed, at most
    ``MAX_SEND`` bytes, and a type we know by its content (``sniff``), not by its name."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError):
        raise UploadRefused(400, "send multipart/form-data with a 'file' part") from None
    while True:
        part = await reader.next()
        if part is None:
            raise UploadRefused(400, "send multipart/form-data with a 'file' part")
        if not isinstance(part, BodyPartReader) or part.name != "file":
            await part.release()
            continue
        # Some clients (aiohttp, curl --form-string) percent-encode a non-ASCII name in the
        # quoted filename; browsers send it as UTF-8. Either way people read "ответ.pdf".
        name = display_name(unquote(part.filename or "file"))
        data = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            data += chunk
            if len(data) > MAX_SEND:
                raise UploadRefused(413, f"the file is larger than {MAX_SEND // MB} MB")
        detected = sniff(bytes(data[:64]), name)
        if detected is None:
            raise UploadRefused(415, "send a photo, a PDF or an office document")
        return name, bytes(data), detected[0]


def add_operator_file_routes(app: web.Application, files: FileStore) -> None:
    app[OPERATOR_FILES] = files

    async def operator_file(request: web.Request) -> web.Response:
        await authorized(request, write=False)
        found = await files.get(request.match_info["file_id"])
        if found is None:
            return json_response({"error": "no such file"}, status=404)
        return operator_file_response(*found)

    app.router.add_get(FILES_PATH + "/{file_id}", operator_file)
