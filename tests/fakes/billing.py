"""A fake billing bridge for tests: the API of docs/billing-api.md served on 127.0.0.1 on top of
the REAL embedded ledger, so the connector meets the same rules, idempotency and refusals a
provider's bridge would give, plus switches to make it misbehave like a real network does.

    async with running_fake_billing() as fake:
        billing = HttpBilling(fake.url, fake.token, timeout=1.0)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.billing.base import OPERATION_KINDS, BillingRefused, Operation
from bot.billing.ledger import LedgerBilling, open_ledger
from bot.billing.wire import account_to_json, transaction_to_json
from bot.catalog.catalog import load_catalog
from bot.config import DEMO_CATALOG

TOKEN = "fake-billing-token-5f2b"  # a test value; asserted absent from logs
PREFIX = "/bridge/v1"  # a base path, so the connector's URL joining is exercised

# Refusal codes that mean "your request is wrong" (422); any other code is a state conflict (409).
_UNPROCESSABLE = frozenset(
    {"bad_request", "unknown_operation", "unknown_tariff", "unknown_service"}
)

# Extra services for tests of service_on/service_off (the demo catalog may have none).


# A blocked account with money on it (an operator blocked it): the only state in which the
# ledger's "unblock" succeeds, since a payment that covers the debt unblocks by itself.
BLOCKED_WITH_MONEY = "750099999990"
_EXTRA_ACCOUNT = (
    f'{BLOCKED_WITH_MONEY},chita,Тестов Тест Тестович,+79140000099,,"ул. Бутина, 1, кв. 1",'
    "chita-inet-100,100.00,0,blocked,2026-12-01,false,,,\n"
)


def make_test_catalog(directory: Path) -> Path:
    """A copy of the demo catalog in ``directory`` with an account that is blocked with a
    positive balance."""
    shutil.copytree(DEMO_CATALOG, directory, dirs_exist_ok=True)
    accounts = directory / "accounts.csv"
    text = accounts.read_text(encoding="utf-8")
    accounts.write_text(text.rstrip("\n") + "\n" + _EXTRA_ACCOUNT, encoding="utf-8")
    return directory


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # as received, still percent-encoded
    query: dict[str, str]
    authorization: str | None
    idempotency_key: str | None
    body: Any


class FakeBilling:
    def __init__(
        self,
        *,
        token: str = TOKEN,
        data_dir: Path = DEMO_CATALOG,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.token = token
        self.ledger: LedgerBilling = open_ledger(
            data_dir, load_catalog(data_dir), path=":memory:", describe=str, clock=clock
        )
        self.requests: list[Seen] = []
        self.applied: list[str] = []  # operation ids the ledger carried out (not repeats)
        self.url = ""  # set when served: the base URL to give HttpBilling
        self._failures: list[tuple[int, str | None]] = []
        self._refusals: list[str] = []
        self._raw: list[tuple[int, str]] = []
        self._drops = 0
        self._delay = 0.0
        self._closing = asyncio.Event()  # cuts a delay short when the server stops

    # --- test controls -------------------------------------------------------------------
    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``)."""
        self._failures.extend([(status, retry_after)] * times)

    def recover(self) -> None:
        """The bridge is healthy again: pending failures and delays are dropped."""
        self._failures.clear()
        self._delay = 0.0

    def delay(self, seconds: float) -> None:
        """Hold every request this long before answering (0 to stop)."""
        self._delay = seconds

    def refuse_next(self, code: str) -> None:
        """Refuse the next operation with ``code``, without applying it."""
        self._refusals.append(code)

    def drop_after_apply(self, times: int = 1) -> None:
        """Apply the next operation(s), then answer 500: "it timed out after doing it"."""
        self._drops += times

    def answer_raw_next(self, body: str, *, status: int = 200) -> None:
        """Answer the next request with this body verbatim (malformed JSON, a wrong shape)."""
        self._raw.append((status, body))

    def operations(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST"]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(PREFIX + "/accounts", self._find)
        app.router.add_get(PREFIX + "/accounts/{contract}", self._account)
        app.router.add_get(PREFIX + "/accounts/{contract}/transactions", self._transactions)
        app.router.add_post(PREFIX + "/accounts/{contract}/operations", self._operation)
        return app

    # --- the API ---------------------------------------------------------------------------
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            Seen(request.method, request.raw_path.split("?")[0], dict(request.query),
                 request.headers.get("Authorization"), request.headers.get("Idempotency-Key"),
                 body)
        )  # fmt: skip
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _error(401, "unauthorized", "a valid bearer token is required")
        if self._delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._delay)
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {"Retry-After": retry_after} if retry_after is not None else None
            return web.json_response(
                {"error": {"code": "unavailable", "message": "try later"}},
                status=status,
                headers=headers,
            )
        if self._raw:
            status, text = self._raw.pop(0)
            return web.Response(status=status, text=text, content_type="application/json")
        response: web.StreamResponse = await handler(request)
        return response

    async def _account(self, request: web.Request) -> web.Response:
        account = await self.ledger.account(request.match_info["contract"])
        if account is None:
            return _error(404, "unknown_contract", "no such contract")
        return web.json_response(account_to_json(account))

    async def _find(self, request: web.Request) -> web.Response:
        phone = request.query.get("phone", "")
        if not phone:
            return _error(422, "bad_request", "phone is required")
        found = await self.ledger.find_by_phone(phone)
        return web.json_response({"accounts": [account_to_json(a) for a in found]})

    async def _transactions(self, request: web.Request) -> web.Response:
        contract = request.match_info["contract"]
        if await self.ledger.account(contract) is None:
            return _error(404, "unknown_contract", "no such contract")
        try:
            limit = int(request.query.get("limit", "10"))
        except ValueError:
            return _error(422, "bad_request", "limit must be a whole number")
        found = await self.ledger.transactions(contract, limit=max(0, min(limit, 100)))
        return web.json_response({"transactions": [transaction_to_json(t) for t in found]})

    async def _operation(self, request: web.Request) -> web.Response:
        contract = request.match_info["contract"]
        try:
            operation = _operation_from(
                await request.json(), request.headers.get("Idempotency-Key")
            )
        except (ValueError, TypeError) as exc:
            return _error(422, "bad_request", str(exc))
        if self._refusals:
            code = self._refusals.pop(0)
            return _error(_refusal_status(code), code, "refused by the test")
        try:
            account = await self.ledger.apply(contract, operation)
        except BillingRefused as exc:
            return _error(_refusal_status(exc.code), exc.code, str(exc))
        if operation.id not in self.applied:
            self.applied.append(operation.id)
        if self._drops:
            self._drops -= 1
            return _error(500, "internal", "applied, then the answer was lost")
        return web.json_response({"account": account_to_json(account)})


def _operation_from(body: Any, key: str | None) -> Operation:
    if not isinstance(body, dict):
        raise ValueError("the body must be an object")
    op_id = body.get("id")
    if not isinstance(op_id, str) or not op_id:
        raise ValueError("id must be a non-empty string")
    if key != op_id:
        raise ValueError("the Idempotency-Key header must equal the body's id")
    kind = body.get("kind")
    if kind not in OPERATION_KINDS:
        raise ValueError(f"unknown operation kind {kind!r}")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("params must be an object")
    at = body.get("at")
    return Operation(
        id=op_id,
        kind=kind,
        params=params,
        by=str(body.get("by") or "bot"),
        at=datetime.fromisoformat(at) if at else None,
    )


def _refusal_status(code: str) -> int:
    if code == "unknown_contract":
        return 404
    return 422 if code in _UNPROCESSABLE else 409


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@asynccontextmanager
async def running_fake_billing(**kwargs: Any) -> AsyncIterator[FakeBilling]:
    """Serve a ``FakeBilling`` on 127.0.0.1 (a free port) for the duration of the block."""
    fake = FakeBilling(**kwargs)
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url(PREFIX))
    try:
        yield fake
    finally:
        fake._closing.set()
        await server.close()
        await fake.ledger.close()
