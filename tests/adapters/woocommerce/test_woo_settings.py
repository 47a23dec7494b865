"""Shop settings validation and registration through the public hook."""

from __future__ import annotations

import pluggy
import pytest
from pydantic import ValidationError

import aftercare.adapters.woocommerce as woocommerce
from aftercare import PROJECT, hookspecs
from aftercare.adapters.woocommerce import WooCommerceAdapter, WooCommerceSettings

KEYS = {"consumer_key": "ck_x", "consumer_secret": "cs_x"}


def test_url_is_normalised():
    assert WooCommerceSettings(url=" https://shop.example/ ", **KEYS).url == "https://shop.example"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost/shop"])
def test_plain_http_allowed_on_loopback(url):
    assert WooCommerceSettings(url=url, **KEYS).url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://shop.example", "must use https"),
        ("shop.example", "shop's address"),
        ("ftp://shop.example", "shop's address"),
        ("https://shop.example/?lang=de", "query"),
    ],
)
def test_bad_urls_are_explained(url, problem):
    with pytest.raises(ValidationError, match=problem):
        WooCommerceSettings(url=url, **KEYS)


def test_unknown_keys_are_errors():
    with pytest.raises(ValidationError, match="consumer_scret"):
        WooCommerceSettings(url="https://shop.example", consumer_key="k", consumer_scret="s")


def test_status_rules_accept_the_wc_prefix():
    settings = WooCommerceSettings(url="https://shop.example", delivered_statuses=["wc-Delivered"], **KEYS)
    assert settings.delivered_statuses == ("delivered",)


def test_secret_is_never_printed():
    settings = WooCommerceSettings(url="https://shop.example", **KEYS)
    assert "cs_x" not in repr(settings) and "cs_x" not in str(settings.model_dump())


def test_registers_through_the_hook():
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(woocommerce)
    registered = []
    manager.hook.register_adapters(register=registered.append)
    assert registered == [WooCommerceAdapter]
    assert WooCommerceAdapter.platform == "woocommerce"
    assert WooCommerceAdapter.Settings is WooCommerceSettings
    assert set(WooCommerceAdapter.topics) == set(hookspecs_kinds())


def hookspecs_kinds():
    """The platform's events: survey answers and opt-ins come from aftercare's own pages."""
    from aftercare.models import EventKind

    return [k for k in EventKind if k not in (EventKind.SURVEY_ANSWERED, EventKind.OPTIN_CONFIRMED)]


def test_offline_settings_map_a_payload_without_a_shop(wc_fixtures):
    from aftercare.platform import MemoryShopState, ShopInfo

    settings = WooCommerceAdapter.offline_settings()
    adapter = WooCommerceAdapter(ShopInfo(id="x", webhook_secret="s"), settings, MemoryShopState(), lambda: None)
    assert adapter.parse_order(wc_fixtures("order_retrieve.json")).platform_id == "727"
