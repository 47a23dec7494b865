"""Platform actions, webhook management and the live check over mocked HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses
from responses import matchers

from aftercare.models import ConsentState, Customer, EventKind, Money
from aftercare.platform import CouponSpec, PlatformError, WebhookSubscription

API = "https://shop.example/wp-json/wc/v3"
HOOK_URL = "https://aftercare.example/webhooks/wc1"


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


def sent(call) -> dict:
    return json.loads(call.request.body)


SPEC = CouponSpec(
    code="THANKS-727",
    kind="percent",
    value=Decimal("10"),
    currency="USD",
    customer_email="john.doe@example.com",
    expires_at=datetime(2026, 8, 1, 12, 0, tzinfo=UTC),
    minimum_subtotal=Money(Decimal("50.00"), "USD"),
    title="Thank-you coupon",
)


def held(wc_fixtures, **changes) -> dict:
    """The shop's answer for the coupon SPEC creates (code lower-cased, as WooCommerce stores it)."""
    return wc_fixtures("coupon_retrieve.json") | {
        "code": "thanks-727",
        "amount": "10.00",
        "discount_type": "percent",
        "individual_use": True,
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "email_restrictions": ["john.doe@example.com"],
        "date_expires": "2026-08-01T12:00:00",
        "date_expires_gmt": "2026-08-01T12:00:00",
        "minimum_amount": "50.00",
    } | changes


def test_create_coupon(adapter, http, wc_fixtures):
    http.get(f"{API}/coupons", json=[], match=[matchers.query_param_matcher({"code": "THANKS-727"})])
    http.post(f"{API}/coupons", status=201, json=held(wc_fixtures))
    result = adapter.create_coupon(SPEC)
    # The code mailed is the shop's: WooCommerce lower-cases codes.
    assert (result.code, result.platform_id, result.created) == ("thanks-727", "719", True)
    assert sent(http.calls[1]) == {
        "code": "THANKS-727",
        "discount_type": "percent",
        "amount": "10",
        "individual_use": True,
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "description": "Thank-you coupon",
        "email_restrictions": ["john.doe@example.com"],
        "date_expires": "2026-08-01T12:00:00Z",
        "minimum_amount": "50.00",
    }


def test_an_expiry_the_shop_did_not_keep_fails_the_coupon(adapter, http, wc_fixtures):
    """WooCommerce 11 answers 201 and drops an expiry it does not read (recorded:
    date_expires_gmt on create); the action fails instead of mailing "valid until"."""
    dropped = wc_fixtures("wc-11.0.1/rest_coupon_create_with_date_expires_gmt.json")["response"]
    http.get(f"{API}/coupons", json=[])
    http.post(f"{API}/coupons", status=201, json=held(wc_fixtures) | {
        "date_expires": dropped["date_expires"], "date_expires_gmt": dropped["date_expires_gmt"]
    })  # fmt: skip
    with pytest.raises(PlatformError, match="without the expiry") as caught:
        adapter.create_coupon(SPEC)
    assert not caught.value.transient
    assert "date_expires_gmt None, expected '2026-08-01T12:00:00'" in caught.value.message


def test_expiry_with_an_offset_is_what_woocommerce_keeps(adapter, http, wc_fixtures):
    recorded = wc_fixtures("wc-11.0.1/rest_coupon_create_with_date_expires_Z.json")
    spec = CouponSpec(
        code="probe-offset", kind="percent", value=Decimal(10), currency="USD",
        expires_at=datetime.fromisoformat(recorded["request"]["date_expires"]),
    )  # fmt: skip
    http.get(f"{API}/coupons", json=[])
    http.post(f"{API}/coupons", status=201, json=recorded["response"])
    adapter.create_coupon(spec)
    assert sent(http.calls[1])["date_expires"] == recorded["request"]["date_expires"]


