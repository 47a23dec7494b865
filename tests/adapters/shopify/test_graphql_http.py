"""The GraphQL client and the adapter's API calls against `responses` mocks (no network)."""

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses

from aftercare.models import ConsentState, Customer, EventKind, Money
from aftercare.platform import CouponSpec, PlatformError

from .shopify_support import GRAPHQL_URL

COST = {
    "requestedQueryCost": 100,
    "actualQueryCost": 12,
    "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 988, "restoreRate": 50.0},
}


def ok(data, cost=COST, version="2026-10"):
    return {
        "status": 200,
        "json": {"data": data, "extensions": {"cost": cost}},
        "headers": {"X-Shopify-API-Version": version},
    }


def operations(mock):
    return [json.loads(call.request.body)["operationName"] for call in mock.calls]


def variables(mock, index):
    return json.loads(mock.calls[index].request.body)["variables"]


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def test_request_shape_and_version_warning(adapter, mock, caplog):
    mock.post(
        GRAPHQL_URL,
        **ok({"order": {"id": "gid://shopify/Order/1", "note": "x"}}, version="2026-01"),
    )
    with caplog.at_level(logging.WARNING):
        adapter.client.execute("order_note.graphql", {"id": "gid://shopify/Order/1"})
    request = mock.calls[0].request
    assert request.headers["X-Shopify-Access-Token"] == "shpat_test"
    assert json.loads(request.body)["query"].startswith("query OrderNote")
    assert "served API version 2026-01 instead of the pinned 2026-10" in caplog.text


def test_throttled_with_http_200_waits_for_the_bucket(adapter, mock, sleeps, load):
    throttled = {
        **load("graphql_throttled_error.json"),
        "extensions": {
            "cost": {
                "requestedQueryCost": 100,
                "throttleStatus": {
                    "maximumAvailable": 1000.0,
                    "currentlyAvailable": 20,
                    "restoreRate": 50.0,
                },
            }
        },
    }
    mock.post(GRAPHQL_URL, status=200, json=throttled)
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}))
    adapter.client.monotonic = lambda: 0.0
    adapter.client.max_wait = 5.0  # sleeps up to this in the call (the default gives 1.6 s back: below)
    assert adapter.client.execute("discount_by_code.graphql", {"code": "X"}) == {
        "codeDiscountNodeByCode": None
    }
    assert sleeps == [pytest.approx(1.6)]  # (100 needed - 20 available) / 50 per second


def test_throttled_with_429_honours_retry_after(adapter, mock, sleeps, load):
    mock.post(
        GRAPHQL_URL,
        status=429,
        json=load("graphql_throttled_error.json"),
        headers={"Retry-After": "2"},
    )
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}))
    adapter.client.max_wait = 5.0
    adapter.client.execute("discount_by_code.graphql", {"code": "X"})
    assert sleeps == [2.0]


def test_a_wait_longer_than_max_wait_goes_back_to_the_caller_instead_of_holding_the_thread(adapter, mock, sleeps, load):
    mock.post(GRAPHQL_URL, status=429, json=load("graphql_throttled_error.json"), headers={"Retry-After": "60"})
    with pytest.raises(PlatformError) as caught:
        adapter.client.execute("discount_by_code.graphql", {"code": "X"})
    assert sleeps == []  # nothing slept: the worker reschedules the action 60 s ahead
    assert caught.value.transient is True and caught.value.retry_after == 60.0
    assert "throttled by Shopify (HTTP 429); retry in 60.0s" in caught.value.message


def test_waits_before_a_query_that_would_not_fit(adapter, mock, sleeps):
    low = {
        **COST,
        "throttleStatus": {
            "maximumAvailable": 1000.0,
            "currentlyAvailable": 10,
            "restoreRate": 50.0,
        },
    }
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}, cost=low))
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}))
    clock = iter([0.0, 0.0, 0.0])
    adapter.client.monotonic = lambda: next(clock)
    adapter.client.max_wait = 5.0
    adapter.client.execute("discount_by_code.graphql", {"code": "X"})
    adapter.client.execute("discount_by_code.graphql", {"code": "X"})
    assert sleeps == [pytest.approx(1.8)]  # requested cost 100, 10 available, 50/s


