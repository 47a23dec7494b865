"""Links that reveal nothing (#19 item 5): opaque, expiring, rotatable, and the old links still open.

Every link goes through the real pages of the receiver, and one through a
real survey mail written by the outbox transport.
"""

import base64
import binascii
import contextlib
import email
import re
from dataclasses import replace
from datetime import timedelta
from email import policy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from aftercare.app import App
from aftercare.asgi import create_asgi_app
from aftercare.clock import ManualClock
from aftercare.config import Config, ShopConfig, describe_errors
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.links import Links, read_token
from aftercare.mail import templates as templates_module
from aftercare.mail.unsubscribe import unsubscribe_url
from aftercare.models import ConsentState, ShipmentStatus, SurveyKind
from aftercare.plugin_manager import PluginManager
from aftercare.plugins import satisfaction_survey
from aftercare.queue import Enqueuer
from aftercare.testing import START, make_event, make_order, memory_platform, sample_order

from .conftest import PageEvents
from .legacy import legacy_token

DAY = timedelta(days=1)
KEY_2025 = "k" * 20 + "-the-key-of-2025-rotated-out"
KEY_2026 = "n" * 20 + "-the-key-in-use-since-2026-xx"
EMAIL = "nikolay.todorov182@example.com"
SHOP = "demo-woo"


@pytest.fixture
def deployment(tmp_path):
    """``deployment(**config)``: (app, client) with shop demo-woo (Bulgarian) and its receiver, on one store."""
    opened = []

    def make(**config):
        manager = PluginManager.load(
            entry_points=False,
            extra=[("memory-platform", memory_platform), ("page_events", PageEvents()),
                   ("satisfaction_survey", satisfaction_survey)],
        )  # fmt: skip
        shop = ShopConfig(id=SHOP, name="Демо", platform="memory", webhook_secret="woo-secret", locale="bg",
                          sender="shop@example.com", production=True)  # fmt: skip
        app = App(
            Config(
                database=f"sqlite:///{tmp_path / 'aftercare.db'}",
                queue=f"sqlite:///{tmp_path / 'queue.db'}",
                shops=[shop],
                base_dir=tmp_path,
                plugins={"satisfaction_survey": {"enabled": True}},
                **config,
            ),  # fmt: skip
            clock=ManualClock(START),
            plugins=manager,
        )
        app.store.upgrade()
        client = TestClient(create_asgi_app(app, Enqueuer.for_app(app)), base_url="http://127.0.0.1")
        client.__enter__()
        opened.append((app, client))
        return app, client

    yield make
    for app, client in opened:
        client.__exit__(None, None, None)
        app.close()


def paid(app, number="1016"):
    order = make_order(number, shop_id=SHOP, email=EMAIL)
    Dispatcher(app).dispatch(make_event("order_paid", order))
    return order


def survey_url(app, order, score=5, locale="bg"):
    return Links(app).survey(shop_id=SHOP, order_id=order.platform_id, email=EMAIL, locale=locale,
                             kind=SurveyKind.CSAT, score=score)  # fmt: skip


def path(url):
    return urlsplit(url).path


def token_of(url):
    return path(url).rsplit("/", 1)[1]


def every_decoding(token):
    """The token's text and its bytes read every plausible way: base64 (standard, URL-safe, Fernet's
    stripped head put back), hex, and each of those from every offset a character could be dropped at."""
    texts = [token.encode()]
    for candidate in (token, "gAAAAA" + token):
        for shift in range(4):
            part = candidate[shift:]
            padded = part + "=" * (-len(part) % 4)
            for decode in (base64.urlsafe_b64decode, base64.b64decode):
                with contextlib.suppress(binascii.Error, ValueError):
                    texts.append(decode(padded))
    with contextlib.suppress(ValueError):  # a token is never hex, but if one were, read it
        texts.append(bytes.fromhex(token))
    return texts


@pytest.mark.parametrize("keys", [{"secret_key": KEY_2026}, {}], ids=["secret_key", "the shop's own key"])
def test_no_field_of_a_link_is_readable_without_the_key(deployment, keys):
    app, _client = deployment(**keys)
    order = paid(app)
    tokens = {
        "survey": token_of(survey_url(app, order)),
        "optin": token_of(Links(app).optin(shop_id=SHOP, order_id=order.platform_id, email=EMAIL, locale="bg")),
        "unsubscribe": token_of(unsubscribe_url(app, SHOP, EMAIL, "bg")),
    }
    secrets = [EMAIL, "nikolay", "example.com", SHOP, order.platform_id, "1016", "csat", "survey", "optin"]
    for purpose, token in tokens.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token), (purpose, token)  # no '.': not the legacy format
        decoded = every_decoding(token)
        assert len(decoded) > 4  # the decodings did run
        for text in decoded:
            for secret in secrets:
                assert secret.encode() not in text, (purpose, secret)
                assert secret.encode("utf-16-le") not in text, (purpose, secret)
        # ... while with the key the fields are all there.
        assert read_token(app, purpose, token).shop_id == SHOP
    # The same link made twice is two different tokens: nothing to correlate two mails by.
    assert survey_url(app, order) != survey_url(app, order)


