"""`aftercare check --live` against the sandbox shops and a real SMTP server, and
`aftercare webhooks register|list|remove` against the sandboxes."""

import json
import socket

from click.testing import CliRunner

from aftercare.cli import cli


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keys(settings):
    return "\n".join(f'{k} = "{v}"' for k, v in settings.items())


def write_config(tmp_path, shopify, woo, smtp_port, public_url="http://127.0.0.1:8000", security="none"):
    path = tmp_path / "aftercare.toml"
    path.write_text(
        f'public_url = "{public_url}"\n'
        f'[mail]\ntransport = "smtp"\nsender = "Shop <shop@example.com>"\n'
        f'[mail.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "{security}"\ntimeout = 3\n\n'
        "[plugins.tracking_notice]\nenabled = true\n"
        "[plugins.return_ack]\nenabled = true\n\n"
        f'[[shops]]\nid = "shopify-shop"\nplatform = "shopify"\nwebhook_secret = "{shopify.secret}"\n'
        f"{keys(shopify.adapter_settings())}\n\n"
        f'[[shops]]\nid = "woo-shop"\nplatform = "woocommerce"\nwebhook_secret = "woo-secret"\n'
        f"{keys(woo.adapter_settings())}\n"
    )
    return path


def revoke(path, *credentials):
    """The config holds credentials the platform no longer accepts."""
    text = path.read_text()
    for value in credentials:
        text = text.replace(f'"{value}"', '"revoked-credential"')
    path.write_text(text)


