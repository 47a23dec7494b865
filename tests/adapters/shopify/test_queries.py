"""Every shipped GraphQL operation validates against Shopify's official schemas.

Against 2026-01 (SDL) every operation validates with no exception, and no
field, argument or enum value it selects is deprecated there. Against
2025-01 (introspection), the older schema the adapter's first operations were
checked against, each operation validates except for the fields added since,
listed here with the 2025-01 text that stands in for them.
"""

import gzip
import json
import re
from decimal import Decimal
from importlib import resources

import pytest
from graphql import (
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_client_schema,
    build_schema,
    execute_sync,
    parse,
    validate,
    visit,
)

from aftercare.adapters.shopify.client import load_query
from aftercare.adapters.shopify.settings import ShopifySettings
from aftercare.platform import CouponSpec

#: (type, field added after 2025-01, its text in our operations, the 2025-01 text, why)
ADDED_AFTER_2025_01 = [
    ("WebhookSubscription", "uri", " uri ", " callbackUrl ", "2025-10 adds uri, deprecates callbackUrl"),
    (
        "ReturnLineItem",
        "returnReasonDefinition",
        "returnReasonDefinition { handle }",
        "returnReason",
        "2026-01 deprecates returnReason for returnReasonDefinition",
    ),
    *(
        ("Customer", "defaultEmailAddress", new, old, "2026-01 deprecates Customer.email/emailMarketingConsent")
        for new, old in (
            ("defaultEmailAddress { emailAddress marketingState }", "email emailMarketingConsent { marketingState }"),
            ("defaultEmailAddress { emailAddress }", "email"),
            ("defaultEmailAddress { marketingState }", "emailMarketingConsent { marketingState }"),
        )
    ),
]

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


@pytest.fixture(scope="module")
def schema_2026_01(shared_fixtures):
    path = shared_fixtures / "shopify" / "schema" / "admin_schema_2026-01.graphql.gz"
    return build_schema(gzip.decompress(path.read_bytes()).decode("utf-8"), assume_valid=True)


def test_every_operation_is_checked():
    assert len(OPERATIONS) == 16


def deprecated_in(schema, document) -> list[str]:
    """Every deprecated field, argument or enum value the document selects or passes."""
    info = TypeInfo(schema)
    found: list[str] = []

    class Deprecations(Visitor):
        def enter_field(self, node, *_):
            field = info.get_field_def()
            if field is not None and field.deprecation_reason is not None:
                found.append(f"{info.get_parent_type().name}.{node.name.value}: {field.deprecation_reason}")

        def enter_argument(self, node, *_):
            argument = info.get_argument()
            if argument is not None and argument.deprecation_reason is not None:
                found.append(f"argument {node.name.value}: {argument.deprecation_reason}")

        def enter_enum_value(self, node, *_):
            value = info.get_enum_value()
            if value is not None and value.deprecation_reason is not None:
                found.append(f"enum value {node.value}: {value.deprecation_reason}")

    visit(document, TypeInfoVisitor(info, Deprecations()))
    return found


@pytest.mark.parametrize("filename", OPERATIONS)
def test_operation_validates_against_2026_01_without_deprecated_fields(schema_2026_01, filename):
    document = parse(load_query(filename))
    assert [error.message for error in validate(schema_2026_01, document)] == []
    assert deprecated_in(schema_2026_01, document) == []


def test_the_deprecation_check_sees_a_deprecated_field(schema_2026_01):
    document = parse("query { customers(first: 1) { nodes { id email } } }")
    assert validate(schema_2026_01, document) == []
    assert deprecated_in(schema_2026_01, document) == [
        "Customer.email: Use `defaultEmailAddress.emailAddress` instead."
    ]


def test_the_default_api_version_is_current():
    settings = ShopifySettings(shop_domain="acme.myshopify.com", access_token="x")
    assert settings.api_version == "2026-10"


@pytest.mark.parametrize("filename", OPERATIONS)
def test_operation_validates_against_2025_01_but_for_later_fields(schema, filename):
    text = load_query(filename)
    errors = {error.message.split(" Did you mean")[0] for error in validate(schema, parse(text))}
    added = [entry for entry in ADDED_AFTER_2025_01 if entry[2] in text]
    assert errors == {f"Cannot query field '{field}' on type '{kind}'." for kind, field, *_ in added}
    for _kind, _field, new, old, _why in added:
        text = text.replace(new, old)
    assert validate(schema, parse(text)) == []


# graphql-core 3.3's wording, and 3.2's.
UNKNOWN_FIELD = re.compile(r"not to include unknown field '(\w+)'|Field '(\w+)' is not defined by type")


def _coerce(schema, type_name, value):
    """The errors of passing ``value`` as a ``type_name!`` variable (Shopify's own check)."""
    document = parse(f"query($v: {type_name}!) {{ __typename }}")
    result = execute_sync(schema, document, variable_values={"v": value})  # coerces only
    return [
        match.group(1) or match.group(2) if (match := UNKNOWN_FIELD.search(error.message)) else error.message
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


@pytest.mark.parametrize(
    ("enum", "table"),
    [
        ("FulfillmentDisplayStatus", "SHIPMENT_STATUS"),
        ("FulfillmentEventStatus", "SHIPMENT_STATUS"),
        ("OrderDisplayFulfillmentStatus", "FULFILLMENT_STATUS"),
        ("OrderDisplayFinancialStatus", "FINANCIAL_STATUS"),
    ],
)
def test_every_2026_01_status_value_is_mapped_deliberately(schema_2026_01, enum, table):
    from aftercare.adapters.shopify import payload

    values = set(schema_2026_01.get_type(enum).values)
    assert {value.lower() for value in values} - set(getattr(payload, table)) == set()