def test_a_survey_link_works_until_survey_days_then_says_it_expired_in_the_readers_language(deployment):
    app, client = deployment(secret_key=KEY_2026, links={"survey_days": 10})
    order = paid(app)
    url = path(survey_url(app, order, score=4))
    app.clock.advance(10 * DAY - timedelta(seconds=1))
    assert client.get(url).status_code == 200

    app.clock.advance(timedelta(seconds=1))
    for response in (client.get(url), client.post(url, data={"score": "4"}), client.post(f"{url}/more")):
        assert response.status_code == 410
        assert "Тази връзка към анкетата е изтекла" in response.text  # the link's language, Bulgarian
        assert "Traceback" not in response.text
    assert app.store.survey_answers(SHOP) == []

    english = path(survey_url(app, order, locale="en"))
    app.clock.advance(11 * DAY)
    assert "This survey link has expired" in client.get(english).text


def test_an_optin_link_expires_after_optin_days_and_an_unsubscribe_link_never(deployment):
    app, client = deployment(secret_key=KEY_2026)  # the defaults: opt-in 7 days
    order = paid(app)
    optin = path(Links(app).optin(shop_id=SHOP, order_id=order.platform_id, email=EMAIL, locale="en"))
    unsubscribe = path(unsubscribe_url(app, SHOP, EMAIL, "en"))
    app.clock.advance(7 * DAY)
    response = client.post(optin)
    assert response.status_code == 410 and "This confirmation link has expired" in response.text
    assert app.store.current_consent(SHOP, EMAIL) is None

    app.clock.advance(3650 * DAY)  # ten years on, the law still wants it to work
    assert client.post(unsubscribe).status_code == 200
    assert app.store.current_consent(SHOP, EMAIL) is ConsentState.UNSUBSCRIBED


def test_a_link_made_with_a_previous_key_still_opens_and_new_links_use_the_current_key(deployment):
    before, _ = deployment(secret_key=KEY_2025)
    order = paid(before)
    old_link = path(survey_url(before, order, score=3))
    old_unsubscribe = path(unsubscribe_url(before, SHOP, EMAIL))

    rotated, client = deployment(secret_key=KEY_2026, previous_secret_keys=[KEY_2025])
    assert client.get(old_link).status_code == 200
    assert client.post(old_link).status_code == 200
    [answer] = rotated.store.survey_answers(SHOP)
    assert (answer.email, answer.answer.score) == (EMAIL, 3)
    assert client.post(old_unsubscribe).status_code == 200

    new_link = path(survey_url(rotated, order))
    assert client.get(new_link).status_code == 200
    _without_previous, strict = deployment(secret_key=KEY_2026)
    assert strict.get(old_link).status_code == 400  # the old key dropped: its links are refused
    _old_only, old_deployment = deployment(secret_key=KEY_2025)
    assert old_deployment.get(new_link).status_code == 400  # made with the new key, not the old one


def test_links_made_before_secret_key_was_set_still_open_after(deployment):
    """Without a top-level secret_key links use the shop's own key; adding one later breaks none of them."""
    before, _ = deployment()
    link = path(survey_url(before, paid(before)))
    _after, client = deployment(secret_key=KEY_2026)
    assert client.get(link).status_code == 200


def test_a_tampered_or_truncated_link_is_refused(deployment):
    app, client = deployment(secret_key=KEY_2026)
    token = token_of(survey_url(app, paid(app)))
    for at in range(0, len(token) - 1, 7):
        swapped = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]
        assert client.get(f"/survey/{swapped}").status_code == 400, at
    for bad in (token[:-6], token + "AAAA", "", "gAAAAA", "x" * 200, token[:40] + "~" + token[40:]):
        assert client.post(f"/survey/{bad}").status_code in (400, 404, 405), bad
    assert client.post(f"/optin/{token}").status_code == 400  # a survey link is no opt-in link
    assert client.post(f"/unsubscribe/{token}").status_code == 400
    assert app.store.survey_answers(SHOP) == [] and app.store.current_consent(SHOP, EMAIL) is None


