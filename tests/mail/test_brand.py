"""The shop's brand: validated with the TOML path, merged per shop and from bundles, drawn by the one
layout (logo, accent colour, shop link, postal address, support contact), CSS inlined, and checked."""

from email.message import EmailMessage

import pytest

from aftercare.bundles import load_bundle
from aftercare.config import ConfigError, load_config
from aftercare.mail.brand import brand_problems
from aftercare.mail.preview import render_preview

BRAND = {
    "logo_url": "https://acme.example/logo.png",
    "accent_color": "#0F766E",
    "shop_url": "https://acme.example",
    "postal_address": "Acme SL\nCalle Mayor 1\n28013 Madrid",
    "support_email": "help@acme.example",
    "support_url": "https://acme.example/help",
}


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def test_bad_brand_values_are_errors_naming_the_toml_key(tmp_path):
    path = tmp_path / "aftercare.toml"
    path.write_text("""
[mail.brand]
accent_color = "teal"
logo_url = "http://acme.example/logo.png"

[[shops]]
id = "acme"
platform = "memory"
webhook_secret = "s"

[shops.mail.brand]
support_email = "not an address"
shop_url = "acme.example"
""")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "mail.brand.accent_color: expected a colour as #rrggbb" in text
    assert "mail.brand.logo_url: expected an https:// URL" in text
    assert "shops[0].mail.brand.support_email: expected an email address" in text
    assert "shops[0].mail.brand.shop_url: expected an http(s):// URL" in text


def test_a_shop_overrides_the_brand_key_by_key(aftercare_app):
    app = aftercare_app(shop={"sender": "Acme <hi@acme.example>", "mail": {"brand": {"accent_color": "#7c3aed"}}})
    app.config = app.config.model_copy(update={"mail": app.config.mail.model_validate({"brand": BRAND})})
    brand = app.mail_settings("test").brand
    assert brand.accent_color == "#7c3aed" and brand.postal_address.startswith("Acme SL")


def test_the_layout_draws_logo_accent_shop_link_address_and_support_with_styles_inlined(aftercare_app):
    app = aftercare_app(shop={"sender": "Acme <hi@acme.example>", "name": "Acme", "mail": {"brand": BRAND}})
    message = render_preview(app, "test", "thank_you", locale="es", variables={"code": "GRACIAS-7Q2XM"})
    html = html_of(message)
    assert '<img src="https://acme.example/logo.png" width="160" alt="Acme"' in html
    assert '<a href="https://acme.example"' in html  # the logo and the footer link to the shop
    assert "#0f766e" in html  # the accent bar
    assert "Acme SL, Calle Mayor 1, 28013 Madrid" in html
    assert 'href="mailto:help@acme.example"' in html and 'href="https://acme.example/help"' in html
    assert "¿Dudas? Estamos para ayudarte:" in html
    assert "<style" not in html and 'class="card"' in html and "max-width: 600px" in html
    assert "<!--[if mso]>" in html  # Outlook's fixed-width column survives the inlining
    text = text_of(message)
    assert "Acme SL\nCalle Mayor 1\n28013 Madrid" in text and "help@acme.example · https://acme.example/help" in text


def test_without_a_brand_the_header_is_the_shop_name_and_the_footer_has_no_empty_lines(aftercare_app):
    app = aftercare_app(shop={"sender": "Acme <hi@acme.example>", "name": "Acme"})
    html = html_of(render_preview(app, "test", "thank_you", locale="en", variables={"code": "X"}))
    assert "<img" not in html and "mailto:" not in html
    assert ">\nAcme\n</td>" in html


def test_the_merchants_css_file_is_inlined_after_the_layout_and_wins(aftercare_app, tmp_path):
    (tmp_path / "brand.css").write_text(".body { font-family: Georgia, serif; } .footer { color: #123456; }")
    app = aftercare_app(shop={"sender": "A <a@a.example>", "mail": {"brand": {"css": "brand.css"}}})
    html = html_of(render_preview(app, "test", "thank_you", variables={"code": "X"}))
    body_cell = html.split('class="body"', 1)[1].split(">", 1)[0]
    assert "font-family: Georgia, serif" in body_cell
    assert "color: #123456" in html.split('class="footer"', 1)[1].split(">", 1)[0]


def test_check_fails_a_production_shop_mailing_marketing_without_a_postal_address(aftercare_app, tmp_path):
    from aftercare.plugins import coupon, tracking_notice

    marketing = aftercare_app(coupon, settings={"coupon": {"enabled": True}})
    (problem,) = brand_problems(marketing)
    assert problem.startswith("shops[0].mail.brand.postal_address: shop 'test' is in production")
    assert "(coupon)" in problem
    assert brand_problems(aftercare_app(coupon, settings={"coupon": {"enabled": True}},
                                        shop={"mail": {"brand": {"postal_address": "1 Street"}}})) == []  # fmt: skip
    staging = aftercare_app(coupon, settings={"coupon": {"enabled": True}}, shop={"production": False})
    assert brand_problems(staging) == []
    transactional_only = aftercare_app(tracking_notice, settings={"tracking_notice": {"enabled": True}})
    assert brand_problems(transactional_only) == []
    missing_css = aftercare_app(shop={"mail": {"brand": {"css": "nope.css"}}})
    (problem,) = brand_problems(missing_css)
    assert problem.startswith(f"shops[0].mail.brand.css: cannot read {tmp_path / 'nope.css'}")


