"""Installing the platform app on a shop through a link (Shopify's authorization code grant).

An agency's app cannot use the client credentials grant on a client's store
(the store belongs to another organization), so the store's owner or a
collaborator installs it: ``aftercare shopify install --shop ID`` asks the
shop's adapter for the install link, the person opens it and approves, and
the platform sends the browser back to this deployment's callback,
``{public_url}/oauth/{platform}/{shop_id}/callback``. The adapter checks that
callback (signature, nonce, shop) and keeps the token; the page tells the
person what happened, never with a secret in it.

The core reaches the adapter only through :class:`aftercare.platform.Adapter`
(``install_url`` and ``finish_install``).
"""

from __future__ import annotations

import html
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from aftercare.platform import InstallRejected, PlatformError

if TYPE_CHECKING:
    from aftercare.app import App

log = logging.getLogger("aftercare.install")

CALLBACK_ROUTE = "/oauth/{platform}/{shop_id}/callback"
#: The code travels in the callback's URL: no caching, and no Referer to anywhere the page links.
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def callback_url(app: App, shop_id: str) -> str:
    """Where the platform sends the browser back after an install (allow it in the app's settings)."""
    platform = app.shop(shop_id).config.platform
    path = CALLBACK_ROUTE.format(platform=platform, shop_id=shop_id)
    return f"{app.config.public_url.rstrip('/')}{path}"


def install_link(app: App, shop_id: str, valid_for: timedelta) -> str:
    """The link that installs the app on the shop; raises PlatformError if it does not install that way."""
    return app.adapter(shop_id).install_url(callback_url(app, shop_id), valid_for)


def finish(app: App, shop_id: str, query: list[tuple[str, str]]) -> str:
    """Complete the install from the callback's query; raises InstallRejected."""
    try:
        return app.adapter(shop_id).finish_install(query, callback_url(app, shop_id))
    except PlatformError as exc:  # e.g. the store is unreachable while keeping the token
        raise InstallRejected(503, f"could not complete the install: {exc.message}") from None


def routes(app: App) -> list[Route]:
    async def callback(request: Request) -> HTMLResponse:
        platform, shop_id = request.path_params["platform"], request.path_params["shop_id"]
        shop = app.shops.get(shop_id)
        if shop is None or shop.config.platform != platform:
            return _page(404, "Not installed", f"This deployment has no {platform} shop {shop_id!r}.")
        query = list(request.query_params.multi_items())
        try:
            message = await run_in_threadpool(finish, app, shop_id, query)
        except InstallRejected as exc:
            log.warning("install shop=%s refused %d: %s", shop_id, exc.status, exc.reason)
            return _page(exc.status, "Not installed", exc.reason)
        log.info("install shop=%s: %s", shop_id, message)
        return _page(200, "Installed", f"{message} You can close this page.")

    return [Route(CALLBACK_ROUTE, callback, methods=["GET"])]


def _page(status: int, title: str, message: str) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>aftercare: {html.escape(title)}</title></head>"
        '<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; padding: 0 1rem">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=_HEADERS)
