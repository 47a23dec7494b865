"""A merchant's and an agency's first steps with a Dev Dashboard app, end to end on 127.0.0.1.

`aftercare check` / `check --live` and `aftercare shopify install` from the
command line against the sandbox shop, and the install callback served by the
real receiver (uvicorn) of a running deployment.
"""

import json
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from click.testing import CliRunner

from aftercare.adapters.shopify.auth import query_hmac
from aftercare.cli import cli
from aftercare.install import callback_url, install_link
from aftercare.sandbox import ShopifySandbox
from aftercare.sandbox.testing import FAST_RETRIES
from aftercare.vault import new_secret_key

from .conftest import hours

SECRET_KEY = new_secret_key()


@pytest.fixture
def credentials_shop():
    with ShopifySandbox(auth="client_credentials", seed=4) as shop:
        yield shop


def write_config(tmp_path, shop, *, secret_key=SECRET_KEY, **changes):
    """A config with one shop on ``shop``; a change to None drops that key."""
    keys = {"webhook_secret": shop.secret, **shop.adapter_settings(), **changes}
    lines = [f'secret_key = "{secret_key}"'] if secret_key else []
    lines += ["", "[[shops]]", 'id = "acme"', 'platform = "shopify"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items() if value is not None]
    path = tmp_path / "aftercare.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(path, *args):
    result = CliRunner().invoke(cli, ["--config", str(path), *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_a_shop_with_only_client_credentials_passes_check_live_and_shares_its_token(tmp_path, credentials_shop):
    path = write_config(tmp_path, credentials_shop)
    code, out = run(path, "check", "--live")
    assert code == 0, out
    assert "acme: logs in with client credentials" in out and "live: 1 shop(s) reached" in out
    code, out = run(path, "check", "--live")  # another process, the same store
    assert code == 0, out
    assert [grant for grant, _ in credentials_shop.oauth.requests] == ["client_credentials"]
    [token] = credentials_shop.oauth.granted()
    assert token.encode() not in (tmp_path / "aftercare.db").read_bytes()


def test_check_warns_when_webhook_secret_is_not_the_client_secret(tmp_path, credentials_shop):
    code, out = run(write_config(tmp_path, credentials_shop, webhook_secret="some-other-secret"), "check")
    assert code == 0
    assert "acme: logs in with client credentials; warning: webhook_secret is not the client_secret" in out
    assert "some-other-secret" not in out and credentials_shop.secret not in out


def test_a_wrong_client_secret_is_one_line_naming_it_exit_2(tmp_path, credentials_shop):
    wrong = "wrong-client-secret-0123456789"
    path = write_config(tmp_path, credentials_shop, client_secret=wrong)
    code, out = run(path, "check", "--live")
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert code == 2
    assert len(errors) == 1, out
    assert errors[0].startswith("error: acme: platform: ")
    assert "client_secret" in errors[0] and "invalid_client" in errors[0]
    assert wrong not in out and credentials_shop.secret not in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"client_secret": None}, "error: shops[0]: client_secret is missing (client_id given)"),
        ({"client_id": None}, "error: shops[0]: client_id is missing (client_secret given)"),
        ({"access_token": "shpat_legacy"}, "error: shops[0]: give either access_token"),
        ({"client_id": None, "client_secret": None}, "error: shops[0]: no credentials: set client_id"),
    ],
)
def test_incomplete_credentials_name_the_missing_key(tmp_path, credentials_shop, changes, problem):
    path = write_config(tmp_path, credentials_shop, **changes)
    result = CliRunner().invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2
    assert result.output.startswith(problem), result.output
    assert credentials_shop.secret not in result.output


def test_a_shop_that_keeps_tokens_needs_a_secret_key(tmp_path, credentials_shop):
    path = write_config(tmp_path, credentials_shop, secret_key="")
    result = CliRunner().invoke(cli, ["--config", str(path), "check"])
    assert result.exit_code == 2
    assert result.output.startswith("error: secret_key: required by shops[0], which keeps the Admin API token")
    short = write_config(tmp_path, credentials_shop, secret_key="too-short")
    result = CliRunner().invoke(cli, ["--config", str(short), "check"])
    assert result.exit_code == 2 and "secret_key: must be at least 32 characters" in result.output
    assert "too-short" not in result.output


