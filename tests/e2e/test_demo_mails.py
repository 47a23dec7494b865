"""The demo's orders through to the rendered mail, per platform: every mail greets the customer
by first name, every parcel mail names the order and the carrier, and the products mails suggest
are the ones the shop's catalogue relates to what the customer bought.

Shopify's fulfillment and fulfillment-event webhooks carry only part of the order; the
worker re-reads it whole, and the mail must be rendered from that, not from the part."""

from __future__ import annotations

import re

import pytest

from aftercare.sandbox.deployment import DEMO_SANDBOX_OPTIONS, read_mail, run_week
from aftercare.sandbox.testing import FAST_RETRIES

PARCEL_MAIL = re.compile(r"/tracking_notice/send_email/order:(\d+)/(shipped|delivered):(\w+)$")
#: A suggested product's line in a mail's text part (mail/templates/<locale>/_products.txt).
SUGGESTION = re.compile(r"^- (.+?)(?: \([^)]*\))?: https?://\S+\r?$", re.MULTILINE)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_every_demo_mail_greets_by_name_and_parcel_mails_name_order_and_carrier(deploy, platform):
    shop_id = f"demo-{platform}"
    options = {**DEMO_SANDBOX_OPTIONS.get("demo-shopify", {}), "retry_delays": FAST_RETRIES}
    running = deploy({shop_id: platform}, sandbox_options={shop_id: options} if platform == "shopify" else {})
    run_week(running, orders_per_shop=8, days=6)
    sandbox = running.sandboxes[shop_id]
    first_names = {c.email.lower(): c.first_name for c in sandbox.state.customers.values()}
    first_names |= {o.email.lower(): o.billing_address.first_name for o in sandbox.state.orders.values()
                    if o.email.lower() not in first_names}  # fmt: skip

    mails = [read_mail(path) for path in sorted(running.outbox.glob("*.eml"))]
    parcels = {"shipped": 0, "delivered": 0}
    for mail in mails:
        greeting = mail.text.strip().splitlines()[0]
        assert first_names[mail.to.lower()] in greeting, (mail.key, greeting)
        parcel = PARCEL_MAIL.search(mail.key)
        if parcel is None:
            continue
        order = sandbox.state.order(int(parcel.group(1)))
        # Shopify names a parcel by its fulfillment id, WooCommerce by its tracking id.
        (fulfillment,) = [f for f in order.fulfillments if parcel.group(3) in (str(f.id), f.tracking_id)]
        # The number the platform shows: Shopify's name "#1001", WooCommerce's number (its id).
        number = f"#{order.number}" if platform == "shopify" else str(order.id)
        assert number in mail.subject and number in mail.text, (mail.key, mail.subject)
        assert fulfillment.carrier and fulfillment.carrier in mail.text, (mail.key, mail.text)
        parcels[parcel.group(2)] += 1
    assert parcels["shipped"] >= 3 and parcels["delivered"] >= 2, parcels
    assert len(mails) > sum(parcels.values())  # the other mails were checked for the greeting too

    # Related products: only those the catalogue relates to a product the customer bought.
    products = sandbox.state.products
    suggested = 0
    for mail in mails:
        titles = SUGGESTION.findall(mail.text)
        orders = [o for o in sandbox.state.orders.values() if o.email.lower() == mail.to]
        bought = {line.product_id for order in orders for line in order.lines}
        related = {products[i].title for p in bought if p in products for i in products[p].related}
        assert set(titles) <= related, (mail.key, titles, related)
        suggested += bool(titles)
    assert suggested, "no demo mail suggests a related product"
