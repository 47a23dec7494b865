"""The console's routes, mounted by the ASGI app (:mod:`aftercare.asgi`) under ``/console``.

Every route goes through :func:`Console.page`: without a valid session a GET
is sent to the login page (302) and anything else gets 401, before any data
is read; a POST must carry the session's CSRF token (403 otherwise). A shop
the user may not see, or an action or order of such a shop, answers 404,
exactly as an id that does not exist, so ids of other clients cannot even be
probed.

Pages are Jinja2 templates from this package (their own autoescaping
environment, not the mail one), CSS inline, no script, no request to
anywhere else: they work offline and on a phone.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

import anyio
import jinja2
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from aftercare.actions import ActionKind, ActionRecord, ActionState, ReasonCode
from aftercare.console import accounts, messages, queries
from aftercare.console.auth import COOKIE, LoginLimiter, Session, SessionSigner, csrf_ok, fingerprint, session_hash
from aftercare.console.charts import bar_chart, line_chart
from aftercare.console.customers import customer_history
from aftercare.models import SurveyKind, SurveyPurpose
from aftercare.platform import LiveWarning, PlatformError
from aftercare.report import FIRST_DAY, LAST_DAY
from aftercare.store import wall_clock
from aftercare.worker import Health, worker_health

if TYPE_CHECKING:
    from aftercare.app import App
    from aftercare.queue import Enqueuer

log = logging.getLogger("aftercare.console")

PREFIX = "/console"
MAX_FORM_BYTES = 16_384
TEMPLATES = Path(__file__).parent / "templates"
ADDRESS_FACTOR = 4
#: scrypt checks at once in a process (32 MiB each): a burst of logins waits instead of filling the memory.
PASSWORD_CHECKS = 4
#: Keyset ids are store row ids: anything past a 64-bit integer cannot be one.
MAX_ID = 2**63 - 1
CSRF_FAILED = "This form has expired or did not come from the console (CSRF check). Reload the page and try again."
HEADERS = {
    "Cache-Control": "no-store",
    # Mail previews sit in a sandboxed srcdoc iframe: they inherit this policy, so they load nothing either.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class NotFound(Exception):
    """A shop, order or action that does not exist, or that this user may not see: the same 404."""


class BadParameter(Exception):
    """A query parameter that cannot mean anything (``before=²``, ``until=9999-12-31``): 400, saying which."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user on one request: who, which shops, and the session's CSRF token."""

    user: accounts.User
    shops: list[str]
    csrf: str
    base: str  # "/console" under whatever prefix the app is mounted at

    def shop(self, shop_id: str) -> str:
        if shop_id not in self.shops:
            raise NotFound(shop_id)
        return shop_id


Handler = Callable[[Request, Viewer], Awaitable[Response]]


