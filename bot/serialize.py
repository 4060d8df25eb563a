"""JSON forms of the core models, for the durable inbox and outbox."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.models import (
    Attachment,
    Contact,
    ConversationKey,
    FileRef,
    Inbound,
    Location,
    RenderedButton,
)


def inbound_to_json(inbound: Inbound) -> dict[str, Any]:
    return {
        "key": [inbound.key.channel, inbound.key.chat_id, inbound.key.user_id],
        "message_id": inbound.message_id,
        "kind": inbound.kind,
        "text": inbound.text,
        "payload": inbound.payload,
        "location": (
            None
            if inbound.location is None
            else {"lat": inbound.location.lat, "lon": inbound.location.lon}
        ),
        "attachments": [_attachment_to_json(a) for a in inbound.attachments],
        "contact": (
            None
            if inbound.contact is None
            else {
                "phone": inbound.contact.phone,
                "verified": inbound.contact.verified,
                "name": inbound.contact.name,
            }
        ),
        "locale": inbound.locale,
        "raw": dict(inbound.raw),
        "received_at": inbound.received_at.isoformat() if inbound.received_at else None,
    }


def inbound_from_json(data: dict[str, Any]) -> Inbound:
    channel, chat_id, user_id = data["key"]
    location = data.get("location")
    received = data.get("received_at")
    contact = data.get("contact")
    return Inbound(
        key=ConversationKey(channel, chat_id, user_id),
        message_id=data["message_id"],
        kind=data["kind"],
        text=data.get("text"),
        payload=data.get("payload"),
        location=None if location is None else Location(location["lat"], location["lon"]),
        attachments=tuple(_attachment_from_json(a) for a in data.get("attachments", [])),
        contact=(
            None
            if contact is None
            else Contact(contact["phone"], bool(contact.get("verified")), contact.get("name"))
        ),
        locale=data.get("locale"),
        raw=data.get("raw") or {},
        received_at=datetime.fromisoformat(received) if received else None,
    )


def _attachment_to_json(a: Attachment) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": a.kind, "url": a.url, "name": a.name}
    # The platform's handle and size are kept with the inbox row: the file is fetched after the
    # webhook was answered, possibly after a restart.
    if a.ref is not None:
        data["ref"] = a.ref
    if a.size is not None:
        data["size"] = a.size
    if a.file is not None:
        data["file"] = files_to_json((a.file,))[0]
    if a.problem is not None:
        data["problem"] = a.problem
    return data


def _attachment_from_json(data: Mapping[str, Any]) -> Attachment:
    size = data.get("size")
    files = files_from_json([data["file"]]) if isinstance(data.get("file"), Mapping) else ()
    return Attachment(
        str(data["kind"]),
        data.get("url"),
        data.get("name"),
        ref=data.get("ref"),
        size=size if isinstance(size, int) else None,
        file=files[0] if files else None,
        problem=data.get("problem"),
    )


def buttons_to_json(buttons: tuple[RenderedButton, ...]) -> list[dict[str, str]]:
    return [{"title": b.title, "payload": b.payload} for b in buttons]


def buttons_from_json(data: list[dict[str, str]]) -> tuple[RenderedButton, ...]:
    return tuple(RenderedButton(b["title"], b["payload"]) for b in data)


def files_to_json(refs: tuple[FileRef, ...]) -> list[dict[str, Any]]:
    return [
        {"file_id": r.file_id, "name": r.name, "content_type": r.content_type, "size": r.size}
        for r in refs
    ]


def files_from_json(data: Any) -> tuple[FileRef, ...]:
    """Files from their JSON form; tolerant of rows written before files existed (None) and of
    an entry without its four fields (it is left out: a transcript must still be readable)."""
    if not isinstance(data, list):
        return ()
    return tuple(ref for ref in map(_file_from_json, data) if ref is not None)


def _file_from_json(f: Any) -> FileRef | None:
    if not isinstance(f, Mapping):
        return None
    size = f.get("size")
    names = (f.get("file_id"), f.get("name"), f.get("content_type"))
    if not all(isinstance(n, str) for n in names) or not isinstance(size, int):
        return None
    return FileRef(str(names[0]), str(names[1]), str(names[2]), size)


def attachments_of(meta: Mapping[str, Any] | None) -> tuple[FileRef, ...]:
    """The files a transcript line carried (kept in its meta under ``attachments``)."""
    return files_from_json((meta or {}).get("attachments"))
