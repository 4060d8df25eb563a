"""The messenger channels this gateway can run. A channel is on iff its settings are present.

Each entry builds its adapter from settings, or returns None when it is not configured; adding
a platform adds one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.channels import widget
from bot.channels.base import Channel
from bot.channels.telegram import create as create_telegram
from bot.channels.viber import create as create_viber
from bot.channels.vk import create as create_vk
from bot.config import Settings
from bot.i18n import Translator
from bot.ingress import Ingress
from bot.leases import Leases
from bot.storage.base import Store
from bot.storage.files import FileStore


@dataclass(frozen=True, slots=True)
class ChannelDeps:
    """What an adapter may use: its settings, the durable ingress, the store (for identity
    links and delivery receipts), the wording already loaded and checked at start-up, and the
    files sent to customers (None: the filesystem store under ``var/files``)."""

    settings: Settings
    ingress: Ingress
    store: Store
    translator: Translator
    files: FileStore | None = None
    # Long polling runs in one process at a time (bot/leases.py); None: no lease, always polls.
    leases: Leases | None = None


Factory = Callable[[ChannelDeps], Channel | None]

FACTORIES: Sequence[Factory] = (create_telegram, create_vk, create_viber, widget.create)


def build_channels(deps: ChannelDeps) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for factory in FACTORIES:
        channel = factory(deps)
        if channel is not None:
            channels[channel.name] = channel
    return channels
