"""Erasure of one customer through the real deployment: ``customers forget`` and a signed
``customers/redact`` leave no byte of the person in the store's files or the outbox, keep the
report's figures, and make a later webhook about them be dropped."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from aftercare.actions import ActionState
from aftercare.adapters.shopify.webhooks import signature as shopify_signature
from aftercare.privacy import forget
from aftercare.store import ERASED_REASON, privacy_requests

from .helpers import COFFEE, EMAIL, OTHER, customer_with_a_history, leftovers, report


@pytest.mark.timeout(180)
@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_forget_leaves_no_byte_of_the_customer_and_keeps_the_report(deploy, platform):
    running = deploy({"shop": platform})
    terms = customer_with_a_history(running)
    assert {label for _file, label in leftovers(running, terms)} == set(terms)  # the search finds them first
    figures = report(running)
    assert figures["emails_sent"] and figures["csat_answers"] and figures["mailed_customers"] == 2
    store = running.app.store
    due = [a for a in store.list_actions(limit=1000) if a.customer_email == EMAIL and a.state is ActionState.DUE]
    assert due, "nothing due for the customer: the drop is not tested"

    erasure = forget(running.app, EMAIL.upper())

    assert erasure.rows.events and erasure.rows.actions and erasure.rows.consent and erasure.rows.survey_answers
    assert erasure.rows.dropped == len(due) and erasure.files_deleted > 0
    assert leftovers(running, terms) == []
    assert report(running) == figures
    for action in due:
        after = store.get_action(action.id)
        assert after.state is ActionState.DROPPED and after.reason == ERASED_REASON
    others = [a for a in store.list_actions(limit=1000) if a.customer_email == OTHER]
    assert others and running.outbox.glob("*.eml"), "the other customer's records went too"

    # A later order of the same customer: its webhooks are dropped at ingest.
    shop = running.sandboxes["shop"]
    again = shop.create_order(email=EMAIL, items=[COFFEE])
    control = shop.create_order(email="someone.else@example.com", items=[COFFEE])
    running.advance(timedelta(hours=2))
    running.finish()
    assert store.list_events(order_id=str(control.id)), "the control order's webhook did not arrive"
    assert store.list_events(order_id=str(again.id)) == []
    assert leftovers(running, terms) == []


def _signed_compliance(running, topic: str, payload: dict, *, secret: str | None = None) -> requests.Response:
    shop = running.sandboxes["shop"]
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": shopify_signature(secret or shop.secret, body),
        "X-Shopify-Shop-Domain": running.app.adapter("shop").settings.shop_domain,
        "X-Shopify-API-Version": "2026-10",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    }
    return running.http.post(running.webhook_address("shop"), data=body, headers=headers, timeout=10)


def _redact(email: str, orders=()) -> dict:
    return {"shop_id": 954889, "shop_domain": "x.myshopify.com", "customer": {"id": 191167, "email": email,
            "phone": "555-625-1199"}, "orders_to_redact": list(orders)}  # fmt: skip


@pytest.mark.timeout(180)
def test_a_signed_customers_redact_erases_the_customer(deploy):
    running = deploy({"shop": "shopify"})
    terms = customer_with_a_history(running)
    figures = report(running)

    answer = _signed_compliance(running, "customers/redact", _redact(EMAIL))
    assert answer.status_code == 200, answer.text
    running.finish()  # the worker does it

    assert [(kind, state) for _shop, kind, state, _reason in running.app.store.privacy_request_states()] == [
        ("customer_redact", "done")
    ]
    assert leftovers(running, terms) == []
    assert report(running) == figures


@pytest.mark.timeout(60)
def test_compliance_webhooks_are_verified_and_an_unknown_customer_changes_nothing(deploy):
    running = deploy({"shop": "shopify"})
    bad = _signed_compliance(running, "customers/redact", _redact(EMAIL), secret="not-the-secret")
    assert bad.status_code == 401
    assert running.app.store.privacy_request_states() == []

    events_before = running.app.store.count_events_by_state()
    answer = _signed_compliance(running, "customers/redact", _redact("nobody@example.com", [1, 2]))
    assert answer.status_code == 200
    running.finish()
    [(_shop, kind, state, reason)] = running.app.store.privacy_request_states()
    assert (kind, state, reason) == ("customer_redact", "done", "no record of this customer")
    assert running.app.store.count_events_by_state() == events_before


@pytest.mark.timeout(180)
def test_a_data_request_writes_the_export_and_a_shop_redact_erases_the_shop(deploy, caplog):
    running = deploy({"shop": "shopify"})
    terms = customer_with_a_history(running)
    customer = {"id": 191167, "email": EMAIL, "phone": "555-625-1199"}
    payload = {"shop_id": 954889, "shop_domain": "x.myshopify.com", "orders_requested": [1], "customer": customer,
               "data_request": {"id": 9999}}  # fmt: skip
    caplog.set_level("INFO", logger="aftercare.privacy")
    assert _signed_compliance(running, "customers/data_request", payload).status_code == 200
    running.finish()
    [(_shop, kind, state, reason)] = running.app.store.privacy_request_states()
    assert (kind, state) == ("customer_data_request", "done") and reason.startswith("export written to ")
    path = running.app.config.resolve_path(running.app.config.privacy.export_folder)
    [written] = sorted(path.glob("*.json"))
    assert str(written) in reason and str(written) in caplog.text
    exported = json.loads(written.read_text())
    assert exported["email"] == EMAIL and exported["platform_request"] == "9999"
    assert exported["records"]["events"] and exported["records"]["actions"] and exported["records"]["consent"]
    assert OTHER not in written.read_text()
    with running.app.store.engine.connect() as conn:  # the request itself keeps no email once done
        assert conn.execute(sa.select(privacy_requests.c.body)).scalars().all() == [""]

    answer = _signed_compliance(running, "shop/redact", {"shop_id": 954889, "shop_domain": "x.myshopify.com"})
    assert answer.status_code == 200
    running.finish()
    store = running.app.store
    assert store.list_events() == [] and store.list_actions() == []
    assert leftovers(running, terms) == [] and leftovers(running, {"other": OTHER}) == []
    assert list(running.outbox.glob("*.eml")) == []