class Console:
    def __init__(self, app: App, queue: Enqueuer) -> None:
        self.app = app
        self.queue = queue
        settings = app.config.console
        key = settings.secret_key.get_secret_value().encode() if settings.secret_key else secrets.token_bytes(32)
        if not settings.secret_key:
            log.warning("[console] secret_key is not set: sessions end when serve restarts")
        self.signer = SessionSigner(key, settings.session_hours * 3600)
        # An office shares one address: it may fail a few names' worth before everyone there waits.
        self.limiter = LoginLimiter(
            app.store, settings.login_attempts, timedelta(minutes=settings.login_name_lock_minutes),
            settings.login_attempts * ADDRESS_FACTOR, timedelta(minutes=settings.login_window_minutes),
        )  # fmt: skip
        self.password_checks = anyio.Semaphore(PASSWORD_CHECKS)
        secure = settings.secure_cookies
        self.secure = app.config.public_url.startswith("https://") if secure is None else secure
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
        )
        self.env.filters["when"] = _when
        self.env.globals["states"] = [s.value for s in ActionState]
        self.env.globals["subject_of"] = messages.subject_of
        self.env.globals["recipient_of"] = messages.recipient_of
        self.env.globals["retry_effect"] = RETRY_EFFECT

    # -- plumbing -------------------------------------------------------------------
    def render(self, request: Request, page: str, status: int = 200, /, **variables: Any) -> HTMLResponse:
        worker = getattr(request.state, "worker", None)
        read_only = worker is not None and self.read_only(worker)
        body = self.env.get_template(page).render(base=_base(request), worker=worker, read_only=read_only,
                                                  **variables)  # fmt: skip
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def set_session(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE, self.signer.dumps(session), max_age=int(self.signer.max_age), path=_base(request),
            httponly=True, samesite="lax", secure=self.secure,
        )  # fmt: skip

    def viewer(self, request: Request) -> tuple[Session | None, Viewer | None]:
        """The request's session and, when it belongs to a user who still exists as it was, the viewer."""
        session = self.signer.loads(request.cookies.get(COOKIE))
        if session is None or not session.user:
            return session, None
        if self.app.store.console_session_user(session_hash(session)) != session.user:  # logged out, or expired
            return session, None
        user = accounts.get_user(self.app.store, session.user)
        if user is None or fingerprint(user.password_hash) != session.fingerprint:
            return session, None
        return session, Viewer(user, user.visible(list(self.app.shops)), session.csrf, _base(request))

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Login, CSRF and shop checks around a handler (see the module docstring)."""

        async def endpoint(request: Request) -> Response:
            _session, viewer = await run_in_threadpool(self.viewer, request)
            if viewer is None:
                if request.method in ("GET", "HEAD"):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"{_base(request)}/login?next={quote(target)}", status_code=302)
                return HTMLResponse("login required", status_code=401, headers=HEADERS)
            request.state.worker = await run_in_threadpool(self._worker)
            if request.method == "POST":
                request.state.form = await _form(request)
                if not csrf_ok(_session, request.state.form.get("csrf")):
                    return self.render(request, "error.html", 403, viewer=viewer, message=CSRF_FAILED)
            try:
                return await handler(request, viewer)
            except NotFound:
                return self.render(request, "error.html", 404, viewer=viewer, message="Not found.")
            except BadParameter as exc:
                return self.render(request, "error.html", 400, viewer=viewer, message=str(exc))

        return endpoint

    # -- login and logout -----------------------------------------------------------
    async def login(self, request: Request) -> Response:
        session = self.signer.loads(request.cookies.get(COOKIE))
        next_url = _local_target(request.query_params.get("next", ""), request)
        if request.method == "GET":
            if session is None:
                session = self.signer.new()
            response = self.render(request, "login.html", csrf=session.csrf, next=next_url, error="", viewer=None)
            self.set_session(request, response, session)
            return response
        form = await _form(request)
        next_url = _local_target(form.get("next", ""), request)
        name = form.get("name", "").strip()[:64]
        if not csrf_ok(session, form.get("csrf")):
            fresh = self.signer.new()
            response = self.render(request, "login.html", 403, csrf=fresh.csrf, next=next_url, viewer=None,
                                   error="The form expired; please sign in again.")  # fmt: skip
            self.set_session(request, response, fresh)
            return response
        assert session is not None
        # The address uvicorn gives: X-Forwarded-For counts only from [server] trusted_proxies (serve.py).
        address = request.client.host if request.client else "-"
        # Counted before the password is checked, atomically: parallel guesses cannot all pass the limit.
        over = await run_in_threadpool(self.limiter.attempt, name, address)
        if over:
            log.warning("console login refused for %r from %s: too many attempts (%s)", name, address, over[0])
            return self.render(request, "login.html", 429, csrf=session.csrf, next=next_url, viewer=None,
                               error="Too many failed attempts; wait a few minutes and try again.")  # fmt: skip
        async with self.password_checks:
            user = await run_in_threadpool(accounts.authenticate, self.app.store, name, form.get("password", ""))
        if user is None:
            log.warning("console login failed for %r from %s", name, address)
            return self.render(request, "login.html", 401, csrf=session.csrf, next=next_url, viewer=None,
                               error="Wrong name or password.")  # fmt: skip
        signed_in = self.signer.new(user.name, user.password_hash)  # a new CSRF token too
        await run_in_threadpool(self._signed_in, signed_in, address)
        log.info("console login: %s", user.name)
        response = RedirectResponse(next_url or f"{_base(request)}/", status_code=303)
        self.set_session(request, response, signed_in)
        return response

    def _signed_in(self, session: Session, address: str) -> None:
        self.limiter.succeeded(address)
        expires_at = self.app.now() + timedelta(seconds=self.signer.max_age)
        self.app.store.add_console_session(session_hash(session), session.user, expires_at)

    async def logout(self, request: Request, viewer: Viewer) -> Response:
        """End the session on the server too: the cookie, or a copy of it, no longer signs anyone in."""
        session = self.signer.loads(request.cookies.get(COOKIE))
        if session is not None and session.sid:
            await run_in_threadpool(self.app.store.end_console_sessions, session_hash=session_hash(session))
        log.info("console logout: %s", viewer.user.name)
        response = RedirectResponse(f"{viewer.base}/login", status_code=303)
        response.delete_cookie(COOKIE, path=viewer.base, httponly=True, samesite="lax", secure=self.secure)
        return response

    # -- pages ----------------------------------------------------------------------
    async def home(self, request: Request, viewer: Viewer) -> Response:
        if len(viewer.shops) == 1:
            return RedirectResponse(f"{viewer.base}/shops/{viewer.shops[0]}", status_code=302)
        shops = [self.app.shop(s) for s in viewer.shops]
        return self.render(request, "home.html", viewer=viewer, shops=shops)

    async def overview(self, request: Request, viewer: Viewer) -> Response:
        shop = self.app.shop(viewer.shop(request.path_params["shop"]))
        data = await run_in_threadpool(queries.overview, self.app.store, shop.id, shop.profile.timezone, self.app.now())
        backlog = await run_in_threadpool(self._backlog)
        live = None
        if request.method == "POST":  # "run the live checks": the shop's platform and SMTP relay, with its credentials
            from aftercare.live import live_problems

            live = await run_in_threadpool(live_problems, self.app, [shop.id])
        warnings = [line for line in live or [] if isinstance(line, LiveWarning)]
        errors = [line for line in live or [] if not isinstance(line, LiveWarning)]
        return self.render(request, "overview.html", viewer=viewer, shop=shop, data=data, backlog=backlog, live=live,
                           live_errors=errors, live_warnings=warnings)  # fmt: skip

    def read_only(self, health: Health) -> bool:
        """No worker is running (none started, or none beat lately): nothing would run a retry. A stuck
        worker still beats; the banner does not hide Retry and Cancel from it."""
        if health.beat_at is None:
            return True
        return health.beat_at < wall_clock() - timedelta(seconds=self.app.config.server.heartbeat_limit_seconds)

    def _worker(self) -> Health:
        """Whether a worker runs (its heartbeats in the store): without one the console is read-only."""
        try:
            return worker_health(self.app)
        except Exception as exc:  # the store failed: say so on the page rather than fail it
            return Health(False, f"unknown ({type(exc).__name__})", {})

    def _backlog(self) -> int | str:
        try:
            return self.queue.backlog()
        except Exception as exc:  # the page still shows the store's side
            return f"unknown ({type(exc).__name__})"

    async def find_order(self, request: Request, viewer: Viewer) -> Response:
        """The shop's search box: one order found opens its timeline, several are listed."""
        shop_id = viewer.shop(request.path_params["shop"])
        text = request.query_params.get("order", "").strip()
        if not text:
            return RedirectResponse(f"{viewer.base}/shops/{shop_id}", status_code=302)
        return await self._search(request, viewer, [shop_id], text)

    async def search(self, request: Request, viewer: Viewer) -> Response:
        """The same search over every shop the viewer may see."""
        text = request.query_params.get("q", "").strip()
        if not text:
            return RedirectResponse(f"{viewer.base}/", status_code=302)
        return await self._search(request, viewer, viewer.shops, text)

    async def _search(self, request: Request, viewer: Viewer, shops: list[str], text: str) -> Response:
        found = await run_in_threadpool(queries.search, self.app.store, shops, text)
        if len(found) == 1:
            hit = found[0]
            return RedirectResponse(f"{viewer.base}/shops/{hit.shop_id}/orders/{quote(hit.order_id, safe='')}",
                                    status_code=302)  # fmt: skip
        shop = self.app.shop(shops[0]) if len(shops) == 1 else None
        variables: dict[str, Any] = {"shop": shop} if shop is not None else {}
        return self.render(request, "search.html", 200 if found else 404, viewer=viewer, text=text, found=found,
                           **variables)  # fmt: skip

    async def customer(self, request: Request, viewer: Viewer) -> Response:
        """One customer's history over the viewer's shops (``?email=``); 404 if none of them knows it."""
        email = request.query_params.get("email", "").strip()
        if not email:
            return RedirectResponse(f"{viewer.base}/", status_code=302)
        entries = await run_in_threadpool(customer_history, self.app.store, viewer.shops, email)
        return self.render(request, "customer.html", 200 if entries else 404, viewer=viewer, email=email,
                           entries=entries)  # fmt: skip

    async def order(self, request: Request, viewer: Viewer) -> Response:
        shop = self.app.shop(viewer.shop(request.path_params["shop"]))
        order_id = request.path_params["order"]
        entries = await run_in_threadpool(queries.timeline, self.app.store, shop.id, order_id)
        if not entries:
            raise NotFound(order_id)
        orders = [e.event.event.order for e in reversed(entries) if e.event]
        # A whole one if any; else the latest partial one (WooCommerce's lack only the customer's consent).
        order = next((o for o in orders if not o.partial), orders[0] if orders else None)
        return self.render(request, "order.html", viewer=viewer, shop=shop, order_id=order_id, order=order,
                           entries=entries)  # fmt: skip

    async def actions(self, request: Request, viewer: Viewer) -> Response:
        params = request.query_params
        shop_id = params.get("shop", "")
        if shop_id:
            viewer.shop(shop_id)
        state = params.get("state", "")
        flt = queries.ActionFilter(
            shop_id=shop_id,
            plugin=params.get("plugin", ""),
            state=state if state in {s.value for s in ActionState} else "",
            since=_day(params, "since"),
            until=_day(params, "until", next_day=True),
            order_id=params.get("order", ""),
        )
        records, next_before = await run_in_threadpool(
            queries.actions_page, self.app.store, viewer.shops, flt, _action_id(params, "before")
        )
        plugins = sorted({name for s in viewer.shops for name in self.app.shop(s).plugin_settings})
        keep = {k: v for k, v in params.items() if k != "before" and v}
        next_url = f"{viewer.base}/actions?{urlencode({**keep, 'before': next_before})}" if next_before else ""
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.render(request, "actions.html", viewer=viewer, records=records, filters=params, plugins=plugins,
                           next_url=next_url, back=back)  # fmt: skip

    async def act(self, request: Request, viewer: Viewer) -> Response:
        """Retry or cancel one action (POST), recorded with the user's name.

        Refused while no worker runs (the read-only banner says why). A dropped action is retried
        only from its confirmation page (``confirm=yes``), which says why it was dropped; a POST
        without it shows that page and changes nothing."""
        action = await self._action(request, viewer)
        verb = request.url.path.rsplit("/", 1)[-1]
        worker = request.state.worker
        if self.read_only(worker):
            message = f"Read-only: no worker runs ({worker.worker}); nothing was changed."
            return self.render(request, "error.html", 409, viewer=viewer, message=message)
        form = request.state.form
        if verb == "retry" and action.state is ActionState.DROPPED and form.get("confirm") != "yes":
            return await self._confirm_retry(request, viewer, action)
        store, action_id, who = self.app.store, action.id, viewer.user.name
        if verb == "retry":
            ok = await run_in_threadpool(store.retry_action, action_id, f"retried by {who} in the console")
            if ok:
                try:
                    self.queue.execute_actions([action_id])
                except Exception:  # due in the store is what counts; the sweep runs it
                    log.exception("could not enqueue action %s; the sweep will run it", action_id)
        else:
            why = form.get("reason", "").strip()[:500]
            reason = f"cancelled by {who} in the console" + (f": {why}" if why else "")
            ok = await run_in_threadpool(store.cancel_action, action_id, reason)
        log.info("console user=%s %s action=%s ok=%s", who, verb, action_id, ok)
        back = _local_target(form.get("back", ""), request) or f"{viewer.base}/actions"
        return RedirectResponse(back, status_code=303)

    async def confirm_retry(self, request: Request, viewer: Viewer) -> Response:
        """GET: the page that asks before a dropped (or failed) action is retried."""
        action = await self._action(request, viewer)
        return await self._confirm_retry(request, viewer, action)

    async def _confirm_retry(self, request: Request, viewer: Viewer, action: ActionRecord) -> Response:
        if action.state not in (ActionState.DROPPED, ActionState.FAILED):
            raise NotFound(str(action.id))
        order = await run_in_threadpool(self.app.store.latest_order, action.shop_id, action.order_id)
        form = getattr(request.state, "form", None) or {}
        back = _local_target(form.get("back", "") or request.query_params.get("back", ""), request)
        return self.render(request, "retry.html", viewer=viewer, shop=self.app.shop(action.shop_id), a=action,
                           order=order, warning=retry_warning(action, order), back=back)  # fmt: skip

    async def message(self, request: Request, viewer: Viewer) -> Response:
        """One mail action's message as sent (or as it would be): see :mod:`aftercare.console.messages`."""
        action = await self._action(request, viewer)
        if action.kind is not ActionKind.SEND_EMAIL:
            raise NotFound(str(action.id))
        shown = await run_in_threadpool(messages.shown_message, self.app, action)
        shop = self.app.shop(action.shop_id)
        return self.render(request, "message.html", viewer=viewer, shop=shop, a=action, shown=shown)

    async def _action(self, request: Request, viewer: Viewer) -> ActionRecord:
        """The path's action, if it exists and the viewer may see its shop (else the same 404)."""
        action_id = request.path_params["action"]
        if action_id > MAX_ID:
            raise NotFound(str(action_id))
        try:
            action = await run_in_threadpool(self.app.store.get_action, action_id)
        except KeyError:
            raise NotFound(str(action_id)) from None
        viewer.shop(action.shop_id)
        return action

    async def preview(self, request: Request, viewer: Viewer) -> Response:
        from aftercare.mail.preview import render_preview
        from aftercare.mail.templates import TemplateError, list_templates

        shop = self.app.shop(viewer.shop(request.path_params["shop"]))
        rows = await run_in_threadpool(list_templates, self.app, shop.id)
        templates = sorted({(r["template"], r["plugin"]) for r in rows})
        locales = sorted({r["locale"] for r in rows})
        template = request.query_params.get("template", "")
        locale = request.query_params.get("locale", "") or shop.profile.locale
        plugin = next((p for t, p in templates if t == template), "")
        message, problem = None, ""
        if template:
            if template not in {t for t, _p in templates}:
                raise NotFound(template)
            try:
                message = await run_in_threadpool(render_preview, self.app, shop.id, template, locale=locale,
                                                  plugin=plugin)  # fmt: skip
            except (TemplateError, PlatformError) as exc:  # a broken template, a shop without a sender
                problem = str(exc)
        parts = {}
        if message is not None:
            for kind in ("plain", "html"):
                body = message.get_body((kind,))
                parts[kind] = body.get_content() if body is not None else ""
        return self.render(request, "preview.html", viewer=viewer, shop=shop, templates=templates, locales=locales,
                           template=template, locale=locale, message=message, parts=parts, problem=problem)  # fmt: skip

    async def surveys(self, request: Request, viewer: Viewer) -> Response:
        shop = self.app.shop(viewer.shop(request.path_params["shop"]))
        weeks = _int(request.query_params.get("weeks"), 12, 1, 104)
        now = self.app.now()
        since = now - timedelta(weeks=weeks)
        answers = await run_in_threadpool(self.app.store.survey_answers, shop.id, since)
        charts = _survey_charts(answers, since, weeks, survey_panels(self.app, shop.id, answers))
        comments = sorted((a for a in answers if a.answer.comment), key=lambda a: a.updated_at, reverse=True)[:30]
        return self.render(request, "surveys.html", viewer=viewer, shop=shop, weeks=weeks, charts=charts,
                           comments=comments, count=len(answers))  # fmt: skip

    async def report(self, request: Request, viewer: Viewer) -> Response:
        from aftercare.report import period, rows, shop_report

        shop = self.app.shop(viewer.shop(request.path_params["shop"]))
        start, end = _date(request.query_params, "since"), _date(request.query_params, "until")
        since, until = period(start, end, shop.profile.timezone, self.app.now())

        def local(moment: datetime) -> date:
            return moment.astimezone(ZoneInfo(shop.profile.timezone)).date()

        figures = await run_in_threadpool(shop_report, self.app.store, shop.id, since, until)
        charts = [
            bar_chart("Emails sent per plugin", list(figures.emails_sent), list(figures.emails_sent.values())),
            bar_chart("Coupons", ["issued", "redeemed"], [figures.coupons_issued, figures.coupons_redeemed]),
            bar_chart(
                "Mailed customers", ["mailed", "bought again"], [figures.mailed_customers, figures.repeat_customers]
            ),  # fmt: skip
        ]
        shown = {"since": start or local(since), "until": end or local(until - timedelta(days=1))}
        return self.render(request, "report.html", viewer=viewer, shop=shop, figures=figures, rows=rows(figures),
                           charts=charts, **shown)  # fmt: skip

    async def plugins(self, request: Request, viewer: Viewer) -> Response:
        shop = self.app.shop(viewer.shop(request.path_params["shop"]))
        return self.render(
            request, "plugins.html", viewer=viewer, shop=shop, plugins=plugin_settings(self.app, shop.id)
        )

    async def simulate(self, request: Request, viewer: Viewer) -> Response:
        from aftercare.console.simulate import simulate

        shop = self.app.shop(viewer.shop(request.path_params["shop"]))
        days = _int(request.query_params.get("days"), 30, 1, 365)
        # A GET reads the store only: with no events stored for the period it replays nothing (no poll).
        # The current config with the plugins this process runs (the same manager: the same hooks).
        result = await run_in_threadpool(simulate, self.app, shop.id, days, self.app.config, poll=False,
                                         plugins=self.app.plugins)  # fmt: skip
        return self.render(request, "simulate.html", viewer=viewer, shop=shop, days=days, result=result)

    def routes(self) -> list[BaseRoute]:
        page = self.page
        return [
            Mount(
                PREFIX,
                routes=[
                    Route("/login", self.login, methods=["GET", "POST"]),
                    Route("/logout", page(self.logout), methods=["POST"]),
                    Route("/", page(self.home)),
                    Route("/actions", page(self.actions)),
                    Route("/search", page(self.search)),
                    Route("/customers", page(self.customer)),
                    Route("/actions/{action:int}/message", page(self.message)),
                    Route("/actions/{action:int}/retry", page(self.confirm_retry), methods=["GET"]),
                    # The only two writes on an action; any other verb is the catch-all's 404.
                    Route("/actions/{action:int}/retry", page(self.act), methods=["POST"]),
                    Route("/actions/{action:int}/cancel", page(self.act), methods=["POST"]),
                    Route("/shops/{shop}", page(self.overview), methods=["GET", "POST"]),
                    Route("/shops/{shop}/orders", page(self.find_order)),
                    Route("/shops/{shop}/orders/{order}", page(self.order)),
                    Route("/shops/{shop}/preview", page(self.preview)),
                    Route("/shops/{shop}/surveys", page(self.surveys)),
                    Route("/shops/{shop}/report", page(self.report)),
                    Route("/shops/{shop}/plugins", page(self.plugins)),
                    Route("/shops/{shop}/simulate", page(self.simulate)),
                    Route("/{rest:path}", page(self.not_found), methods=["GET", "POST"]),
                ],
            )
        ]

    async def not_found(self, request: Request, viewer: Viewer) -> Response:
        raise NotFound(request.url.path)


