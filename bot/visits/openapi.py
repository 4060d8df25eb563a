"""The technician visits' part of the OpenAPI document (bot/openapi.py merges it)."""

from __future__ import annotations

from typing import Any

from bot.visits.api import BASE

_VISIT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": ["booked", "cancelled", "done"]},
        "request_id": {"type": "integer", "nullable": True, "description": "its board record"},
        "contract": {"type": "string"},
        "city_id": {"type": "string"},
        "starts_at": {"type": "string", "format": "date-time", "description": "city's offset"},
        "ends_at": {"type": "string", "format": "date-time"},
        "address": {"type": "string"},
        "problem": {"type": "string"},
        "fee_rub": {"type": "string"},
        "reminded": {"type": "boolean"},
    },
}
_AUTH = {
    "401": {"description": "no operator session"},
    "403": {"description": "CSRF token or origin refused"},
}


def _ok(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    body = {"type": "object", "properties": {key: schema}}
    return {"description": "ok", "content": {"application/json": {"schema": body}}}


VISIT_PATHS: dict[str, Any] = {
    BASE: {
        "get": {
            "summary": "Booked technician visits ahead, earliest first (filter: city_id)",
            "parameters": [{"name": "city_id", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": _ok("visits", {"type": "array", "items": _VISIT}), **_AUTH},
        }
    },
    BASE + "/{visit_id}/windows": {
        "get": {
            "summary": "Free windows the visit can be moved to (ids for the move)",
            "responses": {
                "200": _ok("windows", {"type": "array"}),
                "404": {"description": "no such visit"},
                **_AUTH,
            },
        }
    },
    BASE + "/{visit_id}": {
        "post": {
            "summary": "Move or cancel a visit; the customer is told in their conversation",
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "action": {"type": "string", "enum": ["move", "cancel"]},
                                "window": {"type": "string", "description": "for move"},
                            },
                            "required": ["action"],
                        }
                    }
                }
            },
            "responses": {
                "200": _ok("visit", _VISIT),
                "400": {"description": "bad body, unknown or past window"},
                "404": {"description": "no such visit"},
                "409": {"description": "the window is full, or the visit is not booked"},
                **_AUTH,
            },
        }
    },
}