def test_fixed_amount_is_fixed_cart(adapter, http):
    http.get(f"{API}/coupons", json=[])
    http.post(f"{API}/coupons", status=201, json={"id": 9, "code": "five"})
    adapter.create_coupon(CouponSpec(code="five", kind="fixed_amount", value=Decimal("5"), currency="USD"))
    body = sent(http.calls[1])
    assert body["discount_type"] == "fixed_cart" and "email_restrictions" not in body


def test_existing_coupon_that_matches_is_adopted_without_creating(adapter, http, wc_fixtures):
    http.get(f"{API}/coupons", json=[held(wc_fixtures)])
    result = adapter.create_coupon(SPEC)
    assert (result.code, result.platform_id, result.created) == ("thanks-727", "719", False)
    assert len(http.calls) == 1


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"amount": "50.00"}, "amount is '50.00', expected '10'"),
        ({"discount_type": "fixed_cart"}, "discount_type is 'fixed_cart', expected 'percent'"),
        ({"email_restrictions": []}, "email_restrictions is [], expected ['john.doe@example.com']"),
        ({"usage_limit": None}, "usage_limit is None, expected 1"),
        ({"usage_limit_per_user": 5}, "usage_limit_per_user is 5, expected 1"),
        ({"date_expires_gmt": None}, "date_expires_gmt is None, expected '2026-08-01T12:00:00'"),
        ({"minimum_amount": "0.00"}, "minimum_amount is '0.00', expected '50.00'"),
    ],
)
def test_existing_coupon_that_differs_is_refused(adapter, http, wc_fixtures, change, named):
    http.get(f"{API}/coupons", json=[held(wc_fixtures, **change)])
    with pytest.raises(PlatformError) as caught:
        adapter.create_coupon(SPEC)
    assert not caught.value.transient
    assert caught.value.message == (
        "woocommerce: a coupon with code thanks-727 (id 719) already exists and is not the one "
        f"aftercare would create: {named}; not adopted"
    )
    assert [c.request.method for c in http.calls] == ["GET"]


def test_hand_made_coupon_with_our_code_is_not_adopted(adapter, http, wc_fixtures):
    """Recorded: a 50 % coupon without restrictions, made by hand with the pending
    code; the create is refused as a duplicate (recorded answer) and the lookup finds it."""
    by_hand = wc_fixtures("wc-11.0.1/rest_coupon_created_by_driver.json")
    exists = wc_fixtures("wc-11.0.1/rest_error_400_coupon_code_exists.json")
    spec = CouponSpec(code=by_hand["code"].upper(), kind="percent", value=Decimal(10), currency="EUR",
                      customer_email="alice.walker@example.com")  # fmt: skip
    http.get(f"{API}/coupons", json=[])
    http.post(f"{API}/coupons", status=exists["status"], json=exists["body"])
    http.get(f"{API}/coupons", json=[by_hand])
    with pytest.raises(PlatformError, match=r"amount is '50.00', expected '10'; not adopted") as caught:
        adapter.create_coupon(spec)
    assert not caught.value.transient and f"(id {by_hand['id']})" in caught.value.message


def test_retried_creation_does_not_duplicate(adapter, http, wc_fixtures, sleeps):
    """The first POST created the coupon but its answer was lost (a 503 from a
    proxy); the retry is refused as a duplicate, and we return the one coupon."""
    http.get(f"{API}/coupons", json=[])
    http.post(f"{API}/coupons", status=503, body="Service Unavailable")
    http.post(
        f"{API}/coupons",
        status=400,
        json={
            "code": "woocommerce_rest_coupon_code_already_exists",
            "message": "The coupon code already exists",
            "data": {"status": 400},
        },
    )
    http.get(f"{API}/coupons", json=[held(wc_fixtures)])
    result = adapter.create_coupon(SPEC)
    assert (result.platform_id, result.created) == ("719", False)
    assert [c.request.method for c in http.calls] == ["GET", "POST", "POST", "GET"]
    assert len(sleeps) == 1


