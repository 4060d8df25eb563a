"""The aiohttp application: channels, service endpoints, lifetimes via cleanup_ctx."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.channels.rest import RestChannel
from bot.config import Settings
from bot.files import FileLinks, add_public_file_route
from bot.handoff.api import OperatorApi
from bot.handoff.auth import STATUS_OF, setup_operator_auth
from bot.handoff.console_routes import add_console_routes
from bot.handoff.files import add_operator_file_routes
from bot.http import json_response
from bot.openapi import openapi_document
from bot.outages.api import OutageApi
from bot.requests.api import RequestApi
from bot.selfservice.billing_events import BillingEvents
from bot.services import Services, build_services
from bot.shutdown import RETRY_AFTER_SECONDS, Draining
from bot.storage.health import StoreUnavailable
from bot.untrusted import UntrustedInput
from bot.visits.api import VisitApi

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route(request: web.Request) -> str:
    """The route's template (``/api/v1/operator/customers/{contract}``), never the path itself:
    paths carry contract numbers and conversation ids, which stay out of the logs."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "(no route)"


@web.middleware
async def safety_net(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The net under every handler: outside input refused deep inside one is a 400 with the
    reason; any other unhandled exception is a JSON 500 carrying an incident id, with the
    traceback logged under that id and never sent. The goal is still no 500 at all: every
    door validates its own input; this only keeps a missed case from leaking a traceback."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise  # aiohttp's own answers (404, 405, 413 …) are already what the client should see
    except UntrustedInput as exc:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise  # the socket has its own close; there is no response to replace
        return json_response({"error": str(exc)}, status=400)
    except Draining:
        # Past the door just before SIGTERM: refused like the ones the door turns away.
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise
        return _draining_response()
    except StoreUnavailable:
        # Nothing was recorded: never a 200, or the platform would not deliver it again. The
        # store's health logs the episode once; a traceback per webhook would flood the log.
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise
        response = json_response({"error": "temporarily unavailable"}, status=503)
        response.headers["Retry-After"] = "5"
        return response
    except HttpProcessingError as exc:
        # aiohttp's parser refusing what a handler reads (a multipart part's broken header, a
        # line too long): the client's fault, a 400, and no traceback for anyone to flood.
        log.info("malformed request body in %s %s: %s", request.method, _route(request), exc.code)
        return json_response({"error": "the request is malformed"}, status=400)
    except ConnectionResetError:
        # The client went away mid-body: nobody to answer, nothing of ours went wrong.
        log.info("client went away during %s %s", request.method, _route(request))
        raise web.HTTPBadRequest() from None
    except Exception:
        incident = uuid.uuid4().hex
        log.exception("unhandled error in %s %s (id %s)", request.method, _route(request), incident)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            raise
        return json_response({"error": "internal error", "id": incident}, status=500)


# Where new work comes in: refused while the process drains (bot/shutdown.py). The operator
# console and the read-only routes keep working until the process exits.
INTAKE_PREFIXES = ("/webhooks/",)
INTAKE_PATHS = frozenset(
    {"/api/v1/messages", "/api/v1/widget/upload", "/api/v1/billing/events", "/ws/widget"}
)


def _draining_response() -> web.Response:
    response = json_response({"error": "shutting down"}, status=503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@web.middleware
async def drain_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """From SIGTERM on, every door that brings new work answers 503 with ``Retry-After`` before
    reading anything: the platform delivers again (to another process, or to this one
    restarted), the widget page reconnects elsewhere."""
    if request.app[SERVICES].ingress.draining and (
        request.path in INTAKE_PATHS or request.path.startswith(INTAKE_PREFIXES)
    ):
        return _draining_response()
    return await handler(request)


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or "" (every interface): not only this machine


def warn_about_open_doors(settings: Settings) -> list[str]:
    """Start-up warnings for the token-less doors on a gateway the world can reach (a public
    URL, or listening on more than loopback). Without the token such a door is closed to
    everyone, the world included; this says why, instead of leaving a 403 to puzzle over."""
    exposed = settings.public_url is not None or not _loopback_host(settings.host)
    if not exposed:
        return []
    where = "BOT_PUBLIC_URL is set" if settings.public_url else f"BOT_HOST is {settings.host}"
    warnings: list[str] = []
    if settings.rest_token is None:
        warnings.append(
            f"{where} and BOT_REST_TOKEN is not set: the REST API (/api/v1/messages, "
            "/api/v1/conversations) is closed to everyone but BOT_ADMIN_TOKEN until it is set"
        )
    if settings.admin_token is None:
        warnings.append(
            f"{where} and BOT_ADMIN_TOKEN is not set: the outage API (/api/v1/outages) is "
            "closed until it is set"
        )
    for warning in warnings:
        log.warning(warning)
    return warnings


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, bool] = {}
    try:
        # A read works on a full disk: the store also has to be writing (its health).
        checks["store"] = await services.store.ping() and not services.store.health.failing
    except Exception:  # a health check reports, it does not raise
        log.exception("store health check failed")
        checks["store"] = False
    try:
        checks["engine"] = bool(services.nlu.classifier.classify("привет"))
    except Exception:
        log.exception("engine health check failed")
        checks["engine"] = False
    healthy = all(checks.values())
    if services.ingress.draining:  # a load balancer sends nothing more here
        return json_response({"status": "draining", "checks": checks}, status=503)
    return json_response(
        {"status": "ok" if healthy else "failing", "checks": checks}, status=200 if healthy else 503
    )


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    # The scrape that shows store_failing 1 must not fail with the store: the queue lengths
    # stay as the last handoff tick saw them.
    with contextlib.suppress(StoreUnavailable):
        await services.handoff.refresh_metrics()
    services.store.health.refresh()
    body = services.metrics.render()
    return web.Response(text=body, content_type="text/plain", charset="utf-8")


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())


