"""End to end: `aftercare serve` on 127.0.0.1, the real Shopify and WooCommerce payloads
posted signed as each platform signs them, the README's example plugin, the sandbox shops
as the platform API and a real SMTP server as the mail relay."""

import base64
import hashlib
import hmac
import json
import sqlite3
import time

import httpx
import pytest

from aftercare.sandbox.testing import sandbox_shopify, sandbox_woocommerce  # noqa: F401 (fixtures)

from ..conftest import REPO
from ..mail.conftest import smtp_server  # noqa: F401 (fixture)
from .test_processes import first_line, start, stop, wait_for

SHOPIFY_SECRET = "e2e-shopify-secret"
WOO_SECRET = "e2e-woo-secret"


def signature(secret, body):
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def deployment(tmp_path, sandbox_shopify, sandbox_woocommerce, smtp_server):  # noqa: F811
    controller, _sink = smtp_server
    shopify_keys = "\n".join(f'{k} = "{v}"' for k, v in sandbox_shopify.adapter_settings().items())
    woo_keys = "\n".join(f'{k} = "{v}"' for k, v in sandbox_woocommerce.adapter_settings().items())
    config = tmp_path / "aftercare.toml"
    config.write_text(
        f'plugins_folder = "{REPO / "examples" / "plugins"}"\n\n'
        f'[mail]\ntransport = "smtp"\nsender = "Shop <shop@example.com>"\nquiet_hours_start = 00:00:00\n'
        f'quiet_hours_end = 00:00:00\n[mail.smtp]\nhost = "127.0.0.1"\nport = {controller.port}\nsecurity = "none"\n\n'
        f'[[shops]]\nid = "acme-shopify"\nplatform = "shopify"\nwebhook_secret = "{SHOPIFY_SECRET}"\n'
        f"production = true\n{shopify_keys}\n\n"
        f'[[shops]]\nid = "acme-woo"\nplatform = "woocommerce"\nwebhook_secret = "{WOO_SECRET}"\n'
        f"production = true\n{woo_keys}\n"
    )
    return config, tmp_path / "executions.log"


def shopify_paid(shared_fixtures, sandbox):
    body = (shared_fixtures / "shopify" / "orders_create_paid_thirdparty_yellowai.json").read_bytes()
    customer = json.loads(body)["customer"]
    sandbox.add_customer(id=customer["id"], email=customer["email"])  # the platform knows its customer
    headers = {
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Hmac-Sha256": signature(SHOPIFY_SECRET, body),
        "X-Shopify-Shop-Domain": sandbox.shop_domain,
        "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "Content-Type": "application/json",
    }
    return body, headers, customer["email"]


def woo_paid(shared_fixtures, sandbox):
    body = (shared_fixtures / "woocommerce" / "order_retrieve.json").read_bytes()
    headers = {
        "X-WC-Webhook-Source": sandbox.url.rstrip("/") + "/",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-Signature": signature(WOO_SECRET, body),
        "X-WC-Webhook-ID": "31",
        "X-WC-Webhook-Delivery-ID": "8e4f2a",
        "Content-Type": "application/json",
    }
    return body, headers, json.loads(body)["billing"]["email"]


def coupons_in(sandbox):
    return [c.code for c in sandbox.state.coupons.values()]


def test_real_payloads_through_serve_reach_the_platform_and_the_mail_relay_once(
    deployment, shared_fixtures, sandbox_shopify, sandbox_woocommerce, smtp_server  # noqa: F811
):
    config, log = deployment
    _controller, sink = smtp_server
    server = start(config, log, "serve", "--port", "0", "--sweep-interval", "0.2")
    try:
        url = first_line(server, "aftercare serve: listening on").rsplit(" ", 1)[1]
        deliveries = [
            ("acme-shopify", *shopify_paid(shared_fixtures, sandbox_shopify)),
            ("acme-woo", *woo_paid(shared_fixtures, sandbox_woocommerce)),
        ]
        with httpx.Client(base_url=url, timeout=10) as client:
            for shop_id, body, headers, _email in deliveries:
                for _retry in range(2):  # the platform's retry of the same delivery is a no-op
                    answer = client.post(f"/webhooks/{shop_id}", content=body, headers=headers)
                    assert answer.status_code == 200, answer.text
                tampered = client.post(f"/webhooks/{shop_id}", content=body.replace(b"@", b"#", 1), headers=headers)
                assert tampered.status_code == 401, tampered.text

        try:
            wait_for(lambda: len(sink.received) >= 2, timeout=30, what="two thank-you mails")
        except AssertionError:
            raise AssertionError(f"no mails; serve said:\n{stop(server)}") from None
        time.sleep(1.0)  # give a duplicate the chance to show itself
    finally:
        stop(server)

    assert len(sink.received) == 2
    by_recipient = {r.rcpt_tos[0]: r.message for r in sink.received}
    for shop_id, _body, _headers, email in deliveries:
        message = by_recipient[email]
        text = message.get_body(("plain",)).get_content()
        sandbox = sandbox_shopify if shop_id == "acme-shopify" else sandbox_woocommerce
        (code,) = coupons_in(sandbox)  # one coupon on each platform, and the mail carries it
        assert code in text, text  # exactly as the shop holds it (WooCommerce lower-cases codes)
        assert message["X-Aftercare-Key"].startswith(f"{shop_id}/thank_you/send_email/")

    with sqlite3.connect(config.parent / "aftercare.db") as db:
        states = db.execute("SELECT kind, state, count(*) FROM actions GROUP BY kind, state").fetchall()
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert sorted(states) == [("create_coupon", "done", 2), ("send_email", "done", 2)]
    assert events == 2