def routes(app: App, queue: Enqueuer) -> list[BaseRoute]:
    """The console's routes, or none when ``[console] enabled`` is false. ``queue``: where a
    retried action is enqueued, and the queue's backlog the overview shows."""
    if not app.config.console.enabled:
        return []
    return Console(app, queue).routes()


# -- what a retry would do --------------------------------------------------------------------

#: What retrying a dropped action of each reason does, for the confirmation page.
RETRY_EFFECT = {
    ReasonCode.FIRE_TIME_CHECK: "The order changed after it was asked for. A retry runs the same fire-time checks "
    "again: while the order is as it is now, it is dropped again; if the checks no longer apply, it is sent.",
    ReasonCode.WITHDRAWN: "Its plugin withdrew it, on purpose. A retry sends it anyway unless a fire-time check "
    "stops it.",
    ReasonCode.CANCELLED: "Someone cancelled it by hand. A retry runs it now.",
    ReasonCode.DRY_RUN: "The shop is in dry run (not production): a retry is dropped again, nothing is sent.",
    ReasonCode.FREQUENCY_CAP: "The customer had had enough marketing mail lately. A retry checks the cap again.",
    ReasonCode.NO_CONSENT: "The customer has not consented to marketing mail. A retry checks the consent again.",
    ReasonCode.SUPPRESSED: "The address is suppressed (bounced or unsubscribed). A retry checks the list again.",
    ReasonCode.MESSAGE_REFUSED: "Every message waiting for it would have been refused (the address, consent, "
    "the frequency cap), and they were dropped with it. A retry makes it now: retry its message after it, or "
    "the code reaches nobody.",
    ReasonCode.DEPENDENCY_FAILED: "What it waited for did not happen. A retry is dropped again unless that is "
    "retried first.",
    ReasonCode.ERASED: "Its customer was erased: a retry finds nobody to send to.",
}


