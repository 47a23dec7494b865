"""A birthday on each platform's sandbox: the shop keeps it where the platform does (a Shopify
customer metafield, a WooCommerce customer meta key), the paid order's webhook reaches the real
receiver, the worker reads the birthday through the adapter, and the greeting reaches an SMTP relay
on 127.0.0.1 on the day, once, however many orders the customer places."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from aftercare.models import ConsentState, Customer
from aftercare.sandbox.testing import FAST_RETRIES
from aftercare.testing import FaultySmtpSink

FIELDS = {"shopify": "facts.birth_date", "woocommerce": "billing_birth_date"}


@pytest.fixture
def smtp():
    with FaultySmtpSink() as sink:
        yield sink


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_birthday_greeting_reaches_the_customer_once_on_the_day(deploy, smtp, platform):
    mail = {"transport": "smtp", "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none", "timeout": 5}}
    options = {"birthday_field": FIELDS[platform], **({"retry_delays": FAST_RETRIES} if platform == "shopify" else {})}
    running = deploy(
        {"shop": platform},
        plugins={"greetings": {"enabled": True}},
        mail=mail,
        sandbox_options={"shop": options},
    )
    shop = running.sandboxes["shop"]
    email = "lucia@example.com"
    first = shop.create_order(locale="es", email=email, first_name="Lucía", paid=False)
    customer = Customer(email=email, platform_id=str(first.customer_id))
    running.app.adapter("shop").set_marketing_consent(customer, ConsentState.SUBSCRIBED, "double_opt_in")
    shop.set_birthday(first.customer_id, "1990-03-04")  # START is 2026-03-02 07:00 UTC (the shop's zone)
    shop.pay(first.id)
    running.settle()
    second = shop.create_order(email=email)  # a second order: the same greeting, not another
    running.settle()
    assert second.customer_id == first.customer_id

    running.advance(timedelta(days=2, hours=1))  # 2026-03-04 08:00: not yet
    assert len(smtp.received) == 0
    running.advance(timedelta(hours=1))  # 09:00 on the day
    assert smtp.keys() == Counter({f"shop/greetings/send_email/customer:{email}/birthday:2026": 1})
    (message,) = smtp.received
    assert str(message["Subject"]) == "¡Feliz cumpleaños, Lucía!"
    running.advance(timedelta(days=1))
    assert len(smtp.received) == 1
