"""A transcript line as the operator console sees it, in API answers and live events alike."""

from __future__ import annotations

from typing import Any

from bot.models import FileRef, TranscriptEntry
from bot.serialize import attachments_of

FILES_PATH = "/api/v1/operator/files"


def files_json(refs: tuple[FileRef, ...], base: str = FILES_PATH) -> list[dict[str, object]]:
    """Files as an API shows them: each downloaded from ``base``/id with that API's own
    credentials (the operator's session here, the REST token in the REST channel)."""
    return [
        {"name": f.name, "content_type": f.content_type, "size": f.size,
         "url": f"{base}/{f.file_id}"}
        for f in refs
    ]  # fmt: skip


def message_json(entry: TranscriptEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "from": entry.sender,
        "text": entry.text,
        "at": entry.at.isoformat(),
        "buttons": [{"title": b.title, "payload": b.payload} for b in entry.buttons],
        "attachments": files_json(attachments_of(entry.meta)),  # files sent to the customer
    }