def run(path, *args):
    result = CliRunner().invoke(cli, ["--config", str(path), *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_check_live_passes_when_everything_answers(tmp_path, sandbox_shopify, sandbox_woocommerce, smtp_server):
    controller, _handler = smtp_server
    path = write_config(tmp_path, sandbox_shopify, sandbox_woocommerce, controller.port)
    code, out = run(path, "check", "--live")
    assert code == 0, out
    assert "live: 2 shop(s) reached" in out


def test_check_live_says_what_is_wrong_one_line_each(tmp_path, sandbox_shopify, sandbox_woocommerce, smtp_server):
    controller, _handler = smtp_server
    path = write_config(tmp_path, sandbox_shopify, sandbox_woocommerce, free_port())
    revoke(path, sandbox_shopify.access_token, sandbox_woocommerce.consumer_key)
    code, out = run(path, "check", "--live")
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert code == 2
    assert any(line.startswith("error: shopify-shop: platform: ") and "401" in line for line in errors), errors
    assert any(line.startswith("error: woo-shop: platform: ") and "consumer_key" in line for line in errors), errors
    assert sum("connection refused" in line for line in errors) == 2  # one relay, reported for each shop

    code, out = run(path, "check", "--live", "--shop", "shopify-shop")
    assert code == 2 and "woo-shop" not in out


def test_check_live_names_a_missing_scope_and_a_tls_failure(tmp_path, sandbox_woocommerce, smtp_server):
    from aftercare.sandbox import ShopifySandbox

    controller, _handler = smtp_server
    with ShopifySandbox(scopes=["read_orders", "write_orders"]) as shopify:
        path = write_config(tmp_path, shopify, sandbox_woocommerce, controller.port, security="tls")
        code, out = run(path, "check", "--live", "--shop", "shopify-shop")
        assert code == 2
        assert "error: shopify-shop: platform: the access token lacks the write_discounts scope" in out
        assert "error: shopify-shop: mail: SMTP 127.0.0.1:" in out and "TLS failure" in out

        path = write_config(tmp_path, shopify, sandbox_woocommerce, controller.port, security="starttls")
        code, out = run(path, "check", "--live", "--shop", "woo-shop")
    assert code == 2 and "does not offer STARTTLS" in out


def test_webhooks_register_is_idempotent_and_remove_takes_only_ours(
    tmp_path, sandbox_shopify, sandbox_woocommerce, webhook_receiver
):
    public = webhook_receiver.url.removesuffix("/webhooks")
    path = write_config(tmp_path, sandbox_shopify, sandbox_woocommerce, free_port(), public_url=public)
    for shop_id, expected in (
        (
            "shopify-shop",
            ["fulfillment_events/create", "fulfillments/create", "fulfillments/update", "returns/request"],
        ),
        ("woo-shop", ["order.updated"]),
    ):
        code, out = run(path, "webhooks", "register", "--shop", shop_id, "--json")
        first = json.loads(out)
        assert code == 0 and first["created"] == len(expected), out
        assert sorted(row["topic"] for row in first["subscriptions"]) == expected
        assert {row["address"] for row in first["subscriptions"]} == {f"{public}/webhooks/{shop_id}"}
        compliance = ["customers/data_request", "customers/redact", "shop/redact"] if shop_id == "shopify-shop" else []
        assert first["compliance_topics"] == compliance  # named, since no API call subscribes them

        code, out = run(path, "webhooks", "register", "--shop", shop_id, "--json")
        assert code == 0 and json.loads(out)["created"] == 0  # idempotent

        code, out = run(path, "webhooks", "list", "--shop", shop_id, "--json")
        listed = json.loads(out)
        assert listed["missing"] == [] and len(listed["subscriptions"]) == len(expected)

        code, out = run(path, "webhooks", "remove", "--shop", shop_id, "--json")
        assert code == 0 and json.loads(out)["removed"] == len(expected)
        code, out = run(path, "webhooks", "list", "--shop", shop_id)
        assert code == 0 and f"missing: {', '.join(expected)}" in out


def test_webhooks_with_a_bad_token_exit_2_in_one_line(tmp_path, sandbox_shopify, sandbox_woocommerce):
    path = write_config(tmp_path, sandbox_shopify, sandbox_woocommerce, free_port())
    revoke(path, sandbox_shopify.access_token)
    code, out = run(path, "webhooks", "register", "--shop", "shopify-shop")
    assert code == 2 and out.startswith("error: shopify-shop: ") and len(out.splitlines()) == 1


def test_webhooks_list_shows_a_disabled_one_and_register_replaces_it(
    tmp_path, sandbox_shopify, sandbox_woocommerce, webhook_receiver
):
    public = webhook_receiver.url.removesuffix("/webhooks")
    path = write_config(tmp_path, sandbox_shopify, sandbox_woocommerce, free_port(), public_url=public)
    code, out = run(path, "webhooks", "register", "--shop", "woo-shop")
    assert "compliance webhooks" not in out
    assert code == 0, out
    (stale, *_) = sandbox_woocommerce.webhooks.values()
    stale["status"] = "disabled"  # what WooCommerce does at the 7th failed delivery in a row

    code, out = run(path, "webhooks", "list", "--shop", "woo-shop")
    assert code == 0 and any(stale["topic"] in line and " disabled " in line for line in out.splitlines()), out
    listed = json.loads(run(path, "webhooks", "list", "--shop", "woo-shop", "--json")[1])
    assert {row["topic"]: row["status"] for row in listed["subscriptions"]}[stale["topic"]] == "disabled"

    code, out = run(path, "webhooks", "register", "--shop", "woo-shop")
    assert code == 0 and "1 created (1 replacing disabled or paused ones)" in out, out
    assert stale["id"] not in sandbox_woocommerce.webhooks
    assert {hook["status"] for hook in sandbox_woocommerce.webhooks.values()} == {"active"}


def test_check_live_asks_for_read_all_orders_for_the_warranty_reminder_and_warns_of_redaction(
    tmp_path, sandbox_woocommerce, smtp_server
):
    from aftercare.sandbox import ShopifySandbox

    controller, _handler = smtp_server
    with ShopifySandbox(redact_customer_data=True) as shopify:
        shopify.create_order()
        path = write_config(tmp_path, shopify, sandbox_woocommerce, controller.port)
        code, out = run(path, "check", "--live", "--shop", "shopify-shop")
        assert code == 0, out  # a warning does not fail the check
        assert "warning: shopify-shop: platform: Shopify withholds protected customer data" in out

        warranty = '\n[plugins.warranty_reminder]\nenabled = true\n[plugins.warranty_reminder.groups.mugs]\n'
        path.write_text(path.read_text() + warranty + 'title_keywords = ["mug"]\nmonths = 24\n')
        code, out = run(path, "check", "--live", "--shop", "shopify-shop")
        assert code == 2, out
        assert "error: shopify-shop: platform: the access token lacks the read_all_orders scope" in out

        shopify.scopes = (*shopify.scopes, "read_all_orders")
        code, out = run(path, "check", "--live", "--shop", "shopify-shop")
        assert code == 0, out
