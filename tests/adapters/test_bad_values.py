"""Values no shop could have sent are refused at the door: a PayloadError naming topic and
field (the receiver's 422, kept in rejected_deliveries), never an OverflowError, decimal
signal or RecursionError that would answer 500/503 and have the platform retry for hours."""

import json
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from aftercare.asgi import create_asgi_app
from aftercare.platform import PayloadError, payload_amount, payload_time, tracking_link
from aftercare.queue import Enqueuer

from .signed_shops import adapter_for, map_delivery, payloads, platform_app, signed_headers


def shopify_order():
    return next(body for topic, body in payloads("shopify") if topic == "orders/paid" and body.get("line_items"))


def woocommerce_order():
    return next(body for _topic, body in payloads("woocommerce") if body.get("line_items"))


def refused(platform, topic, body):
    with pytest.raises(PayloadError) as caught:
        map_delivery(adapter_for(platform), topic, json.dumps(body).encode())
    return caught.value


@pytest.mark.parametrize(
    "stamp",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z"],
)
def test_shopify_timestamps_outside_1970_to_2100_name_their_field(stamp):
    body = shopify_order()
    body["created_at"] = stamp
    error = refused("shopify", "orders/paid", body)
    assert (error.topic, error.field) == ("orders/paid", "created_at")
    assert "outside 1970-01-01 to 2100-01-01" in error.problem


@pytest.mark.parametrize(
    "amount", ["1e999999999", "-1e999999999", "NaN", "sNaN", "Infinity", "1000000000000", "0.1234567"]
)
@pytest.mark.parametrize("field", ["total_price", "line_items.0.price"])
def test_shopify_amounts_no_shop_charges_name_their_field(amount, field):
    body = shopify_order()
    if field == "total_price":
        body["total_price"] = amount
    else:
        body["line_items"][0]["price"] = amount
    error = refused("shopify", "orders/paid", body)
    assert (error.topic, error.field) == ("orders/paid", field.replace(".0.", "[0]."))


@pytest.mark.parametrize("amount", ["sNaN", "NaN", "-Infinity", "1e999999999", "1E+12", "12.5000001"])
@pytest.mark.parametrize("field", ["total", "line_items.0.subtotal", "refunds.0.total"])
def test_woocommerce_amounts_no_shop_charges_name_their_field(amount, field):
    body = woocommerce_order()
    if field == "total":
        body["total"] = amount
    elif field == "refunds.0.total":
        body["refunds"] = [{"id": 9, "reason": "", "total": amount}]
    else:
        body["line_items"][0]["subtotal"] = amount
    error = refused("woocommerce", "order.updated", body)
    assert (error.topic, error.field) == ("order.updated", field.replace(".0.", "[0]."))


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00", "9999-12-31T23:59:59-14:00", "2150-01-01T00:00:00"])
def test_woocommerce_dates_outside_the_window_name_their_field(stamp):
    body = woocommerce_order()
    body["date_created_gmt"] = stamp
    error = refused("woocommerce", "order.updated", body)
    assert (error.topic, error.field) == ("order.updated", "date_created_gmt")


@pytest.mark.parametrize(("platform", "path"), [("shopify", "line_items"), ("woocommerce", "line_items")])
def test_quantities_beyond_a_million_are_refused(platform, path):
    body = shopify_order() if platform == "shopify" else woocommerce_order()
    body[path][0]["quantity"] = 10**400  # x a price overflowed the line total in every mail
    error = refused(platform, "orders/paid" if platform == "shopify" else "order.updated", body)
    assert error.field == f"{path}[0].quantity"


def test_plain_amounts_pass_and_are_written_out():
    assert payload_amount("t", "f", Decimal("19.99")) == Decimal("19.99")
    assert str(payload_amount("t", "f", Decimal("1E+3"))) == "1000"
    assert str(payload_amount("t", "f", Decimal("19.9900000000"))) == "19.990000"
    assert payload_amount("t", "f", Decimal("-999999999999.999999")) == Decimal("-999999999999.999999")
    assert payload_amount("t", "f", Decimal("0E-30")) == 0


def test_the_last_instant_before_2100_is_accepted():
    body = shopify_order()
    body["created_at"] = "2099-12-31T23:59:59+00:00"
    (event,) = map_delivery(adapter_for("shopify"), "orders/paid", json.dumps(body).encode())
    assert event.order.created_at.year == 2099
    with pytest.raises(PayloadError, match="has no time zone"):
        payload_time("t", "f", event.order.created_at.replace(tzinfo=None))


