"""OpenAPI 3 description of the HTTP surface (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from bot import __version__
from bot.outages.openapi import OUTAGE_PATHS
from bot.requests.openapi import REQUEST_SCHEMA, request_paths
from bot.visits.openapi import VISIT_PATHS

_REPLY = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "buttons": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "payload": {"type": "string"}},
                "required": ["title", "payload"],
            },
        },
        "attachments": {
            "type": "array",
            "description": "Files sent with the reply; download each from its url",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "content_type": {"type": "string"},
                    "size": {"type": "integer"},
                    "url": {"type": "string", "example": "/api/v1/files/{file_id}"},
                },
                "required": ["name", "content_type", "size", "url"],
            },
        },
    },
    "required": ["text", "buttons"],
}


def _file_path(summary: str, refused: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": {"description": "the bytes, with Content-Type and Content-Disposition"},
                "403": {"description": refused},
                "404": {"description": "no such file (or not this caller's)"},
            },
        }
    }


_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _webhook(summary: str, authenticity: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": f"Authenticity: {authenticity}. Stored before the 200, answered "
            "through the platform API; a redelivery is processed once.",
            "responses": {
                "200": {"description": "accepted (also for a redelivery)"},
                "401": {"description": "missing authentication"},
                "403": {"description": "forged"},
            },
        }
    }


def _operator_paths() -> dict[str, Any]:
    """The operator API (session cookie from login; X-CSRF-Token on every POST)."""
    base = "/api/v1/operator"
    conv = f"{base}/conversations/{{conversation_id}}"
    simple = {
        f"{base}/login": ("post", "Log in: sets an HttpOnly SameSite cookie, returns csrf_token"),
        f"{base}/logout": ("post", "Log out"),
        f"{base}/me": ("get", "The operator, csrf_token and presence"),
        f"{base}/status": ("post", "Presence: online (gets chats assigned) or away"),
        f"{base}/queue": ("get", "Conversations with people, oldest first"),
        f"{base}/events": ("get", "WebSocket of queue and message events"),
        conv: ("get", "Transcript, notes, customer card, history, canned answers"),
        f"{conv}/claim": ("post", "Take the conversation; 409 if someone else has it"),
        f"{conv}/messages": ("post", "Reply through the customer's own channel"),
        f"{conv}/notes": ("post", "Internal note, never shown to the customer"),
        f"{conv}/transfer": ("post", "To an operator or a department, with a note"),
        f"{conv}/release": ("post", "Back to the bot"),
        f"{conv}/close": ("post", "End; the customer is asked for a 1-5 rating"),
    }
    return {
        path: {method: {"summary": summary, "responses": {
            "200": {"description": "done"}, "401": {"description": "no session"},
            "403": {"description": "CSRF token or origin refused"},
            "409": {"description": "another operator has the conversation"},
        }}}
        for path, (method, summary) in simple.items()
    } | _customer_paths(base) | _supervisor_paths(base)  # fmt: skip


# Amounts are decimal strings ("880.50"), dates ISO ("2026-12-01").
_CARD = {
    "type": "object",
    "required": ["contract", "holder", "city_id", "status", "balance_rub", "tariff_id",
                 "services", "autopay", "notifications", "operations"],
    "properties": {
        "contract": {"type": "string"},
        "holder": {"type": "string"},
        "city_id": {"type": "string"},
        "status": {"type": "string", "enum": ["active", "blocked", "suspended"]},
        "balance_rub": {"type": "string", "example": "880.50"},
        "bonus_points": {"type": "integer"},
        "tariff_id": {"type": "string"},
        "tariff": {"type": "object", "nullable": True,
                   "description": "tariff_id, name, price, kind, speed_mbps, tv_channels"},
        "pending_tariff": {"type": "object", "nullable": True,
                           "description": "tariff_id, name, effective (date)"},
        "promised_payment": {"type": "object", "nullable": True,
                             "description": "amount_rub, until, taken_on"},
        "suspension": {"type": "object", "nullable": True,
                       "description": "from, to (null: until resumed)"},
        "services": {"type": "array", "items": {"type": "string"}},
        "services_detail": {"type": "array", "items": {"type": "object"}},
        "autopay": {"type": "boolean"},
        "notifications": {"type": "object", "description": "topic: [channel, ...]"},
        "phone": {"type": "string", "nullable": True, "example": "+7 914 ***-**-01"},
        "email": {"type": "string", "nullable": True, "example": "i***@example.ru"},
        "next_charge_date": {"type": "string", "format": "date"},
        "monthly_total_rub": {"type": "string"},
        "to_unblock_rub": {"type": "string", "nullable": True},
        "equipment": {"type": "array", "items": {"type": "object"}},
        "available": {"type": "object",
                      "description": "tariffs, services_on, services_off, kinds the console "
                                     "may offer"},
        "operations": {
            "type": "array", "description": "newest first",
            "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "kind": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "by": {"type": "string", "description": "bot or an operator's login"},
                "status": {"type": "string", "enum": ["pending", "done", "refused", "failed"]},
                "details": {"type": "object"},
            }},
        },
    },
}  # fmt: skip
_REFUSAL = {
    "type": "object",
    "properties": {"refusal": {"type": "object", "properties": {
        "reason": {"type": "string", "example": "promised_not_needed"},
        "terms": {"type": "object"},
    }}},
}  # fmt: skip
_CONSOLE_KINDS = [
    "promised_payment", "suspend", "resume", "change_tariff", "cancel_tariff_change",
    "service_on", "service_off", "autopay_off", "set_notifications", "unblock",
]  # fmt: skip


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _customer_paths(base: str) -> dict[str, Any]:
    """The customer card and the account actions an operator takes from it."""
    contract = {"name": "contract", "in": "path", "required": True, "schema": {"type": "string"}}
    card = {"$ref": "#/components/schemas/CustomerCard"}
    return {
        f"{base}/customers/{{contract}}": {"get": {
            "summary": "The customer card: account, what can be offered, the operations log",
            "parameters": [contract],
            "responses": {
                "200": _json("the card", card),
                "401": _err("no session"),
                "404": _err("the billing does not know the contract"),
                "503": _err("the billing is not answering"),
            },
        }},
        f"{base}/customers/{{contract}}/actions/{{kind}}": {"post": {
            "summary": "An account action by the rules the bot uses (X-CSRF-Token required)",
            "description": "dry_run: the terms and a new op_id, nothing changed. Otherwise "
            "carried out once per op_id (a repeat answers repeat: true) and logged under the "
            "operator's login. set_contact is refused (400): contacts change only with the "
            "customer's one-time code.",
            "parameters": [contract, {"name": "kind", "in": "path", "required": True,
                                      "schema": {"type": "string", "enum": _CONSOLE_KINDS}}],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object",
                "description": "the action's arguments plus op_id, dry_run, conversation_id",
                "properties": {
                    "op_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
                    "dry_run": {"type": "boolean"},
                    "conversation_id": {"type": "string"},
                    "tariff_id": {"type": "string"}, "service_id": {"type": "string"},
                    "from": {"type": "string", "format": "date"},
                    "to": {"type": "string", "format": "date"},
                    "days": {"type": "integer"},
                    "notifications": {"type": "object"},
                },
            }}}},
            "responses": {
                "200": _json("dry_run: {proposal: {kind, terms}, op_id}; otherwise "
                             "{kind, done: terms, repeat, card}", {"type": "object"}),
                "400": _err("unknown action, missing or malformed argument, bad JSON"),
                "401": _err("no session"),
                "403": _err("CSRF token or origin refused"),
                "404": _err("the billing does not know the contract"),
                "409": _json("the rules say no", {"$ref": "#/components/schemas/Refusal"}),
                "503": _err("the billing is not answering; safe to retry with the same op_id"),
            },
        }},
    }  # fmt: skip


# Answers every operation can give besides its own, from the layers in front of the handlers:
# input refused at the boundary (bot/untrusted.py: not UTF-8, nested too deep, a number out of
# range), a body over the size limit, a rate or abuse limit. Their bodies are JSON {"error"} from
# our handlers or plain text from aiohttp itself, so no content type is promised.
_ANY_OPERATION = {
    "400": {"description": "malformed or refused input (the reason is in the body)"},
    "413": {"description": "the body is larger than the gateway accepts"},
    "429": {"description": "too many requests; try again later (Retry-After when known)"},
}
_WITH_BODY = {"415": {"description": "the body is not of the documented content type"}}
_WITH_ID = {"404": {"description": "nothing with that id (or not this caller's)"}}
_OPERATOR = {
    "401": {"description": "no operator session"},
    "403": {"description": "CSRF token or origin refused, or not allowed for this role"},
}
_PLAIN = {"text/plain": {"schema": {"type": "string"}}}
_WEBHOOK = {"404": {"description": "the channel is off (its credentials are not configured)"}}


_AUDIT_ENTRY = {
    "type": "object",
    "required": ["id", "at", "login", "action", "details"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "login": {"type": "string", "description": "unknown:<digest> for a login nobody has"},
        "action": {"type": "string", "example": "customer.card"},
        "target": {"type": "string", "nullable": True},
        "address": {"type": "string", "nullable": True},
        "details": {"type": "object"},
    },
}


def _supervisor_paths(base: str) -> dict[str, Any]:
    """The audit log (supervisors only) and the conversations the bot is having now."""
    filters = [
        {"name": "login", "in": "query", "schema": {"type": "string"}},
        {"name": "action", "in": "query", "schema": {"type": "string"},
         "description": "an action (login_failed), a family (customer.*), or several of "
                        "either separated by commas (login,logout)"},
        {"name": "since", "in": "query", "schema": {"type": "string"},
         "description": "ISO date or date-time, UTC unless it says otherwise"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    ]  # fmt: skip
    listing = {"type": "object", "required": ["entries"],
               "properties": {"entries": {"type": "array", "items": _AUDIT_ENTRY}}}  # fmt: skip
    return {
        f"{base}/audit": {"get": {
            "summary": "What operators did, newest first (supervisors)",
            "parameters": filters,
            "responses": {"200": _json("entries", listing),
                          "400": _err("a filter is malformed"),
                          "403": {"description": "not a supervisor"}},
        }},
        f"{base}/audit.csv": {"get": {
            "summary": "The same entries as CSV for spreadsheets (the export is itself audited)",
            "parameters": filters,
            "responses": {"200": {"description": "text/csv; semicolon-separated, UTF-8 with BOM",
                                  "content": {"text/csv": {"schema": {"type": "string"}}}},
                          "400": _err("a filter is malformed"),
                          "403": {"description": "not a supervisor"}},
        }},
        f"{base}/live": {"get": {
            "summary": "Conversations the bot is having now, newest first (an operator may "
                       "take one over)",
            "responses": {"200": {"description": "[{conversation_id, channel, last_message}]"}},
        }},
    }  # fmt: skip


def _complete(paths: dict[str, Any]) -> dict[str, Any]:
    """Every operation with the answers the gateway can really give (schemathesis checks that
    each status code a response carries is documented): the layers' common answers, 404 for an
    id in the path, the operator API's session refusals, 415 where a body is read."""
    for path, operations in paths.items():
        for method, operation in operations.items():
            extra: dict[str, Any] = dict(_ANY_OPERATION)
            if method in ("post", "put", "patch") or "requestBody" in operation:
                extra |= _WITH_BODY
            if "{" in path:
                extra |= _WITH_ID
            if path.startswith("/api/v1/operator/") and path != "/api/v1/operator/login":
                extra |= _OPERATOR
            if path.startswith("/webhooks/"):
                extra |= _WEBHOOK
            responses = operation.setdefault("responses", {})
            for code, answer in extra.items():
                responses.setdefault(code, answer)
            content = responses["404"].get("content") if "404" in responses else None
            if content is not None and "text/plain" not in content:
                # A path id the route's pattern refuses (``/requests/-1``) never reaches the
                # handler: aiohttp's router answers that 404 in plain text.
                responses["404"] = {**responses["404"], "content": {**content, **_PLAIN}}
    return paths