def test_5xx_and_network_errors_retry_with_backoff_then_give_up(make_adapter, mock, sleeps):
    adapter = make_adapter(max_attempts=3)
    adapter.client.jitter = lambda: 0.5
    mock.post(GRAPHQL_URL, status=502, body="bad gateway")
    mock.post(GRAPHQL_URL, body=requests.exceptions.ConnectionError("reset"))
    mock.post(GRAPHQL_URL, status=503, body="unavailable")
    with pytest.raises(PlatformError) as caught:
        adapter.client.execute("discount_by_code.graphql", {"code": "X"})
    assert caught.value.transient is True
    assert "HTTP 503" in caught.value.message and "gave up after 3 attempts" in caught.value.message
    assert sleeps == [0.5, 1.0]  # 0.5 * 2**n, jitter factor 1.0


def test_5xx_then_success(adapter, mock, sleeps):
    mock.post(GRAPHQL_URL, status=500, body="oops")
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}))
    assert adapter.client.execute("discount_by_code.graphql", {"code": "X"})
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "rejected the access token"),
        (403, "lacks a required API scope"),
        (404, "no Shopify Admin API"),
    ],
)
def test_auth_errors_are_permanent(adapter, mock, status, words):
    mock.post(GRAPHQL_URL, status=status, json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(PlatformError) as caught:
        adapter.client.execute("shop.graphql")
    assert caught.value.transient is False and words in caught.value.message
    assert "\n" not in caught.value.message


def test_user_errors_fail_permanently_with_shopifys_message(adapter, mock):
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "tagsAdd": {
                    "node": None,
                    "userErrors": [{"field": ["id"], "message": "Order does not exist"}],
                }
            }
        ),
    )
    with pytest.raises(PlatformError) as caught:
        adapter.tag_order("1", ["vip"])
    assert caught.value.transient is False
    assert caught.value.message == "tagsAdd: id: Order does not exist"


def test_coupon_created_for_one_customer(adapter, mock):
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}))
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "discountCodeBasicCreate": {
                    "codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/77"},
                    "userErrors": [],
                }
            }
        ),
    )
    spec = CouponSpec(
        code="THANKS-1",
        kind="percent",
        value=Decimal("10"),
        currency="USD",
        customer_id="207119551",
        expires_at=datetime(2025, 6, 1, tzinfo=UTC),
        minimum_subtotal=Money(Decimal("50.00"), "USD"),
    )
    result = adapter.create_coupon(spec)
    assert (result.code, result.platform_id, result.created) == ("THANKS-1", "77", True)
    discount = variables(mock, 1)["discount"]
    assert discount["code"] == "THANKS-1"
    assert discount["context"] == {"customers": {"add": ["gid://shopify/Customer/207119551"]}}
    assert discount["customerGets"] == {"value": {"percentage": 0.1}, "items": {"all": True}}
    assert discount["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "50.00"}}
    assert (discount["usageLimit"], discount["appliesOncePerCustomer"]) == (1, True)
    assert (discount["startsAt"], discount["endsAt"]) == (
        "2025-05-01T12:00:00Z",
        "2025-06-01T00:00:00Z",
    )


def test_retried_coupon_creation_does_not_duplicate(adapter, mock):
    """The first run's create fails after Shopify stored the code; the retry finds it."""
    spec = CouponSpec(code="BACK5", kind="fixed_amount", value=Decimal("5.00"), currency="USD")
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}))
    mock.post(GRAPHQL_URL, status=503)
    mock.post(GRAPHQL_URL, status=503)
    mock.post(GRAPHQL_URL, status=503)
    mock.post(GRAPHQL_URL, status=503)
    mock.post(GRAPHQL_URL, status=503)
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}))
    adapter.client.max_wait = 60.0  # every backoff in the call: all five attempts fail
    with pytest.raises(PlatformError) as caught:
        adapter.create_coupon(spec)
    assert caught.value.transient is True
    assert variables(mock, 1)["discount"]["customerGets"]["value"] == {
        "discountAmount": {"amount": "5.00", "appliesOnEachItem": False}
    }
    assert variables(mock, 1)["discount"]["context"] == {"all": "ALL"}
    mock.post(
        GRAPHQL_URL, **ok({"codeDiscountNodeByCode": {"id": "gid://shopify/DiscountCodeNode/9"}})
    )
    result = adapter.create_coupon(spec)
    assert (result.platform_id, result.created) == ("9", False)
    assert operations(mock).count("DiscountCodeBasicCreate") == 5  # one call, retried; none after


def test_create_answer_lost_then_code_taken(adapter, mock):
    """Within one call: the mutation is retried, Shopify says the code is taken: it is ours."""
    spec = CouponSpec(code="BACK5", kind="fixed_amount", value=Decimal("5"), currency="USD")
    mock.post(GRAPHQL_URL, **ok({"codeDiscountNodeByCode": None}))
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "discountCodeBasicCreate": {
                    "codeDiscountNode": None,
                    "userErrors": [
                        {
                            "field": ["basicCodeDiscount", "code"],
                            "message": "Code must be unique.",
                            "code": "TAKEN",
                        }
                    ],
                }
            }
        ),
    )
    mock.post(
        GRAPHQL_URL, **ok({"codeDiscountNodeByCode": {"id": "gid://shopify/DiscountCodeNode/9"}})
    )
    assert adapter.create_coupon(spec).created is False