def test_other_coupon_errors_surface(adapter, http):
    http.get(f"{API}/coupons", json=[])
    http.post(
        f"{API}/coupons",
        status=400,
        json={"code": "rest_invalid_param", "message": "Invalid parameter(s): amount"},
    )
    with pytest.raises(PlatformError, match="woocommerce 400 rest_invalid_param") as caught:
        adapter.create_coupon(SPEC)
    assert not caught.value.transient


def test_order_note_is_private_by_default(adapter, http, wc_fixtures):
    http.post(f"{API}/orders/727/notes", status=201, json=wc_fixtures("order_note_retrieve.json"))
    adapter.add_order_note("727", "Review request sent")
    assert sent(http.calls[0]) == {"note": "Review request sent", "customer_note": False}


def test_ids_are_checked_before_they_reach_a_url(adapter):
    with pytest.raises(PlatformError, match="not a WooCommerce id"):
        adapter.add_order_note("727/../../users", "x")


def echo_meta(call_request) -> tuple[int, dict, str]:
    """WooCommerce's answer to a meta PUT: the record with the meta it kept."""
    body = json.loads(call_request.body)
    record = {"id": int(call_request.url.rstrip("/").rsplit("/", 1)[1]), "meta_data": body["meta_data"]}
    return 200, {}, json.dumps(record)


def test_consent_on_a_registered_customer(adapter, http, clock):
    http.add_callback(responses.PUT, f"{API}/customers/25", callback=echo_meta)
    adapter.set_marketing_consent(
        Customer(email="john.doe@example.com", platform_id="25"), ConsentState.SUBSCRIBED, "survey"
    )
    assert sent(http.calls[0]) == {
        "meta_data": [
            {
                "key": "aftercare_marketing_consent",
                "value": {"state": "subscribed", "at": clock.now().isoformat(), "source": "survey"},
            }
        ]
    }


def test_consent_the_shop_did_not_keep_fails_the_action_with_the_reason(adapter, http):
    """WooCommerce answers 200 to a customer PUT whose meta it dropped (protected keys,
    a plugin's filter): the action must not say done."""
    http.put(f"{API}/customers/25", json={"id": 25, "meta_data": [{"id": 31, "key": "wc_last_active", "value": "1"}]})
    with pytest.raises(PlatformError) as caught:
        adapter.set_marketing_consent(
            Customer(email="john.doe@example.com", platform_id="25"), ConsentState.SUBSCRIBED, "survey"
        )
    assert caught.value.message == (
        "WooCommerce did not keep customer meta 'aftercare_marketing_consent': PUT customers/25 answered 200 "
        "without it (a plugin filtering meta, or a protected key)"
    )
    assert not caught.value.transient


def test_consent_of_a_guest_goes_on_their_latest_order(adapter, http, wc_fixtures):
    http.get(
        f"{API}/customers",
        json=[],
        match=[matchers.query_param_matcher({"email": "john.doe@example.com", "role": "all"})],
    )
    other = wc_fixtures("order_retrieve.json") | {"id": 800}
    other["billing"] = other["billing"] | {"email": "someone.else@example.com"}
    http.get(f"{API}/orders", json=[other, wc_fixtures("order_retrieve.json")])
    http.add_callback(responses.PUT, f"{API}/orders/727", callback=echo_meta)
    adapter.set_marketing_consent(Customer(email="John.Doe@example.com"), ConsentState.UNSUBSCRIBED, "unsubscribe-link")
    assert sent(http.calls[2])["meta_data"][0]["value"]["state"] == "unsubscribed"


def test_consent_of_unknown_guest_fails_permanently(adapter, http):
    http.get(f"{API}/customers", json=[])
    http.get(f"{API}/orders", json=[])
    with pytest.raises(PlatformError, match="no customer or order") as caught:
        adapter.set_marketing_consent(Customer(email="nobody@example.com"), ConsentState.SUBSCRIBED, "x")
    assert not caught.value.transient


