"""The operators' API of technician visits (docs/visits.md), with the operator session; ``POST``
also with the CSRF token (``authorized(write=True)``):

- ``GET  /api/v1/operator/visits?city_id=`` booked visits ahead, earliest first;
- ``GET  /api/v1/operator/visits/{id}/windows`` free windows to move it to;
- ``POST /api/v1/operator/visits/{id}`` ``{"action": "move", "window": "<id>"}`` or
  ``{"action": "cancel"}``; the customer is told in their conversation.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiohttp import web

from bot.handoff.audit import audit
from bot.handoff.auth import authorized
from bot.http import json_response
from bot.untrusted import SHORT_TEXT_LIMIT, UntrustedInput, clean_text, loads
from bot.visits.schedule import Window
from bot.visits.service import HORIZON_DAYS, Refused, VisitService
from bot.visits.store import Visit

BASE = "/api/v1/operator/visits"
_NO_STORE = {"Cache-Control": "no-store"}
# Visit ids are SQLite integers; a longer number would overflow the store, not find a visit.
_MAX_ID = 2**63 - 1
_STATUS = {"taken": 409, "not_booked": 409, "past": 400, "unknown": 400, "no_visits": 400}


def _error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 409: web.HTTPConflict}[status]
    return cls(
        text=json.dumps({"error": message}, ensure_ascii=False),
        content_type="application/json",
        headers=_NO_STORE,
    )


def window_json(service: VisitService, window: Window) -> dict[str, Any]:
    slots = service.city(window.city_id)
    tz = slots.timezone if slots else None
    return {
        "id": window.id,
        "starts_at": window.starts_at.astimezone(tz).isoformat(),
        "ends_at": window.ends_at.astimezone(tz).isoformat(),
    }


def visit_json(service: VisitService, visit: Visit) -> dict[str, Any]:
    """Times in the city's zone (what the technician's day is planned in)."""
    slots = service.city(visit.city_id)
    tz = slots.timezone if slots else None
    return {
        "id": visit.id,
        "status": visit.status,
        "request_id": visit.request_id,
        "contract": visit.contract,
        "city_id": visit.city_id,
        "window": visit.starts_at.astimezone(tz).isoformat(),
        "starts_at": visit.starts_at.astimezone(tz).isoformat(),
        "ends_at": visit.ends_at.astimezone(tz).isoformat(),
        "address": visit.address,
        "problem": visit.problem,
        "fee_rub": str(visit.fee_rub),
        "reminded": visit.reminded_at is not None,
    }


class VisitApi:
    def __init__(self, service: VisitService) -> None:
        self._service = service

    def routes(self, app: web.Application) -> None:
        app.router.add_get(BASE, self.listing)
        app.router.add_get(BASE + r"/{visit_id:\d+}/windows", self.windows)
        app.router.add_post(BASE + r"/{visit_id:\d+}", self.change)

    async def _visit(self, request: web.Request) -> Visit:
        visit_id = int(request.match_info["visit_id"][:20])  # the route admits digits only
        visit = await self._service.store.get(visit_id) if visit_id <= _MAX_ID else None
        if visit is None:
            raise _error(404, "no such visit")
        return visit

    async def listing(self, request: web.Request) -> web.StreamResponse:
        await authorized(request, write=False)
        now = self._service.now()
        city = request.query.get("city_id") or None
        if city is not None:
            city = clean_text(city, SHORT_TEXT_LIMIT)
        visits = await self._service.store.booked_between(
            city, now - timedelta(days=1), now + timedelta(days=HORIZON_DAYS + 1)
        )
        body = {"visits": [visit_json(self._service, v) for v in visits]}
        return json_response(body)

    async def windows(self, request: web.Request) -> web.StreamResponse:
        await authorized(request, write=False)
        visit = await self._visit(request)
        free = await self._service.free(visit.city_id, limit=50, moving=visit)
        return json_response({"windows": [window_json(self._service, w) for w in free]})

    async def change(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        try:
            body = loads(await request.read())
        except UntrustedInput as exc:
            raise _error(400, str(exc)) from None
        if not isinstance(body, dict) or body.get("action") not in ("move", "cancel"):
            raise _error(400, 'send {"action": "move", "window": …} or {"action": "cancel"}')
        visit = await self._visit(request)
        if visit.status != "booked":
            raise _error(409, f"the visit is {visit.status}")
        if body["action"] == "cancel":
            cancelled = await self._service.operator_cancel(visit, by=operator.login)
            if cancelled is None:
                raise _error(409, "the visit is not booked any more")
            await audit(
                request, "visit.cancel", login=operator.login, target=str(visit.id),
                contract=visit.contract,
            )  # fmt: skip
            return json_response({"visit": visit_json(self._service, cancelled)})
        window = body.get("window")
        if not isinstance(window, str) or not window or len(window) > SHORT_TEXT_LIMIT:
            raise _error(400, "'window' must be a window id from …/windows")
        window = clean_text(window, SHORT_TEXT_LIMIT)
        outcome = await self._service.operator_move(visit, window, by=operator.login)
        if isinstance(outcome, Refused):
            raise _error(_STATUS[outcome.reason], f"cannot move: {outcome.reason}")
        await audit(
            request, "visit.move", login=operator.login, target=str(visit.id),
            contract=visit.contract, window=window,
        )  # fmt: skip
        return json_response({"visit": visit_json(self._service, outcome.visit)})