def retry_warning(action: ActionRecord, order: Any) -> str:
    """Why a retry may be wrong now: the order as last stored, when it is cancelled, refunded or returned."""
    if order is None:
        return ""
    facts = [what for what, yes in (("cancelled", order.is_cancelled), ("refunded", order.is_refunded),
                                    ("returned (a return was requested)", order.has_return)) if yes]  # fmt: skip
    if not facts:
        return ""
    return f"The order {order.number} is now {' and '.join(facts)}."


# -- what the plugins page shows ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingRow:
    key: str
    value: str
    source: str  # "default", or the TOML path (a bundle's file and table, the shop's table...)


def plugin_settings(app: App, shop_id: str) -> list[tuple[str, bool, list[SettingRow]]]:
    """Per plugin: enabled, and each effective setting with where it comes from; secrets masked."""
    from aftercare.config import plugin_settings_source

    shop = app.shop(shop_id)
    result = []
    for name, settings in sorted(shop.plugin_settings.items()):
        source = plugin_settings_source(app.config, name, shop.config, shop.bundle)
        rows = []
        for key, value in settings.model_dump().items():
            from_layer = any(key in table for _path, table in source.layers)
            shown = "••••••" if _secret(key, getattr(settings, key, None)) else _show(value)
            rows.append(SettingRow(key, shown, source.path_of(key) if from_layer else "default"))
        result.append((name, settings.enabled, rows))
    return result


