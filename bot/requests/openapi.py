"""The request board's part of the OpenAPI document (bot/openapi.py merges it)."""

from __future__ import annotations

from typing import Any

from bot.requests.api import BASE
from bot.requests.model import KINDS, STATUSES

_HISTORY = {
    "type": "object",
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "by": {"type": "string", "description": "an operator's login, or bot"},
        "action": {
            "type": "string",
            "enum": ["created", "imported", "status", "comment", "assignee", "opened", "exported"],
        },
        "from": {"type": "string", "nullable": True},
        "to": {"type": "string", "nullable": True},
    },
}

REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "description": "the number the customer was told"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "status": {"type": "string", "enum": list(STATUSES)},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "contract": {"type": "string", "nullable": True},
        "name": {"type": "string", "nullable": True},
        "phone": {
            "type": "string",
            "nullable": True,
            "description": "masked (+7 914 ***-**-34) except in GET …/requests/{id}",
        },
        "city_id": {"type": "string", "nullable": True},
        "address": {"type": "string", "nullable": True},
        "details": {"type": "object", "description": "kind-specific: when, house_status …"},
        "conversation_id": {"type": "string"},
        "attachments": {"type": "array", "items": {"type": "object"}},
        "comment": {"type": "string", "nullable": True},
        "assignee": {"type": "string", "nullable": True},
        "history": {"type": "array", "items": _HISTORY},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _one(description: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"request": {"$ref": "#/components/schemas/Request"}},
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def request_paths() -> dict[str, Any]:
    filters = [
        {"name": "kind", "in": "query", "schema": {"type": "string", "enum": list(KINDS)}},
        {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
        {"name": "city_id", "in": "query", "schema": {"type": "string"}},
    ]
    request_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    listed = {
        "type": "object",
        "properties": {
            "requests": {"type": "array", "items": {"$ref": "#/components/schemas/Request"}}
        },
    }
    return {
        BASE: {
            "get": {
                "summary": "Requests people act on, newest first, phones masked (operator)",
                "parameters": filters,
                "responses": {
                    "200": {
                        "description": "the list",
                        "content": {"application/json": {"schema": listed}},
                    },
                    "400": _error("unknown kind or status"),
                    "401": _error("no session"),
                },
            }
        },
        f"{BASE}.csv": {
            "get": {
                "summary": "The same list as CSV: UTF-8 with BOM, ';' separated, phones masked",
                "description": "phones=full gives whole phones to a supervisor (403 otherwise) "
                "and notes the export in every exported record's history.",
                "parameters": [
                    *filters,
                    {
                        "name": "phones",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["full"]},
                    },
                ],
                "responses": {
                    "200": {"description": "text/csv attachment"},
                    "400": _error("unknown kind or status"),
                    "401": _error("no session"),
                    "403": _error("phones=full by someone who is not a supervisor"),
                },
            }
        },
        BASE + "/{id}": {
            "get": {
                "summary": "One request with the phone unmasked; the opening goes to its history",
                "parameters": [request_id],
                "responses": {
                    "200": _one("the request"),
                    "401": _error("no session"),
                    "404": _error("no such request"),
                },
            },
            "post": {
                "summary": "Move a request along (X-CSRF-Token required)",
                "description": "Any of status, comment, assignee (an operator's login, or null "
                "for nobody). Each field that changes is a history entry and a CRM webhook call; "
                "a status change the customer should hear of is told in their conversation.",
                "parameters": [request_id],
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "status": {"type": "string", "enum": list(STATUSES)},
                                    "comment": {"type": "string", "maxLength": 2000},
                                    "assignee": {"type": "string", "nullable": True},
                                },
                            }
                        }
                    }
                },
                "responses": {
                    "200": {
                        "description": "{request (phone masked), changed: history entries}",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "400": _error("invalid status, comment or assignee, or nothing to change"),
                    "401": _error("no session"),
                    "403": _error("CSRF token or origin refused"),
                    "404": _error("no such request"),
                },
            },
        },
    }
