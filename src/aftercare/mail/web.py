"""The unsubscribe pages the ASGI app (:mod:`aftercare.asgi`) serves.

``GET /unsubscribe/{token}`` only shows a page with a button: link scanners
and mail previews fetch every link, and a fetch must never unsubscribe
anyone. ``POST /unsubscribe/{token}`` records it; the same URL is the
``List-Unsubscribe`` target, so a mail client's RFC 8058 one-click POST
(body ``List-Unsubscribe=One-Click``) lands here too. Posting twice is fine.

An unsubscribe is recorded once (:meth:`aftercare.store.Store.record_unsubscribe`):
the customer's consent (``unsubscribed``, with its source and time) and the
suppression list every later marketing send checks, in one transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from aftercare.mail.templates import environment, locale_chain, template_roots
from aftercare.mail.unsubscribe import PATH, InvalidToken, Unsubscribe, read_token

if TYPE_CHECKING:
    from aftercare.app import App

#: Every customer page (this one, the survey and opt-in pages): nothing loads from elsewhere but a
#: shop's own https images (a logo in an overridden page), no script runs, no other site frames it,
#: and the link's token never leaves in a Referer. Styles are inline in ``_page.html``.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def routes(app: App) -> list[Route]:
    async def unsubscribe(request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        try:
            link = read_token(app, token)
        except InvalidToken:
            return HTMLResponse(page(app, None, "invalid"), status_code=400, headers=PAGE_HEADERS)
        if request.method == "GET":
            return HTMLResponse(page(app, link, "confirm"), headers=PAGE_HEADERS)
        # RFC 8058: the client posts ``List-Unsubscribe=One-Click``; our form posts nothing.
        one_click = parse_qs((await request.body()).decode("utf-8", "replace")).get("List-Unsubscribe") == ["One-Click"]
        source = "one-click unsubscribe (RFC 8058)" if one_click else "unsubscribe link"
        await run_in_threadpool(record_unsubscribe, app, link, source)
        return HTMLResponse(page(app, link, "done"), headers=PAGE_HEADERS)

    return [Route(PATH + "/{token}", unsubscribe, methods=["GET", "POST"], name="unsubscribe")]


def record_unsubscribe(app: App, link: Unsubscribe, source: str) -> None:
    # Posted twice, or by a mail client and the customer at the same moment, it is one change.
    app.store.record_unsubscribe(link.shop_id, link.email, source)


def page(app: App, link: Unsubscribe | None, state: str) -> str:
    """The page in the reader's language, from ``_unsubscribe.html`` (a shop may override it)."""
    shop = app.shop(link.shop_id).profile if link else None
    chain = locale_chain(link.locale, shop.locale) if link and shop else locale_chain("")
    env = environment(template_roots(app, shop.id if shop else None), chain, chain[0], shop.timezone if shop else "UTC")
    variables = {"shop": {"id": shop.id, "name": shop.name} if shop else None, "email": link.email if link else ""}
    return env.get_template("_unsubscribe.html").render(state=state, **variables)
