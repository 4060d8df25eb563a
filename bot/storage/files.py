"""Files we send to customers (the month's invoice as a PDF): kept by an unguessable id.

The id is the only handle: transcripts, outbox rows and download links carry it, never a path.
``FilesystemFileStore`` is the embedded default under ``./var/files/``: ``<id>.bin`` holds the
bytes and ``<id>.json`` the name, type and size. Both are written to a temporary file and
renamed into place, and the metadata goes last, so a crash halfway leaves no file that ``get``
would serve half-written.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import os
import re
import secrets
from collections.abc import Set
from datetime import datetime
from pathlib import Path

from bot.models import FileRef

# secrets.token_urlsafe(24): 32 characters of [A-Za-z0-9_-], 192 random bits.
FILE_ID_RE = re.compile(r"[A-Za-z0-9_-]{32}")
MAX_NAME = 200


class FileStore(abc.ABC):
    @abc.abstractmethod
    async def put(self, data: bytes, name: str, content_type: str) -> FileRef:
        """Keep ``data`` under a new random id; the name is for people (the download name)."""

    @abc.abstractmethod
    async def get(self, file_id: str) -> tuple[FileRef, bytes] | None:
        """The file and its bytes, or None for an unknown (or malformed) id."""

    async def delete_older_than(
        self, cutoff: datetime, *, keep: Set[str] = frozenset(), dry_run: bool = False
    ) -> int:
        """Delete files stored before ``cutoff`` (aware) whose id is not in ``keep``; how many
        (``dry_run`` only counts). Not abstract: a store without it keeps everything."""
        raise NotImplementedError(f"{type(self).__name__} does not delete old files")


def display_name(name: str) -> str:
    """A file name safe to show and to put in a header: no path, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"').strip()
    return cleaned[:MAX_NAME] or "file"


class FilesystemFileStore(FileStore):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def put(self, data: bytes, name: str, content_type: str) -> FileRef:
        ref = FileRef(secrets.token_urlsafe(24), display_name(name), content_type, len(data))
        await asyncio.to_thread(self._write, ref, data)
        return ref

    async def get(self, file_id: str) -> tuple[FileRef, bytes] | None:
        if not FILE_ID_RE.fullmatch(file_id):  # never let a request name a path
            return None
        return await asyncio.to_thread(self._read, file_id)

    async def delete_older_than(
        self, cutoff: datetime, *, keep: Set[str] = frozenset(), dry_run: bool = False
    ) -> int:
        return await asyncio.to_thread(self._sweep, cutoff.timestamp(), keep, dry_run)

    def _sweep(self, cutoff: float, keep: Set[str], dry_run: bool) -> int:
        """By the time the metadata was written (it goes last). Only ``<id>.bin``/``.json``
        pairs and write leftovers are touched, never the link key that lives in the folder."""
        if not self.folder.is_dir():
            return 0
        deleted = 0
        for meta in self.folder.glob("*.json"):
            file_id = meta.stem
            if not FILE_ID_RE.fullmatch(file_id) or file_id in keep:
                continue
            try:
                if meta.stat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:
                continue
            deleted += 1
            if not dry_run:
                meta.unlink(missing_ok=True)  # first: get() no longer serves a half-deleted file
                (self.folder / f"{file_id}.bin").unlink(missing_ok=True)
        for data in self.folder.glob("*.bin"):  # bytes whose metadata a crash never wrote
            orphan = FILE_ID_RE.fullmatch(data.stem) and data.stem not in keep
            if orphan and not data.with_suffix(".json").exists():
                with contextlib.suppress(FileNotFoundError):
                    if data.stat().st_mtime < cutoff:
                        deleted += 1
                        if not dry_run:
                            data.unlink()
        for leftover in self.folder.glob(".*.tmp"):  # a write a crash interrupted
            with contextlib.suppress(FileNotFoundError):
                if leftover.stat().st_mtime < cutoff and not dry_run:
                    leftover.unlink()
        return deleted

    def _write(self, ref: FileRef, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {"name": ref.name, "content_type": ref.content_type, "size": ref.size}
        _atomic_write(self.folder / f"{ref.file_id}.bin", data)
        _atomic_write(
            self.folder / f"{ref.file_id}.json", json.dumps(meta, ensure_ascii=False).encode()
        )

    def _read(self, file_id: str) -> tuple[FileRef, bytes] | None:
        try:
            meta = json.loads((self.folder / f"{file_id}.json").read_text(encoding="utf-8"))
            data = (self.folder / f"{file_id}.bin").read_bytes()
        except FileNotFoundError:
            return None
        ref = FileRef(file_id, str(meta["name"]), str(meta["content_type"]), int(meta["size"]))
        return ref, data


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
