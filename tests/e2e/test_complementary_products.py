"""The delivered notice with the products the shop relates to the parcel's, on each platform's sandbox:
the webhooks reach the real receiver, the worker sends the notice, and the mail channel reads the related
products from the platform when it sends (Shopify's complementary products, WooCommerce's cross-sells)."""

from __future__ import annotations

import pytest

from aftercare.models import ConsentState, Customer
from aftercare.sandbox.testing import FAST_RETRIES
from aftercare.testing import FaultySmtpSink

PLUGINS = {"tracking_notice": {"enabled": True, "delivered_notice": True, "complementary_products": 2}}


@pytest.fixture
def smtp():
    with FaultySmtpSink() as sink:
        yield sink


def texts(sink):
    return {str(m["Subject"]): m.get_body(("plain",)).get_content() for m in sink.received}


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_the_delivered_notice_shows_the_platforms_related_products(deploy, smtp, platform):
    mail = {"transport": "smtp", "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none", "timeout": 5}}
    options = {"shop": {"retry_delays": FAST_RETRIES}} if platform == "shopify" else {}
    running = deploy({"shop": platform}, plugins=PLUGINS, mail=mail, sandbox_options=options)
    shop = running.sandboxes["shop"]
    order = shop.create_order(locale="en", email="olivia@example.com", first_name="Olivia")
    running.app.adapter("shop").set_marketing_consent(
        Customer(email="olivia@example.com", platform_id=str(order.customer_id)), ConsentState.SUBSCRIBED, "test"
    )
    pour = shop.add_product("Ceramic Pour-Over Set", "48.50", image_url="https://cdn.example/pour.jpg")
    hidden = shop.add_product("Not for sale yet", "9.00", published=False)
    for line in order.lines:
        shop.add_product(line.title, line.unit_price, id=line.product_id, related=[hidden.id, pour.id])
    running.settle()
    shop.ship(order.id)
    running.settle()
    shop.deliver(order.id)
    running.settle()

    delivered = next(text for subject, text in texts(smtp).items() if "arrived" in subject.lower())
    assert "You may also like:" in delivered and "Ceramic Pour-Over Set" in delivered
    assert "Not for sale yet" not in delivered
    assert "48.50" in delivered