def test_tag_order_merges_with_existing_tags(adapter, http, wc_fixtures, with_meta):
    order = with_meta(wc_fixtures("order_retrieve.json"), "aftercare_tags", "vip")
    http.get(f"{API}/orders/727", json=order)
    http.add_callback(responses.PUT, f"{API}/orders/727", callback=echo_meta)
    adapter.tag_order("727", ["review-sent", "vip"])
    assert sent(http.calls[1]) == {"meta_data": [{"key": "aftercare_tags", "value": "vip, review-sent"}]}


def test_tags_under_the_old_key_on_an_order_move_to_the_new_one(adapter, http, wc_fixtures, with_meta):
    order = with_meta(wc_fixtures("order_retrieve.json"), "_aftercare_tags", "vip")
    http.get(f"{API}/orders/727", json=order)
    http.add_callback(responses.PUT, f"{API}/orders/727", callback=echo_meta)
    adapter.tag_order("727", ["vip"])
    assert sent(http.calls[1]) == {"meta_data": [{"key": "aftercare_tags", "value": "vip"}]}


def test_tagging_again_writes_nothing(adapter, http, wc_fixtures, with_meta):
    customer = with_meta(wc_fixtures("customer_retrieve.json"), "aftercare_tags", "vip")
    http.get(f"{API}/customers/25", json=customer)
    adapter.tag_customer(Customer(email="john.doe@example.com", platform_id="25"), ["vip"])
    assert len(http.calls) == 1


def test_fetch_order(adapter, http, wc_fixtures):
    http.get(f"{API}/orders/727", json=wc_fixtures("order_retrieve.json"))
    order = adapter.fetch_order("727")
    assert (order.platform_id, order.total) == ("727", Money(Decimal("29.35"), "USD"))


def test_fetch_missing_order(adapter, http):
    http.get(
        f"{API}/orders/999",
        status=404,
        json={
            "code": "woocommerce_rest_shop_order_invalid_id",
            "message": "Invalid ID.",
        },
    )
    with pytest.raises(PlatformError, match="woocommerce 404 woocommerce_rest_shop_order_invalid_id"):
        adapter.fetch_order("999")


# -- webhook subscriptions ------------------------------------------------------


def test_register_webhooks_is_idempotent(adapter, http, wc_fixtures):
    ours = wc_fixtures("webhook_resource_retrieve.json") | {"delivery_url": HOOK_URL}
    foreign = ours | {"id": 5, "delivery_url": "https://elsewhere.example/hook"}
    pages = {"X-WP-TotalPages": "1"}
    http.get(f"{API}/webhooks", json=[ours, foreign], headers=pages)
    http.post(
        f"{API}/webhooks",
        status=201,
        json={"id": 143, "topic": "order.created", "delivery_url": HOOK_URL, "status": "active"},
    )
    subs = adapter.register_webhooks(HOOK_URL, [EventKind.ORDER_PAID, EventKind.SHIPPED])
    assert subs == [
        WebhookSubscription("143", "order.created", HOOK_URL),
        WebhookSubscription("142", "order.updated", HOOK_URL),
    ]
    assert sent(http.calls[1]) == {
        "name": "aftercare order.created",
        "topic": "order.created",
        "delivery_url": HOOK_URL,
        "secret": "whsec-test-&-secret",
        "status": "active",
    }

    # A second run finds both and creates nothing.
    created = ours | {"id": 143, "topic": "order.created"}
    http.get(f"{API}/webhooks", json=[ours, created, foreign], headers=pages)
    assert adapter.register_webhooks(HOOK_URL, [EventKind.ORDER_PAID]) == subs
    assert [c.request.method for c in http.calls] == ["GET", "POST", "GET"]