def test_a_bundle_brings_the_brand_with_its_css_beside_it(tmp_path):
    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "bundle.toml").write_text('[mail.brand]\naccent_color = "#112233"\ncss = "brand.css"\n')
    bundle = load_bundle(folder)
    assert bundle.mail.brand.accent_color == "#112233"
    assert bundle.mail.brand.css == str((folder / "brand.css").resolve())


@pytest.mark.parametrize(
    ("plugin", "template", "label"),
    [
        ("tracking_notice", "shipped", "Track your parcel"),
        ("review_request", "review_request", "Write a review"),
        ("newsletter_optin", "newsletter_invite", "Yes, sign me up"),
    ],
)
def test_the_plugins_buttons_are_bulletproof_in_the_brands_colour(aftercare_app, plugin, template, label):
    import importlib

    module = importlib.import_module(f"aftercare.plugins.{plugin}")
    app = aftercare_app(module, shop={"sender": "A <a@a.example>", "mail": {"brand": {"accent_color": "#7c3aed"}}})
    html = html_of(render_preview(app, "test", template, locale="en", plugin=plugin))
    assert 'fillcolor="#7c3aed"' in html and "<v:roundrect" in html  # Outlook on Windows draws VML
    anchor = html.split(f">{label}</a>")[0].rsplit("<a ", 1)[1]
    assert "background: #7c3aed" in anchor and "color: #ffffff" in anchor and "display: inline-block" in anchor


PLUGIN_MAILS = [
    ("coupon", "coupon"), ("coupon", "reward_coupon"), ("newsletter_optin", "newsletter_invite"),
    ("return_ack", "return_ack"), ("review_request", "review_request"), ("review_request", "review_reminder"),
    ("satisfaction_survey", "satisfaction_survey"), ("satisfaction_survey", "relationship_survey"),
    ("tracking_notice", "shipped"), ("tracking_notice", "delivered"),
    ("usage_tips", "usage_tips"), ("usage_tips", "tips_coffee"), ("warranty_reminder", "warranty_reminder"),
    ("win_back", "win_back"), ("replenishment", "replenishment"), ("delivery_exception", "shipment_exception"),
    ("delivery_exception", "ready_for_pickup"), ("delivery_exception", "apology_coupon"),
    ("greetings", "birthday"), ("greetings", "xmas"), ("greetings", "new_year"),
    ("", "thank_you"), ("", "how_was_it"),  # the core's own
]  # fmt: skip


@pytest.mark.parametrize("locale", ["en", "es", "bg"])
@pytest.mark.parametrize(("plugin", "template"), PLUGIN_MAILS)
def test_every_plugin_mail_has_a_preheader_in_its_language(aftercare_app, plugin, template, locale):
    import importlib

    modules = [importlib.import_module(f"aftercare.plugins.{plugin}")] if plugin else []
    app = aftercare_app(*modules, shop={"sender": "A <a@a.example>"})
    html = html_of(render_preview(app, "test", template, locale=locale, plugin=plugin))
    hidden = html.split("<body", 1)[1].split("<div", 1)[1].split("</div>", 1)[0]
    assert "display:none" in hidden and "mso-hide:all" in hidden
    text = hidden.split(">", 1)[1].split("\u200b", 1)[0].strip()
    assert len(text) > 10, text
    cyrillic = any("\u0400" <= char <= "\u04ff" for char in text)
    assert cyrillic is (locale == "bg"), text


def test_bundle_check_names_a_missing_brand_css_file(tmp_path):
    from aftercare.cli.bundles import check_bundle

    folder = tmp_path / "acme"
    folder.mkdir()
    (folder / "bundle.toml").write_text('[mail.brand]\ncss = "brand.css"\n')
    (problem,) = check_bundle(folder)["problems"]
    assert problem == f"{folder / 'bundle.toml'}: mail.brand.css: no such file {(folder / 'brand.css').resolve()}"
    (folder / "brand.css").write_text(".body { color: #222222; }")
    assert check_bundle(folder)["problems"] == []


def test_a_light_accent_keeps_links_readable_and_a_dark_one_colours_them():
    from aftercare.config.mail import BrandSettings
    from aftercare.mail.brand import brand_context

    light = brand_context(BrandSettings(accent_color="#fde047"), "A")
    assert (light["on_accent"], light["link"]) == ("#111827", "#1d4ed8")
    dark = brand_context(BrandSettings(accent_color="#0f766e"), "A")
    assert (dark["on_accent"], dark["link"]) == ("#ffffff", "#0f766e")
