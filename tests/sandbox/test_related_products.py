"""Related products as each platform keeps them: Shopify's complementary products (the Search &
Discovery metafield, read through the Admin API), WooCommerce's cross-sells and upsells (REST)."""

from __future__ import annotations

from decimal import Decimal

from aftercare.models import Money

from .test_birthdays import shopify_adapter, woocommerce_adapter


def catalogue(shop):
    """An order, and products related to its first line's product: one drafted, one deleted."""
    order = shop.create_order()
    line = order.lines[0]
    pour = shop.add_product("Pour-Over Set", "48.50", image_url="https://cdn.example/pour.jpg")
    draft = shop.add_product("Not yet for sale", "5.00", published=False)
    beans = shop.add_product("Coffee Beans", "11.50")
    return order, line, pour, draft, beans


def test_shopify_reads_search_and_discovery_complementary_products(sandbox_shopify):
    shop = sandbox_shopify
    order, line, pour, draft, beans = catalogue(shop)
    shop.add_product(line.title, "10", id=line.product_id, related=[pour.id, draft.id, 999, beans.id])
    adapter = shopify_adapter(shop)

    related = adapter.related_products(str(line.product_id))
    assert [(p.platform_id, p.title) for p in related] == [
        (str(pour.id), "Pour-Over Set"),
        (str(beans.id), "Coffee Beans"),
    ]
    assert related[0].url == f"https://{shop.shop_domain}/products/{pour.handle}"
    assert related[0].image_url == "https://cdn.example/pour.jpg" and related[1].image_url == ""
    assert related[0].price == Money(Decimal("48.50"), "EUR")
    assert adapter.related_products(str(pour.id)) == []  # no metafield: nothing
    assert adapter.related_products("424242") == []  # no such product


def test_woocommerce_reads_cross_sells_then_upsells(sandbox_woocommerce):
    shop = sandbox_woocommerce
    order, line, pour, draft, beans = catalogue(shop)
    shop.add_product(line.title, "10", id=line.product_id, related=[beans.id, draft.id], upsells=[pour.id, beans.id])
    adapter = woocommerce_adapter(shop)

    related = adapter.related_products(str(line.product_id))
    assert [p.title for p in related] == ["Coffee Beans", "Pour-Over Set"]  # cross-sells first, no repeat, no draft
    assert (
        related[1].url == f"{shop.url}/product/{pour.handle}/"
        and related[1].image_url == "https://cdn.example/pour.jpg"
    )
    assert related[1].price == Money(Decimal("48.50"), shop.currency)
    assert adapter.related_products(str(pour.id)) == []
    assert adapter.related_products("424242") == []  # woocommerce_rest_product_invalid_id


def test_each_products_list_is_kept_and_merged_for_an_orders_lines(sandbox_shopify, sandbox_woocommerce):
    for shop, make in ((sandbox_shopify, shopify_adapter), (sandbox_woocommerce, woocommerce_adapter)):
        order, line, pour, _draft, beans = catalogue(shop)
        shop.add_product(line.title, "10", id=line.product_id, related=[pour.id])
        adapter = make(shop)
        assert [p.title for p in adapter.complementary_products([str(line.product_id)], 3)] == ["Pour-Over Set"]
        shop.state.products[line.product_id].related = [beans.id]  # changed on the platform
        assert [p.title for p in adapter.complementary_products([str(line.product_id)], 3)] == ["Pour-Over Set"]
        assert [p.title for p in make(shop).complementary_products([str(line.product_id)], 3)] == ["Coffee Beans"]
