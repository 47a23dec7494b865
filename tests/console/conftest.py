"""Two shops on the in-memory platform with the console on, a user per shop and an agency user."""

from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from aftercare.app import App
from aftercare.asgi import create_asgi_app
from aftercare.clock import ManualClock
from aftercare.config import Config, ShopConfig
from aftercare.config.console import ConsoleSettings
from aftercare.console import accounts
from aftercare.plugin_manager import PluginManager
from aftercare.queue import Enqueuer
from aftercare.testing import START, memory_platform

PASSWORD = "correct horse battery"


class Notes:
    """Asks for an order note now and one a week later (a delayed action with fire-time checks)."""

    name = "notes"

    from aftercare import hookimpl

    @hookimpl
    def on_order_paid(self, event, ctx):
        ctx.add_order_note(f"paid: {event.order.number}", key="paid")
        ctx.later(days=7).add_order_note(f"how was it: {event.order.number}", key="later")


def make_app(tmp_path, plugins=(), plugin_config=None, **console):
    extra = [("memory-platform", memory_platform), ("notes", Notes()), *plugins]
    manager = PluginManager.load(entry_points=False, extra=extra)
    config = Config(
        database=f"sqlite:///{tmp_path / 'aftercare.db'}",
        queue=f"sqlite:///{tmp_path / 'queue.db'}",
        shops=[
            ShopConfig(
                id="north",
                name="North",
                platform="memory",
                webhook_secret="secret-a",
                production=True,
                sender="North <shop@north.example>",
            ),
            ShopConfig(id="south", name="South", platform="memory", webhook_secret="secret-b", production=True),
        ],
        console=ConsoleSettings(enabled=True, secret_key="console-test-key", **console),
        plugins=plugin_config or {},
        base_dir=tmp_path,
    )
    app = App(config, clock=ManualClock(START), plugins=manager)
    app.store.upgrade()
    return app


@pytest.fixture(scope="session")
def password_hash():
    """One scrypt hash for every test user (hashing costs a good part of a second on purpose)."""
    return accounts.hash_password(PASSWORD)


def add_user(app, name, shops, password_hash):
    from aftercare.store import console_users

    with app.store.transaction() as conn:
        conn.execute(console_users.insert().values(name=name, password_hash=password_hash, shops=",".join(shops),
                                                   created_at=START))  # fmt: skip


@pytest.fixture
def console_app(tmp_path, password_hash):
    app = make_app(tmp_path)
    add_user(app, "nora", ["north"], password_hash)
    add_user(app, "agency", ["all"], password_hash)
    yield app
    app.close()


@pytest.fixture
def client(console_app):
    with TestClient(create_asgi_app(console_app, Enqueuer.for_app(console_app)), base_url="http://127.0.0.1",
                    follow_redirects=False) as client:  # fmt: skip
        yield client


def login(client, name, password=PASSWORD):
    page = client.get("/console/login")
    csrf = csrf_of(page.text)
    return client.post("/console/login", data={"name": name, "password": password, "csrf": csrf, "next": ""})


def csrf_of(html):
    import re

    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def later(app, days):
    app.clock.advance(timedelta(days=days))
