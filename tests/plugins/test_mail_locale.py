"""Every string a customer reads is in the mail's language: per-locale prose settings, the platforms'
return reasons, and plurals from Babel (``1 mes``, ``1 месец``), in en, es and bg."""

from dataclasses import replace

import pytest

from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.preview import render_preview
from aftercare.mail.templates import localized
from aftercare.models import ReturnRequest
from aftercare.plugins import return_ack, usage_tips, warranty_reminder
from aftercare.testing import START, make_event, sample_order

from .conftest import inbox

POLICY = {
    "en": ["30 days from delivery"],
    "es": ["30 días desde la entrega"],
    "bg": ["30 дни от доставката"],
}


def parts(message):
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


@pytest.mark.parametrize(
    ("locale", "policy", "reason"),
    [
        ("en", "30 days from delivery", "Reason you gave: no longer wanted, too small"),
        ("es", "30 días desde la entrega", "Motivo que nos indicaste: ya no lo quiero, talla demasiado pequeña"),
        ("bg", "30 дни от доставката", "Посочена причина: вече не го искам, твърде малък размер"),
    ],
)
def test_return_ack_policy_lines_and_the_platforms_reason_in_the_customers_language(plugin_app, locale, policy, reason):
    app = plugin_app(return_ack, settings={"return_ack": {"policy_lines": POLICY}})
    base = sample_order("shopify_order_paid_fulfilled")
    order = replace(base, locale=locale, customer=replace(base.customer, locale=locale),
                    returns=(ReturnRequest("r1", START, reason="unwanted, size_too_small, unknown"),))  # fmt: skip
    Dispatcher(app).dispatch(make_event("return_requested", order))
    execute_due(app)
    (mail,) = inbox(app)
    assert mail.language == locale
    assert policy in mail.text and policy in mail.html
    assert reason in mail.text
    assert "unwanted" not in mail.text and "unknown" not in mail.text and "size_too_small" not in mail.html


def test_a_reason_the_customer_typed_is_shown_as_given_and_escaped(plugin_app):
    app = plugin_app(return_ack)
    base = sample_order("woocommerce_order_completed")
    order = replace(base, customer=replace(base.customer, locale="es"),
                    returns=(ReturnRequest("r2", START, reason="Talla <equivocada>"),))  # fmt: skip
    Dispatcher(app).dispatch(make_event("return_requested", order))
    execute_due(app)
    (mail,) = inbox(app)
    assert "Motivo que nos indicaste: Talla <equivocada>" in mail.text
    assert "Talla &lt;equivocada&gt;" in mail.message.get_body(("html",)).get_content()


@pytest.mark.parametrize(
    ("locale", "tip"),
    [("en", "Wash cold"), ("es", "Lavar en frío"), ("bg", "Перете на студено"), ("de", "Wash cold")],
)
def test_usage_tips_take_a_list_per_language(plugin_app, locale, tip):
    tips = {"en": ["Wash cold"], "es": ["Lavar en frío"], "bg": ["Перете на студено"]}
    settings = {"usage_tips": {"groups": {"wool": {"title_keywords": ["shirt"], "tips": tips}}}}
    app = plugin_app(usage_tips, settings=settings)
    variables = {"group": "wool", "products": [{"title": "Wool shirt", "sku": "W", "quantity": 1}], "tips": tips}
    text, html = parts(render_preview(app, "test", "usage_tips", locale=locale, plugin="usage_tips",
                                      variables=variables))  # fmt: skip
    assert tip in text and tip in html
    assert all(other not in text for other in ("Wash cold", "Lavar en frío", "Перете на студено") if other != tip)


def test_a_plain_list_is_the_same_in_every_language_and_a_table_falls_back_to_english():
    assert localized(["one"], ["bg", "en"]) == ["one"]
    assert localized({"en": ["en"], "es-ES": ["es-ES"]}, ["es_ES", "es", "en"]) == ["es-ES"]
    assert localized({"en": ["en"], "es": ["es"]}, ["bg", "en"]) == ["en"]
    assert localized({"fr": ["fr"]}, ["bg", "en"]) == ["fr"]


@pytest.mark.parametrize(
    ("locale", "months", "expected"),
    [
        ("es", 1, "La garantía de 1 mes de"),
        ("es", 24, "La garantía de 24 meses de"),
        ("bg", 1, "Гаранцията от 1 месец на"),
        ("bg", 12, "Гаранцията от 12 месеца на"),
        ("en", 1, "The 1-month warranty"),
    ],
)
def test_warranty_months_take_the_languages_plural(plugin_app, locale, months, expected):
    app = plugin_app(warranty_reminder)
    variables = {"group": "g", "months": months, "ends_at": "2027-01-05",
                 "products": [{"title": "Grinder", "sku": "G", "quantity": 1}], "claim_url": ""}  # fmt: skip
    text, html = parts(render_preview(app, "test", "warranty_reminder", locale=locale, plugin="warranty_reminder",
                                      variables=variables))  # fmt: skip
    assert expected in text and expected in html


def test_a_table_keyed_by_something_that_is_not_a_locale_is_a_config_error(aftercare_app):
    from aftercare.config import ConfigError

    with pytest.raises(ConfigError, match=r"plugins\.return_ack\.policy_lines.*'espanol' is not a locale"):
        aftercare_app(return_ack, settings={"return_ack": {"policy_lines": {"en": ["x"], "espanol": ["y"]}}})
    groups = {"wool": {"title_keywords": ["wool"], "tips": {"bg": ["a"], "es-ES": ["b"]}}}
    aftercare_app(usage_tips, settings={"usage_tips": {"groups": groups}})  # real locales load
