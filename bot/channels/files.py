"""What a channel adapter needs to send files: their bytes, and the text to send instead of a
file the platform cannot take (above its size limit, or Viber without a public address).

Instead of a file the customer gets a signed public link when the gateway has a public address
(BOT_PUBLIC_URL), otherwise a note naming the file: the customer is never left with nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.files import FileLinks, files_folder
from bot.i18n import Translator
from bot.models import ConversationKey, FileRef, Text
from bot.storage.base import Store
from bot.storage.files import FileStore, FilesystemFileStore

if TYPE_CHECKING:
    from bot.channels.registry import ChannelDeps

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChannelFiles:
    files: FileStore
    links: FileLinks
    translator: Translator
    store: Store  # the conversation's locale, for the wording of a link or a note
    default_locale: str = "ru"

    @classmethod
    def from_deps(cls, deps: ChannelDeps) -> ChannelFiles:
        settings = deps.settings
        files = deps.files or FilesystemFileStore(files_folder(settings))
        links = FileLinks.from_settings(settings)
        return cls(files, links, deps.translator, deps.store, settings.default_locale)

    async def load(self, ref: FileRef) -> bytes | None:
        found = await self.files.get(ref.file_id)
        return None if found is None else found[1]

    def public_link(self, ref: FileRef) -> str | None:
        return self.links.public(ref.file_id)

    async def instead(self, key: ConversationKey, refs: Sequence[FileRef]) -> str:
        """One line per file: a link, or (without a public address) a note."""
        if not refs:
            return ""
        conversation = await self.store.load_conversation(key)
        locale = conversation.locale if conversation else self.default_locale
        lines = []
        for ref in refs:
            url = self.public_link(ref)
            text = (
                Text("files.link", {"name": ref.name, "url": url})
                if url
                else Text("files.unavailable", {"name": ref.name})
            )
            lines.append(self.translator.render(locale, text))
        return "\n".join(lines)


def with_lines(text: str, extra: str) -> str:
    """``extra`` as a paragraph after ``text`` (either may be empty)."""
    return f"{text}\n\n{extra}" if text and extra else text or extra
