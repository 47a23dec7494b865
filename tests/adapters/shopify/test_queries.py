"""Every shipped GraphQL operation validates against Shopify's official 2025-01 schema.

The adapter pins 2025-10, whose renames the 2025-01 schema cannot know
(PLATFORMS.md 2.3). Those are listed here with the reason; for them the test
checks that the only errors are the known renames, and that the operation
validates once the old (2025-01) names are put back.
"""

import gzip
import json
import re
from decimal import Decimal
from importlib import resources

import pytest
from graphql import build_client_schema, execute_sync, parse, validate

from aftercare.adapters.shopify.client import load_query
from aftercare.platform import CouponSpec

#: file -> (2025-10 text, 2025-01 text, why)
RENAMED_IN_2025_10 = {
    "webhook_subscriptions.graphql": (
        "uri",
        "callbackUrl",
        "2025-10 adds WebhookSubscription.uri and deprecates callbackUrl/endpoint",
    ),
    "webhook_subscription_create.graphql": (
        "uri",
        "callbackUrl",
        "2025-10 adds WebhookSubscription.uri and deprecates callbackUrl/endpoint",
    ),
}

OPERATIONS = sorted(
    entry.name
    for entry in resources.files("aftercare.adapters.shopify").joinpath("queries").iterdir()
    if entry.name.endswith(".graphql") and entry.name != "order_fields.graphql"  # a fragment
)


@pytest.fixture(scope="module")
def schema(shared_fixtures):
    path = shared_fixtures / "shopify" / "schema" / "admin_schema_2025-01.json.gz"
    data = json.loads(gzip.decompress(path.read_bytes()))
    # assume_valid: Shopify's schema trips graphql-core's interface checks (PLATFORMS.md 4).
    return build_client_schema(data["data"], assume_valid=True)


def test_every_operation_is_checked():
    assert len(OPERATIONS) == 14


@pytest.mark.parametrize("filename", OPERATIONS)
def test_operation_validates(schema, filename):
    text = load_query(filename)
    errors = validate(schema, parse(text))
    if filename not in RENAMED_IN_2025_10:
        assert errors == []
        return
    new, old, _why = RENAMED_IN_2025_10[filename]
    assert errors, "the rename should be visible against 2025-01"
    assert {e.message for e in errors} == {
        f"Cannot query field '{new}' on type 'WebhookSubscription'."
    }
    assert validate(schema, parse(text.replace(f" {new} ", f" {old} "))) == []


UNKNOWN_FIELD = re.compile(r"not to include unknown field '(\w+)'")


def _coerce(schema, type_name, value):
    """The errors of passing ``value`` as a ``type_name!`` variable (Shopify's own check)."""
    document = parse(f"query($v: {type_name}!) {{ __typename }}")
    result = execute_sync(schema, document, variable_values={"v": value})  # coerces only
    return [
        match.group(1) if (match := UNKNOWN_FIELD.search(error.message)) else error.message
        for error in result.errors or []
    ]


def test_discount_input_uses_the_2025_10_context(adapter, schema):
    spec = CouponSpec(
        code="C1", kind="percent", value=Decimal(15), currency="EUR", customer_id="42"
    )
    discount = adapter._discount_input(spec, "gid://shopify/Customer/42")
    # 2025-10 renamed customerSelection to context (same shape for customers).
    assert _coerce(schema, "DiscountCodeBasicInput", discount) == ["context"]
    context = discount.pop("context")
    old = {**discount, "customerSelection": context}
    assert _coerce(schema, "DiscountCodeBasicInput", old) == []


def test_webhook_input_uses_the_2025_10_uri(schema):
    assert _coerce(schema, "WebhookSubscriptionInput", {"uri": "https://x", "format": "JSON"}) == [
        "uri"
    ]
    assert (
        _coerce(schema, "WebhookSubscriptionInput", {"callbackUrl": "https://x", "format": "JSON"})
        == []
    )


def test_consent_input_coerces(schema):
    value = {
        "customerId": "gid://shopify/Customer/1",
        "emailMarketingConsent": {
            "marketingState": "SUBSCRIBED",
            "marketingOptInLevel": "SINGLE_OPT_IN",
            "consentUpdatedAt": "2025-05-01T12:00:00Z",
        },
    }
    assert _coerce(schema, "CustomerEmailMarketingConsentUpdateInput", value) == []