def create_app(settings: Settings, *, services: Services | None = None) -> web.Application:
    """Build the application. Services are built here unless given (tests share one set)."""
    app = web.Application(client_max_size=1024**2, middlewares=[drain_gate, safety_net])
    warn_about_open_doors(settings)
    built = services or build_services(settings)
    app[SERVICES] = built

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if services is None:  # we built them: we run and close them
            await built.start()
        yield
        if services is None:
            await built.close()

    app.cleanup_ctx.append(lifetime)
    RestChannel(
        gateway=built.gateway,
        store=built.store,
        token=settings.rest_token,
        identity_secret=settings.identity_secret,
        files=built.files,
        admin_token=settings.admin_token,
        public_url=settings.public_url,
    ).routes(app)
    add_public_file_route(app, built.files, FileLinks.from_settings(settings))
    add_operator_file_routes(app, built.files)
    for channel in built.channels.values():
        channel.routes(app)
    setup_operator_auth(
        app, built.operators, close_store=False,  # closed with the services
        trusted_proxies=settings.trusted_proxies, audit_log=built.audit, metrics=built.metrics,
    )  # fmt: skip

    async def status_of(login: str) -> str:  # online in any process (shared presence)
        return "online" if await built.handoff.is_online(login) else "away"

    app[STATUS_OF] = status_of
    OperatorApi(
        service=built.handoff,
        store=built.store,
        catalog=built.catalog,
        billing=built.billing,
        translator=built.translator,
        menu=built.engine.menu_buttons(),
        account_actions=built.account_actions,
    ).routes(app)
    RequestApi(built.requests).routes(app)
    BillingEvents(
        billing=built.billing,
        notices=built.notices,
        oplog=built.oplog,
        secret=settings.billing_webhook_secret,
    ).routes(app)
    if built.outages is not None:
        outage_api = OutageApi(
            service=built.outages,
            catalog=built.catalog,
            token=settings.admin_token,
            public_url=settings.public_url,
        )
        outage_api.routes(app)
    if built.visits is not None:
        VisitApi(built.visits).routes(app)
    add_console_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)
    return app