def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "ISP support gateway",
            "version": __version__,
            "description": "REST channel, transcripts and service endpoints of the gateway.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Reply": _REPLY,
                "Error": _ERROR,
                "CustomerCard": _CARD,
                "Refusal": _REFUSAL,
                "Request": REQUEST_SCHEMA,
                "MessageRequest": {
                    "type": "object",
                    "required": ["sender"],
                    "properties": {
                        "sender": {"type": "string", "maxLength": 128},
                        "text": {"type": "string", "maxLength": 4096},
                        "payload": {"type": "string", "maxLength": 1024},
                        "location": {
                            "type": "object",
                            "properties": {
                                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                            },
                            "required": ["lat", "lon"],
                        },
                        "identity": {
                            "type": "object",
                            "description": (
                                "hash = hex HMAC-SHA256(BOT_IDENTITY_SECRET, contract_number)"
                            ),
                            "properties": {
                                "contract_number": {"type": "string"},
                                "hash": {"type": "string"},
                            },
                            "required": ["contract_number", "hash"],
                        },
                        "locale": {"type": "string", "example": "ru"},
                        "message_id": {"type": "string"},
                    },
                },
                "MessageResponse": {
                    "type": "object",
                    "required": ["conversation_id", "state", "replies"],
                    "properties": {
                        "conversation_id": {"type": "string"},
                        "state": {
                            "type": "string",
                            "enum": ["bot", "queued", "operator", "closed"],
                        },
                        "replies": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Reply"},
                        },
                    },
                },
                "Transcript": {
                    "type": "object",
                    "properties": {
                        "conversation_id": {"type": "string"},
                        "cursor": {"type": "integer"},
                        "messages": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"type": "integer"},
                                    "from": {
                                        "type": "string",
                                        "enum": ["customer", "bot", "operator", "system"],
                                    },
                                    "text": {"type": "string"},
                                    "at": {"type": "string", "format": "date-time"},
                                },
                            },
                        },
                    },
                },
            },
        },
        "paths": {
            "/api/v1/messages": {
                "post": {
                    "summary": "Send a customer message; the bot's replies come back in the body",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/MessageRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The turn's replies",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/MessageResponse"}
                                }
                            },
                        },
                        "400": _err("Malformed request"),
                        "401": _err("Missing or wrong bearer token"),
                        "403": _err("Invalid identity signature, or not loopback without a token"),
                        "503": _err(
                            "Not recorded (the gateway is shutting down, or its store is "
                            "failing): send again after Retry-After"
                        ),
                    },
                }
            },
            "/api/v1/conversations/{conversation_id}/messages": {
                "get": {
                    "summary": "Transcript of a conversation, in order",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {
                            "name": "conversation_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "after", "in": "query", "schema": {"type": "integer"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "Messages after the cursor",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Transcript"}
                                }
                            },
                        },
                        "400": _err("Bad cursor"),
                        "401": _err("Missing or wrong bearer token"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "200 when the store and the engine answer",
                    "responses": {
                        "200": {"description": "healthy"},
                        "503": {"description": "not, or shutting down (status draining)"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text/plain exposition format"}},
                }
            },
            "/webhooks/telegram": _webhook(
                "Telegram Bot API updates", "header X-Telegram-Bot-Api-Secret-Token"
            ),
            "/webhooks/vk": _webhook(
                "VK Callback API events (confirmation answered with VK_CONFIRMATION)",
                "body field secret = VK_SECRET",
            ),
            **OUTAGE_PATHS,
            "/api/v1/billing/events": {
                "post": {
                    "summary": "The billing reports a payment or a status change",
                    "description": "Header X-Billing-Signature = 'sha256=' + hex HMAC-SHA256("
                    "BILLING_WEBHOOK_SECRET, raw body); off (403) while the secret is unset. "
                    "Each id is processed once (a repeat answers duplicate: true). With the "
                    "embedded ledger a payment is booked; the customer is told in the channel "
                    "they last wrote from, if they allow balance notices in a messenger.",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["id", "contract", "kind"],
                                    "properties": {
                                        "id": {"type": "string", "maxLength": 200},
                                        "contract": {"type": "string"},
                                        "kind": {
                                            "type": "string",
                                            "enum": ["payment", "status"],
                                        },
                                        "amount_rub": {"type": "string", "example": "500.00"},
                                        "previous_status": {"type": "string"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": {
                        "200": {"description": "processed (or a duplicate)"},
                        "400": _err("malformed event"),
                        "403": _err("bad signature, or events are off"),
                        "404": _err("unknown contract"),
                        "503": _err("billing unavailable; retry the same id later"),
                    },
                }
            },
            "/webhooks/viber": _webhook(
                "Viber REST Bot API callbacks (conversation_started answered in the body)",
                "header X-Viber-Content-Signature = hex HMAC-SHA256(VIBER_AUTH_TOKEN, body)",
            ),
            "/widget.js": {
                "get": {
                    "summary": "The embeddable chat widget (one script tag)",
                    "responses": {"200": {"description": "JavaScript"}},
                }
            },
            "/ws/widget": {
                "get": {
                    "summary": "WebSocket of the widget: hello, message, payload, location frames",
                    "parameters": [
                        {
                            "name": "session",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
                        },
                    ],
                    "responses": {"101": {"description": "switching protocols"}},
                }
            },
            "/api/v1/widget/upload": {
                "post": {
                    "summary": "A file from the widget (images, PDF; up to 10 MB)",
                    "responses": {
                        "200": {"description": "stored and passed to the conversation"},
                        "413": {"description": "too large"},
                        "415": {"description": "type not allowed"},
                    },
                }
            },
            **_operator_paths(),
            **request_paths(),
            **VISIT_PATHS,
            "/api/v1/files/{file_id}": _file_path(
                "A file sent in a reply (REST channel credentials)", "not authorized"
            ),
            "/api/v1/widget/files/{file_id}": _file_path(
                "A file sent to a widget session (header X-Widget-Session)", "no session"
            ),
            "/api/v1/operator/files/{file_id}": _file_path(
                "A file sent to a customer (operator session)", "no session"
            ),
            "/api/v1/operator/conversations/{conversation_id}/files": {
                "post": {
                    "summary": "An operator sends a file to the customer of a conversation they "
                    "have, through the customer's channel",
                    "description": "multipart/form-data: `file` (images, PDF, office documents; "
                    "at most 20 MB, the type judged by the content) and optional `text`; header "
                    "X-CSRF-Token.",
                    "responses": {
                        "200": {"description": "sent (the transcript line with the file)"},
                        "401": _err("no session"),
                        "403": _err("no CSRF token or another site"),
                        "409": _err("the conversation is not the operator's"),
                        "413": _err("the file is too large"),
                        "415": _err("the file type is not allowed"),
                    },
                }
            },
            "/files/{file_id}/{token}": _file_path(
                "Public signed, expiring link to a file (Viber, links instead of large files)",
                "never: a bad or expired token is a 404",
            ),
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
        },
    }
    _complete(document["paths"])
    return document