def _secret(key: str, value: Any) -> bool:
    return isinstance(value, SecretStr) or any(w in key.lower() for w in ("secret", "password", "token", "api_key"))


def _show(value: Any) -> str:
    """A setting as a merchant reads it (and would write it in TOML), never a Python repr."""
    if isinstance(value, str):
        return value if value else "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_show(v) for v in value) if value else "(none)"
    if isinstance(value, Mapping):
        return "; ".join(f"{k} = {_show(v)}" for k, v in value.items()) if value else "(none)"
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g} s"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


# -- surveys ----------------------------------------------------------------------------------


def survey_panels(app: App, shop_id: str, answers: list[Any]) -> list[tuple[SurveyPurpose, SurveyKind]]:
    """The surveys a shop uses, as (purpose, kind): the kind its ``satisfaction_survey`` asks after an
    order (when enabled) and the relationship NPS (when its ``every_months`` is on), and any purpose and
    kind answered in the period (CES is asked on the survey page; a plugin of one's own may ask others).
    Relationship answers get panels of their own: they never mix into an order survey's figures."""
    settings = app.shop(shop_id).plugin_settings.get("satisfaction_survey")
    asked = set()
    if settings is not None and settings.enabled:
        asked.add((SurveyPurpose.ORDER, SurveyKind(settings.kind)))
        if getattr(settings, "every_months", 0):
            asked.add((SurveyPurpose.RELATIONSHIP, SurveyKind.NPS))
    answered = {(a.answer.purpose, a.answer.kind) for a in answers}
    return [(purpose, kind) for purpose in SurveyPurpose for kind in SurveyKind if (purpose, kind) in asked | answered]


