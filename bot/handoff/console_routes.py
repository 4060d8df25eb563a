"""The operator console: three static files (``console/``, plain JavaScript, no build step)
served under ``/operator/``. The page talks to the operator API and its WebSocket only.

The page is locked down by its headers: no inline script or style, nothing from other hosts,
no framing. Customer text is shown with ``textContent`` by the script, and the policy is the
second line of defence should that ever slip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web
from aiohttp.typedefs import Handler

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    content_type: str
    etag: str


def _load(name: str, content_type: str) -> _Asset:
    body = (resources.files("bot.handoff.console") / name).read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return _Asset(body, content_type, etag)


def add_console_routes(app: web.Application) -> None:
    """``GET /operator`` (redirect), ``/operator/``, ``/operator/console.js``, ``.css``."""
    page = _load("index.html", "text/html")
    script = _load("console.js", "text/javascript")
    styles = _load("console.css", "text/css")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/operator/", headers=_COMMON_HEADERS)

    async def index(request: web.Request) -> web.Response:
        headers = {
            **_COMMON_HEADERS,
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
        }
        return web.Response(
            body=page.body, content_type=page.content_type, charset="utf-8", headers=headers
        )

    def static(asset: _Asset) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            # Revalidated on every load, so a deploy never pairs a new page with an old script.
            headers = {**_COMMON_HEADERS, "Cache-Control": "no-cache", "ETag": asset.etag}
            if request.headers.get("If-None-Match") == asset.etag:
                return web.Response(status=304, headers=headers)
            return web.Response(
                body=asset.body,
                content_type=asset.content_type,
                charset="utf-8",
                headers=headers,
            )

        return handler

    app.router.add_get("/operator", redirect)
    app.router.add_get("/operator/", index)
    app.router.add_get("/operator/console.js", static(script))
    app.router.add_get("/operator/console.css", static(styles))