def test_shopify_install_prints_the_link_and_check_says_it_is_not_installed(tmp_path):
    with ShopifySandbox(auth="install", seed=4) as shop:
        path = write_config(tmp_path, shop)
        path.write_text(f'public_url = "https://aftercare.example"\n{path.read_text()}')
        code, out = run(path, "check")
        assert code == 0, out
        assert (
            "acme: logs in with authorization code (not installed yet: run aftercare shopify install --shop acme)"
        ) in out

        code, out = run(path, "shopify", "install", "--shop", "acme", "--valid-for", "30")
        assert code == 0, out
        link = next(word for word in out.split() if word.startswith(f"{shop.url}/admin/oauth/authorize?"))
        query = dict(parse_qsl(urlsplit(link).query))
        assert query["redirect_uri"] == "https://aftercare.example/oauth/shopify/acme/callback"
        assert "https://aftercare.example/oauth/shopify/acme/callback" in out and "within 30 minutes" in out
        assert shop.secret not in out

        code, out = run(path, "shopify", "install", "--shop", "nope")
        assert code == 2 and "no shop 'nope'" in out

    with ShopifySandbox(auth="client_credentials", seed=4) as shop:
        code, out = run(write_config(tmp_path, shop), "shopify", "install", "--shop", "acme")
    assert code == 2 and out.startswith("error: acme: shop acme does not install through a link: set install = true")


# -- the callback, served by the running receiver ---------------------------------------------


def test_the_install_callback_through_the_receiver(deploy):
    running = deploy(
        {"acme": "shopify"}, sandbox_options={"acme": {"auth": "install", "retry_delays": FAST_RETRIES}}, register=False
    )
    shop, app, http = running.sandboxes["acme"], running.app, running.http
    callback = callback_url(app, "acme")
    assert callback == f"{running.url}/oauth/shopify/acme/callback"

    def redirect_back():
        answer = http.get(install_link(app, "acme", timedelta(minutes=10)), allow_redirects=False, timeout=5)
        assert answer.status_code == 302
        return parse_qsl(urlsplit(answer.headers["Location"]).query)

    def open_callback(pairs):
        return http.get(f"{callback}?{urlencode(pairs)}", timeout=10)

    def signed(pairs, **changes):
        params = {**dict(pairs), **changes}
        params.pop("hmac")
        return [*params.items(), ("hmac", query_hmac(shop.secret, list(params.items())))]

    tampered = [(k, "x" + v if k == "code" else v) for k, v in redirect_back()]
    page = open_callback(tampered)
    assert page.status_code == 401 and "hmac does not match" in page.text

    page = open_callback(signed(redirect_back(), shop="someone-else.myshopify.com"))
    assert page.status_code == 403 and "not on someone-else.myshopify.com" in page.text

    page = open_callback(signed(redirect_back(), shop="<script>.example"))
    assert page.status_code == 400 and "&lt;script&gt;" in page.text and "<script>" not in page.text

    good = redirect_back()
    page = open_callback(good)
    assert page.status_code == 200, page.text
    assert "aftercare is installed on sandbox-shop.myshopify.com" in page.text
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    [token] = shop.oauth.granted()
    assert token not in page.text and shop.secret not in page.text

    page = open_callback(good)  # the same link twice: the state is single use
    assert page.status_code == 403 and "used already" in page.text
    assert http.get(f"{running.url}/oauth/shopify/nope/callback", timeout=5).status_code == 404
    assert http.get(f"{running.url}/oauth/woocommerce/acme/callback", timeout=5).status_code == 404

    # Installed: the deployment now reaches the shop with the kept token.
    running.register_webhooks("acme")
    assert shop.subscriptions
    record = app.store.shop_state("acme").get("admin_token")
    assert record["grant"] == "authorization_code" and token not in json.dumps(record)


def test_init_writes_a_fresh_secret_key_each_time(tmp_path):
    keys = []
    for name in ("one.toml", "two.toml"):
        result = CliRunner().invoke(cli, ["--config", str(tmp_path / name), "init"])
        assert result.exit_code == 0 and "fresh secret_key" in result.output
        [line] = [line for line in (tmp_path / name).read_text().splitlines() if line.startswith("secret_key = ")]
        keys.append(line)
        assert (tmp_path / name).read_text().index(line) < (tmp_path / name).read_text().index("[mail]")  # top level
    assert keys[0] != keys[1] and len(keys[0]) > len('secret_key = ""') + 32


@pytest.mark.timeout(120)
def test_a_deployment_on_client_credentials_keeps_acting_after_its_token_is_revoked(deploy):
    options = {"shop": {"auth": "client_credentials", "retry_delays": FAST_RETRIES}}
    running = deploy({"shop": "shopify"}, sandbox_options=options)  # registers its webhooks: the first token
    shop = running.sandboxes["shop"]
    first = shop.create_order(email="ana@example.com", locale="es")
    hours(running, 1)
    assert len(shop.coupons()) == 1  # the next-purchase coupon, created through the worker

    assert shop.oauth.revoke() == 1
    second = shop.create_order(email="boris@example.com", locale="bg")
    hours(running, 1)
    running.finish()

    actions = running.app.store.list_actions(limit=100)
    coupons = [a for a in actions if a.kind.value == "create_coupon" and a.plugin == "coupon"]  # win_back's wait
    assert {a.order_id for a in coupons} == {str(first.id), str(second.id)}
    assert all(a.state.value == "done" for a in coupons) and len(shop.coupons()) == 2
    assert not [a for a in actions if a.state.value == "failed"]
    assert shop.oauth.requests == [("client_credentials", 200), ("client_credentials", 200)]
