"""Hostile input at the public JSON doors (issue 10): the REST channel, the outage API and the
billing events answer a clear 400 (never a 500) for lone surrogates, ``[[[[…`` bombs and
overflowing numbers, and change nothing when they refuse; the REST channel reads only its own
conversations, one sender's with the REST token; the loopback exemption never applies through a
proxy or on a gateway with a public URL; the safety net turns what slips through into a JSON
error without a traceback."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import sys
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import create_app, warn_about_open_doors
from bot.config import Settings
from bot.selfservice.billing_events import sign
from bot.services import Services
from bot.untrusted import UntrustedInput
from tests.conftest import identity

REST_TOKEN = "rest-token-for-hostile-tests"
ADMIN_TOKEN = "admin-token-for-hostile-tests"
BILLING_SECRET = "billing-secret-for-hostile-tests"
SURROGATE = "\ud800"
DEEP = "[" * 100_000 + "]" * 100_000  # far past the interpreter's recursion limit
# Within the 16 KiB doors (outages, billing events): past the recursion limit, and a nesting the
# parser takes but our own limit (32 levels) refuses.
DEEP_SMALL = ("[" * 5_000 + "]" * 5_000, '{"a": ' + "[" * 40 + "]" * 40 + "}")
BLOCKED = "750045678924"


def _bytes(body: Any) -> bytes:
    # json.dumps writes a lone surrogate as the escape "\ud800", exactly what an attacker sends.
    return json.dumps(body).encode()


def rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(settings.sqlite_path)) as db:
        return db.execute(sql).fetchall()


async def post_json(client: TestClient, path: str, body: bytes, **headers: str) -> Any:
    return await client.post(
        path, data=body, headers={"Content-Type": "application/json", **headers}
    )


@pytest.fixture
async def tokens(aiohttp_client: Any, settings: Settings, services: Services) -> TestClient:
    configured = replace(settings, rest_token=REST_TOKEN, admin_token=ADMIN_TOKEN)
    return await aiohttp_client(create_app(configured, services=services))  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- REST: every field ------------------------------------------------------------------------

GOOD: dict[str, Any] = {"sender": "hostile-1", "text": "какие тарифы в Чите?"}


@pytest.mark.parametrize(
    "field",
    ["sender", "text", "payload", "locale", "message_id", "contract_number", "hash", "key"],
)
async def test_a_lone_surrogate_in_any_rest_field_is_a_400_or_replaced_never_a_500(
    client: TestClient, settings: Settings, field: str
) -> None:
    body: dict[str, Any] = dict(GOOD)
    if field in ("contract_number", "hash"):
        body["identity"] = {**identity(BLOCKED), field: "75004" + SURROGATE}
    elif field == "key":  # an unknown key named with a surrogate
        body[SURROGATE] = SURROGATE
    else:
        body[field] = "x" + SURROGATE
    resp = await post_json(client, "/api/v1/messages", _bytes(body))
    answer = await resp.json()
    assert resp.status in (200, 400, 403), answer
    if resp.status != 200:
        assert "error" in answer
        assert rows(settings, "SELECT count(*) FROM messages") == [(0,)]  # nothing stored
        return
    # Accepted: whatever was stored is valid text, the surrogate replaced.
    stored = rows(settings, "SELECT text FROM messages WHERE sender = 'customer'")
    assert stored
    assert all(SURROGATE not in t for (t,) in stored)
    history = await client.get(f"/api/v1/conversations/{answer['conversation_id']}/messages")
    assert history.status == 200


async def test_a_surrogate_in_the_text_is_stored_replaced_and_the_customer_is_answered(
    client: TestClient, settings: Settings
) -> None:
    resp = await post_json(
        client, "/api/v1/messages", _bytes({"sender": "s-text", "text": f"тарифы{SURROGATE}"})
    )
    assert resp.status == 200
    assert (await resp.json())["replies"]
    [(text,)] = rows(settings, "SELECT text FROM messages WHERE sender = 'customer'")
    assert text == "тарифы\ufffd"


async def test_a_refused_sender_changes_nothing(client: TestClient, settings: Settings) -> None:
    for sender in (SURROGATE, "a" * 129, "", 5, None):
        resp = await post_json(
            client, "/api/v1/messages", _bytes({"sender": sender, "text": "привет"})
        )
        assert resp.status == 400, sender
        assert "sender" in (await resp.json())["error"]
    assert rows(settings, "SELECT count(*) FROM conversations") == [(0,)]


async def test_deep_json_at_the_rest_door_is_a_400(client: TestClient, settings: Settings) -> None:
    for body in (DEEP, '{"sender": "deep", "text": ' + DEEP + "}", *DEEP_SMALL):
        resp = await post_json(client, "/api/v1/messages", body.encode())
        assert resp.status == 400
        assert "nested" in (await resp.json())["error"]
    assert rows(settings, "SELECT count(*) FROM conversations") == [(0,)]


async def test_garbage_bodies_are_400(client: TestClient) -> None:
    for body in (b"\xff\xfe", b"not json", b"[]", b'"text"', b'{"sender": "x"}', b"1e999999"):
        resp = await post_json(client, "/api/v1/messages", body)
        assert resp.status == 400, body
    odd_location = {"sender": "loc", "location": {"lat": 10**400, "lon": "nan"}}
    resp = await post_json(client, "/api/v1/messages", _bytes(odd_location))
    assert resp.status == 400


@pytest.mark.parametrize(
    "query",
    [
        "after=-99999999999999999999999",
        "after=99999999999999999999999",
        "after=-1",
        "after=1e5",
        "limit=99999999999999999999999",
        "limit=0",
        "limit=-5",
    ],
)
async def test_numbers_out_of_range_in_the_transcript_query_are_400(
    client: TestClient, say: Any, query: str
) -> None:
    await say("u-after", "привет")
    resp = await client.get(f"/api/v1/conversations/rest:u-after:u-after/messages?{query}")
    assert resp.status == 400
    assert "must be a whole number" in (await resp.json())["error"]


async def test_a_transcript_page_within_range_is_served(client: TestClient, say: Any) -> None:
    await say("u-page", "привет")
    resp = await client.get("/api/v1/conversations/rest:u-page:u-page/messages?after=0&limit=1")
    assert resp.status == 200
    assert len((await resp.json())["messages"]) == 1


# --- REST: who reads what ---------------------------------------------------------------------


async def test_the_rest_channel_does_not_read_other_channels_transcripts(
    client: TestClient, services: Services
) -> None:
    """Another customer's Telegram conversation (their balance) is not readable through the
    REST door, even from loopback: the same 404 as an id that does not exist."""
    telegram = "telegram:555:555"
    await services.store.append_message(telegram, "bot", "Ваш баланс: 1 234 ₽")
    for conversation in (telegram, "widget:abc:abc", "telegram:999:999", "rest:a:b", "rest"):
        resp = await client.get(f"/api/v1/conversations/{conversation}/messages")
        assert resp.status == 404, conversation
        assert await resp.json() == {"error": "no such conversation"}


async def test_with_the_rest_token_only_the_named_senders_transcript_is_read(
    tokens: TestClient,
) -> None:
    auth = bearer(REST_TOKEN)
    body = {"sender": "alice", "text": "какой у меня баланс?", "identity": identity(BLOCKED)}
    resp = await tokens.post("/api/v1/messages", json=body, headers=auth)
    assert resp.status == 200
    alice = "/api/v1/conversations/rest:alice:alice/messages"

    unnamed = await tokens.get(alice, headers=auth)
    assert unnamed.status == 400
    assert "sender" in (await unnamed.json())["error"]
    other = await tokens.get(alice + "?sender=mallory", headers=auth)
    assert other.status == 404
    own = await tokens.get(alice + "?sender=alice", headers=auth)
    assert own.status == 200
    assert any("баланс" in m["text"].lower() for m in (await own.json())["messages"])
    # Another channel's conversation is not readable even naming its chat as the sender.
    telegram = "/api/v1/conversations/telegram:1:1/messages?sender=1"
    assert (await tokens.get(telegram)).status == 401
    assert (await tokens.get(telegram, headers=auth)).status == 404


async def test_the_admin_token_reads_every_rest_conversation_and_nothing_else(
    tokens: TestClient,
) -> None:
    resp = await tokens.post(
        "/api/v1/messages", json={"sender": "bob", "text": "привет"}, headers=bearer(REST_TOKEN)
    )
    assert resp.status == 200
    admin = bearer(ADMIN_TOKEN)
    bob = await tokens.get("/api/v1/conversations/rest:bob:bob/messages", headers=admin)
    assert bob.status == 200
    assert (await bob.json())["messages"]
    other = await tokens.get("/api/v1/conversations/telegram:2:2/messages", headers=admin)
    assert other.status == 404
    wrong = await tokens.get("/api/v1/conversations/rest:bob:bob/messages", headers=bearer("x"))
    assert wrong.status == 401
    odd = {"Authorization": "Bearer тест".encode().decode("latin-1")}
    mismatch = await tokens.get("/api/v1/conversations/rest:bob:bob/messages", headers=odd)
    assert mismatch.status == 401  # a non-ASCII header is a mismatch, not a 500


# --- the loopback exemption -------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"X-Forwarded-For": "203.0.113.7"},
        {"Forwarded": "for=203.0.113.7"},
        {"X-Real-IP": "203.0.113.7"},
    ],
)
async def test_no_loopback_exemption_for_a_request_that_came_through_a_proxy(
    client: TestClient, settings: Settings, header: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/messages", json={"sender": "via-proxy", "text": "привет"}, headers=header
    )
    assert resp.status == 403
    read = await client.get("/api/v1/conversations/rest:x:x/messages", headers=header)
    assert read.status == 403
    outages = await client.get("/api/v1/outages", headers=header)
    assert outages.status == 403
    assert rows(settings, "SELECT count(*) FROM conversations") == [(0,)]
    # The same machine without the header is the demo, and is let in.
    direct = await client.post("/api/v1/messages", json={"sender": "direct", "text": "привет"})
    assert direct.status == 200


async def test_no_loopback_exemption_when_the_gateway_has_a_public_url(
    aiohttp_client: Any, settings: Settings, services: Services
) -> None:
    public = replace(settings, public_url="https://bot.example.ru")
    client = await aiohttp_client(create_app(public, services=services))
    resp = await client.post("/api/v1/messages", json={"sender": "p", "text": "привет"})
    assert resp.status == 403
    assert (await client.get("/api/v1/conversations/rest:p:p/messages")).status == 403
    assert (await client.get("/api/v1/outages")).status == 403
    assert (await client.post("/api/v1/outages", json={})).status == 403


def test_start_up_warns_when_a_reachable_gateway_has_no_tokens(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assert warn_about_open_doors(settings) == []  # the demo on loopback: nothing to say
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        said = warn_about_open_doors(replace(settings, public_url="https://bot.example.ru"))
    assert len(said) == 2
    assert any("BOT_REST_TOKEN" in w and "closed" in w for w in said)
    assert any("BOT_ADMIN_TOKEN" in w and "/api/v1/outages" in w for w in said)
    assert "BOT_REST_TOKEN" in caplog.text
    assert len(warn_about_open_doors(replace(settings, host="0.0.0.0"))) == 2
    both = replace(settings, host="0.0.0.0", rest_token="r", admin_token="a")
    assert warn_about_open_doors(both) == []


# --- the outage API ---------------------------------------------------------------------------

OUTAGE: dict[str, Any] = {
    "outage_id": "h-1",
    "city_id": "chita",
    "street": "ул. Бутина",
    "houses": ["10"],
    "services": ["internet"],
    "kind": "accident",
    "started_at": "2026-01-01T08:10:00+09:00",
    "reason": "Повреждение кабеля",
}


async def test_deep_json_and_surrogates_at_the_outage_api_are_400(
    client: TestClient, services: Services
) -> None:
    assert services.outages is not None
    before = await services.outages.current(None)
    for deep in DEEP_SMALL:
        resp = await post_json(client, "/api/v1/outages", deep.encode())
        assert resp.status == 400
        assert "nested" in (await resp.json())["error"]
    for field in ("outage_id", "city_id", "kind", "services"):
        bad = {**OUTAGE, field: "x" + SURROGATE}
        resp = await post_json(client, "/api/v1/outages", _bytes(bad))
        assert resp.status == 400, field
    assert await services.outages.current(None) == before
    for path in (f"/api/v1/outages/{SURROGATE}", "/api/v1/outages/%ED%A0%80"):
        assert (await client.get(path)).status in (400, 404)
        assert (await client.delete(path)).status in (400, 404)
    odd_city = await client.get("/api/v1/outages", params={"city_id": "x" + SURROGATE})
    assert odd_city.status == 400


async def test_a_surrogate_in_an_outage_reason_is_stored_replaced(
    client: TestClient, services: Services
) -> None:
    resp = await post_json(
        client, "/api/v1/outages", _bytes({**OUTAGE, "reason": "Кабель" + SURROGATE})
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["outage"]["reason"] == "Кабель\ufffd"


# --- billing events ---------------------------------------------------------------------------


@pytest.fixture
async def billing(aiohttp_client: Any, settings: Settings, services: Services) -> TestClient:
    configured = replace(settings, billing_webhook_secret=BILLING_SECRET)
    return await aiohttp_client(create_app(configured, services=services))  # type: ignore[no-any-return]


async def _event(client: TestClient, body: bytes) -> Any:
    return await post_json(
        client,
        "/api/v1/billing/events",
        body,
        **{"X-Billing-Signature": sign(BILLING_SECRET, body)},
    )


async def test_deep_json_and_surrogates_in_signed_billing_events_are_400(
    billing: TestClient, services: Services
) -> None:
    before = await services.billing.account(BLOCKED)
    for deep in DEEP_SMALL:
        resp = await _event(billing, deep.encode())
        assert resp.status == 400
        assert "nested" in (await resp.json())["error"]
    good = {"id": "ev-1", "contract": BLOCKED, "kind": "payment", "amount_rub": "100"}
    for bad in (
        {**good, "id": "ev" + SURROGATE},
        {**good, "contract": "75004567892" + SURROGATE},
        {**good, "contract": "٧٥٠"},  # digits, but not a contract number
        {**good, "status": SURROGATE},
        {**good, "amount_rub": "1e999999"},
        {**good, "amount_rub": "0.001"},
        {**good, "amount_rub": [1]},
        {**good, "kind": "status", "amount_rub": "abc"},
    ):
        resp = await _event(billing, _bytes(bad))
        assert resp.status == 400, bad
        assert "error" in await resp.json()
    assert await services.billing.account(BLOCKED) == before
    assert await services.oplog.for_contract(BLOCKED) == []


# --- the safety net ---------------------------------------------------------------------------


async def test_an_unhandled_error_is_a_json_500_with_an_id_and_no_traceback(
    aiohttp_client: Any, settings: Settings, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, services=services)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail 750045678924")

    async def refused(request: web.Request) -> web.Response:
        raise UntrustedInput("'x' must be a whole number")

    app.router.add_get("/test/boom/{contract}", boom)
    app.router.add_get("/test/refused", refused)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        resp = await client.get("/test/boom/750045678924")
    assert resp.status == 500
    answer = await resp.json()
    assert answer["error"] == "internal error"
    assert len(answer["id"]) == 32
    assert "secret detail" not in json.dumps(answer)
    assert answer["id"] in caplog.text  # the traceback is logged under the id …
    assert "RuntimeError" in caplog.text
    logged_lines = [r.getMessage() for r in caplog.records]
    assert not any("/test/boom/750045678924" in line for line in logged_lines)  # … not the path

    resp = await client.get("/test/refused")
    assert resp.status == 400
    assert await resp.json() == {"error": "'x' must be a whole number"}
    assert (await client.get("/no/such/route")).status == 404  # aiohttp's own answers stay


async def test_the_store_keeps_an_unreadable_delivery_with_a_lone_surrogate(
    services: Services, settings: Settings
) -> None:
    await services.store.keep_unparsed("telegram", '{"text": "a' + SURROGATE + '"}', SURROGATE)
    kept = rows(settings, "SELECT body, problem FROM unparsed")
    assert kept == [('{"text": "a\ufffd"}', "\ufffd")]


# --- multipart and the parser's own refusals ----------------------------------------------------
BROKEN_PART = (
    b"--B\r\n"
    b'Content-Disposition: form-data; name="session"\r\n\r\nAAAAAAAAAAAAAAAAAAAAQ\r\n'
    b"--B\r\n"
    b'Content-Disposition: form-data; name="file"; filename="\xff\x00x.png"\r\n'
    b"Content-Type: image/png\r\n\r\nx\r\n--B--\r\n"
)
LONG_PART_HEADER = (
    b'--B\r\nContent-Disposition: form-data; name="file"; filename="'
    + b"a" * 9000
    + b'.png"\r\n\r\nx\r\n--B--\r\n'
)


@pytest.mark.parametrize("body", [BROKEN_PART, LONG_PART_HEADER], ids=["nul-in-header", "long"])
async def test_a_malformed_multipart_upload_is_a_400_and_leaves_no_file(
    client: TestClient, settings: Settings, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        resp = await client.post(
            "/api/v1/widget/upload",
            data=body,
            headers={"Content-Type": "multipart/form-data; boundary=B"},
        )
    assert resp.status == 400
    uploads = settings.var_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert "Traceback" not in caplog.text
    assert "unhandled error" not in caplog.text


async def test_any_handler_reading_a_broken_multipart_body_answers_400(
    aiohttp_client: Any, settings: Settings, services: Services
) -> None:
    app = create_app(settings, services=services)

    async def reads_parts(request: web.Request) -> web.Response:
        reader = await request.multipart()
        while await reader.next() is not None:
            pass
        return web.json_response({"ok": True})

    app.router.add_post("/test/parts", reads_parts)
    client = await aiohttp_client(app)
    resp = await client.post(
        "/test/parts", data=BROKEN_PART, headers={"Content-Type": "multipart/form-data; boundary=B"}
    )
    assert resp.status == 400
    assert await resp.json() == {"error": "the request is malformed"}


def test_the_parsers_refusals_are_one_info_line_without_a_traceback() -> None:
    from aiohttp.http_exceptions import LineTooLong

    from bot.log_noise import ClientMistakes

    try:
        raise LineTooLong("x" * 20, "8190")
    except LineTooLong:
        record = logging.getLogger("aiohttp.server").makeRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
            ("203.0.113.7",), sys.exc_info(),
        )  # fmt: skip
    assert ClientMistakes().filter(record)
    assert record.levelno == logging.INFO
    assert record.exc_info is None
    assert "LineTooLong" in record.getMessage()
    other = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "boom", (), None)
    assert ClientMistakes().filter(other)
    assert other.levelno == logging.ERROR
