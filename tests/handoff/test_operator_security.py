"""Issue 10 for the operator side: login throttling that cannot lock the operator out (also
behind a proxy), hostile input at every operator door (a 400 or 404, never a 500), and the
audit log of what operators do, readable by supervisors only.

The login checks run on a small app with the auth routes and an injected clock (nothing
sleeps); the doors and the audit go through the whole gateway on a test server.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.handoff.audit import AuditLog, SqliteAuditLog, default_audit_path, unknown_login
from bot.handoff.auth import setup_operator_auth
from bot.handoff.operators import Operator, SqliteOperatorStore
from bot.metrics import Metrics
from bot.requests.model import NewRequest
from bot.services import Services
from tests.conftest import Say, identity
from tests.handoff.operator_client import PASSWORD, Browser, add_operator

OTHER_PASSWORD = "another long secret"
LOGIN = "/api/v1/operator/login"
AUDIT = "/api/v1/operator/audit"
DEEP = "[" * 5000 + "]" * 5000
Client = TestClient[web.Request, web.Application]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# --- login throttling over HTTP ------------------------------------------------------------------
@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SqliteOperatorStore]:
    opened = SqliteOperatorStore(tmp_path / "operators.sqlite3", clock=clock)
    await opened.add(Operator("ivan", "Иван"), PASSWORD)
    yield opened
    await opened.close()


@pytest.fixture
async def audit_log(tmp_path: Path, clock: Clock) -> AsyncIterator[AuditLog]:
    opened = SqliteAuditLog(tmp_path / "audit.sqlite3", clock=clock)
    yield opened
    await opened.close()


async def _app(
    aiohttp_client: Any, store: SqliteOperatorStore, audit_log: AuditLog, *, proxies: str = ""
) -> tuple[Client, Metrics]:
    app = web.Application()
    metrics = Metrics()
    trusted = (ipaddress.ip_network(proxies),) if proxies else ()
    setup_operator_auth(
        app, store, close_store=False, trusted_proxies=trusted, audit_log=audit_log,
        metrics=metrics,
    )  # fmt: skip
    return await aiohttp_client(app), metrics


async def _login(http: Client, password: str, xff: str | None = None, login: str = "ivan") -> Any:
    headers = {"X-Forwarded-For": xff} if xff else {}
    return await http.post(LOGIN, json={"login": login, "password": password}, headers=headers)


async def _attack(http: Client, clock: Clock, failures: int, xff: str | None) -> int:
    """``failures`` wrong passwords, each after waiting as told; returns the 429s seen."""
    throttled = done = 0
    while done < failures:
        resp = await _login(http, OTHER_PASSWORD, xff)
        if resp.status == 429:
            throttled += 1
            clock.now += int(resp.headers["Retry-After"])
        else:
            assert resp.status == 401
            done += 1
    return throttled


async def test_behind_a_trusted_proxy_an_attacker_does_not_lock_the_operator_out(
    aiohttp_client: Any, store: SqliteOperatorStore, audit_log: AuditLog, clock: Clock
) -> None:
    http, metrics = await _app(aiohttp_client, store, audit_log, proxies="127.0.0.1/32")
    throttled = await _attack(http, clock, 100, xff="203.0.113.66")
    assert throttled > 50  # slowed down all along
    assert (await _login(http, PASSWORD, xff="203.0.113.66")).status == 429
    # Through the same proxy (the same TCP peer), the operator at their own address:
    assert (await _login(http, PASSWORD, xff="198.51.100.7")).status == 200
    assert metrics.value("operator_login_failures_total", reason="wrong_password") == 100
    assert metrics.value("operator_login_throttled_total", scope="login_address") >= throttled
    failed = await audit_log.find(action="login_failed", limit=1000)
    assert len(failed) == 100
    assert {e.address for e in failed} == {"203.0.113.66"}
    assert {e.login for e in failed} == {"ivan"}  # an existing operator: as given
    [ok] = await audit_log.find(action="login")
    assert (ok.login, ok.address) == ("ivan", "198.51.100.7")


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    aiohttp_client: Any, store: SqliteOperatorStore, audit_log: AuditLog
) -> None:
    http, _ = await _app(aiohttp_client, store, audit_log)  # no trusted proxies
    for n in range(3):  # a new "address" every time: still one client
        assert (await _login(http, OTHER_PASSWORD, xff=f"198.51.100.{n}")).status == 401
    resp = await _login(http, PASSWORD, xff="192.0.2.200")
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"
    assert {e.address for e in await audit_log.find()} == {"127.0.0.1"}


async def test_delays_grow_over_http(
    aiohttp_client: Any, store: SqliteOperatorStore, audit_log: AuditLog, clock: Clock
) -> None:
    http, _ = await _app(aiohttp_client, store, audit_log)
    waits = []
    while len(waits) < 5:
        resp = await _login(http, OTHER_PASSWORD)
        if resp.status == 429:
            waits.append(int(resp.headers["Retry-After"]))
            assert (await resp.json())["retry_after"] == waits[-1]
            clock.now += waits[-1]
    assert waits == [1, 2, 4, 8, 16]
    throttled = await audit_log.find(action="login_throttled")
    assert len(throttled) == 5
    assert throttled[0].details["scope"] == "login_address"


@pytest.mark.parametrize(
    "body",
    [
        '{"login": "iv\\ud800an", "password": "correct horse battery"}',
        '{"login": "ivan", "password": "\\ud800\\udfff correct horse"}',
        '{"login": "\\udfff", "password": "\\ud800"}',
    ],
)
async def test_lone_surrogates_in_a_login_are_a_401(
    aiohttp_client: Any, store: SqliteOperatorStore, audit_log: AuditLog, body: str
) -> None:
    http, _ = await _app(aiohttp_client, store, audit_log)
    resp = await http.post(LOGIN, data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 401
    assert (await resp.json())["error"] == "wrong login or password"
    assert (await _login(http, PASSWORD)).status == 200  # and nothing broke


@pytest.mark.parametrize(
    "body",
    [DEEP, '{"login": ' + DEEP + ', "password": "x"}', "{" * 3, '{"login": "' + "a" * 300 + '"}'],
)
async def test_malformed_or_deep_login_bodies_are_a_400(
    aiohttp_client: Any, store: SqliteOperatorStore, audit_log: AuditLog, body: str
) -> None:
    http, _ = await _app(aiohttp_client, store, audit_log)
    resp = await http.post(LOGIN, data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]


async def test_unknown_logins_are_audited_as_a_digest(
    aiohttp_client: Any, store: SqliteOperatorStore, audit_log: AuditLog, tmp_path: Path
) -> None:
    http, _ = await _app(aiohttp_client, store, audit_log)
    # People type their password into the login field: it must not be written down.
    assert (await _login(http, "x" * 12, login="my-secret-password")).status == 401
    assert (await _login(http, OTHER_PASSWORD)).status == 401
    known, unknown = await audit_log.find(action="login_failed")  # newest first
    assert unknown.login == unknown_login("my-secret-password")
    assert unknown.details == {"reason": "unknown_login"}
    assert (known.login, known.details) == ("ivan", {"reason": "wrong_password"})
    for name in ("audit.sqlite3", "operators.sqlite3"):
        raw = b"".join(p.read_bytes() for p in tmp_path.glob(name + "*"))
        assert b"my-secret-password" not in raw
        assert OTHER_PASSWORD.encode() not in raw


# --- the whole gateway: operator doors and the audit API -----------------------------------------
@pytest.fixture
async def people(client: TestClient, services: Services) -> AsyncIterator[dict[str, Browser]]:
    """anna is an operator, sveta a supervisor, both logged in."""
    await add_operator(services, "anna", name="Анна")
    await add_operator(services, "sveta", role="supervisor", name="Света")
    out = {login: Browser(client, login) for login in ("anna", "sveta")}
    for browser in out.values():
        assert await browser.login() == 200
    yield out
    for browser in out.values():
        await browser.close()


def conv(conversation_id: str, action: str = "") -> str:
    path = f"/api/v1/operator/conversations/{quote(conversation_id, safe='')}"
    return f"{path}/{action}" if action else path


async def _claimed(say: Say, anna: Browser, sender: str) -> str:
    answer = await say(sender, "позовите оператора пожалуйста", identity=identity("750012345678"))
    assert answer["state"] == "queued"
    conversation_id = f"rest:{sender}:{sender}"
    assert (await anna.post(conv(conversation_id, "claim")))[0] == 200
    return conversation_id


async def test_operator_reply_refuses_deep_json_and_cleans_surrogates(
    say: Say, people: dict[str, Browser], services: Services
) -> None:
    anna = people["anna"]
    cid = await _claimed(say, anna, "door-1")
    messages = conv(cid, "messages")
    status, body = await anna.post_raw(messages, '{"text": ' + DEEP + "}")
    assert status == 400
    assert "deeper" in body["error"]
    status, body = await anna.post_raw(messages, DEEP)
    assert status == 400
    status, body = await anna.post_raw(messages, '{"text": "Здравствуйте\\ud800!"}')
    assert status == 200
    assert body["message"]["text"] == "Здравствуйте\ufffd!"
    assert (await anna.post(messages, {"text": "я" * 4097}))[0] == 400
    assert (await anna.post(messages, {"text": "я" * 4096}))[0] == 200
    status, _ = await anna.post_raw(conv(cid, "notes"), '{"text": "\\udfff заметка"}')
    assert status == 200
    stored = [m.text for m in await services.store.messages(cid, limit=100)]
    assert "Здравствуйте\ufffd!" in stored


@pytest.mark.parametrize(
    "body",
    [
        {"to_department": ["billing"]},
        {"to_operator": {"login": "sveta"}},
        {"to_operator": 12},
        {"to_department": "billing", "note": ["x"]},
        {"to_department": "billing", "note": "x" * 5000},
    ],
)
async def test_transfer_with_wrong_types_is_a_400(
    say: Say, people: dict[str, Browser], body: dict[str, Any]
) -> None:
    cid = await _claimed(say, people["anna"], "door-2")
    status, answer = await people["anna"].post(conv(cid, "transfer"), body)
    assert status == 400, answer


@pytest.mark.parametrize(
    "conversation_id", ["nonsense", "rest:" + "x" * 600 + ":y", "a:b:c\x00", "rest:%ED%A0%80:x"]
)
async def test_conversation_ids_that_name_nothing_are_a_404(
    people: dict[str, Browser], conversation_id: str
) -> None:
    for action in ("", "claim"):
        path = conv(conversation_id, action)
        status, _ = await (
            people["anna"].get(path) if not action else people["anna"].post(path, {})
        )
        assert status == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/operator/requests/99999999999999999999999",
        "/api/v1/operator/visits/99999999999999999999999/windows",
        "/api/v1/operator/customers/" + "9" * 100,
    ],
)
async def test_overflowing_ids_are_a_404(people: dict[str, Browser], path: str) -> None:
    status, _ = await people["sveta"].get(path)
    assert status == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/operator/requests/99999999999999999999999",
        "/api/v1/operator/requests/1",
        "/api/v1/operator/visits/1",
        "/api/v1/operator/customers/750012345678/actions/pause",
        "/api/v1/operator/status",
    ],
)
async def test_deep_json_at_every_operator_door_is_a_400_or_404(
    people: dict[str, Browser], path: str
) -> None:
    status, body = await people["anna"].post_raw(path, DEEP)
    assert status in (400, 404), body
    status, body = await people["anna"].post_raw(path, b"\xff\xfe not utf-8")
    assert status in (400, 404), body


async def test_request_comment_with_surrogates_is_cleaned(
    people: dict[str, Browser], services: Services
) -> None:
    record = await services.requests.create(
        NewRequest("callback", "rest:c1:c1", name="Анна", phone="+79145551234")
    )
    path = f"/api/v1/operator/requests/{record.id}"
    status, body = await people["anna"].post_raw(path, '{"comment": "перезвонить \\ud800"}')
    assert status == 200, body
    status, body = await people["anna"].post_raw(path, '{"status": ["new"]}')
    assert status == 400


@pytest.mark.parametrize(
    "query",
    [
        "limit=-99999999999999999999999",
        "limit=99999999999999999999999",
        "limit=0",
        "limit=abc",
        "since=yesterday",
        "since=" + "9" * 100,
        "action=everything",
    ],
)
async def test_audit_query_refuses_bad_numbers_with_a_400(
    people: dict[str, Browser], query: str
) -> None:
    status, body = await people["sveta"].get(f"{AUDIT}?{query}")
    assert status == 400, body
    assert body["error"]


async def test_supervisors_read_the_audit_of_operator_actions(
    say: Say, people: dict[str, Browser], services: Services, client: TestClient
) -> None:
    anna, sveta = people["anna"], people["sveta"]
    cid = await _claimed(say, anna, "audit-1")
    assert (await anna.get(conv(cid)))[0] == 200
    assert (await anna.get("/api/v1/operator/customers/750012345678"))[0] == 200
    status, _ = await anna.post(
        "/api/v1/operator/customers/750012345678/actions/promised_payment", {"dry_run": True}
    )
    assert (await anna.post(conv(cid, "close")))[0] == 200
    assert (await anna.get("/api/v1/operator/requests.csv"))[0] == 200
    assert (await sveta.get("/api/v1/operator/requests.csv?phones=full"))[0] == 200

    assert (await anna.get(AUDIT))[0] == 403  # operators do not read the audit
    status, body = await sveta.get(f"{AUDIT}?login=anna")
    assert status == 200
    actions = [e["action"] for e in body["entries"]]
    for expected in (
        "login", "conversation.claim", "conversation.open", "customer.card",
        "conversation.close", "requests.export",
    ):  # fmt: skip
        assert expected in actions, (expected, actions)
    assert actions[0] == "requests.export"  # newest first
    opened = next(e for e in body["entries"] if e["action"] == "conversation.open")
    assert (opened["target"], opened["details"]["contract"]) == (cid, "750012345678")
    assert opened["address"] == "127.0.0.1"

    status, body = await sveta.get(f"{AUDIT}?action=conversation.*&limit=2")
    assert [e["action"] for e in body["entries"]] == ["conversation.close", "conversation.open"]
    # several codes and families at once, comma-separated (the console's «Входы»)
    status, body = await sveta.get(f"{AUDIT}?action=login,customer.*&login=anna")
    assert {e["action"] for e in body["entries"]} == {"login", "customer.card"}
    assert (await sveta.get(f"{AUDIT}?action=login,nonsense"))[0] == 400
    status, body = await sveta.get(f"{AUDIT}?action=requests.export&login=sveta")
    [full] = body["entries"]
    assert full["details"]["phones"] == "full"
    status, body = await sveta.get(f"{AUDIT}?since=2100-01-01")
    assert body["entries"] == []

    status, text = await sveta.get(f"{AUDIT}.csv?login=anna")
    assert status == 200
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    assert rows[0] == ["at", "login", "action", "target", "address", "details"]
    assert {r[2] for r in rows[1:]} >= {"login", "conversation.claim"}
    status, body = await sveta.get(f"{AUDIT}?action=audit.export")
    assert body["entries"][0]["login"] == "sveta"  # reading it all out is itself written down


async def test_the_audit_holds_no_secrets_and_old_entries_go(
    people: dict[str, Browser], services: Services, client: TestClient
) -> None:
    anna = people["anna"]
    assert await anna.login(OTHER_PASSWORD) == 401
    assert await anna.login() == 200
    cookie = anna.session.cookie_jar.filter_cookies(client.make_url("/"))["op_session"].value
    assert services.audit is not None
    raw = default_audit_path(services.settings).read_bytes()
    for secret in (PASSWORD, OTHER_PASSWORD, anna.csrf, cookie):
        assert secret.encode() not in raw
    for entry in await services.audit.find(limit=100):
        assert PASSWORD not in json.dumps(entry.as_json())
    assert await services.audit.delete_older_than(1) == 0
    assert await services.audit.delete_older_than(-1) > 0  # "older than tomorrow": everything
    assert await services.audit.find() == []