def test_consent_update(adapter, mock):
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "customers": {
                    "nodes": [
                        {"id": "gid://shopify/Customer/5", "defaultEmailAddress": {"emailAddress": "a@b.c"}}
                    ]
                }
            }
        ),
    )
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "customerEmailMarketingConsentUpdate": {
                    "customer": {"id": "gid://shopify/Customer/5"},
                    "userErrors": [],
                }
            }
        ),
    )
    adapter.set_marketing_consent(Customer(email="a@b.c"), ConsentState.SUBSCRIBED, "double_opt_in")
    assert variables(mock, 0) == {"query": 'email:"a@b.c"'}
    assert variables(mock, 1) == {
        "input": {
            "customerId": "gid://shopify/Customer/5",
            "emailMarketingConsent": {
                "marketingState": "SUBSCRIBED",
                "consentUpdatedAt": "2025-05-01T12:00:00Z",
                "marketingOptInLevel": "CONFIRMED_OPT_IN",
            },
        }
    }


def test_tags(adapter, mock):
    mock.post(GRAPHQL_URL, **ok({"tagsAdd": {"node": {"id": "x"}, "userErrors": []}}))
    mock.post(GRAPHQL_URL, **ok({"tagsAdd": {"node": {"id": "y"}, "userErrors": []}}))
    adapter.tag_order("450789469", ["aftercare-reviewed"])
    adapter.tag_customer(Customer(email="a@b.c", platform_id="207119551"), ["vip", "repeat"])
    assert variables(mock, 0) == {
        "id": "gid://shopify/Order/450789469",
        "tags": ["aftercare-reviewed"],
    }
    assert variables(mock, 1) == {
        "id": "gid://shopify/Customer/207119551",
        "tags": ["vip", "repeat"],
    }


def test_note_is_appended_not_replaced(adapter, mock):
    mock.post(GRAPHQL_URL, **ok({"order": {"id": "gid://shopify/Order/1", "note": "Gift wrap"}}))
    mock.post(GRAPHQL_URL, **ok({"orderUpdate": {"order": {"id": "x"}, "userErrors": []}}))
    adapter.add_order_note("1", "aftercare: review request sent")
    assert variables(mock, 1) == {
        "input": {
            "id": "gid://shopify/Order/1",
            "note": "Gift wrap\n\naftercare: review request sent",
        }
    }
    # A retry after a lost answer finds the text there and does not append it twice.
    mock.post(
        GRAPHQL_URL,
        **ok({"order": {"id": "x", "note": "Gift wrap\n\naftercare: review request sent"}}),
    )
    adapter.add_order_note("1", "aftercare: review request sent")
    assert operations(mock) == ["OrderNote", "OrderUpdateNote", "OrderNote"]


def test_register_webhooks_is_idempotent(adapter, mock):
    address = "https://hooks.example.com/shopify/acme"
    existing = {
        "webhookSubscriptions": {
            "pageInfo": {"hasNextPage": False, "endCursor": None},
            "nodes": [
                {
                    "id": "gid://shopify/WebhookSubscription/1",
                    "topic": "ORDERS_PAID",
                    "uri": address,
                },
                {
                    "id": "gid://shopify/WebhookSubscription/2",
                    "topic": "ORDERS_PAID",
                    "uri": "https://other",
                },
            ],
        }
    }
    mock.post(GRAPHQL_URL, **ok(existing))
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "webhookSubscriptionCreate": {
                    "userErrors": [],
                    "webhookSubscription": {
                        "id": "gid://shopify/WebhookSubscription/3",
                        "topic": "FULFILLMENT_EVENTS_CREATE",
                        "uri": address,
                    },
                }
            }
        ),
    )
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "webhookSubscriptionCreate": {
                    "userErrors": [],
                    "webhookSubscription": {
                        "id": "gid://shopify/WebhookSubscription/4",
                        "topic": "FULFILLMENTS_UPDATE",
                        "uri": address,
                    },
                }
            }
        ),
    )
    subs = adapter.register_webhooks(address, [EventKind.ORDER_PAID, EventKind.DELIVERED])
    assert [(s.platform_id, s.topic) for s in subs] == [
        ("1", "orders/paid"),
        ("3", "fulfillment_events/create"),
        ("4", "fulfillments/update"),
    ]
    assert variables(mock, 1) == {
        "topic": "FULFILLMENT_EVENTS_CREATE",
        "subscription": {"uri": address, "format": "JSON"},
    }
    # Second run: everything exists, nothing is created.
    existing["webhookSubscriptions"]["nodes"] += [
        {
            "id": "gid://shopify/WebhookSubscription/3",
            "topic": "FULFILLMENT_EVENTS_CREATE",
            "uri": address,
        },
        {
            "id": "gid://shopify/WebhookSubscription/4",
            "topic": "FULFILLMENTS_UPDATE",
            "uri": address,
        },
    ]
    mock.post(GRAPHQL_URL, **ok(existing))
    again = adapter.register_webhooks(address, [EventKind.ORDER_PAID, EventKind.DELIVERED])
    assert [s.platform_id for s in again] == ["1", "3", "4"]
    assert operations(mock).count("WebhookSubscriptionCreate") == 2


