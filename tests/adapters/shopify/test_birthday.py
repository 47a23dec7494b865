"""The birthday metafield: named in the settings, read through GraphQL, never guessed."""

import json
from datetime import date

import pytest
import responses
from pydantic import ValidationError

from aftercare.adapters.shopify import ShopifySettings
from aftercare.models import EventKind

from .shopify_support import GRAPHQL_URL, headers_for
from .test_polling import order_node, sent


@pytest.fixture
def mock():
    with responses.RequestsMock() as rsps:
        yield rsps


def node_with_birthday(value):
    node = order_node(5, "2025-04-02T09:00:00Z")
    node["customer"]["birthday"] = None if value is None else {"value": value}
    return node


@pytest.mark.parametrize(
    ("value", "birthday"),
    [
        ("1990-03-15", date(1990, 3, 15)),
        ("1990-03-15T00:00:00+01:00", date(1990, 3, 15)),  # a date_time metafield: its date
        ("15/03/1990", None),  # day or month first? not guessed
        ("1990-02-30", None),
        (None, None),  # the customer has no such metafield
    ],
)
def test_the_named_metafield_is_asked_for_and_read(make_adapter, mock, value, birthday):
    adapter = make_adapter(birthday_metafield="facts.birth_date")
    mock.post(GRAPHQL_URL, json={"data": {"order": node_with_birthday(value)}})
    order = adapter.fetch_order("5")
    assert sent(mock, 0) == {
        "id": "gid://shopify/Order/5",
        "withBirthday": True,
        "birthdayNamespace": "facts",
        "birthdayKey": "birth_date",
    }
    assert order.customer.birthday == birthday


def test_without_the_setting_no_metafield_is_asked_for(adapter, mock):
    mock.post(GRAPHQL_URL, json={"data": {"order": order_node(5, "2025-04-02T09:00:00Z")}})
    order = adapter.fetch_order("5")
    assert sent(mock, 0) == {"id": "gid://shopify/Order/5"}  # withBirthday defaults to false
    assert order.customer.birthday is None


@pytest.mark.parametrize("value", ["birth_date", "facts.", ".birth_date", "facts.birth date", "a.b"])
def test_a_metafield_must_be_namespace_dot_key(value):
    with pytest.raises(ValidationError, match="expected a metafield as namespace.key like 'facts.birth_date'"):
        ShopifySettings(shop_domain="acme.myshopify.com", access_token="x", birthday_metafield=value)


def test_a_paid_orders_webhook_is_re_read_for_the_birthday_only_when_one_is_named(make_adapter, load):
    body = json.dumps(load("rest_order_paid_fulfilled_create.json")["order"]).encode()
    headers = headers_for(body, "orders/paid")
    plain, named = make_adapter(), make_adapter(birthday_metafield="facts.birth_date")
    (event,) = plain.parse_webhook(plain.verify_webhook(headers, body))
    assert event.kind is EventKind.ORDER_PAID and event.order.customer.platform_id
    assert not event.order.partial
    (event,) = named.parse_webhook(named.verify_webhook(headers, body))
    assert event.order.partial  # webhooks carry no customer metafields: the worker re-reads the order
