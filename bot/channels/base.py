"""What a messenger adapter is: it verifies and parses platform traffic into ``Inbound`` and
sends rendered replies back. It knows nothing of intents, flows or the store's tables.

Adding a channel = one adapter module implementing ``Channel``, one line in
``bot/channels/registry.py``, its settings, its tests and payload fixtures.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from aiohttp import web

from bot.models import FileRef, RenderedButton


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can show; the outbox degrades replies to fit (``bot/channels/fit.py``)."""

    max_text: int  # characters in one message
    buttons: bool = True  # suggested answers the customer can press
    max_buttons: int = 10
    max_button_title: int = 40
    location_request: bool = False  # a "send my location" button


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One platform message, already fitted to the channel."""

    chat_id: str
    text: str
    buttons: tuple[RenderedButton, ...]
    idempotency_key: str  # stable across retries: derived from our own outbox id
    # Files to send with (after) the text; each adapter sends what its platform takes and a
    # link or a note for the rest (``bot/channels/files.py``).
    attachments: tuple[FileRef, ...] = ()


class SendError(Exception):
    """A send failed. ``retry_after`` (seconds) when the platform said when to try again;
    ``permanent`` when retrying cannot help (the customer blocked the bot, a bad request)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Platform rate limits the outbox keeps to (messages per second)."""

    per_chat: float
    overall: float


class Channel(abc.ABC):
    name: str
    capabilities: Capabilities
    rate_limit: RateLimit

    @abc.abstractmethod
    def routes(self, app: web.Application) -> None:
        """Register webhook routes (authenticity is checked before anything else)."""

    async def start(self) -> None:  # noqa: B027 - optional: long polling, set-up calls
        """Begin background work once the application runs."""

    @abc.abstractmethod
    async def send(self, message: OutboundMessage) -> str | None:
        """Deliver one message; the platform's message id. Raises ``SendError``."""

    async def stop_intake(self) -> None:  # noqa: B027 - optional: long polling, sockets
        """Shutting down: take no new updates (long polling stops fetching, live sockets are
        closed so their pages reconnect elsewhere); sending goes on until ``close``."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Stop background work and release clients."""
