"""Only http(s) tracking links from a platform reach a "shipped" mail: a ``javascript:``,
``data:`` or relative one is dropped when the adapter maps the payload, so the shipment keeps
no link and the real mail path (dispatch, template, SMTP) renders the no-link sentence."""

import json
import re
from dataclasses import replace

import pytest

from aftercare.dispatch import Dispatcher, execute_due
from aftercare.plugins import tracking_notice
from aftercare.testing import make_event
from tests.adapters.signed_shops import adapter_for, payloads

from .conftest import inbox

HOSTILE = ["javascript:alert(document.domain)", "data:text/html;base64,PHNjcmlwdD4=", "/track?n=1", " JAVASCRIPT:x"]


def shopify_order(link):
    body = next(b for t, b in payloads("shopify") if t == "orders/cancelled")  # the one with a fulfillment
    body["cancelled_at"] = None
    body["fulfillments"][0].update(tracking_company="Evil Post", tracking_number="EV1", tracking_url=link)
    return adapter_for("shopify", shop_id="test").parse_order(body)


def woocommerce_order(link):
    body = next(b for t, b in payloads("woocommerce") if "_wc_shipment_tracking_items" in json.dumps(b))
    for entry in body["meta_data"]:
        if entry["key"] == "_wc_shipment_tracking_items":
            entry["value"][0].update(
                tracking_provider="",
                custom_tracking_provider="Evil Post",
                custom_tracking_link=link,
                tracking_number="EV1",
            )
    return adapter_for("woocommerce", shop_id="test").parse_order(body)


def shipped_mail(app, order):
    (parcel,) = [s for s in order.shipments if s.tracking_number]
    event = replace(make_event("shipped", order, key=f"shipped:{parcel.platform_id}"), shipment=parcel)
    Dispatcher(app).dispatch(event)
    execute_due(app)
    (mail,) = inbox(app)
    return parcel, mail


@pytest.mark.parametrize("link", HOSTILE)
@pytest.mark.parametrize("mapped", [shopify_order, woocommerce_order], ids=["shopify", "woocommerce"])
def test_a_hostile_tracking_link_is_dropped_and_the_mail_has_no_such_link(plugin_app, mapped, link):
    app = plugin_app(tracking_notice)
    parcel, mail = shipped_mail(app, mapped(link))
    assert parcel.tracking_url == "" and parcel.tracking_number == "EV1"
    raw = mail.message.as_string().lower()
    assert "javascript" not in raw and "data:text" not in raw and "/track?n=1" not in raw
    hrefs = re.findall(r'href="([^"]*)"', mail.message.get_body(("html",)).get_content())
    assert hrefs == []  # a transactional "shipped" mail's one link is the tracking button


@pytest.mark.parametrize("mapped", [shopify_order, woocommerce_order], ids=["shopify", "woocommerce"])
def test_an_https_tracking_link_is_the_mails_button(plugin_app, mapped):
    app = plugin_app(tracking_notice)
    parcel, mail = shipped_mail(app, mapped("https://evil-post.example/t/EV1"))
    assert parcel.tracking_url == "https://evil-post.example/t/EV1"
    hrefs = re.findall(r'href="([^"]+)"', mail.message.get_body(("html",)).get_content())
    assert "https://evil-post.example/t/EV1" in hrefs
