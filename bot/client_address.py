"""Who is on the other end of a request: the client's address, and whether the loopback
exemption (no token needed on the demo machine) may apply.

Forwarding headers are written by whoever sends them, so we believe ``X-Forwarded-For`` only
when the TCP peer is one of ``BOT_TRUSTED_PROXIES``, and then walk it from the right (the
nearest hop) past trusted proxies to the first address we did not put there ourselves. A
request that carries forwarding headers at all never counts as loopback: behind a same-host
reverse proxy every outside client arrives from 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from bot.config import IPNetwork

FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host")


def _parse(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    try:
        return ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: str | None, proxies: Sequence[IPNetwork]) -> bool:
    parsed = _parse(address)
    return parsed is not None and any(parsed in network for network in proxies)


def client_address(request: web.Request, trusted_proxies: Sequence[IPNetwork] = ()) -> str:
    """The client's address as far as we can trust it; ``"unknown"`` when aiohttp has none."""
    peer = request.remote or "unknown"
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops[-20:]):  # a bounded walk: the header is the client's to inflate
        if _parse(hop) is None:
            return peer  # garbage in the chain: the last hop we can vouch for is the proxy
        if not _trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


def came_through_proxy(request: web.Request) -> bool:
    return any(name in request.headers for name in FORWARDING_HEADERS)


def loopback_exempt(request: web.Request, *, public_url: str | None) -> bool:
    """May this request skip the token because it comes from this very machine?

    Only a direct loopback connection, with no forwarding header, on a gateway that does not
    declare a public address (``BOT_PUBLIC_URL`` says "the world reaches me", usually through a
    proxy on this host)."""
    if public_url or came_through_proxy(request):
        return False
    parsed = _parse(request.remote)
    return parsed is not None and parsed.is_loopback
