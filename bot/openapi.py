"""OpenAPI 3 description of the HTTP surface (served at ``/api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from bot import __version__

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
    },
    "required": ["text", "buttons"],
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
    }  # fmt: skip


def openapi_document() -> dict[str, Any]:
    return {
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
                    "responses": {"200": {"description": "healthy"}, "503": {"description": "not"}},
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
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI"}},
                }
            },
        },
    }