def _survey_charts(
    answers: list[Any], since: datetime, weeks: int, panels: list[tuple[SurveyPurpose, SurveyKind]]
) -> list[Any]:
    """CSAT (% 4-5), NPS and CES per week, and each kind's score distribution: for ``panels`` only,
    the relationship survey's apart from the order survey's."""
    labels = [(since + timedelta(weeks=w)).strftime("%d %b") for w in range(weeks)]
    per_week = {panel: [[] for _ in range(weeks)] for panel in panels}
    for a in answers:
        panel = (a.answer.purpose, a.answer.kind)
        if panel in per_week:
            per_week[panel][min(weeks - 1, max(0, (a.answer.answered_at - since).days // 7))].append(a.answer.score)

    def csat(s: list[int]) -> float | None:
        return round(100 * sum(1 for x in s if x >= 4) / len(s), 1) if s else None

    def nps(s: list[int]) -> float | None:
        return round(100 * (sum(1 for x in s if x >= 9) - sum(1 for x in s if x <= 6)) / len(s), 1) if s else None

    def ces(s: list[int]) -> float | None:
        return round(sum(s) / len(s), 2) if s else None

    lines = {
        SurveyKind.CSAT: ("per week (% of 4 and 5)", csat, 0, 100, "%"),
        SurveyKind.NPS: ("per week", nps, -100, 100, ""),
        SurveyKind.CES: ("per week (1 = least effort)", ces, 1, 7, ""),
    }
    charts = []
    for purpose, kind in panels:
        what, figure, low, high, unit = lines[kind]
        name = _panel_name(purpose, kind)
        weekly = per_week[purpose, kind]
        charts.append(line_chart(f"{name} {what}", labels, {name: [figure(s) for s in weekly]}, low=low, high=high,
                                 unit=unit, counts={name: [len(s) for s in weekly]}))  # fmt: skip
    for purpose, kind in panels:
        scores = [a.answer.score for a in answers if (a.answer.purpose, a.answer.kind) == (purpose, kind)]
        scale = list(kind.scale)
        charts.append(bar_chart(f"{_panel_name(purpose, kind)} scores ({len(scores)} answers)",
                                [str(s) for s in scale], [scores.count(s) for s in scale]))  # fmt: skip
    return charts


def _panel_name(purpose: SurveyPurpose, kind: SurveyKind) -> str:
    """``NPS`` for an order survey's, ``Relationship NPS`` for the periodic survey's."""
    return kind.value.upper() if purpose is SurveyPurpose.ORDER else f"Relationship {kind.value.upper()}"


# -- small helpers ---------------------------------------------------------------------------


def _base(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/").removesuffix(PREFIX) + PREFIX


def _local_target(target: str, request: Request) -> str:
    """A redirect target only inside the console (never another site: ``//evil`` or ``https://``)."""
    base = _base(request)
    if target.startswith(base + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return ""


async def _form(request: Request) -> dict[str, str]:
    """The posted urlencoded form (first value of each field), read up to a small limit."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            break
    return {k: v[0] for k, v in parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace")).items()}


def _date(params: Mapping[str, str], name: str) -> date | None:
    """The query parameter ``name`` as a day (YYYY-MM-DD), None when absent; BadParameter when it is none."""
    value = params.get(name, "")
    if not value:
        return None
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise BadParameter(f"{name}: {value[:40]!r} is not a date; use YYYY-MM-DD.")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadParameter(f"{name}: {value} is out of range; use a date from {FIRST_DAY} to {LAST_DAY}.")
    return day


def _action_id(params: Mapping[str, str], name: str) -> int | None:
    """A keyset id (``before``): digits 0-9 only (``str.isdigit`` also takes '²'), within a store id."""
    value = params.get(name, "")
    if not value:
        return None
    if not (len(value) <= len(str(MAX_ID)) and value.isascii() and value.isdigit() and int(value) <= MAX_ID):
        raise BadParameter(f"{name}: {value[:40]!r} is not an action id; follow the page's 'older' link.")
    return int(value)


def _day(params: Mapping[str, str], name: str, *, next_day: bool = False) -> datetime | None:
    day = _date(params, name)
    if day is None:
        return None
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + timedelta(days=1) if next_day else start


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(value))) if value else default
    except ValueError:
        return default


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "-"
