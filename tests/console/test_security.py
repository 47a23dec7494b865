"""The console under attack: parallel guesses, stolen cookies, odd verbs and parameters, spoofed addresses.

The login tests run a real uvicorn server on 127.0.0.1 in this process (as
``aftercare serve`` configures it), so requests arrive truly in parallel and
the password check can be counted by wrapping it.
"""

import contextlib
import threading
import time
from datetime import timedelta

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from aftercare.actions import ActionState
from aftercare.asgi import create_asgi_app
from aftercare.config import ServerSettings
from aftercare.console import accounts, web
from aftercare.queue import Enqueuer
from aftercare.serve import server_config

from .conftest import PASSWORD, add_user, csrf_of, login, make_app
from .test_console import paid


@contextlib.contextmanager
def serving(app):
    """The app's receiver on a free port, configured as ``aftercare serve`` does; stopped on exit."""
    server = uvicorn.Server(server_config(app, create_asgi_app(app, Enqueuer.for_app(app)), "127.0.0.1", 0))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class CountedChecks:
    """Wraps ``accounts.check_password``: how many checks ran, and how many at once at most."""

    def __init__(self, monkeypatch, check=None):
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()
        self._check = check or accounts.check_password
        monkeypatch.setattr(accounts, "check_password", self)

    def __call__(self, password, stored):
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return self._check(password, stored)
        finally:
            with self._lock:
                self.running -= 1


def login_form(base, headers=None):
    """The login form's CSRF token and the anonymous session cookie that goes with it."""
    with httpx.Client(base_url=base, headers=headers or {}) as browser:
        page = browser.get("/console/login")
        return csrf_of(page.text), dict(browser.cookies)


def http_login(base, name, password, headers=None, form=None, start=None):
    """Post the login form over HTTP (after ``start``, a barrier, when given); the status."""
    csrf, cookies = form or login_form(base, headers)
    with httpx.Client(base_url=base, timeout=60, headers=headers or {}, cookies=cookies) as browser:
        if start is not None:
            start.wait()
        fields = {"name": name, "password": password, "csrf": csrf, "next": ""}
        return browser.post("/console/login", data=fields).status_code


