"""A privacy request that names the customer by the platform's id (or by their orders) rather than
by an email: Shopify's ``customers/redact`` without an email, WooCommerce's ``customer.deleted``
(``{"id": N}``). The worker finds the customer's emails in the stored orders and erases them."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
import sqlalchemy as sa

from aftercare.adapters.woocommerce.webhooks import sign as woo_signature
from aftercare.store import rejected_deliveries

from .helpers import EMAIL, OTHER, customer_with_a_history, leftovers, report
from .test_forget import _signed_compliance


def _orders_of(running, email: str) -> list:
    return [e.event.order for e in running.app.store.list_events() if e.event.order.customer.email == email]


def _customer_id(running, email: str) -> str:
    [customer_id] = {order.customer.platform_id for order in _orders_of(running, email)}
    assert customer_id, "the sandbox order has no customer id: the lookup by id is not tested"
    return customer_id


def _order_ids(running, email: str) -> list[str]:
    return sorted({order.platform_id for order in _orders_of(running, email)})


def _woo_customer_deleted(running, customer_id) -> requests.Response:
    body = json.dumps({"id": customer_id}).encode()
    secret = running.app.adapter("shop").shop.webhook_secret.get_secret_value()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": running.app.adapter("shop").settings.url,
        "X-WC-Webhook-Topic": "customer.deleted",
        "X-WC-Webhook-Resource": "customer",
        "X-WC-Webhook-Event": "deleted",
        "X-WC-Webhook-Signature": woo_signature(secret, body),
        "X-WC-Webhook-ID": "41",
        "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
    }
    return running.http.post(running.webhook_address("shop"), data=body, headers=headers, timeout=10)


@pytest.mark.timeout(180)
def test_a_redact_with_only_the_customer_id_erases_the_customer_found_by_it(deploy):
    running = deploy({"shop": "shopify"})
    terms = customer_with_a_history(running)
    figures = report(running)
    payload = {"shop_id": 954889, "shop_domain": "x.myshopify.com",
               "customer": {"id": int(_customer_id(running, EMAIL))}, "orders_to_redact": []}  # fmt: skip

    answer = _signed_compliance(running, "customers/redact", payload)
    assert answer.status_code == 200, answer.text
    running.finish()

    [(_shop, kind, state, reason)] = running.app.store.privacy_request_states()
    assert (kind, state) == ("customer_redact", "done") and "events=" in reason
    assert leftovers(running, terms) == []
    assert leftovers(running, {"other": OTHER}) != [], "the other customer went too"
    assert report(running) == figures


@pytest.mark.timeout(180)
def test_a_redact_whose_email_matches_nothing_erases_the_orders_listed(deploy):
    running = deploy({"shop": "shopify"})
    terms = customer_with_a_history(running)
    payload = {"shop_id": 954889, "shop_domain": "x.myshopify.com",
               "customer": {"id": 1, "email": "changed.since@example.com"},
               "orders_to_redact": [int(i) for i in _order_ids(running, EMAIL)]}  # fmt: skip

    assert _signed_compliance(running, "customers/redact", payload).status_code == 200
    running.finish()

    assert leftovers(running, terms) == []
    assert leftovers(running, {"other": OTHER}) != []


@pytest.mark.timeout(180)
def test_a_signed_woocommerce_customer_deleted_erases_that_customer(deploy):
    running = deploy({"shop": "woocommerce"})
    terms = customer_with_a_history(running)
    figures = report(running)

    assert _woo_customer_deleted(running, int(_customer_id(running, EMAIL))).status_code == 200
    running.finish()

    [(_shop, kind, state, reason)] = running.app.store.privacy_request_states()
    assert (kind, state) == ("customer_redact", "done") and "events=" in reason
    assert leftovers(running, terms) == []
    assert leftovers(running, {"other": OTHER}) != []
    assert report(running) == figures


def _what_is_kept(store) -> tuple:
    return store.count_events_by_state(), [(a.id, a.state, a.customer_email) for a in store.list_actions(limit=1000)]


@pytest.mark.timeout(180)
def test_an_unknown_customer_id_changes_nothing(deploy):
    running = deploy({"shop": "woocommerce"})
    terms = customer_with_a_history(running)
    store = running.app.store
    before = _what_is_kept(store)
    unknown = max(int(_customer_id(running, EMAIL)), int(_customer_id(running, OTHER))) + 1000

    assert _woo_customer_deleted(running, unknown).status_code == 200
    running.finish()

    [(_shop, kind, state, reason)] = store.privacy_request_states()
    assert (kind, state, reason) == ("customer_redact", "done", "no record of this customer")
    assert _what_is_kept(store) == before
    assert {label for _file, label in leftovers(running, terms)} == set(terms)


def test_a_customer_deleted_without_an_id_is_rejected_naming_the_field(deploy):
    running = deploy({"shop": "woocommerce"})
    answer = _woo_customer_deleted(running, "not-a-number")
    assert answer.status_code == 422 and "'id'" in answer.text
    running.finish()
    assert running.app.store.privacy_request_states() == []
    with running.app.store.engine.connect() as conn:  # kept for the merchant to see, as any unreadable delivery
        topics = conn.execute(sa.select(rejected_deliveries.c.topic)).scalars().all()
    assert topics == ["customer.deleted"]
