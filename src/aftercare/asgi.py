"""The ASGI application one ``aftercare serve`` process runs: every route, behind the request limits.

Each part gives its own routes: the webhook receiver (:mod:`aftercare.receiver`:
webhooks, ``/healthz``, ``/metrics``), unsubscribe (:mod:`aftercare.mail.web`),
the customer pages (:mod:`aftercare.pages`), the Shopify install
(:mod:`aftercare.install`) and the console (:mod:`aftercare.console.web`). This
module sits above all of them and puts them in one Starlette application; the
receiver's committer runs for the application's lifespan.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from aftercare.app import App
from aftercare.console.web import routes as console_routes
from aftercare.install import routes as install_routes
from aftercare.limits import RequestLimits
from aftercare.mail.web import routes as mail_routes
from aftercare.pages import routes as page_routes
from aftercare.queue import Enqueuer
from aftercare.receiver import webhook_routes


def create_asgi_app(
    app: App, enqueuer: Enqueuer, extra_routes: list[BaseRoute] | None = None, *, expects_worker: bool = False
) -> Starlette:
    """The receiver's, the mail's, the pages', the install's and the console's routes in one application.

    ``enqueuer``: the queue's producer side, on which the receiver, the pages and the console
    enqueue (a Worker's own ``worker.queue`` will do). ``expects_worker``: a worker process should be
    running (serve's child): /healthz reports it."""
    receiver = webhook_routes(app, enqueuer, expects_worker=expects_worker)
    routes: list[BaseRoute] = [
        *receiver.routes,
        *mail_routes(app),
        *page_routes(app, enqueuer),
        *install_routes(app),
        *console_routes(app, enqueuer),
        *(extra_routes or []),
    ]
    server = app.config.server
    limits = Middleware(
        RequestLimits,
        webhook_bytes=server.max_body_bytes,
        form_bytes=server.max_form_bytes,
        timeout_seconds=server.body_timeout_seconds,
    )
    return Starlette(routes=routes, lifespan=receiver.lifespan, middleware=[limits])
