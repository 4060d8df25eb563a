"""Schemathesis against our own OpenAPI document, served by the running gateway: every
documented operation is called with generated requests (valid and not), authenticated the way
a real client is (REST token, admin token, an operator's cookie and CSRF token), and every
answer must be documented, match its schema, and never be a 5xx."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.app import create_app
from bot.config import Settings
from bot.handoff.operators import Operator
from bot.intents.nlu import Nlu
from bot.openapi import openapi_document
from bot.services import Services, build_services
from tests.conftest import IDENTITY_SECRET, identity
from tests.fuzz.conftest import examples

REST_TOKEN = "fuzz-rest-token"
ADMIN_TOKEN = "fuzz-admin-token"
BILLING_SECRET = "fuzz-billing-secret"
LOGIN, PASSWORD = "fuzzer", "a long enough password"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Gateway:
    base_url: str
    services: Services
    loop: asyncio.AbstractEventLoop
    operator_cookies: dict[str, str]
    csrf: str


def _serve(
    settings: Settings, nlu: Nlu, ready: threading.Event, stop: threading.Event, out: dict[str, Any]
) -> None:
    """The gateway on a real TCP port in its own thread and loop: schemathesis's client is
    synchronous (requests), so the server must not share the test's thread."""

    async def main() -> None:
        services = build_services(settings, nlu=nlu)
        runner = web.AppRunner(create_app(settings, services=services))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        await services.start()
        await services.operators.add(
            Operator(LOGIN, "Фаззер", departments=("general", "billing", "technical", "sales"),
                     role="supervisor"),
            PASSWORD,
        )  # fmt: skip
        out.update(port=runner.addresses[0][1], services=services, loop=asyncio.get_running_loop())
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await services.close()
        await runner.cleanup()

    try:
        asyncio.run(main())
    except BaseException as exc:  # surfaced by the fixture instead of hanging it
        out["error"] = exc
        ready.set()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, demo_nlu: Nlu) -> Iterator[Gateway]:
    var = tmp_path_factory.mktemp("fuzz-var")
    configured = replace(
        Settings(),
        var_dir=var,
        identity_secret=IDENTITY_SECRET,
        rest_token=REST_TOKEN,
        admin_token=ADMIN_TOKEN,
        billing_webhook_secret=BILLING_SECRET,
    )
    ready, stop, out = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=_serve, args=(configured, demo_nlu, ready, stop, out))
    thread.start()
    try:
        assert ready.wait(60), "the gateway did not start"
        if "error" in out:
            raise out["error"]
        base = f"http://127.0.0.1:{out['port']}"
        _demo_data(base)
        login = requests.post(
            f"{base}/api/v1/operator/login", json={"login": LOGIN, "password": PASSWORD}, timeout=10
        )
        assert login.status_code == 200, login.text
        yield Gateway(
            base, out["services"], out["loop"], dict(login.cookies), login.json()["csrf_token"]
        )
    finally:
        stop.set()
        thread.join(30)


def _demo_data(base: str) -> None:
    """A few conversations, one identified and one with people, so that generated ids sometimes
    hit something and the transcript and queue answers are not all empty."""
    auth = {"Authorization": f"Bearer {REST_TOKEN}"}
    for body in (
        {"sender": "fuzz-1", "text": "какие тарифы в Братске?"},
        {"sender": "fuzz-2", "text": "мой баланс", "identity": identity("100001")},
        {"sender": "fuzz-3", "text": "позовите оператора пожалуйста"},
    ):
        answer = requests.post(f"{base}/api/v1/messages", json=body, headers=auth, timeout=30)
        assert answer.status_code == 200, answer.text


# The document the gateway serves (test_the_served_document_is_this_one), loaded at collection
# so that every operation is a test of its own. The widget's socket and the operator's event
# socket need a WebSocket client, not HTTP requests; test_doors.py fuzzes their frames.
SCHEMA = schemathesis.openapi.from_dict(openapi_document()).exclude(
    path_regex=r"^/(ws/widget|api/v1/operator/events)$"
)
OPERATIONS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}


def _credentials(case: Any, gateway: Gateway) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, cookies) a real client of that door would send."""
    path = case.path
    if path.startswith("/api/v1/operator/"):
        if path.endswith("/login") or path.endswith("/logout"):
            return {}, {}  # never end the shared session, never lock the account
        return {"X-CSRF-Token": gateway.csrf}, dict(gateway.operator_cookies)
    if path.startswith("/api/v1/outages"):
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}, {}
    if path.startswith(("/api/v1/messages", "/api/v1/conversations", "/api/v1/files")):
        return {"Authorization": f"Bearer {REST_TOKEN}"}, {}
    return {}, {}


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_documented_operation(label: str, gateway: Gateway) -> None:
    operation = OPERATIONS[label]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(max_examples=examples(15))
    @given(cases)
    def call(case: Any) -> None:
        headers, cookies = _credentials(case, gateway)
        case.headers = {**(case.headers or {}), **headers}
        case.cookies = {**(case.cookies or {}), **cookies}
        case.call_and_validate(base_url=gateway.base_url, checks=CHECKS, timeout=30)

    call()


def test_the_served_document_is_this_one(gateway: Gateway) -> None:
    answer = requests.get(f"{gateway.base_url}/api/v1/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == openapi_document()


def _template(path: str) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", "{}", path)


async def test_every_api_route_is_documented_so_it_is_fuzzed(client: TestClient) -> None:
    """A route missing from the document is a door schemathesis never knocks on. Pages for
    browsers (the console, the demo page) are not API."""
    documented = {
        (_template(path), method.upper())
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }
    served = {
        (_template(route.resource.canonical), route.method)
        for route in client.app.router.routes()
        if route.resource is not None and route.method not in ("HEAD", "OPTIONS")
    }
    pages = {p for p in served if p[0] == "/" or p[0].startswith("/operator")}
    assert served - pages - documented == set()
