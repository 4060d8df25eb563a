"""``GET/POST/DELETE /api/v1/outages[/{outage_id}]``: the network operations centre's live feed.

Authorization: ``Bearer $BOT_ADMIN_TOKEN`` compared in constant time; with no token configured
only a direct loopback call may (the demo works, nothing is open on a real interface by
accident), and never one that came through a proxy or on a gateway with ``BOT_PUBLIC_URL`` set
(bot/client_address.py: behind a same-host proxy every outside client is "loopback"). POST
creates or updates (the same id), DELETE closes (the outage ends now), GET lists those in force
or still to come. Fields as in ``outages.csv``; ``houses`` and ``services`` as a JSON list or a
``;``-separated string.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.catalog.catalog import Catalog
from bot.client_address import loopback_exempt
from bot.http import json_response
from bot.outages.fields import FIELDS, MAX_ID, OutageInvalid, parse_outage
from bot.outages.model import Outage
from bot.outages.service import OutageService
from bot.untrusted import UntrustedInput, clean_text, loads

log = logging.getLogger(__name__)

BASE = "/api/v1/outages"
MAX_BODY = 16 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


def admin_allowed(
    request: web.Request, token: str | None, *, public_url: str | None = None
) -> bool:
    if token is None:
        return loopback_exempt(request, public_url=public_url)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Bytes, so a non-ASCII header is a plain mismatch rather than compare_digest's TypeError.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode()
    )


def outage_json(outage: Outage, now: datetime) -> dict[str, Any]:
    return {
        "outage_id": outage.outage_id,
        "city_id": outage.city_id,
        "street": outage.street,
        "houses": list(outage.houses),
        "services": list(outage.services),
        "kind": outage.kind,
        "started_at": outage.started_at.isoformat(),
        "expected_end": outage.expected_end.isoformat() if outage.expected_end else None,
        "reason": outage.reason,
        "ended_at": outage.ended_at.isoformat() if outage.ended_at else None,
        "state": outage.state(now),
    }


def _text_fields(body: dict[str, Any]) -> dict[str, str]:
    """JSON values as the text fields of a CSV row; a wrong type names its field."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise OutageInvalid(unknown[0], "unknown field")
    out: dict[str, str] = {}
    for name, value in body.items():
        if value is None:
            out[name] = ""
        elif name in ("houses", "services") and isinstance(value, list):
            if not all(isinstance(v, str) and ";" not in v for v in value):
                raise OutageInvalid(name, "a list of strings without ';'")
            joined = ";".join(value)
            out[name] = clean_text(joined, max(len(joined), 1))
        elif isinstance(value, str):
            # Lone surrogates replaced and control characters dropped, never cut: an
            # over-long field is still refused by name.
            out[name] = clean_text(value, max(len(value), 1))
        else:
            raise OutageInvalid(name, "must be a string")
    return out


def _plausible_id(outage_id: str) -> bool:
    """Could this be a stored outage id (parse_outage's rule)? Anything else is looked up
    nowhere: a lone surrogate would not even reach the store."""
    return 0 < len(outage_id) <= MAX_ID and all(c.isalnum() or c in "-_." for c in outage_id)


class OutageApi:
    def __init__(
        self,
        *,
        service: OutageService,
        catalog: Catalog,
        token: str | None,
        clock: Callable[[], datetime] | None = None,
        public_url: str | None = None,
    ) -> None:
        self._service = service
        self._catalog = catalog
        self._token = token
        self._public_url = public_url
        self._clock = clock or (lambda: datetime.now(UTC))

    def routes(self, app: web.Application) -> None:
        app.router.add_get(BASE, self._guard(self.list_outages))
        app.router.add_post(BASE, self._guard(self.post))
        app.router.add_get(BASE + "/{outage_id}", self._guard(self.get))
        app.router.add_post(BASE + "/{outage_id}", self._guard(self.post))
        app.router.add_delete(BASE + "/{outage_id}", self._guard(self.delete))

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not admin_allowed(request, self._token, public_url=self._public_url):
                status = 403 if self._token is None else 401
                return _error(status, "set Authorization: Bearer $BOT_ADMIN_TOKEN")
            return await handler(request)

        return guarded

    async def list_outages(self, request: web.Request) -> web.StreamResponse:
        city_id = request.query.get("city_id") or None
        if city_id is not None and city_id not in self._catalog.cities:
            # Not echoed: the query is the caller's text, and may not even be valid UTF-8.
            return _error(400, "city_id: unknown city (not in cities.csv)")
        now = self._clock()
        current = await self._service.current(city_id)
        return json_response({"outages": [outage_json(o, now) for o in current]})

    async def get(self, request: web.Request) -> web.StreamResponse:
        if not _plausible_id(request.match_info["outage_id"]):
            return _error(404, "no such outage")
        outage = await self._service.get(request.match_info["outage_id"])
        if outage is None:
            return _error(404, "no such outage")
        return json_response({"outage": outage_json(outage, self._clock())})

    async def post(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, "body too large")
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return _error(413, "body too large")
        try:
            body = loads(raw, max_bytes=MAX_BODY)
        except UntrustedInput as exc:
            return _error(400, str(exc))
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        in_path = request.match_info.get("outage_id")
        if in_path is not None and body.setdefault("outage_id", in_path) != in_path:
            return _error(400, "outage_id: differs from the one in the path")
        try:
            outage = parse_outage(_text_fields(body), self._catalog)
        except OutageInvalid as exc:
            return _error(400, str(exc))
        stored, created = await self._service.post(outage)
        what = "posted" if created else "updated"
        log.info("outage %s %s through the API", stored.outage_id, what)
        return json_response(
            {"outage": outage_json(stored, self._clock()), "created": created},
            status=201 if created else 200,
        )

    async def delete(self, request: web.Request) -> web.StreamResponse:
        if not _plausible_id(request.match_info["outage_id"]):
            return _error(404, "no such outage")
        found = await self._service.end(request.match_info["outage_id"])
        if found is None:
            return _error(404, "no such outage")
        outage, ended_now = found
        log.info("outage %s closed through the API", outage.outage_id)
        return json_response(
            {"outage": outage_json(outage, self._clock()), "already_ended": not ended_now}
        )
