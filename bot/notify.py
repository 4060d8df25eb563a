"""Sending one-time codes to the customer's phone or e-mail on file.

``Notifier`` is the interface a provider connects to its SMS gateway or mail server. The demo
``FileNotifier`` writes each message as a file into a local outbox folder (``var/notifications``)
and logs that it did, with the destination masked: nothing leaves the machine.
"""

from __future__ import annotations

import abc
import json
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


def mask_phone(phone: str) -> str:
    """+79141234567 -> +7 914 ***-**-67: enough to recognise, not enough to leak."""
    digits = phone[2:] if phone.startswith("+7") else phone
    if len(digits) != 10:
        return "***"
    return f"+7 {digits[:3]} ***-**-{digits[-2:]}"


def mask_email(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}" if domain else "***"


class Notifier(abc.ABC):
    @abc.abstractmethod
    async def send(self, *, kind: str, destination: str, text: str) -> None:
        """Deliver ``text`` by ``kind`` ("sms" or "email") to ``destination``."""


class FileNotifier(Notifier):
    def __init__(self, *, folder: Path) -> None:
        self._folder = folder

    async def send(self, *, kind: str, destination: str, text: str) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self._folder / f"{stamp}-{secrets.token_hex(4)}.{kind}.json"
        record = {"kind": kind, "to": destination, "text": text, "at": stamp}
        path.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        masked = mask_phone(destination) if kind == "sms" else mask_email(destination)
        log.info("notification (%s to %s) written to %s", kind, masked, path)
