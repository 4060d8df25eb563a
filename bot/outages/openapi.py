"""OpenAPI paths of the outage API (merged into ``bot/openapi.py``)."""

from __future__ import annotations

from typing import Any

_AUTH = (
    "Authorization: Bearer $BOT_ADMIN_TOKEN (constant-time comparison); with the token unset "
    "only loopback may call."
)
_STRINGS = {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}
_FIELDS: dict[str, Any] = {
    "outage_id": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9._-]+$"},
    "city_id": {"type": "string"},
    "street": {"type": "string", "description": "empty = the whole city"},
    "houses": {**_STRINGS, "description": "list or ';'-separated; empty = the whole street"},
    "services": {**_STRINGS, "description": "internet, tv, phone"},
    "kind": {"type": "string", "enum": ["accident", "planned"]},
    "started_at": {"type": "string", "format": "date-time"},
    "expected_end": {"type": ["string", "null"], "format": "date-time"},
    "reason": {"type": "string", "maxLength": 500},
}
_OUTAGE = {
    "type": "object",
    "properties": {
        **_FIELDS,
        "houses": {"type": "array", "items": {"type": "string"}},
        "services": {"type": "array", "items": {"type": "string"}},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
        "state": {"type": "string", "enum": ["ongoing", "upcoming", "ended"]},
    },
}
_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["city_id", "services", "kind", "started_at", "reason"],
                "properties": _FIELDS,
            }
        }
    }
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ONE = {"type": "object", "properties": {"outage": _OUTAGE}}
_DENIED = {"401": {"description": "bad or missing token"}, "403": {"description": "not loopback"}}
_POST = {
    "summary": "Post or update an outage (the same outage_id replaces it)",
    "description": f"{_AUTH} Affected customers who allow outage notices in a messenger are "
    "told when a new outage is posted, through the outbox's low-priority lane.",
    "requestBody": _BODY,
    "responses": {
        "201": _json("created (or reopened)", _ONE),
        "200": _json("updated", _ONE),
        "400": {"description": "a field is invalid: {error: 'field: problem'}"},
        "413": {"description": "body too large"},
        **_DENIED,
    },
}

OUTAGE_PATHS: dict[str, Any] = {
    "/api/v1/outages": {
        "get": {
            "summary": "Outages in force or still to come",
            "description": _AUTH,
            "parameters": [{"name": "city_id", "in": "query", "schema": {"type": "string"}}],
            "responses": {
                "200": _json(
                    "the list",
                    {
                        "type": "object",
                        "properties": {"outages": {"type": "array", "items": _OUTAGE}},
                    },
                ),
                **_DENIED,
            },
        },
        "post": _POST,
    },
    "/api/v1/outages/{outage_id}": {
        "get": {
            "summary": "One outage, closed ones too",
            "description": _AUTH,
            "responses": {
                "200": _json("found", _ONE),
                "404": {"description": "unknown"},
                **_DENIED,
            },
        },
        "post": _POST,
        "delete": {
            "summary": "Close: the outage ends now; its customers are told",
            "description": _AUTH,
            "responses": {
                "200": _json(
                    "closed (already_ended: true if it had ended before)",
                    {
                        "type": "object",
                        "properties": {"outage": _OUTAGE, "already_ended": {"type": "boolean"}},
                    },
                ),
                "404": {"description": "unknown"},
                **_DENIED,
            },
        },
    },
}
