"""``HttpBilling``: the connector to a provider's billing bridge, the small JSON-over-HTTP API of
``docs/billing-api.md`` (``docs/billing-api.openapi.json``).

A customer is waiting on every call, so one call never takes longer than ``BILLING_TIMEOUT``
in total, retries included. Reads are retried on a dropped connection, 5xx and 429. Operations
are retried on the same failures too, and only because every attempt carries the operation's id
as ``Idempotency-Key``: the bridge applies an id once, so a retry after "applied, then the
answer was lost" returns the account without doing it twice.

Nothing personal goes into logs or error messages: endpoints are named by their template
(``/accounts/{contract}``), never with the contract number, phone or token filled in.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)
from yarl import URL

from bot.billing.base import Billing, BillingRefused, BillingUnavailable, Operation
from bot.billing.wire import account_from_json, transaction_from_json
from bot.catalog.models import Account, Transaction
from bot.config import ConfigError, Settings

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# Backoff between attempts: short, because the whole call must fit the timeout budget.
_BACKOFF = wait_exponential_jitter(multiplier=0.2, max=1.0, jitter=0.1)
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REFUSAL_STATUSES = frozenset({400, 409, 422})


class _Retryable(BillingUnavailable):
    """A failure worth another attempt (the bridge may answer next time)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    text_ok: bool  # the body parsed as JSON (or was empty)


def _jsonable(value: Any) -> Any:
    """Operation params may carry dates and amounts; they travel as ISO dates and strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _retry_after(header: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _wait(state: RetryCallState) -> float:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, _Retryable) and error.retry_after is not None:
        # The bridge said when; a wait past the budget is refused by stop_before_delay.
        return error.retry_after
    return _BACKOFF(state)


def _log_retry(state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    log.warning(
        "billing bridge: %s, attempt %d of %d, retrying in %.2fs",
        error,
        state.attempt_number,
        MAX_ATTEMPTS,
        state.upcoming_sleep,
    )


def _error_code(body: Any) -> tuple[str, str] | None:
    """``(code, message)`` of an ``{"error": {"code", "message"}}`` body, if it is one."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if not isinstance(error, Mapping) or not isinstance(error.get("code"), str):
        return None
    message = error.get("message")
    return error["code"], message if isinstance(message, str) else ""


