"""Contract tests: the error bodies a real WooCommerce 11.0.1 answered (recorded in
../shared/fixtures/woocommerce/wc-11.0.1/), served as the shop's answers, become
the one-line errors and the outcomes aftercare reports."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses

from aftercare.platform import CouponSpec, PlatformError

API = "https://shop.example/wp-json/wc/v3"


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def recorded(wc_fixtures):
    return lambda name: wc_fixtures(f"wc-11.0.1/{name}")


def test_a_read_key_is_named_on_the_coupon_it_cannot_create(adapter, http, recorded):
    error = recorded("rest_error_401_read_only_key.json")
    http.get(f"{API}/coupons", json=[])
    http.post(f"{API}/coupons", status=error["status"], json=error["body"])
    with pytest.raises(PlatformError) as caught:
        adapter.create_coupon(CouponSpec("probe-read-only", "percent", Decimal(5), "EUR"))
    assert caught.value.message == (
        "woocommerce 401 woocommerce_rest_authentication_error: The API key provided does not have write permissions."
    )
    assert not caught.value.transient


def test_a_deleted_key_fails_the_live_check_with_a_hint(adapter, http, recorded):
    error = recorded("rest_error_401_deleted_key.json")
    http.get(f"{API}/orders", status=error["status"], json=error["body"])
    (problem,) = adapter.check_live()
    assert problem.startswith("woocommerce 401 woocommerce_rest_authentication_error: Consumer key is invalid.")
    assert "consumer_key/consumer_secret" in problem


def test_an_unknown_status_is_one_line(adapter, http, recorded):
    error = recorded("rest_error_400_invalid_order_status.json")
    http.put(f"{API}/orders/14", status=error["status"], json=error["body"])
    with pytest.raises(PlatformError) as caught:
        adapter.client.put("orders/14", {"status": "shipped"})
    assert caught.value.message == "woocommerce 400 rest_invalid_param: Invalid parameter(s): status"


def test_entities_in_a_message_are_unescaped(adapter, http, recorded):
    """WooCommerce writes &quot; into this message; the reason reads as text."""
    error = recorded("rest_error_order_coupon_not_for_this_customer.json")
    http.post(f"{API}/orders", status=error["status"], json=error["body"])
    with pytest.raises(PlatformError) as caught:
        adapter.client.post("orders", {"coupon_lines": [{"code": "thanks-eud3j-8wbmh"}]})
    assert caught.value.message == (
        "woocommerce 400 woocommerce_rest_invalid_coupon: "
        'Please enter a valid email at checkout to use coupon code "thanks-eud3j-8wbmh".'
    )


def test_coupons_aftercare_made_before_this_fix_are_not_adopted(adapter, http, recorded):
    """Recorded: coupons aftercare 0.1.0 created, lower-cased and without expiry (it
    sent date_expires_gmt). A retry that finds one does not report it as the
    coupon with the promised expiry."""
    made = recorded("rest_coupons_created_by_aftercare.json")[0]
    spec = CouponSpec(
        made["code"].upper(), "percent", Decimal(10), "EUR", customer_email=made["email_restrictions"][0],
        expires_at=datetime(2027, 1, 31, tzinfo=UTC),
    )  # fmt: skip
    http.get(f"{API}/coupons", json=[made])
    with pytest.raises(PlatformError, match="date_expires_gmt is None, expected '2027-01-31T00:00:00'"):
        adapter.create_coupon(spec)
    spec_without_expiry = CouponSpec(
        made["code"].upper(), "percent", Decimal(10), "EUR", customer_email=made["email_restrictions"][0]
    )
    http.get(f"{API}/coupons", json=[made])
    result = adapter.create_coupon(spec_without_expiry)
    assert (result.code, result.platform_id, result.created) == (made["code"], str(made["id"]), False)