def in_parallel(base, attempts):
    """Post (name, password) attempts on one thread each at the same moment, with one form; the statuses."""
    form = login_form(base)  # as an attacker would: one GET, then every guess with its token
    start = threading.Barrier(len(attempts))
    statuses = [None] * len(attempts)

    def run(i, name, password):
        statuses[i] = http_login(base, name, password, form=form, start=start)

    threads = [threading.Thread(target=run, args=(i, *a)) for i, a in enumerate(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return statuses


@pytest.fixture
def served(tmp_path, password_hash):
    def make(**console):
        folder = tmp_path / f"deployment{len(made)}"
        folder.mkdir()
        app = make_app(folder, **console)
        add_user(app, "nora", ["north"], password_hash)
        add_user(app, "agency", ["all"], password_hash)
        made.append(app)
        return app

    made = []
    yield make
    for app in made:
        app.close()


def test_200_parallel_guesses_for_one_user_check_at_most_the_allowed_passwords(served, monkeypatch):
    app = served()
    checks = CountedChecks(monkeypatch)
    with serving(app) as base:
        guesses = [("nora", f"guess {n}") for n in range(199)]
        statuses = in_parallel(base, guesses[:100] + [("nora", PASSWORD)] + guesses[100:])
        assert checks.calls <= 5  # login_attempts for one name, however many arrive at once
        assert statuses.count(429) >= 195 and set(statuses) <= {401, 429, 303}
        assert checks.most_at_once <= web.PASSWORD_CHECKS
        # Locked now: the right password is refused without being checked.
        before = checks.calls
        assert http_login(base, "nora", PASSWORD) == 429
        assert checks.calls == before


def test_password_checks_at_once_are_bounded_so_memory_is(served, monkeypatch):
    app = served(login_attempts=10)  # 40 attempts from one address, each for another name

    def slow_wrong(password, stored):
        time.sleep(0.05)  # as long as a check would block, without the 0.4 s of scrypt forty times
        return False

    checks = CountedChecks(monkeypatch, slow_wrong)
    with serving(app) as base:
        statuses = in_parallel(base, [(f"name{n}", "guess") for n in range(40)])
    assert statuses == [401] * 40 and checks.calls == 40
    assert checks.most_at_once <= web.PASSWORD_CHECKS


def test_a_name_locks_briefly_and_an_address_for_longer(client, console_app, monkeypatch):
    monkeypatch.setattr(accounts, "check_password", lambda password, stored: password == PASSWORD)  # no 0.4 s each
    for _ in range(5):
        assert login(client, "nora", "wrong password!").status_code == 401
    assert login(client, "nora").status_code == 429
    console_app.clock.advance(timedelta(minutes=1, seconds=1))  # login_name_lock_minutes
    assert login(client, "nora").status_code == 303  # the real user is back after a minute
    for n in range(20 - 6):  # the address has 6 attempts counted (5 wrong, 1 refused); 20 allowed
        assert login(client, f"guess{n}", "wrong password!").status_code == 401
    assert login(client, "agency").status_code == 429
    console_app.clock.advance(timedelta(minutes=5))
    assert login(client, "agency").status_code == 429  # an address waits the whole window
    console_app.clock.advance(timedelta(minutes=10))
    assert login(client, "agency").status_code == 303


def test_limits_are_kept_in_the_store_so_every_process_shares_them(tmp_path, password_hash):
    first = make_app(tmp_path)
    add_user(first, "nora", ["north"], password_hash)
    second = make_app(tmp_path)  # another serve process on the same store
    try:
        with TestClient(create_asgi_app(first, Enqueuer.for_app(first)), base_url="http://127.0.0.1",
                        follow_redirects=False) as one, TestClient(create_asgi_app(second, Enqueuer.for_app(second)),
                        base_url="http://127.0.0.1", follow_redirects=False) as other:  # fmt: skip
            for client in (one, other, one, other, one):
                assert login(client, "nora", "wrong password!").status_code == 401
            assert login(other, "nora").status_code == 429
    finally:
        first.close()
        second.close()


def test_x_forwarded_for_counts_only_from_a_configured_proxy(served, monkeypatch):
    def guesses(base, forwarded_for):
        return [
            http_login(base, f"guess{n}", "guess", {"X-Forwarded-For": forwarded_for(n)}) for n in range(4)
        ]  # login_attempts=1: 4 attempts per address

    app = served(login_attempts=1)
    with serving(app) as base:  # no trusted proxy: the header is ignored, all 4 are 127.0.0.1's
        assert guesses(base, lambda n: f"10.0.0.{n + 1}") == [401] * 4
        assert http_login(base, "agency", PASSWORD, {"X-Forwarded-For": "10.0.0.99"}) == 429

    app = served(login_attempts=1)
    trusting = app.config.model_copy(update={"server": ServerSettings(trusted_proxies=["127.0.0.0/8"])})
    monkeypatch.setattr(app, "config", trusting)
    with serving(app) as base:  # behind a proxy on 127.0.0.1: each client by its forwarded address
        assert guesses(base, lambda n: "10.0.0.1") == [401] * 4
        assert http_login(base, "nora", PASSWORD, {"X-Forwarded-For": "10.0.0.1"}) == 429
        assert http_login(base, "agency", PASSWORD, {"X-Forwarded-For": "10.0.0.2"}) == 303


def test_trusted_proxies_must_be_addresses_or_networks():
    assert ServerSettings(trusted_proxies=["10.0.0.5", "10.0.0.0/8", "::1"]).trusted_proxies
    with pytest.raises(ValueError, match="'proxy.local' is not an IP address or network"):
        ServerSettings(trusted_proxies=["proxy.local"])


def test_a_logged_out_cookie_is_refused(client):
    assert login(client, "nora").status_code == 303
    cookie = client.cookies["aftercare_console"]
    page = client.get("/console/shops/north")
    assert page.status_code == 200
    assert client.post("/console/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
    client.cookies.clear()
    client.cookies.set("aftercare_console", cookie, path="/console")  # a copy kept by someone
    answer = client.get("/console/shops/north")
    assert answer.status_code == 302 and "/console/login" in answer.headers["location"]


def test_only_retry_and_cancel_write_an_action(client, console_app):
    paid(console_app, "4")
    due = console_app.store.list_actions(shop_id="north", state=ActionState.DUE)[0]
    login(client, "nora")
    csrf = csrf_of(client.get("/console/actions").text)
    for verb in ("delete", "cancelx", "retry/cancel"):
        assert client.post(f"/console/actions/{due.id}/{verb}", data={"csrf": csrf}).status_code == 404
    assert client.get(f"/console/actions/{due.id}/cancel").status_code in (404, 405)
    big = "9" * 30
    assert client.post(f"/console/actions/{big}/cancel", data={"csrf": csrf}).status_code == 404
    assert console_app.store.get_action(due.id).state is ActionState.DUE


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/console/actions?before=%C2%B2", "before: '²' is not an action id"),
        (f"/console/actions?before={'1' * 30}", "before: '111111111111111111111111111111' is not an action id"),
        ("/console/actions?before=-1", "before: '-1' is not an action id"),
        (f"/console/actions?before={'7' * 5000}", "before: '7777777777777777777777777777777777777777' is not an"),
        ("/console/actions?until=9999-12-31", "until: 9999-12-31 is out of range"),
        ("/console/actions?since=yesterday", "since: 'yesterday' is not a date; use YYYY-MM-DD."),
        ("/console/shops/north/report?until=9999-12-31", "until: 9999-12-31 is out of range"),
        ("/console/shops/north/report?since=0001-01-01", "since: 0001-01-01 is out of range"),
        ("/console/shops/north/report?since=2026-13-01", "since: '2026-13-01' is not a date"),
    ],
)
def test_a_parameter_that_means_nothing_is_a_400_that_names_it(client, url, message):
    login(client, "nora")
    answer = client.get(url)
    assert answer.status_code == 400
    assert message.replace("'", "&#39;") in answer.text


def test_console_pages_send_csp_frame_and_referrer_headers(client):
    for response in (client.get("/console/login"), login(client, "nora"), client.get("/console/shops/north")):
        assert "default-src 'none'" in response.headers.get("content-security-policy", "") or response.is_redirect
    page = client.get("/console/shops/north")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "same-origin"


def test_the_what_if_page_never_calls_the_platform_when_the_store_has_no_events(tmp_path, password_hash):
    from aftercare.app import App
    from aftercare.clock import ManualClock
    from aftercare.config import Config, ShopConfig
    from aftercare.config.console import ConsoleSettings
    from aftercare.console.simulate import simulate
    from aftercare.plugin_manager import PluginManager
    from aftercare.sandbox import WooCommerceSandbox
    from aftercare.testing import START

    woo = WooCommerceSandbox()
    routes = woo.router
    asked = []
    woo.router = lambda request: asked.append(request.path) or routes(request)  # every request the shop gets
    with woo:
        woo.create_order()
        config = Config(
            database=f"sqlite:///{tmp_path / 'aftercare.db'}",
            queue=f"sqlite:///{tmp_path / 'queue.db'}",
            shops=[ShopConfig(id="woo", platform="woocommerce", webhook_secret="woo-secret", production=True,
                              **woo.adapter_settings())],  # fmt: skip
            console=ConsoleSettings(enabled=True, secret_key="console-test-key"),
            base_dir=tmp_path,
        )
        app = App(config, clock=ManualClock(START), plugins=PluginManager.load())
        app.store.upgrade()
        add_user(app, "nora", ["woo"], password_hash)
        try:
            with TestClient(create_asgi_app(app, Enqueuer.for_app(app)), base_url="http://127.0.0.1",
                            follow_redirects=False) as client:  # fmt: skip
                login(client, "nora")
                page = client.get("/console/shops/woo/simulate?days=30")
                assert page.status_code == 200 and "0 events replayed" in page.text
                assert asked == []  # a GET reads the store only
            # The CLI's simulate does poll a store without the period: the count would have seen it.
            simulate(app, "woo", 30)
            assert asked
        finally:
            app.close()
