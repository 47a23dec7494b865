"""The whole lifecycle on each platform's sandbox: paid -> shipped -> delivered -> return requested /
refunded / cancelled, with every plugin on, real webhooks into the receiver, the worker on the queue,
texts to the Twilio sandbox, a signed-up customer's birthday and relationship survey, and customers answering
the surveys and confirming the newsletter over HTTP. Every action is asserted, and asserted once: each mail in the
outbox carries a distinct key, each text reaches Twilio once, each coupon exists once on the platform,
each note and tag once."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from aftercare.actions import ReasonCode
from aftercare.report import shop_report
from aftercare.sandbox import Item
from aftercare.sandbox.deployment import START, Customers, read_mail
from aftercare.sandbox.testing import FAST_RETRIES
from aftercare.store import hook_runs

from .conftest import hours, mail_keys

COFFEE = Item("Single-Origin Coffee 250 g", 1, Decimal("11.50"), "COFFEE-250")  # usage_tips group "coffee"
WALLET = Item("Leather Card Holder", 1, Decimal("35.00"), "CARD-TAN")  # warranty_reminder group "leather"
#: Where each sandbox keeps birthdays (the demo's fields).
BIRTHDAY_FIELDS = {"shopify": "facts.birth_date", "woocommerce": "billing_birth_date"}

#: (order, plugin, action, template, state) -> how many. A: delivered, answers the survey with a 2 and
#: confirms the newsletter; B: delivered, then returned; C: refunded before shipping; D: cancelled
#: before payment; E: shipped, delivery never reported; F: signed up before ordering (marketing mail and
#: texts welcome) with a birthday two days on, delivered, answers the survey with a 5 and the relationship
#: survey (marketing mail: for F alone) with a 9.
EXPECTED = Counter(
    {
        ("A", "coupon", "create_coupon", "", "done"): 2,  # the next-purchase coupon and the opt-in reward
        ("A", "coupon", "send_email", "coupon", "done"): 1,
        ("A", "coupon", "send_email", "reward_coupon", "done"): 1,
        ("A", "tracking_notice", "send_email", "shipped", "done"): 1,
        ("A", "tracking_notice", "send_email", "delivered", "done"): 1,
        ("A", "newsletter_optin", "send_email", "newsletter_invite", "done"): 1,
        ("A", "newsletter_optin", "set_marketing_consent", "", "done"): 1,
        ("A", "newsletter_optin", "tag_customer", "", "done"): 1,
        ("A", "satisfaction_survey", "send_email", "satisfaction_survey", "done"): 1,  # its fallback, moved
        ("A", "satisfaction_survey", "add_order_note", "", "done"): 1,  # the low score
        ("A", "satisfaction_survey", "tag_customer", "", "done"): 1,
        ("A", "review_request", "send_email", "review_request", "done"): 1,  # its fallback, moved to delivery
        ("A", "warranty_reminder", "send_email", "warranty_reminder", "due"): 1,  # in eleven months, moved to delivery
        ("B", "coupon", "create_coupon", "", "done"): 1,
        ("B", "coupon", "send_email", "coupon", "done"): 1,
        ("B", "tracking_notice", "send_email", "shipped", "done"): 1,
        ("B", "tracking_notice", "send_email", "delivered", "done"): 1,
        ("B", "return_ack", "send_email", "return_ack", "done"): 1,
        ("B", "return_ack", "add_order_note", "", "done"): 1,
        ("B", "return_ack", "tag_customer", "", "done"): 1,
        ("B", "satisfaction_survey", "send_email", "satisfaction_survey", "done"): 1,
        ("B", "newsletter_optin", "send_email", "newsletter_invite", "dropped"): 1,  # fire-time: returned
        ("B", "review_request", "send_email", "review_request", "dropped"): 1,  # withdrawn
        ("B", "usage_tips", "send_email", "usage_tips", "dropped"): 1,  # fire-time: returned
        ("C", "coupon", "create_coupon", "", "done"): 1,  # paid, so the coupon came before the refund
        ("C", "coupon", "send_email", "coupon", "done"): 1,
        ("E", "coupon", "create_coupon", "", "done"): 1,
        ("E", "coupon", "send_email", "coupon", "done"): 1,
        ("E", "tracking_notice", "send_email", "shipped", "done"): 1,
        ("E", "satisfaction_survey", "send_email", "satisfaction_survey", "done"): 1,  # days after shipping
        ("E", "review_request", "send_email", "review_request", "done"): 1,
        ("E", "usage_tips", "send_email", "usage_tips", "done"): 1,
        # win_back (5 days in the demo's plugins): made when due, dropped at fire time for a return
        # or a refund; A's and F's mails would reach the frequency cap, so their coupons are not made at all.
        ("A", "win_back", "create_coupon", "", "dropped"): 1,  # its mail would be refused (frequency cap)
        ("A", "win_back", "send_email", "win_back", "dropped"): 1,  # its coupon did not happen
        ("B", "win_back", "create_coupon", "", "dropped"): 1,  # fire-time: returned
        ("B", "win_back", "send_email", "win_back", "dropped"): 1,  # its coupon did not happen
        ("C", "win_back", "create_coupon", "", "dropped"): 1,  # fire-time: refunded
        ("C", "win_back", "send_email", "win_back", "dropped"): 1,
        ("E", "win_back", "create_coupon", "", "done"): 1,
        ("E", "win_back", "send_email", "win_back", "done"): 1,
        # replenishment (coffee, 2 days a bag): B returned its coffee; E's comes after five marketing mails.
        ("B", "replenishment", "send_email", "replenishment", "dropped"): 1,  # fire-time: returned
        ("E", "replenishment", "send_email", "replenishment", "dropped"): 1,  # frequency cap
        # Texts: the tracking link of each parcel, transactional, to the order's phone.
        ("A", "tracking_notice", "send_sms", "shipped", "done"): 1,
        ("B", "tracking_notice", "send_sms", "shipped", "done"): 1,
        ("E", "tracking_notice", "send_sms", "shipped", "done"): 1,
        # F: the paid order's coupon, the parcel's mails and text, the birthday on the day, the relationship
        # survey a day after the delivery (the demo's plugins), the win-back 5 days on, after the cap's fifth.
        ("F", "coupon", "create_coupon", "", "done"): 1,
        ("F", "coupon", "send_email", "coupon", "done"): 1,
        ("F", "tracking_notice", "send_email", "shipped", "done"): 1,
        ("F", "tracking_notice", "send_email", "delivered", "done"): 1,
        ("F", "tracking_notice", "send_sms", "shipped", "done"): 1,
        ("F", "satisfaction_survey", "send_email", "satisfaction_survey", "done"): 1,
        ("F", "satisfaction_survey", "send_email", "relationship_survey", "done"): 1,
        ("F", "review_request", "send_email", "review_request", "done"): 1,
        ("F", "warranty_reminder", "send_email", "warranty_reminder", "due"): 1,
        ("F", "greetings", "send_email", "birthday", "done"): 1,
        ("F", "win_back", "create_coupon", "", "dropped"): 1,  # its mail would be refused (frequency cap)
        ("F", "win_back", "send_email", "win_back", "dropped"): 1,  # its coupon did not happen
    }
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_every_plugin_acts_once_through_the_lifecycle(deploy, platform):
    options = {"birthday_field": BIRTHDAY_FIELDS[platform], **({"retry_delays": FAST_RETRIES} if platform == "shopify"
                                                                 else {})}  # fmt: skip
    running = deploy({"shop": platform}, sandbox_options={"shop": options})
    shop = running.sandboxes["shop"]
    # START is 2026-03-02 07:00 UTC; the test shop's zone is UTC: the greeting is due on the 4th at 09:00.
    running.sign_up("shop", "fiona@example.com", birthday=date(1988, 3, 4))
    a = shop.create_order(email="ana@example.com", locale="es", items=[WALLET])
    b = shop.create_order(email="boris@example.com", locale="bg", items=[COFFEE])
    c = shop.create_order(email="carol@example.com", locale="en", items=[WALLET])
    d = shop.create_order(email="dan@example.com", locale="en", paid=False)
    e = shop.create_order(email="eve@example.com", locale="en", items=[COFFEE])
    f = shop.create_order(email="fiona@example.com", locale="en", items=[WALLET])
    hours(running, 1)
    shop.cancel(d.id)
    shop.refund(c.id, reason="out of stock")
    for order in (a, b, e, f):
        shop.ship(order.id)
    hours(running, 24)
    for order in (a, b, f):
        shop.deliver(order.id)
    hours(running, 24)
    shop.request_return(b.id, reason="defective")
    # The customer of A reads their mail as it comes: a low survey score, and a yes to the newsletter.
    ana = Customers(running, random.Random(1), 1.0, 1.0, scores=((2, 1),), only=frozenset({"ana@example.com"}))
    fiona = Customers(running, random.Random(1), 1.0, 1.0, scores=((5, 1),), nps_scores=((9, 1),),
                      only=frozenset({"fiona@example.com"}))  # fmt: skip
    for _ in range(24 * 6):
        hours(running, 1)
        ana.read_new_mail()
        fiona.read_new_mail()
    running.finish()

    label = {str(o.id): name for name, o in zip("ABCDEF", (a, b, c, d, e, f), strict=True)}
    actions = running.app.store.list_actions(limit=1000)
    seen = Counter(
        (label[x.order_id], x.plugin, x.kind.value, x.payload.get("template", ""), x.state.value) for x in actions
    )
    assert seen == EXPECTED, sorted((seen - EXPECTED) + (EXPECTED - seen))
    assert not [x for x in actions if x.state.value == "failed"]

    # Each event's hooks ran once, though the consumer threads and settle() both dispatch events.
    with running.app.store.engine.connect() as conn:
        runs = Counter(conn.execute(sa.select(hook_runs.c.event_id, hook_runs.c.plugin, hook_runs.c.hook)).all())
    assert runs and set(runs.values()) == {1}, runs.most_common(3)

    # Mail: one .eml per mail sent, none twice, in the customer's language.
    keys = mail_keys(running)
    sent = {x.idempotency_key for x in actions if x.kind.value == "send_email" and x.state.value == "done"}
    assert set(keys) == sent and set(keys.values()) == {1}
    assert ana.answers == [("shop", "ana@example.com", 2)] and ana.optins == [("shop", "ana@example.com")]
    assert sorted(fiona.answers) == [("shop", "fiona@example.com", 5), ("shop", "fiona@example.com", 9)]
    # The relationship answer is counted apart from the order surveys' CSAT (A's 2 and F's 5).
    report = shop_report(running.app.store, "shop", START, running.app.now() + timedelta(seconds=1))
    assert (report.csat_answers, report.csat, report.nps_answers) == (2, 50.0, 0)
    assert (report.relationship_nps_answers, report.relationship_nps) == (1, 100.0)
    (birthday,) = [read_mail(p) for p in running.outbox.glob("*.eml") if "/greetings/" in read_mail(p).key]
    assert birthday.to == "fiona@example.com" and birthday.key.endswith("/birthday:2026")
    (relationship,) = [read_mail(p) for p in running.outbox.glob("*.eml") if "/relationship:" in read_mail(p).key]
    assert relationship.to == "fiona@example.com" and relationship.key.endswith("/relationship:2026-01")

    # Texts: one per parcel at Twilio, the one the action records, with the parcel's tracking link.
    texted = {x.result["sid"]: x for x in actions if x.kind.value == "send_sms" and x.state.value == "done"}
    messages = running.twilio.messages
    assert sorted(m.sid for m in messages) == sorted(texted)
    for message in messages:
        order = shop.state.order(int(texted[message.sid].order_id))
        assert message.to == texted[message.sid].payload["to"] and message.to.startswith("+")
        assert order.fulfillments[0].tracking_url in message.body, message.body

    # The platform: each coupon once, notes on A and B, tags and consent on the customers.
    codes = sorted(
        x.payload["code"].upper() for x in actions if x.kind.value == "create_coupon" and x.state.value == "done"
    )
    assert sorted(c["code"].upper() for c in shop.coupons()) == codes
    # Each coupon's mail shows the code as the shop holds it (WooCommerce lower-cases
    # codes), and the shop keeps the expiry the mail promises.
    held = {c["code"]: c for c in shop.coupons()}
    mails = [read_mail(path).text for path in sorted(running.outbox.glob("*.eml"))]
    mailed = {x.depends_on for x in actions if x.kind.value == "send_email" and x.state.value == "done"}
    for coupon in (x for x in actions if x.kind.value == "create_coupon" and x.state.value == "done"):
        code = coupon.result["code"]
        expires = datetime.fromisoformat(coupon.payload["expires_at"]).replace(microsecond=0)
        assert datetime.fromisoformat(held[code]["ends_at"]).replace(microsecond=0) == expires, code
        # In its one mail: no coupon is made for a mail that would be refused (A's and F's win-back, capped).
        assert coupon.idempotency_key in mailed and sum(code in text for text in mails) == 1, code
    capped = [x for x in actions if (label[x.order_id], x.plugin, x.kind.value) in
              {("A", "win_back", "create_coupon"), ("F", "win_back", "create_coupon")}]  # fmt: skip
    assert len(capped) == 2
    for coupon in capped:
        assert coupon.reason_code is ReasonCode.MESSAGE_REFUSED and "frequency cap" in coupon.reason, coupon.reason
    assert notes(shop, a.id) == 1 and notes(shop, b.id) == 1
    assert customer_tags(running, shop, "ana@example.com") == {"aftercare-follow-up", "newsletter"}
    assert customer_tags(running, shop, "boris@example.com") == {"return-requested"}
    assert consent(running, shop, "ana@example.com") == "subscribed"
    assert consent(running, shop, "eve@example.com") != "subscribed"


def notes(shop, order_id) -> int:
    order = shop.state.order(order_id)
    return len(order.notes) if shop.platform == "woocommerce" else int(bool(order.note))


def _meta(running, customer, name):
    key = getattr(running.app.adapter("shop").settings, name)
    return next((m["value"] for m in customer.meta if m["key"] == key), None)


def customer_tags(running, shop, email) -> set[str]:
    customer = shop.state.customer_by_email(email)
    if shop.platform == "shopify":
        return set(customer.tags)
    return {t.strip() for t in (_meta(running, customer, "tags_meta_key") or "").split(",") if t.strip()}


def consent(running, shop, email) -> str:
    customer = shop.state.customer_by_email(email)
    if shop.platform == "shopify":
        return customer.marketing_state
    return (_meta(running, customer, "consent_meta_key") or {}).get("state", "")
