"""What the contract suites share: conversation keys, inbounds, files, and a clock step."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from bot.models import Attachment, Contact, ConversationKey, FileRef, Inbound, Location

ALICE = ConversationKey("telegram", "100", "100")
BOB = ConversationKey("vk", "200", "201")
CAROL = ConversationKey("viber", "c4r0l==", "c4r0l==")
DAN = ConversationKey("rest", "dan", "dan")

# Orders by time ("most recently active first", "oldest first") are only defined between
# things written at different instants. Stores stamp with the wall clock; stepping it this far
# between writes makes every backend's stamps differ (a millisecond resolution included), so
# the expected order follows from the test's own sequence, never from scheduling.
CLOCK_STEP_SECONDS = 0.005


async def tick() -> None:
    """Return only once the wall clock has moved ``CLOCK_STEP_SECONDS`` past the call."""
    start = time.time()
    while time.time() - start < CLOCK_STEP_SECONDS:
        await asyncio.sleep(CLOCK_STEP_SECONDS / 5)


def file_ref(n: int) -> FileRef:
    """A file as the file store names them: a 32-character URL-safe id."""
    return FileRef(
        f"{n:02d}" + "f1LeId_-" * 3 + "abcdef", f"счёт-{n}.pdf", "application/pdf", 1000 + n
    )


def text_inbound(key: ConversationKey, message_id: str, text: str = "привет") -> Inbound:
    return Inbound(key, message_id, "text", text=text, locale="ru")


def rich_inbound(key: ConversationKey) -> Inbound:
    """An inbound with every field set: what the inbox keeps must come back whole."""
    return Inbound(
        key=key,
        message_id="m-77",
        kind="attachment",
        text="фото роутера",
        payload="/router",
        location=Location(52.0333, 113.5),
        attachments=(
            Attachment(
                "photo", url="https://example.test/p.jpg", name="p.jpg", ref="AgAD", size=12
            ),
            Attachment("document", name="акт.pdf", file=file_ref(9)),
            Attachment("video", ref="BAAD", problem="too_large"),
        ),
        contact=Contact("+79140000002", verified=True, name="Анна"),
        locale="en",
        raw={"update_id": 77, "message": {"text": "фото роутера", "entities": [], "ok": True}},
        received_at=datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
    )
