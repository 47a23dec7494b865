"""Related products in the review request and the delivered notice: asked for in the hook, read from
the platform (cached per product) when the mail is sent, never guessed."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import SecretStr

from aftercare.context import PRODUCTS_REQUEST, ActionSink, Context, ShopProfile
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import ConsentState, LineItem, Money, RelatedProduct, ShipmentStatus
from aftercare.platform import RELATED_PRODUCTS_TTL, AdapterSettings, MemoryShopState, PlatformError, ShopInfo
from aftercare.plugins import review_request, tracking_notice
from aftercare.testing import START, MemoryAdapter, make_event, make_order

from .conftest import inbox

DAY = timedelta(days=1)
URL = "https://tienda.example/products/{product_id}#reviews"
POUR_OVER = RelatedProduct(
    "prod-7", "Cafetera de goteo", "https://tienda.example/p/goteo", "https://cdn.tienda.example/goteo.jpg",
    Money(Decimal("48.50"), "EUR"),
)  # fmt: skip
BEANS = RelatedProduct("prod-8", "Café de origen 250 g", "https://tienda.example/p/cafe")
CUPS_AGAIN = RelatedProduct("prod-1", "Espresso cups", "https://tienda.example/p/cups")


def delivered(app, order):
    parcel = replace(order.shipments[0], status=ShipmentStatus.DELIVERED, delivered_at=app.now())
    order = replace(order, shipments=(parcel,))
    app.adapter("test").put_order(order)
    Dispatcher(app).dispatch(make_event("delivered", order, occurred_at=app.now()))
    return order


def reviews(plugin_app, count=2):
    settings = {"review_url": URL, "days_after_delivery": 7, "complementary_products": count}
    return plugin_app(review_request, settings={"review_request": settings})


def test_the_review_request_shows_the_platforms_related_products_read_when_it_is_sent(plugin_app):
    app = reviews(plugin_app)
    delivered(app, make_order("1001"))
    (action,) = app.store.list_actions()
    assert action.payload["context"]["complementary_products"] == {
        PRODUCTS_REQUEST: {"product_ids": ["prod-1"], "limit": 2}
    }
    assert not any(call.startswith("related_products") for call in app.adapter("test").calls)  # not in the hook
    app.adapter("test").related["prod-1"] = [CUPS_AGAIN, POUR_OVER, BEANS, POUR_OVER]  # set in the meantime
    app.clock.advance(7 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert "También te puede gustar:" in mail.text
    assert "- Cafetera de goteo (48,50 €): https://tienda.example/p/goteo" in mail.text
    assert "- Café de origen 250 g: https://tienda.example/p/cafe" in mail.text
    assert "Espresso cups: https://tienda.example/p/cups" not in mail.text  # the product itself is not suggested
    assert 'src="https://cdn.tienda.example/goteo.jpg"' in mail.html and "48,50" in mail.html


def test_nothing_is_shown_when_the_platform_relates_nothing(plugin_app):
    app = reviews(plugin_app)
    delivered(app, make_order("1001"))
    app.clock.advance(7 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert "También te puede gustar" not in mail.text and "te puede gustar" not in mail.html
    assert app.adapter("test").calls.count("related_products:prod-1") == 1


def test_off_by_default_nothing_is_asked_for(plugin_app):
    app = plugin_app(review_request, settings={"review_request": {"review_url": URL}})
    app.adapter("test").related["prod-1"] = [POUR_OVER]
    delivered(app, make_order("1001"))
    app.clock.advance(7 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert "complementary_products" not in mail.message.as_string() and "Cafetera" not in mail.text
    assert not any(call.startswith("related_products") for call in app.adapter("test").calls)


def test_each_products_list_is_cached_for_a_while(plugin_app):
    app = reviews(plugin_app)
    adapter = app.adapter("test")
    adapter.related["prod-1"] = [POUR_OVER]
    assert adapter.complementary_products(["prod-1"], 3) == [POUR_OVER]
    adapter.related["prod-1"] = [BEANS]
    assert adapter.complementary_products(["prod-1"], 3) == [POUR_OVER]  # kept
    app.clock.advance(RELATED_PRODUCTS_TTL)
    assert adapter.complementary_products(["prod-1"], 3) == [BEANS]  # read again
    assert adapter.calls.count("related_products:prod-1") == 2


def test_several_products_merge_in_order_without_repeats_up_to_the_limit():
    shop = ShopInfo(id="t", webhook_secret=SecretStr("s"))
    adapter = MemoryAdapter(shop, AdapterSettings(), MemoryShopState(), lambda: START)
    adapter.related = {"a": [POUR_OVER, BEANS], "b": [BEANS, CUPS_AGAIN]}
    assert adapter.complementary_products(["a", "b"], 5) == [POUR_OVER, BEANS, CUPS_AGAIN]
    adapter.calls.clear()
    assert adapter.complementary_products(["a", "b"], 1) == [POUR_OVER]
    assert adapter.complementary_products(["a", "b"], 0) == []
    assert adapter.calls == []  # both lists were kept; and a full list reads no further product
    adapter.state = MemoryShopState()
    assert adapter.complementary_products(["a", "b"], 2) == [POUR_OVER, BEANS]
    assert adapter.calls == ["related_products:a"]
    assert adapter.complementary_products(["prod-7", "b"], 5) == [BEANS, CUPS_AGAIN]  # a bought product is not offered


def test_a_platform_that_cannot_be_read_leaves_the_list_empty_and_the_mail_goes(plugin_app, monkeypatch):
    app = reviews(plugin_app)
    delivered(app, make_order("1001"))

    def refuse(product_id):
        raise PlatformError("shopify: access denied for products (read_products)", transient=False)

    monkeypatch.setattr(app.adapter("test"), "related_products", refuse)
    app.clock.advance(7 * DAY)
    execute_due(app)
    (mail,) = inbox(app)
    assert "te puede gustar" not in mail.text


@pytest.mark.parametrize(
    ("consent", "shown"),
    [(ConsentState.SUBSCRIBED, True), (ConsentState.UNKNOWN, False), (ConsentState.UNSUBSCRIBED, False)],
)
def test_the_delivered_notice_shows_products_only_to_customers_who_opted_in(plugin_app, consent, shown):
    settings = {"tracking_notice": {"delivered_notice": True, "complementary_products": 3}}
    app = plugin_app(tracking_notice, settings=settings)
    app.adapter("test").related["prod-1"] = [POUR_OVER]
    order = make_order("1001")
    delivered(app, replace(order, customer=replace(order.customer, marketing_consent=consent)))
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.transactional
    assert ("Cafetera de goteo" in mail.text) is shown


def test_the_request_names_the_given_lines_products_once():
    order = make_order("1001")
    second = LineItem("line-2", "Saucers", 2, Money(Decimal("5"), "EUR"), "prod-2", "var-2")
    third = LineItem("line-3", "Spoons", 1, Money(Decimal("3"), "EUR"), "prod-1", "var-3")
    order = replace(order, lines=(*order.lines, second, third))
    ctx = Context(
        event=make_event("delivered", order), plugin="p", hook="on_delivered", shop=ShopProfile("test", "memory"),
        settings=review_request.Settings(), clock=lambda: START, sink=ActionSink(),
    )  # fmt: skip
    assert ctx.complementary_products(4) == {PRODUCTS_REQUEST: {"product_ids": ["prod-1", "prod-2"], "limit": 4}}
    assert ctx.complementary_products(2, lines=["line-2"])[PRODUCTS_REQUEST]["product_ids"] == ["prod-2"]
    with pytest.raises(ValueError, match="limit of zero or more"):
        ctx.complementary_products(-1)
