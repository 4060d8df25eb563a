"""The aiohttp application: channels, service endpoints, lifetimes via cleanup_ctx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

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
from bot.visits.api import VisitApi

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, bool] = {}
    try:
        checks["store"] = await services.store.ping()
    except Exception:  # a health check reports, it does not raise
        log.exception("store health check failed")
        checks["store"] = False
    try:
        checks["engine"] = bool(services.nlu.classifier.classify("привет"))
    except Exception:
        log.exception("engine health check failed")
        checks["engine"] = False
    healthy = all(checks.values())
    return json_response(
        {"status": "ok" if healthy else "failing", "checks": checks}, status=200 if healthy else 503
    )


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    await services.handoff.refresh_metrics()
    body = services.metrics.render()
    return web.Response(text=body, content_type="text/plain", charset="utf-8")


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document())


def create_app(settings: Settings, *, services: Services | None = None) -> web.Application:
    """Build the application. Services are built here unless given (tests share one set)."""
    app = web.Application(client_max_size=1024**2)
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
    ).routes(app)
    add_public_file_route(app, built.files, FileLinks.from_settings(settings))
    add_operator_file_routes(app, built.files)
    for channel in built.channels.values():
        channel.routes(app)
    setup_operator_auth(app, built.operators, close_store=False)  # closed with the services
    app[STATUS_OF] = lambda login: "online" if built.handoff.is_online(login) else "away"
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
            service=built.outages, catalog=built.catalog, token=settings.admin_token
        )
        outage_api.routes(app)
    if built.visits is not None:
        VisitApi(built.visits).routes(app)
    add_console_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/openapi.json", openapi)
    return app
