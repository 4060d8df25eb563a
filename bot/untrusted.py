"""The boundary where outside text and JSON enter: every channel, the REST API, the widget and
the operator API go through here before anything is stored or understood.

- Text: lone surrogates (which SQLite and UTF-8 cannot hold) become U+FFFD, control characters
  other than tab and newline are dropped, and the length is capped at the channel's real limit
  (a platform never sends more; anything longer is somebody testing us).
- JSON: the size is checked before parsing and the nesting depth right after it, so a ``[[[[…``
  bomb is refused with a clear error instead of a ``RecursionError`` deep in a handler.
- Numbers from query strings: parsed into a bounded range, never an ``OverflowError`` later.

Every function here is linear in its input and raises ``UntrustedInput`` (a ``ValueError``) with
a message fit for a 400 response.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import replace
from typing import Any

from bot.models import Attachment, Contact, Inbound

# The longest text each door accepts, in characters: what the platform itself allows a user to
# send (Telegram and VK 4096, Viber 7000, MAX 4000); our own doors (widget, REST, the operator
# console) take a Telegram message's worth.
TEXT_LIMITS: dict[str, int] = {
    "telegram": 4096,
    "vk": 4096,
    "viber": 7000,
    "max": 4000,
    "widget": 4096,
    "rest": 4096,
    "operator": 4096,
}
DEFAULT_TEXT_LIMIT = 4096
SHORT_TEXT_LIMIT = 256  # names, payloads, file names, logins
MAX_JSON_DEPTH = 32  # the deepest payload any platform sends us is about 8 levels
MAX_JSON_BYTES = 1024**2

_SURROGATES = re.compile("[\ud800-\udfff]")
# C0 controls but tab and newline, DEL, C1 controls; carriage returns are folded into newlines.
# Also the bidirectional embeddings, overrides and isolates (U+202A-202E, U+2066-2069): no
# customer needs them, and they make text shown to an operator read other than it is
# ("Trojan Source"); the plain marks U+200E/U+200F stay.
_DROPPED = dict.fromkeys(
    [c for c in range(0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
    + [0xFFFE, 0xFFFF]
)


class UntrustedInput(ValueError):
    """Outside input we refuse; the message says why and is safe to show the sender."""


def clean_text(value: str, limit: int = DEFAULT_TEXT_LIMIT) -> str:
    """``value`` safe to store and process: valid code points, no control characters, NFC,
    at most ``limit`` characters (cut, not refused: a webhook must still be answered)."""
    if len(value) > limit * 4:  # do the work below on a bounded slice, not on a megabyte
        value = value[: limit * 4]
    value = _SURROGATES.sub("\ufffd", value)
    value = value.replace("\r\n", "\n").replace("\r", "\n").translate(_DROPPED)
    value = unicodedata.normalize("NFC", value)
    return value[:limit]


def clean_optional(value: str | None, limit: int = DEFAULT_TEXT_LIMIT) -> str | None:
    return None if value is None else clean_text(value, limit)


def text_limit(channel: str) -> int:
    return TEXT_LIMITS.get(channel, DEFAULT_TEXT_LIMIT)


def clean_inbound(inbound: Inbound) -> Inbound:
    """Every customer-written field of ``inbound`` cleaned; the same object when nothing changes
    (the common case costs one pass over the text)."""
    limit = text_limit(inbound.key.channel)
    text = clean_optional(inbound.text, limit)
    payload = clean_optional(inbound.payload, SHORT_TEXT_LIMIT * 4)
    locale = clean_optional(inbound.locale, 16)
    contact = inbound.contact
    if contact is not None:
        contact = Contact(
            phone=clean_text(contact.phone, 32),
            verified=contact.verified,
            name=clean_optional(contact.name, SHORT_TEXT_LIMIT),
        )
    attachments = tuple(
        replace(a, name=clean_optional(a.name, SHORT_TEXT_LIMIT)) if a.name else a
        for a in inbound.attachments
    )
    if (
        text == inbound.text
        and payload == inbound.payload
        and locale == inbound.locale
        and contact == inbound.contact
        and all(a is b for a, b in zip(attachments, inbound.attachments, strict=True))
    ):
        return inbound
    return replace(
        inbound,
        text=text,
        payload=payload,
        locale=locale,
        contact=contact,
        attachments=tuple[Attachment, ...](attachments),
    )


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """The nesting depth of parsed JSON ``value``, counting stops past ``limit``. Iterative, so
    measuring a deep value cannot itself overflow the stack, and it visits each node once."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def loads(
    raw: bytes | str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """Parse outside JSON within bounds; ``UntrustedInput`` for anything else."""
    if len(raw) > max_bytes:
        raise UntrustedInput(f"the body is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise UntrustedInput("the body is not UTF-8") from None
    try:
        # The C parser refuses nesting past the interpreter's recursion limit after as many
        # steps as there are levels; what it accepts is then held to our own, smaller limit.
        value = json.loads(text)
    except RecursionError:
        raise UntrustedInput(f"the JSON is nested deeper than {max_depth} levels") from None
    except ValueError:
        raise UntrustedInput("the body is not valid JSON") from None
    if json_depth(value, max_depth) > max_depth:
        raise UntrustedInput(f"the JSON is nested deeper than {max_depth} levels")
    return value


def bounded_int(raw: str | None, *, default: int, lowest: int, highest: int, name: str) -> int:
    """A whole number from a query string, refused unless ``lowest <= n <= highest``."""
    if raw is None or raw == "":
        return default
    if len(raw) > 24:
        raise UntrustedInput(f"'{name}' must be a whole number from {lowest} to {highest}")
    try:
        value = int(raw)
    except ValueError:
        raise UntrustedInput(f"'{name}' must be a whole number") from None
    if not lowest <= value <= highest:
        raise UntrustedInput(f"'{name}' must be a whole number from {lowest} to {highest}")
    return value