class HttpBilling(Billing):
    def __init__(self, base_url: str, token: str, *, timeout: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: a ClientSession belongs to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Accept": "application/json",
                    "User-Agent": "isp-support-gateway",
                },
                raise_for_status=False,
            )
        return self._session

    def _url(self, *segments: str) -> URL:
        # Each segment quoted whole ("/" included), so a contract number can never change which
        # endpoint is asked; encoded=True keeps yarl from decoding it back.
        return URL(self._base + "".join("/" + quote(s, safe="") for s in segments), encoded=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- the Billing interface ------------------------------------------------------------
    async def account(self, contract_number: str) -> Account | None:
        if not _plausible(contract_number):
            return None
        what = "GET /accounts/{contract}"
        answer = await self._call("GET", self._url("accounts", contract_number), what=what)
        if answer.status == 404 and self._unknown_contract(answer, what):
            return None
        self._expect_ok(answer, what)
        return self._account(answer.body, what)

    async def find_by_phone(self, phone: str) -> list[Account]:
        what = "GET /accounts?phone"
        answer = await self._call("GET", self._url("accounts"), params={"phone": phone}, what=what)
        self._expect_ok(answer, what)
        items = answer.body.get("accounts") if isinstance(answer.body, Mapping) else None
        if not isinstance(items, list):
            raise BillingUnavailable(f"billing bridge: {what}: expected {{'accounts': [...]}}")
        return [self._account(item, what, key=None) for item in items]

    async def transactions(self, contract_number: str, *, limit: int = 10) -> list[Transaction]:
        if not _plausible(contract_number) or limit <= 0:
            return []
        what = "GET /accounts/{contract}/transactions"
        answer = await self._call(
            "GET",
            self._url("accounts", contract_number, "transactions"),
            params={"limit": str(limit)},
            what=what,
        )
        if answer.status == 404 and self._unknown_contract(answer, what):
            return []
        self._expect_ok(answer, what)
        items = answer.body.get("transactions") if isinstance(answer.body, Mapping) else None
        if not isinstance(items, list):
            raise BillingUnavailable(f"billing bridge: {what}: expected {{'transactions': [...]}}")
        try:
            found = [
                transaction_from_json(item, contract_number, f"transactions[{i}]")
                for i, item in enumerate(items)
            ]
        except ValueError as exc:
            raise BillingUnavailable(f"billing bridge: {what}: {exc}") from None
        # Stable sort: the documented order is enforced even if a bridge forgets it.
        found.sort(key=lambda t: t.at, reverse=True)
        return found[:limit]

    async def apply(self, contract_number: str, operation: Operation) -> Account:
        if not _plausible(contract_number):
            raise BillingRefused("unknown_contract", "no such contract")
        what = f"POST /accounts/{{contract}}/operations ({operation.kind})"
        body = {
            "id": operation.id,
            "kind": operation.kind,
            "params": dict(operation.params),
            "by": operation.by,
            "at": operation.at.isoformat() if operation.at else None,
        }
        answer = await self._call(
            "POST",
            self._url("accounts", contract_number, "operations"),
            data=json.dumps(body, default=_jsonable, ensure_ascii=False).encode(),
            headers={"Idempotency-Key": operation.id, "Content-Type": "application/json"},
            what=what,
        )
        if answer.status == 404 and self._unknown_contract(answer, what):
            raise BillingRefused("unknown_contract", "no such contract")
        if answer.status in _REFUSAL_STATUSES:
            # The bridge answered and said no: nothing was done, so no retry.
            code, message = _error_code(answer.body) or (
                "refused",
                f"the billing refused (HTTP {answer.status}) without saying why",
            )
            raise BillingRefused(code, message)
        self._expect_ok(answer, what)
        return self._account(answer.body, what, key="account")

    # --- plumbing -------------------------------------------------------------------------
    async def _call(
        self,
        method: str,
        url: URL,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        """One request, retried within the timeout budget; the final answer (any status that
        is not worth retrying) or ``BillingUnavailable``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        retrying = AsyncRetrying(
            stop=stop_after_attempt(MAX_ATTEMPTS) | stop_before_delay(self._timeout),
            wait=_wait,
            retry=retry_if_exception_type(_Retryable),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return await retrying(
                self._attempt, method, url, deadline=deadline, what=what, params=params,
                data=data, headers=headers,
            )  # fmt: skip
        except _Retryable as exc:
            raise BillingUnavailable(f"billing bridge: {exc}") from None

    async def _attempt(
        self,
        method: str,
        url: URL,
        *,
        deadline: float,
        what: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> _Answer:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise BillingUnavailable(f"billing bridge: {what}: no answer within {self._timeout}s")
        try:
            async with self._client().request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=left),
            ) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except TimeoutError:
            # The budget is spent: no retry, the customer hears an apology in time.
            raise BillingUnavailable(
                f"billing bridge: {what}: no answer within {self._timeout}s"
            ) from None
        except aiohttp.ClientError as exc:
            # Only the class name: aiohttp's messages carry the URL, and with it the contract.
            raise _Retryable(f"{what}: {type(exc).__name__}") from None
        if status in _RETRY_STATUSES:
            raise _Retryable(f"{what}: HTTP {status}", retry_after)
        if status in (401, 403):
            raise BillingUnavailable(f"billing bridge: {what}: HTTP {status}, check BILLING_TOKEN")
        try:
            body = json.loads(raw) if raw.strip() else None
            parsed = True
        except ValueError:
            body, parsed = None, False
        return _Answer(status, body, parsed)

    def _unknown_contract(self, answer: _Answer, what: str) -> bool:
        """A 404 means "no such contract" only when the bridge says so: a 404 page of a wrong
        BILLING_URL must not tell every customer that their contract does not exist."""
        error = _error_code(answer.body)
        if error is not None and error[0] == "unknown_contract":
            return True
        raise BillingUnavailable(
            f"billing bridge: {what}: HTTP 404 without error code unknown_contract, "
            "check BILLING_URL"
        )

    def _expect_ok(self, answer: _Answer, what: str) -> None:
        if answer.status != 200:
            raise BillingUnavailable(f"billing bridge: {what}: unexpected HTTP {answer.status}")
        if not answer.text_ok or answer.body is None:
            raise BillingUnavailable(f"billing bridge: {what}: the body is not JSON")

    def _account(self, body: Any, what: str, *, key: str | None = None) -> Account:
        raw = body.get(key) if key is not None and isinstance(body, Mapping) else body
        try:
            return account_from_json(raw)
        except ValueError as exc:
            # wire's messages name the field, never its value.
            raise BillingUnavailable(f"billing bridge: {what}: {exc}") from None


def _plausible(contract_number: str) -> bool:
    # "" / "." / ".." would name another path after URL normalisation; no contract looks so.
    return contract_number.strip(".") != ""


def http_billing_from_settings(settings: Settings) -> HttpBilling | None:
    """The connector when ``BILLING_URL`` is set, else None (the embedded ledger is used)."""
    if not settings.billing_url:
        return None
    parts = urlsplit(settings.billing_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("BILLING_URL must be an http:// or https:// address")
    if not settings.billing_token:
        # The bridge moves money: it must not answer to anyone who can reach it.
        raise ConfigError("BILLING_URL is set but BILLING_TOKEN is empty")
    if settings.billing_timeout <= 0:
        raise ConfigError("BILLING_TIMEOUT must be a positive number of seconds")
    return HttpBilling(
        settings.billing_url, settings.billing_token, timeout=settings.billing_timeout
    )