def test_an_unreadable_shopify_triggered_at_is_ignored_not_fatal():
    adapter = adapter_for("shopify")
    body = json.dumps(shopify_order()).encode()
    headers = signed_headers("shopify", body) | {"X-Shopify-Triggered-At": "9999-12-31T23:59:59-14:00"}
    assert adapter.verify_webhook(headers, body).triggered_at is None


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://track.example/1Z?x=1", True),
        ("HTTP://track.example/1Z", True),
        ("javascript:alert(document.domain)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("/track/1Z", False),
        ("//track.example/1Z", False),
        ("https:///nohost", False),
        ("https://[::1", False),
        ("https://track.example/a b", False),
        ("https://track.example/\nSet-Cookie: x", False),
    ],
)
def test_only_absolute_http_links_are_tracking_links(url, kept):
    assert tracking_link(url) == (url.strip() if kept else "")


# -- through the receiver ----------------------------------------------------------------


@pytest.fixture(params=["shopify", "woocommerce"])
def served(request, aftercare_app):
    app = platform_app(aftercare_app, request.param)
    with TestClient(create_asgi_app(app, Enqueuer.for_app(app)), base_url="http://127.0.0.1") as client:
        yield request.param, app, client


def test_a_signed_overflowing_amount_is_422_and_kept(served):
    platform, app, client = served
    body = shopify_order() if platform == "shopify" else woocommerce_order()
    body["line_items"][0]["price" if platform == "shopify" else "subtotal"] = "1e999999999"
    raw = json.dumps(body).encode()
    shop = app.config.shops[0].id
    answer = client.post(f"/webhooks/{shop}", content=raw, headers=signed_headers(platform, raw, delivery="big-1"))
    assert answer.status_code == 422, answer.text
    assert "line_items[0]." in answer.json()["error"]
    [kept] = app.store.rejected()
    assert (kept["delivery_id"].endswith("big-1"), kept["body"]) == (True, raw)
    assert app.store.list_events() == []


@pytest.mark.parametrize("depth", [1025, 100_000])
def test_json_nested_deeper_than_any_order_is_a_400(served, depth):
    platform, app, client = served
    raw = b'{"id":' * depth + b"1" + b"}" * depth
    shop = app.config.shops[0].id
    answer = client.post(f"/webhooks/{shop}", content=raw, headers=signed_headers(platform, raw))
    assert answer.status_code == 400, answer.text
    assert "nested too deeply" in answer.json()["error"]


@pytest.mark.parametrize(
    ("platform", "field", "value", "problem"),
    [
        ("woocommerce", "id", "727\r\nBcc: eve@example.com", "is not an id"),  # ids go into mail headers
        ("woocommerce", "id", "7" * 65, "is not an id"),  # the store keeps order ids in 64 characters
        ("shopify", "id", "9" * 80, "is not an id"),
        ("woocommerce", "number", "\ud800", "lone surrogate"),  # no UTF-8 form: no database or mail holds it
        ("shopify", "name", "\ud800", "lone surrogate"),
    ],
)
def test_ids_and_text_that_cannot_be_stored_or_mailed_are_refused(platform, field, value, problem):
    body = shopify_order() if platform == "shopify" else woocommerce_order()
    body[field] = value
    if platform == "shopify":
        body.pop("admin_graphql_api_id", None)  # else its gid wins over the numeric id
    topic = "orders/paid" if platform == "shopify" else "order.updated"
    with pytest.raises(PayloadError) as caught:
        map_delivery(adapter_for(platform), topic, json.dumps(body).encode())
    assert caught.value.field == field and problem in caught.value.problem


def test_a_delivery_id_longer_than_the_store_keeps_is_a_400(served):
    platform, app, client = served
    raw = json.dumps(shopify_order() if platform == "shopify" else woocommerce_order()).encode()
    shop = app.config.shops[0].id
    answer = client.post(f"/webhooks/{shop}", content=raw, headers=signed_headers(platform, raw, delivery="d" * 300))
    assert answer.status_code == 400 and "longer than 255" in answer.json()["error"]
    assert app.store.list_events() == [] and app.store.rejected() == []


@pytest.mark.parametrize(
    ("given", "kept"),
    [("es", "es"), ("pt-BR", "pt-BR"), ("sr_Latn_RS", "sr_Latn_RS"), (" de ", "de"), ("x" * 5000, ""),
     ("en\r\nBcc: eve@example.com", ""), ("../../etc", ""), ("", "")],
)  # fmt: skip
def test_a_customer_locale_that_is_no_language_tag_falls_back_to_the_shops(given, kept):
    body = shopify_order()
    body["customer_locale"] = given  # mails pick their templates by it: 5,000 letters made an OSError
    (event,) = map_delivery(adapter_for("shopify"), "orders/paid", json.dumps(body).encode())
    assert event.order.locale == event.order.customer.locale == kept
