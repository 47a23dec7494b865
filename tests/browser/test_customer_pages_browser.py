"""The customer pages behind the links in the mail, in Chromium at phone width, in Spanish and Bulgarian."""

from urllib.parse import urlsplit

import pytest

from aftercare.links import Links
from aftercare.mail.unsubscribe import unsubscribe_url
from aftercare.models import SurveyKind

from .conftest import screenshot

PHONE = {"width": 390, "height": 844}
TEXT = {
    "es": {"survey": "Enviar mi respuesta", "unsubscribe": "Sí, darme de baja"},
    "bg": {"optin": "Да, абонирайте ме", "unsubscribe": "Да, отпишете ме"},
}


@pytest.fixture
def phone(browser, server):
    context = browser.new_context(viewport=PHONE, base_url=server["url"], is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


def path(url):
    return urlsplit(url).path


def fits(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1


@pytest.mark.parametrize("locale", ["es", "bg"])
def test_survey_answer_at_phone_width(phone, server, tmp_path, locale):
    app = server["app"]
    link = Links(app).survey(shop_id="north", order_id="order-2002", email="ivan@example.com", locale=locale,
                             kind=SurveyKind.CSAT, score=4)  # fmt: skip
    phone.goto(path(link))
    assert phone.locator("html").get_attribute("lang") == locale
    fits(phone)
    screenshot(phone, tmp_path, f"survey-{locale}")
    phone.set_viewport_size(PHONE)
    with phone.expect_navigation():
        phone.locator("button[type=submit]").first.tap()
    fits(phone)
    stored = app.store.survey_answer("north", "order-2002", SurveyKind.CSAT)
    assert stored is not None and stored.answer.score == 4
    if locale == "es":
        assert "Gracias" in phone.content()


@pytest.mark.parametrize("locale", ["es", "bg"])
def test_unsubscribe_at_phone_width(phone, server, tmp_path, locale):
    app = server["app"]
    email = f"unsub-{locale}@example.com"
    phone.goto(path(unsubscribe_url(app, "north", email, locale)))
    assert phone.locator("html").get_attribute("lang") == locale
    fits(phone)
    button = phone.get_by_role("button", name=TEXT[locale]["unsubscribe"])
    with phone.expect_navigation():
        button.tap()
    fits(phone)
    screenshot(phone, tmp_path, f"unsubscribe-{locale}")
    assert app.store.current_consent("north", email).value == "unsubscribed"


@pytest.mark.parametrize("locale", ["es", "bg"])
def test_optin_confirmation_at_phone_width(phone, server, tmp_path, locale):
    app = server["app"]
    email = f"optin-{locale}@example.com"
    link = Links(app).optin(shop_id="north", order_id="order-2001", email=email, locale=locale)
    phone.goto(path(link))
    assert phone.locator("html").get_attribute("lang") == locale
    assert email in phone.content()
    fits(phone)
    with phone.expect_navigation():
        phone.locator("button[type=submit]").first.tap()
    screenshot(phone, tmp_path, f"optin-{locale}")
    assert app.store.current_consent("north", email).value == "subscribed"