def test_remove_webhooks(adapter, mock):
    address = "https://hooks.example.com/shopify/acme"
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "webhookSubscriptions": {
                    "pageInfo": {"hasNextPage": False},
                    "nodes": [
                        {
                            "id": "gid://shopify/WebhookSubscription/1",
                            "topic": "ORDERS_PAID",
                            "uri": address,
                        },
                        {
                            "id": "gid://shopify/WebhookSubscription/2",
                            "topic": "ORDERS_PAID",
                            "uri": "https://other",
                        },
                    ],
                }
            }
        ),
    )
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "webhookSubscriptionDelete": {
                    "deletedWebhookSubscriptionId": "gid://shopify/WebhookSubscription/1",
                    "userErrors": [],
                }
            }
        ),
    )
    assert adapter.remove_webhooks(address) == 1
    assert variables(mock, 1) == {"id": "gid://shopify/WebhookSubscription/1"}


def test_check_live(adapter, mock):
    mock.post(
        GRAPHQL_URL,
        **ok(
            {
                "shop": {"name": "Acme", "myshopifyDomain": "acme.myshopify.com"},
                "currentAppInstallation": {
                    "accessScopes": [
                        {"handle": h}
                        for h in (
                            "write_orders",
                            "read_fulfillments",
                            "read_returns",
                            "write_customers",
                        )
                    ]
                },
            }
        ),
    )
    assert adapter.check_live() == ["the access token lacks the write_discounts scope"]
    mock.post(GRAPHQL_URL, status=401, json={"errors": "[API] Invalid API key or access token"})
    assert adapter.check_live() == [
        "Shopify rejected the access token (HTTP 401): check access_token"
    ]
    mock.post(GRAPHQL_URL, body=requests.exceptions.SSLError("certificate verify failed"))
    (problem,) = adapter.check_live()
    assert problem.startswith("TLS failure talking to https://acme.myshopify.com/")


REDACTED = {
    "message": "This app is not approved to access the Customer object.",
    "locations": [{"line": 1, "column": 2}],
    "extensions": {"code": "ACCESS_DENIED"},
}


def test_a_partial_answer_blanks_the_named_fields_and_keeps_the_rest(adapter, mock, caplog):
    from .test_polling import order_node

    node = order_node(1, "2025-04-02T10:00:00Z")
    node["customer"]["firstName"] = "leaked?"  # whatever sits at an error's path is not used
    node["email"] = None
    errors = [
        {**REDACTED, "path": ["order", "customer", "firstName"]},
        {**REDACTED, "path": ["order", "email"]},
    ]
    mock.post(GRAPHQL_URL, status=200, json={"data": {"order": node}, "errors": errors})
    with caplog.at_level(logging.WARNING):
        order = adapter.fetch_order("1")
    assert order.number == "#1" and order.customer.last_name == "Lovelace"
    assert order.customer.first_name == ""
    assert order.customer.email == "ada@example.com"  # still in defaultEmailAddress
    assert [e.path for e in adapter.client.field_errors] == ["order.customer.firstName", "order.email"]
    assert "Order answered without order.customer.firstName, order.email" in caplog.text


@pytest.mark.parametrize(
    "answer",
    [
        {"data": None, "errors": [{**REDACTED, "path": ["order"]}]},  # errors without data
        {"data": {"order": None}, "errors": [{"message": "Internal error"}]},  # an error with no path
    ],
)
def test_errors_without_data_or_without_a_path_still_fail(adapter, mock, answer):
    mock.post(GRAPHQL_URL, status=200, json=answer)
    with pytest.raises(PlatformError) as caught:
        adapter.fetch_order("1")
    assert not caught.value.transient
