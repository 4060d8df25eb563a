"""Omnichannel support bot and messenger gateway for internet and TV providers."""

from __future__ import annotations

__version__ = "0.1.0"
