"""The demo's summary of a (shortened) week on both sandbox shops: the birthday mails of the regulars
who signed up with a birthday, one per shop, every text the Twilio sandbox accepted, each with
the shop that sent it, and the relationship NPS of the regulars' answers apart from the CSAT; the
printed summary shows them all."""

from __future__ import annotations

import pytest
from rich.console import Console

from aftercare.demo import print_summary, summarise
from aftercare.models import SurveyPurpose
from aftercare.sandbox.deployment import DEMO_SANDBOX_OPTIONS, read_mail, run_week
from aftercare.sandbox.testing import FAST_RETRIES


@pytest.mark.timeout(240)
def test_the_summary_lists_the_birthday_mails_the_texts_and_the_relationship_nps(deploy):
    options = {sid: dict(o) for sid, o in DEMO_SANDBOX_OPTIONS.items()}
    options["demo-shopify"]["retry_delays"] = FAST_RETRIES
    running = deploy({"demo-shopify": "shopify", "demo-woo": "woocommerce"}, sandbox_options=options)
    since = running.clock.now()
    run_week(running, orders_per_shop=6, days=5)
    running.finish()
    summary = summarise(running, since)

    greetings = [read_mail(p) for p in sorted(running.outbox.glob("*.eml")) if "/greetings/" in read_mail(p).key]
    assert sorted(summary.birthdays) == sorted((m.shop_id, m.to, m.subject) for m in greetings)
    assert sorted(shop for shop, _to, _subject in summary.birthdays) == ["demo-shopify", "demo-woo"]
    assert all(subject.startswith("Happy birthday") for _shop, _to, subject in summary.birthdays)

    messages = running.twilio.messages
    assert messages and [(to, body) for _shop, to, body in summary.texts] == [(m.to, m.body) for m in messages]
    phones = {shop_id: {o.shipping_address.phone.replace(" ", "") for o in shop.state.orders.values()}
              for shop_id, shop in running.sandboxes.items()}  # fmt: skip
    assert all(to in phones[shop] for shop, to, _body in summary.texts), summary.texts
    assert {shop for shop, _to, _body in summary.texts} == {"demo-shopify", "demo-woo"}

    # The regulars (signed up: marketing mail welcome) answer the relationship survey; it is not in the CSAT.
    for shop_id, figures in summary.surveys.items():
        answers = running.app.store.survey_answers(shop_id)
        relationship = [a for a in answers if a.answer.purpose is SurveyPurpose.RELATIONSHIP]
        assert all(a.email.startswith("regular-") and a.answer.kind.value == "nps" for a in relationship)
        assert figures["relationship_nps_answers"] == len(relationship)
        assert figures["answers"] == len(answers) - len(relationship)
    answered = {shop: f["relationship_nps"] for shop, f in summary.surveys.items() if f["relationship_nps_answers"]}
    assert answered, summary.surveys

    console = Console(record=True, width=160)
    print_summary(summary, console)
    printed = console.export_text()
    shop, nps = next(iter(answered.items()))
    assert "relationship NPS" in printed
    assert any(shop in line and f"{nps:+g} (" in line for line in printed.splitlines()), printed
    assert "Birthday greetings" in printed and summary.birthdays[0][1] in printed
    assert f"Texts sent to the Twilio sandbox ({len(messages)})" in printed and messages[0].to in printed