def test_a_legacy_link_mailed_before_the_upgrade_still_works_until_legacy_until(deployment):
    app, client = deployment(secret_key=KEY_2026, links={"legacy_until": (START + 20 * DAY).date()})
    order = paid(app)
    survey = f"/survey/{legacy_token(app, 'survey', SHOP, order.platform_id, EMAIL, 'bg', 'csat', '5')}"
    optin = f"/optin/{legacy_token(app, 'optin', SHOP, order.platform_id, EMAIL, 'bg')}"
    unsubscribe = f"/unsubscribe/{legacy_token(app, 'unsubscribe', SHOP, EMAIL, 'bg')}"
    assert client.get(survey).status_code == 200 and client.post(survey).status_code == 200
    assert [a.answer.score for a in app.store.survey_answers(SHOP)] == [5]
    assert client.get(optin).status_code == 200

    app.clock.advance(21 * DAY)  # past legacy_until
    response = client.get(survey)
    assert response.status_code == 410 and "изтекла" in response.text
    assert client.get(optin).status_code == 410
    assert client.post(unsubscribe).status_code == 200  # legacy unsubscribe links always work
    assert app.store.current_consent(SHOP, EMAIL) is ConsentState.UNSUBSCRIBED


def test_a_survey_mail_carries_short_opaque_links_that_open_the_survey_page(deployment):
    app, client = deployment(secret_key=KEY_2026)
    order = sample_order("shopify_order_paid_fulfilled")
    shipped = replace(order.shipments[0], status=ShipmentStatus.IN_TRANSIT, shipped_at=START)
    order = replace(order, shop_id=SHOP, customer=replace(order.customer, email=EMAIL), shipments=(shipped,))
    adapter, dispatcher = app.adapter(SHOP), Dispatcher(app)
    adapter.put_order(order)
    dispatcher.dispatch(make_event("order_paid", order))
    dispatcher.dispatch(make_event("shipped", order))
    app.clock.advance(DAY)
    arrived = replace(order, shipments=(replace(shipped, status=ShipmentStatus.DELIVERED, delivered_at=app.now()),))
    adapter.put_order(arrived)
    dispatcher.dispatch(make_event("delivered", arrived, occurred_at=app.now()))
    app.clock.advance(4 * DAY)
    execute_due(app)

    [eml] = list((app.config.base_dir / "outbox").glob("*.eml"))
    raw = eml.read_bytes()
    assert EMAIL.encode() in raw  # the mail is to the customer ...
    message = email.message_from_bytes(raw, policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    found = re.findall(r"(\d) - [^:\n]+: (http://127\.0\.0\.1:8000/survey/[\w-]+)", text)
    links = {int(score): link for score, link in found}
    assert sorted(links) == [1, 2, 3, 4, 5]
    for link in links.values():  # ... its links say nothing about them
        assert len(link) < 200
        for decoded in every_decoding(token_of(link)):
            assert EMAIL.encode() not in decoded and order.platform_id.encode() not in decoded
    page = client.get(path(links[2]))
    assert page.status_code == 200 and 'value="2" checked' in page.text and 'value="5" checked' not in page.text
    assert client.post(path(links[5])).status_code == 200
    [answer] = app.store.survey_answers(SHOP)
    assert (answer.email, answer.order_id, answer.answer.score) == (EMAIL, order.platform_id, 5)


def test_previous_secret_keys_are_checked_like_secret_key():
    def problems(**data):
        try:
            Config.model_validate(data)
        except Exception as exc:  # pydantic's ValidationError, as load_config sees it
            return describe_errors(exc)
        return []

    assert problems(secret_key=KEY_2026, previous_secret_keys=[KEY_2025]) == []
    [short] = problems(secret_key=KEY_2026, previous_secret_keys=[KEY_2025, "short"])
    assert short.startswith("previous_secret_keys: [1] must be at least 32 characters") and "short" not in short
    [alone] = problems(previous_secret_keys=[KEY_2025])
    assert "previous_secret_keys is set but secret_key is not" in alone and KEY_2025 not in alone
    [days] = problems(links={"survey_days": -1})
    assert days.startswith("links.survey_days:")


def test_a_shops_page_template_without_an_expired_text_says_the_link_is_not_valid(deployment, tmp_path):
    """An override written before expiry existed keeps working: its ``invalid`` text stands in."""
    folder = tmp_path / "overrides" / "en"
    folder.mkdir(parents=True)
    builtin = (Path(templates_module.__file__).parent / "templates" / "en" / "_survey.html").read_text()
    without = "\n".join(line for line in builtin.splitlines() if '"expired"' not in line)
    (folder / "_survey.html").write_text(without.replace("This survey link is not valid", "Our old page says no"))
    app, client = deployment(secret_key=KEY_2026, mail={"templates_dir": str(tmp_path / "overrides")})
    url = path(survey_url(app, paid(app), locale="en"))
    app.clock.advance(31 * DAY)
    response = client.get(url)
    assert response.status_code == 410 and "Our old page says no" in response.text
