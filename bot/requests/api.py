"""The operator API of the request board (CONTRACTS.md §2):

- ``GET /api/v1/operator/requests?kind=&status=&city_id=`` the records, newest first, phones
  masked;
- ``GET /api/v1/operator/requests/{id}`` one record with the phone, the opening kept in its
  history;
- ``POST /api/v1/operator/requests/{id}`` ``{"status", "comment", "assignee"}`` (CSRF);
- ``GET /api/v1/operator/requests.csv`` the same list for spreadsheets (UTF-8 with BOM, ``;``).
  A supervisor may add ``phones=full``; every exported record then notes it in its history.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.handoff.audit import audit
from bot.handoff.auth import OPERATORS, authorized
from bot.http import csv_download, json_response, spreadsheet_cell
from bot.requests.desk import RequestDesk, masked
from bot.requests.model import KINDS, STATUSES, RequestRecord, record_json
from bot.requests.store import UNSET, _Unset
from bot.untrusted import SHORT_TEXT_LIMIT, UntrustedInput, clean_text, loads

BASE = "/api/v1/operator/requests"
COMMENT_MAX = 2000
CSV_COLUMNS = (
    "id", "kind", "status", "created_at", "contract", "name", "phone", "city_id", "address",
    "details", "conversation_id", "attachments", "comment", "assignee", "updated_at",
)  # fmt: skip
_NO_STORE = {"Cache-Control": "no-store"}
# Record ids are SQLite integers; a longer number would overflow the store, not find a record.
_MAX_ID = 2**63 - 1


def _error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 404: web.HTTPNotFound}[status]
    return cls(
        text=json.dumps({"error": message}, ensure_ascii=False),
        content_type="application/json",
        headers=_NO_STORE,
    )


def _request_id(request: web.Request) -> int:
    value = int(request.match_info["request_id"][:20])  # the route admits digits only
    if value > _MAX_ID:
        raise _error(404, "no such request")
    return value


def _details_text(details: Mapping[str, Any]) -> str:
    return "; ".join(f"{key}: {value}" for key, value in details.items())


class RequestApi:
    def __init__(self, desk: RequestDesk) -> None:
        self._desk = desk

    def routes(self, app: web.Application) -> None:
        app.router.add_get(BASE, self.listing)
        app.router.add_get(f"{BASE}.csv", self.export)
        app.router.add_get(BASE + r"/{request_id:\d+}", self.open)
        app.router.add_post(BASE + r"/{request_id:\d+}", self.change)

    async def _records(self, request: web.Request) -> list[RequestRecord]:
        query = request.query
        kind, status = query.get("kind") or None, query.get("status") or None
        if kind is not None and kind not in KINDS:
            raise _error(400, f"kind must be one of {', '.join(KINDS)}")
        if status is not None and status not in STATUSES:
            raise _error(400, f"status must be one of {', '.join(STATUSES)}")
        city_id = query.get("city_id") or None
        return await self._desk.board.find(
            kind=kind,
            status=status,
            city_id=clean_text(city_id, SHORT_TEXT_LIMIT) if city_id else None,
        )

    async def listing(self, request: web.Request) -> web.StreamResponse:
        await authorized(request, write=False)
        records = await self._records(request)
        response = json_response({"requests": [masked(record) for record in records]})
        response.headers.update(_NO_STORE)
        return response

    async def open(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=False)
        request_id = _request_id(request)
        record = await self._desk.open(request_id, by=operator.login)
        if record is None:
            raise _error(404, "no such request")
        # Opened with the customer's phone: written down (the record's history says it too).
        await audit(request, "request.open", login=operator.login, target=str(request_id))
        response = json_response({"request": record_json(record, phone=record.phone)})
        response.headers.update(_NO_STORE)
        return response

    async def change(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=True)
        request_id = _request_id(request)
        try:
            body = loads(await request.read())
        except UntrustedInput as exc:
            raise _error(400, str(exc)) from None
        if not isinstance(body, dict):
            raise _error(400, "the body must be a JSON object")
        status = body.get("status")
        if status is not None and (not isinstance(status, str) or status not in STATUSES):
            raise _error(400, f"status must be one of {', '.join(STATUSES)}")
        comment = body.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > COMMENT_MAX):
            raise _error(400, f"comment must be a string of at most {COMMENT_MAX} characters")
        if comment is not None:
            comment = clean_text(comment, COMMENT_MAX)
        assignee: str | _Unset | None = UNSET
        if "assignee" in body:
            assignee = body["assignee"] or None
            if assignee is not None:
                if not isinstance(assignee, str) or len(assignee) > SHORT_TEXT_LIMIT:
                    raise _error(400, "assignee must be an operator's login or null")
                assignee = clean_text(assignee, SHORT_TEXT_LIMIT)
                if await request.config_dict[OPERATORS].get(assignee) is None:
                    raise _error(400, "no operator with this login")
        if status is None and comment is None and isinstance(assignee, _Unset):
            raise _error(400, 'send at least one of "status", "comment", "assignee"')
        change = await self._desk.change(
            request_id,
            by=operator.login,
            status=status,
            comment=comment,
            assignee=assignee,
        )
        if change is None:
            raise _error(404, "no such request")
        await audit(
            request, "request.change", login=operator.login, target=str(request_id),
            changed=",".join(sorted({entry.action for entry in change.changed})) or None,
        )  # fmt: skip
        return json_response(
            {
                "request": masked(change.record),
                "changed": [entry.as_json() for entry in change.changed],
            }
        )

    async def export(self, request: web.Request) -> web.StreamResponse:
        operator = await authorized(request, write=False)
        full = request.query.get("phones") == "full"
        if full:  # every contact at once: supervisors only, and it is written down
            await authorized(request, write=False, supervisor=True)
        records = await self._records(request)
        if full and records:
            await self._desk.board.record_access(
                [record.id for record in records], by=operator.login, action="exported"
            )
        await audit(
            request, "requests.export", login=operator.login, rows=len(records),
            phones="full" if full else "masked", kind=request.query.get("kind") or None,
            status=request.query.get("status") or None,
        )  # fmt: skip
        rows = []
        for record in records:
            row = record_json(record, phone=record.phone) if full else masked(record)
            row["details"] = _details_text(record.details)
            row["attachments"] = " ".join(str(a.get("name", "")) for a in record.attachments)
            # A phone is ours ("+7…"), shown as it is; everything else may be the customer's.
            cells = {c: spreadsheet_cell(row[c]) for c in CSV_COLUMNS if c != "phone"}
            rows.append([row["phone"] or "" if c == "phone" else cells[c] for c in CSV_COLUMNS])
        return csv_download(CSV_COLUMNS, rows, name="requests")
