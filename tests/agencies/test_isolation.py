"""Three client shops (two Shopify, one WooCommerce) with different bundles behind one receiver
and one worker: each gets its own settings, templates and sender, and nothing of one shop can be
reached through another's webhook URL, survey, opt-in or unsubscribe link."""

import base64
import email
import hashlib
import hmac
from email import policy

import pytest
from starlette.testclient import TestClient

from aftercare.asgi import create_asgi_app
from aftercare.mail.unsubscribe import unsubscribe_url
from aftercare.models import ConsentState
from aftercare.worker import Worker

from ..conftest import SHARED_FIXTURES
from ..pages.legacy import b64, legacy_token, unb64
from .conftest import write_bundle

CONFIG = """
public_url = "http://127.0.0.1:8000"

[mail]
transport = "outbox"
sender = "Agency <mail@agency.example>"
quiet_hours_start = 00:00:00
quiet_hours_end = 00:00:00

[[shops]]
id = "acme-shopify"
platform = "shopify"
webhook_secret = "acme-secret"
production = true
bundle = "bundles/acme"
shop_domain = "acme.myshopify.com"
access_token = "shpat_acme"
admin_url = "http://127.0.0.1:9"

[[shops]]
id = "globex-shopify"
platform = "shopify"
webhook_secret = "globex-secret"
production = true
locale = "es"
timezone = "Europe/Madrid"
bundle = "bundles/globex"
sender = "Globex <hola@globex.example>"
shop_domain = "globex.myshopify.com"
access_token = "shpat_globex"
admin_url = "http://127.0.0.1:9"

[[shops]]
id = "initech-woo"
platform = "woocommerce"
webhook_secret = "initech-secret"
production = true
bundle = "bundles/initech"
url = "http://127.0.0.1:9"
consumer_key = "ck_initech"
consumer_secret = "cs_initech"
"""


def sign(secret, body):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_paid(secret, domain, event_id):
    body = (SHARED_FIXTURES / "shopify" / "orders_create_paid_thirdparty_yellowai.json").read_bytes()
    return body, {
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": f"webhook-{event_id}",
        "X-Shopify-Event-Id": f"event-{event_id}",
        "Content-Type": "application/json",
    }


def woo_paid(secret):
    body = (SHARED_FIXTURES / "woocommerce" / "order_retrieve.json").read_bytes()
    return body, {
        "X-WC-Webhook-Source": "http://127.0.0.1:9/",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-ID": "31",
        "X-WC-Webhook-Delivery-ID": "8e4f2a",
        "Content-Type": "application/json",
    }


@pytest.fixture
def agency(tmp_path, apps):
    write_bundle(
        tmp_path, "acme", "[plugins.thanks]\ngreeting = 'Thank you'\n[mail]\nsender = 'Acme <hi@acme.example>'\n"
    )
    write_bundle(tmp_path, "globex", "[plugins.thanks]\ngreeting = 'Gracias'\n")
    write_bundle(tmp_path, "initech", "[mail]\nreply_to = 'care@initech.example'\n")
    (tmp_path / "aftercare.toml").write_text(CONFIG)
    app = apps(tmp_path / "aftercare.toml")
    worker = Worker(app)
    with TestClient(create_asgi_app(app, worker.queue), base_url="http://127.0.0.1") as client:
        yield app, worker, client, tmp_path / "outbox"


def mails(outbox):
    return {
        path.name.split("-")[1] + "-" + path.name.split("-")[2]: email.message_from_bytes(
            path.read_bytes(), policy=policy.default
        )
        for path in sorted(outbox.glob("*.eml"))
    }


