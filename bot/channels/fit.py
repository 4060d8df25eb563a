"""Fit a rendered reply to what a channel can show. The one place where rich replies degrade:
buttons become a numbered list where a platform has none (the customer types the number or the
title, which the gateway maps back), and long text is split at the platform's limit."""

from __future__ import annotations

from dataclasses import dataclass

from bot.channels.base import Capabilities
from bot.models import FileRef, RenderedButton


def split_text(text: str, limit: int) -> list[str]:
    """Split at paragraph, then line, then word boundaries; never inside a word if avoidable."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), -1)
        if cut < limit // 3:
            cut = window.rfind("\n")
        if cut < limit // 3:
            cut = window.rfind(" ")
        if cut < limit // 3:
            cut = limit  # one enormous word: cut it
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest:
        parts.append(rest)
    return parts


def numbered(buttons: tuple[RenderedButton, ...]) -> str:
    return "\n".join(f"{n}. {b.title}" for n, b in enumerate(buttons, start=1))


def fit(
    text: str, buttons: tuple[RenderedButton, ...], caps: Capabilities
) -> list[tuple[str, tuple[RenderedButton, ...]]]:
    """(text, buttons) messages for the channel, in order; buttons go with the last one."""
    shown: tuple[RenderedButton, ...] = ()
    if buttons and caps.buttons:
        shown = tuple(
            RenderedButton(_shorten(b.title, caps.max_button_title), b.payload)
            for b in buttons[: caps.max_buttons]
        )
        extra = buttons[caps.max_buttons :]
        if extra:  # the rest as a list, numbered after the shown ones
            text = (
                text
                + "\n\n"
                + "\n".join(f"{n}. {b.title}" for n, b in enumerate(extra, start=len(shown) + 1))
            )
    elif buttons:
        text = f"{text}\n\n{numbered(buttons)}" if text else numbered(buttons)
    chunks = split_text(text, caps.max_text) if text else [""]
    out: list[tuple[str, tuple[RenderedButton, ...]]] = [(c, ()) for c in chunks]
    out[-1] = (out[-1][0], shown)
    return out


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    buttons: tuple[RenderedButton, ...]
    attachments: tuple[FileRef, ...] = ()


def fit_message(
    text: str,
    buttons: tuple[RenderedButton, ...],
    attachments: tuple[FileRef, ...],
    caps: Capabilities,
) -> list[Part]:
    """``fit``, with the files on the last part: they come after everything they follow up
    ("your invoice is attached") and next to the buttons, as one platform message where the
    platform allows."""
    parts = [Part(t, b) for t, b in fit(text, buttons, caps)]
    parts[-1] = Part(parts[-1].text, parts[-1].buttons, attachments)
    return parts


def _shorten(title: str, limit: int) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"