@pytest.mark.parametrize("status", ["disabled", "paused"])
def test_register_replaces_a_webhook_that_is_not_active(adapter, http, wc_fixtures, status):
    """Re-activating keeps WooCommerce's failure count (the next failure disables it
    again): the stale webhook is deleted and a new one made, with a fresh count."""
    stale = wc_fixtures("webhook_resource_retrieve.json") | {"delivery_url": HOOK_URL, "status": status}
    http.get(f"{API}/webhooks", json=[stale])
    http.delete(f"{API}/webhooks/142", json=stale, match=[matchers.query_param_matcher({"force": "true"})])
    http.post(
        f"{API}/webhooks",
        status=201,
        json=stale | {"id": 150, "status": "active"},
    )
    (sub,) = adapter.register_webhooks(HOOK_URL, [EventKind.REFUNDED])
    assert (sub.platform_id, sub.topic, sub.status) == ("150", "order.updated", "active")
    assert [c.request.method for c in http.calls] == ["GET", "DELETE", "POST"]
    assert sent(http.calls[2])["status"] == "active" and sent(http.calls[2])["topic"] == "order.updated"


def test_register_keeps_an_active_webhook_beside_a_disabled_duplicate(adapter, http, wc_fixtures):
    ours = wc_fixtures("webhook_resource_retrieve.json") | {"delivery_url": HOOK_URL}
    http.get(f"{API}/webhooks", json=[ours | {"id": 7, "status": "disabled"}, ours])
    (sub,) = adapter.register_webhooks(HOOK_URL, [EventKind.SHIPPED])
    assert sub.platform_id == "142" and len(http.calls) == 1


def test_list_shows_each_webhooks_status(adapter, http, wc_fixtures):
    """The recorded list of WooCommerce 11 (no failure count in its REST answer)."""
    recorded = wc_fixtures("wc-11.0.1/rest_webhooks_list.json")
    recorded[1] = recorded[1] | {"status": "disabled"}
    http.get(f"{API}/webhooks", json=recorded, headers={"X-WP-TotalPages": "1"})
    listed = adapter.list_webhooks()
    assert [(s.platform_id, s.topic, s.status, s.failure_count) for s in listed] == [
        ("1", "order.created", "active", None),
        ("2", "order.updated", "disabled", None),
    ]
    assert {s.address for s in listed} == {"http://127.0.0.1:8070/webhooks/realwoo"}


def test_list_and_remove_webhooks(adapter, http, wc_fixtures):
    ours = wc_fixtures("webhook_resource_retrieve.json") | {"delivery_url": HOOK_URL}
    foreign = ours | {"id": 5, "delivery_url": "https://elsewhere.example/hook"}
    http.get(f"{API}/webhooks", json=[ours, foreign])
    assert adapter.list_webhooks() == [
        WebhookSubscription("142", "order.updated", HOOK_URL),
        WebhookSubscription("5", "order.updated", "https://elsewhere.example/hook"),
    ]
    http.get(f"{API}/webhooks", json=[ours, foreign])
    http.delete(f"{API}/webhooks/142", json=ours, match=[matchers.query_param_matcher({"force": "true"})])
    assert adapter.remove_webhooks(HOOK_URL) == 1


# -- live check -----------------------------------------------------------------


def test_check_live_ok(adapter, http, wc_fixtures):
    http.get(f"{API}/orders", json=[wc_fixtures("order_retrieve.json")])
    assert adapter.check_live() == []


def test_check_live_bad_keys(adapter, http, sleeps):
    http.get(
        f"{API}/orders",
        status=401,
        json={
            "code": "woocommerce_rest_cannot_view",
            "message": "Sorry, you cannot list resources.",
        },
    )
    (problem,) = adapter.check_live()
    assert problem.startswith("woocommerce 401 woocommerce_rest_cannot_view")
    assert "consumer_key" in problem


def test_check_live_wrong_url(adapter, http):
    http.get(f"{API}/orders", status=404, body="<html>Not Found</html>", content_type="text/html")
    (problem,) = adapter.check_live()
    assert "woocommerce 404" in problem and "permalinks" in problem


def test_check_live_tls(adapter, http, sleeps):
    http.get(f"{API}/orders", body=requests.exceptions.SSLError("certificate has expired"))
    (problem,) = adapter.check_live()
    assert "TLS error" in problem and "certificate has expired" in problem
    assert sleeps == []