def test_three_shops_each_get_their_own_settings_templates_and_sender(agency):
    app, worker, client, outbox = agency
    deliveries = [
        ("acme-shopify", *shopify_paid("acme-secret", "acme.myshopify.com", 1)),
        ("globex-shopify", *shopify_paid("globex-secret", "globex.myshopify.com", 1)),  # the same order id
        ("initech-woo", *woo_paid("initech-secret")),
    ]
    for shop_id, body, headers in deliveries:
        answer = client.post(f"/webhooks/{shop_id}", content=body, headers=headers)
        assert answer.status_code == 200 and answer.json()["stored"] >= 1, (shop_id, answer.text)
    worker.run_now()

    sent = mails(outbox)
    assert set(sent) == {"acme-shopify", "globex-shopify", "initech-woo"}
    acme, globex, initech = sent["acme-shopify"], sent["globex-shopify"], sent["initech-woo"]
    assert acme["From"] == "Acme <hi@acme.example>"  # the bundle's sender
    assert globex["From"] == "Globex <hola@globex.example>"  # the shop's own
    assert initech["From"] == "Agency <mail@agency.example>" and initech["Reply-To"] == "care@initech.example"
    assert (
        "Thank you" in acme.get_body(("plain",)).get_content()
        and "(acme text)" in acme.get_body(("plain",)).get_content()
    )
    assert (
        "Gracias" in globex.get_body(("plain",)).get_content()
        and "(globex text)" in globex.get_body(("plain",)).get_content()
    )
    assert "(initech text)" in initech.get_body(("plain",)).get_content()
    plugins = {a.shop_id: a.plugin for a in app.store.list_actions()}
    assert plugins == {
        "acme-shopify": "acme.thanks",
        "globex-shopify": "globex.thanks",
        "initech-woo": "initech.thanks",
    }


def test_a_webhook_of_one_shop_is_refused_at_another_shops_address(agency):
    app, _worker, client, _outbox = agency
    body, headers = shopify_paid("acme-secret", "acme.myshopify.com", 2)
    assert client.post("/webhooks/globex-shopify", content=body, headers=headers).status_code == 401
    # Even signed with the other shop's secret, a delivery naming another shop's domain is refused.
    _body, resigned = shopify_paid("globex-secret", "acme.myshopify.com", 2)
    assert client.post("/webhooks/globex-shopify", content=body, headers=resigned).status_code == 403
    woo_body, woo_headers = woo_paid("initech-secret")
    assert client.post("/webhooks/acme-shopify", content=woo_body, headers=woo_headers).status_code == 401
    assert app.store.list_events() == []


def other_shop(token, shop_id):
    """A legacy (readable) token with its shop replaced and the signature kept: what a tamperer can do.

    Opaque tokens give a tamperer nothing to replace; ``tests/pages/test_links.py`` covers them.
    """
    body, mac = token.split(".")
    purpose, _shop, *fields = unb64(body).decode().split("\n")
    return f"{b64(chr(10).join((purpose, shop_id, *fields)).encode())}.{mac}"


def test_links_of_one_shop_never_act_on_another(agency):
    from aftercare.links import Links
    from aftercare.models import SurveyKind

    app, _worker, client, _outbox = agency
    links = Links(app)
    survey = links.survey(shop_id="acme-shopify", order_id="1", email="ana@example.com", locale="en",
                          kind=SurveyKind.CSAT, score=1)  # fmt: skip
    optin = links.optin(shop_id="acme-shopify", order_id="1", email="ana@example.com", locale="en")
    unsubscribe = unsubscribe_url(app, "acme-shopify", "ana@example.com")
    legacy = [  # links mailed before opaque links, whose readable shop a tamperer can swap
        f"/survey/{legacy_token(app, 'survey', 'acme-shopify', '1', 'ana@example.com', 'en', 'csat', '1')}",
        f"/optin/{legacy_token(app, 'optin', 'acme-shopify', '1', 'ana@example.com', 'en')}",
        f"/unsubscribe/{legacy_token(app, 'unsubscribe', 'acme-shopify', 'ana@example.com', '')}",
    ]
    assert all("." not in url.rsplit("/", 1)[1] for url in (survey, optin, unsubscribe))  # opaque now
    for url in legacy:
        path, token = url.rsplit("/", 1)
        for target in ("globex-shopify", "initech-woo"):
            tampered = other_shop(token, target)
            assert client.get(f"{path}/{tampered}").status_code == 400, (path, target)
            assert client.post(f"{path}/{tampered}", data={"score": "1"}).status_code == 400, (path, target)
    # A link signed by shop A's key that names shop B is just as invalid: the key is per shop.
    for shop_id in ("globex-shopify", "initech-woo"):
        assert app.store.current_consent(shop_id, "ana@example.com") is None
        assert app.store.survey_answer(shop_id, "1", SurveyKind.CSAT) is None
    # ... and the untouched links still work for their own shop.
    path, token = unsubscribe.removeprefix(app.config.public_url).rsplit("/", 1)
    assert client.post(f"{path}/{token}").status_code == 200
    assert app.store.current_consent("acme-shopify", "ana@example.com") is ConsentState.UNSUBSCRIBED
    assert app.store.current_consent("globex-shopify", "ana@example.com") is None
