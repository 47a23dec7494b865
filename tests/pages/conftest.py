"""An app with two shops on the in-memory platform, its receiver, and a plugin that notes page events."""

from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from aftercare import hookimpl
from aftercare.app import App
from aftercare.asgi import create_asgi_app
from aftercare.clock import ManualClock
from aftercare.config import Config, ShopConfig
from aftercare.dispatch import Dispatcher
from aftercare.links import Links
from aftercare.models import SurveyKind, SurveyPurpose
from aftercare.plugin_manager import PluginManager
from aftercare.testing import START, make_event, make_order, memory_platform
from aftercare.worker import Worker


class PageEvents:
    """Notes every survey answer and opt-in the hooks see."""

    name = "page_events"

    def __init__(self):
        self.seen = []

    @hookimpl
    def on_survey_answered(self, event, ctx):
        self.seen.append((event.kind.value, event.order.platform_id, event.answer))

    @hookimpl
    def on_optin_confirmed(self, event, ctx):
        self.seen.append((event.kind.value, event.order.platform_id, event.order.customer.email))


@pytest.fixture
def page_events():
    return PageEvents()


@pytest.fixture
def two_shops(tmp_path, page_events):
    """Shop "test" (English) and shop "other" (Bulgarian), with their own webhook secrets."""
    extra = [("memory-platform", memory_platform), (page_events.name, page_events)]
    manager = PluginManager.load(entry_points=False, extra=extra)
    config = Config(
        database=f"sqlite:///{tmp_path / 'aftercare.db'}",
        queue=f"sqlite:///{tmp_path / 'queue.db'}",
        shops=[
            ShopConfig(id="test", name="Tienda Test", platform="memory", webhook_secret="secret-a", production=True),
            ShopConfig(
                id="other",
                name="Друг магазин",
                platform="memory",
                webhook_secret="secret-b",
                locale="bg",
                production=True,
            ),
        ],
        base_dir=tmp_path,
    )
    app = App(config, clock=ManualClock(START), plugins=manager)
    app.store.upgrade()
    yield app
    app.close()


@pytest.fixture
def served(two_shops):
    worker = Worker(two_shops)
    with TestClient(create_asgi_app(two_shops, worker.queue), base_url="http://127.0.0.1") as client:
        yield two_shops, worker, client


def paid(app, number="1001", shop_id="test", email="ana@example.com"):
    """Store (and dispatch) an order_paid event, as the receiver and worker would: the pages read it back."""
    order = make_order(number, shop_id=shop_id, email=email)
    Dispatcher(app).dispatch(make_event("order_paid", order))
    return order


def path(url):
    return urlsplit(url).path


def survey_path(app, order, kind="csat", score=5, locale="en", shop_id=None, purpose=SurveyPurpose.ORDER):
    link = Links(app).survey(
        shop_id=shop_id or order.shop_id,
        order_id=order.platform_id,
        email=order.customer.email,
        locale=locale,
        kind=SurveyKind(kind),
        score=score,
        purpose=purpose,
    )
    return path(link)


def optin_path(app, order, locale="en", shop_id=None):
    link = Links(app).optin(
        shop_id=shop_id or order.shop_id, order_id=order.platform_id, email=order.customer.email, locale=locale
    )
    return path(link)
