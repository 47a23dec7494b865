"""The adapter's three ways to log in, against the sandbox shop over real HTTP on 127.0.0.1.

Client credentials and installs get tokens from the sandbox's token endpoint;
the tokens are kept in a real store (SQLite), sealed with the deployment's key.
"""

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from pydantic import SecretStr

from aftercare.adapters.shopify import ShopifyAdapter, ShopifySettings
from aftercare.adapters.shopify.auth import TOKEN_KEY, query_hmac
from aftercare.clock import ManualClock
from aftercare.platform import CouponSpec, InstallRejected, MemoryShopState, PlatformError, ShopInfo
from aftercare.sandbox import ShopifySandbox
from aftercare.sandbox.shopify_oauth import redirect_hmac
from aftercare.store import Store
from aftercare.vault import Vault, new_secret_key

START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
REDIRECT = "https://aftercare.example/oauth/shopify/acme/callback"


@pytest.fixture
def clock():
    return ManualClock(START)


@pytest.fixture
def vault():
    return Vault(SecretStr(new_secret_key()))


@pytest.fixture
def store(tmp_path, clock):
    store = Store(f"sqlite:///{tmp_path / 'aftercare.db'}", clock)
    store.upgrade()
    yield store
    store.close()


def sandbox(clock, **options):
    shop = ShopifySandbox(clock=clock.now, seed=3, **options)
    shop.start()
    return shop


@pytest.fixture
def credentials_shop(clock):
    shop = sandbox(clock, auth="client_credentials")
    yield shop
    shop.stop()


@pytest.fixture
def install_shop(clock):
    shop = sandbox(clock, auth="install")
    yield shop
    shop.stop()


def adapter_for(shop, state, clock, vault, **overrides):
    settings = ShopifySettings(**{**shop.adapter_settings(), "max_attempts": 1, **overrides})
    info = ShopInfo(id="acme", webhook_secret=SecretStr(shop.secret), secrets=vault)
    return ShopifyAdapter(info, settings, state, clock.now, sleep=lambda _s: None)


def coupon(code):
    return CouponSpec(code=code, kind="percent", value=Decimal(10), currency="EUR")


def token_requests(shop):
    return [grant for grant, _status in shop.oauth.requests]


def test_client_credentials_token_is_asked_for_once_and_shared_through_the_store(
    tmp_path, credentials_shop, store, clock, vault
):
    first = adapter_for(credentials_shop, store.shop_state("acme"), clock, vault)
    assert first.check_live() == []
    assert first.create_coupon(coupon("WELCOME-1")).created
    assert token_requests(credentials_shop) == ["client_credentials"]

    # Another process: its own Store object on the same database, its own adapter.
    other_store = Store(f"sqlite:///{tmp_path / 'aftercare.db'}", clock)
    try:
        second = adapter_for(credentials_shop, other_store.shop_state("acme"), clock, vault)
        assert second.create_coupon(coupon("WELCOME-2")).created
    finally:
        other_store.close()
    assert token_requests(credentials_shop) == ["client_credentials"]  # shared, not asked again

    [token] = credentials_shop.oauth.granted()
    record = store.shop_state("acme").get(TOKEN_KEY)
    assert record["grant"] == "client_credentials" and record["expires_at"]
    assert token not in json.dumps(record)  # sealed, never in clear
    assert vault.decrypt(record["access_token"]) == token
    assert token.encode() not in (tmp_path / "aftercare.db").read_bytes()


def test_a_revoked_token_is_replaced_and_the_call_retried_once(credentials_shop, store, clock, vault, caplog):
    adapter = adapter_for(credentials_shop, store.shop_state("acme"), clock, vault)
    with caplog.at_level(logging.DEBUG):
        adapter.create_coupon(coupon("BEFORE"))
        [old] = credentials_shop.oauth.granted()

        revoked = requests.post(f"{credentials_shop.url}/_sandbox/tokens/revoke", timeout=5).json()
        assert revoked == {"revoked": 1}
        result = adapter.create_coupon(coupon("AFTER"))  # the 401 is answered by a new token, not an error

    assert result.created and result.code == "AFTER"
    assert token_requests(credentials_shop) == ["client_credentials", "client_credentials"]
    [new] = credentials_shop.oauth.granted()
    assert new != old and vault.decrypt(store.shop_state("acme").get(TOKEN_KEY)["access_token"]) == new
    assert "refused the Admin API token (HTTP 401)" in caplog.text
    for secret in (old, new, credentials_shop.secret):
        assert secret not in caplog.text


def test_a_token_is_renewed_a_while_before_it_expires(clock, store, vault):
    shop = sandbox(clock, auth="client_credentials", token_lifetime=600)
    try:
        adapter = adapter_for(shop, store.shop_state("acme"), clock, vault)
        adapter.create_coupon(coupon("ONE"))
        clock.advance(timedelta(minutes=8))
        adapter.create_coupon(coupon("TWO"))
        assert token_requests(shop) == ["client_credentials"]  # 2 minutes left: still good

        clock.advance(timedelta(seconds=90))  # inside the last tenth of its life
        [old] = shop.oauth.granted()
        adapter.create_coupon(coupon("THREE"))
        assert token_requests(shop) == ["client_credentials", "client_credentials"]
        assert old in shop.oauth.granted()  # renewed before expiring, not after a refusal
    finally:
        shop.stop()


def test_a_wrong_client_secret_is_named_in_one_line_without_the_secret(credentials_shop, clock, vault):
    adapter = adapter_for(credentials_shop, MemoryShopState(), clock, vault, client_secret="not-the-right-secret-42")
    [line] = adapter.check_live()
    assert "client_secret" in line and "invalid_client" in line and "HTTP 401" in line
    assert "not-the-right-secret-42" not in line and "\n" not in line
    with pytest.raises(PlatformError) as excinfo:
        adapter.tag_order("1", ["x"])
    assert not excinfo.value.transient


def test_a_wrong_client_id_is_named(credentials_shop, clock, vault):
    adapter = adapter_for(credentials_shop, MemoryShopState(), clock, vault, client_id="someone-elses-app")
    [line] = adapter.check_live()
    assert "check client_id" in line and "Could not find Shopify API application" in line


def test_a_store_of_another_organization_points_to_the_install(clock, vault):
    shop = sandbox(clock, auth="client_credentials", client_credentials_allowed=False)
    try:
        [line] = adapter_for(shop, MemoryShopState(), clock, vault).check_live()
    finally:
        shop.stop()
    assert "shop_not_permitted" in line and "install = true" in line and "aftercare shopify install --shop acme" in line


def test_a_token_sealed_with_another_key_is_replaced(credentials_shop, clock, vault):
    state = MemoryShopState()
    adapter_for(credentials_shop, state, clock, vault).create_coupon(coupon("A"))
    rekeyed = adapter_for(credentials_shop, state, clock, Vault(SecretStr(new_secret_key())))
    assert rekeyed.create_coupon(coupon("B")).created
    assert token_requests(credentials_shop) == ["client_credentials", "client_credentials"]


def test_the_static_token_still_works_and_says_so(clock, vault):
    shop = sandbox(clock)  # auth="static": the legacy custom app
    try:
        adapter = adapter_for(shop, MemoryShopState(), clock, None)
        assert adapter.check_live() == []
        assert adapter.authentication() == "static access token (legacy custom app)"
        shop.oauth.revoke(shop.access_token)
        with pytest.raises(PlatformError, match=r"rejected the access token \(HTTP 401\): check access_token"):
            adapter.tag_order("1", ["x"])
    finally:
        shop.stop()
    assert shop.oauth.requests == []


# -- installs: the authorization code grant ----------------------------------------------


def callback_query(adapter, shop):
    """Follow the install link as the merchant's browser would, up to the redirect back."""
    link = adapter.install_url(REDIRECT, timedelta(minutes=10))
    answer = requests.get(link, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qsl(urlsplit(location).query)


def resigned(pairs, secret, **changes):
    """The callback's query with ``changes``, signed again with ``secret``."""
    params = {**dict(pairs), **changes}
    params.pop("hmac")
    return [*params.items(), ("hmac", query_hmac(secret, list(params.items())))]


def test_the_install_link_asks_for_an_offline_token_with_the_needed_scopes(install_shop, clock, vault):
    adapter = adapter_for(install_shop, MemoryShopState(), clock, vault)
    link = adapter.install_url(REDIRECT, timedelta(minutes=10))
    parts = urlsplit(link)
    query = dict(parse_qsl(parts.query))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{install_shop.url}/admin/oauth/authorize"
    assert query["client_id"] == install_shop.client_id and query["redirect_uri"] == REDIRECT
    assert {"write_orders", "write_discounts", "read_fulfillments"} <= set(query["scope"].split(","))
    assert len(query["state"]) >= 24 and "grant_options[]" not in query  # offline access mode
    assert install_shop.secret not in link
    assert adapter.authentication() == (
        "authorization code (not installed yet: run aftercare shopify install --shop acme)"
    )


def test_install_callback_accepts_a_good_one_and_keeps_the_token_sealed(install_shop, store, clock, vault):
    state = store.shop_state("acme")
    adapter = adapter_for(install_shop, state, clock, vault)
    with pytest.raises(PlatformError, match="not installed yet: run `aftercare shopify install --shop acme`"):
        adapter.tag_order("1", ["x"])

    message = adapter.finish_install(callback_query(adapter, install_shop), REDIRECT)

    assert message == f"aftercare is installed on {install_shop.shop_domain}."
    [token] = install_shop.oauth.granted()
    record = state.get(TOKEN_KEY)
    assert token not in json.dumps(record) and vault.decrypt(record["access_token"]) == token
    assert record["refresh_token"] and record["expires_at"]  # expiring offline token, with its refresh token
    assert adapter.authentication().startswith("authorization code (installed; scopes: read_orders")
    assert adapter.create_coupon(coupon("INSTALLED")).created
    assert token_requests(install_shop) == ["authorization_code"]


def test_an_installed_token_is_refreshed_when_it_expires_and_after_a_revocation(install_shop, store, clock, vault):
    adapter = adapter_for(install_shop, store.shop_state("acme"), clock, vault)
    adapter.finish_install(callback_query(adapter, install_shop), REDIRECT)

    clock.advance(timedelta(minutes=58))  # an hour's token: renewed in its last six minutes
    adapter.create_coupon(coupon("LATER"))
    assert token_requests(install_shop) == ["authorization_code", "refresh_token"]

    install_shop.oauth.revoke()
    adapter.create_coupon(coupon("REVOKED"))
    assert token_requests(install_shop) == ["authorization_code", "refresh_token", "refresh_token"]


def test_install_callback_refuses_a_bad_hmac(install_shop, clock, vault):
    adapter = adapter_for(install_shop, MemoryShopState(), clock, vault)
    pairs = [(k, v + "0" if k == "code" else v) for k, v in callback_query(adapter, install_shop)]
    with pytest.raises(InstallRejected) as excinfo:
        adapter.finish_install(pairs, REDIRECT)
    assert excinfo.value.status == 401 and "hmac does not match" in excinfo.value.reason
    assert install_shop.oauth.requests == []  # nothing was exchanged


def test_install_callback_refuses_a_reused_an_unknown_and_an_expired_state(install_shop, clock, vault):
    adapter = adapter_for(install_shop, MemoryShopState(), clock, vault)
    pairs = callback_query(adapter, install_shop)
    adapter.finish_install(pairs, REDIRECT)
    for query in (pairs, resigned(pairs, install_shop.secret, state="made-up-state")):
        with pytest.raises(InstallRejected) as excinfo:
            adapter.finish_install(query, REDIRECT)
        assert excinfo.value.status == 403 and "unknown, expired or used already" in excinfo.value.reason

    late = callback_query(adapter, install_shop)
    clock.advance(timedelta(minutes=11))
    with pytest.raises(InstallRejected) as excinfo:
        adapter.finish_install(late, REDIRECT)
    assert excinfo.value.status == 403


@pytest.mark.parametrize(
    ("shop_param", "status", "words"),
    [
        ("other-shop.myshopify.com", 403, "this link installs on sandbox-shop.myshopify.com, not on other-shop"),
        ("evil.example.com", 400, "is not a myshopify.com domain"),
        ("Sandbox-Shop.myshopify.com/../x", 400, "is not a myshopify.com domain"),
    ],
)
def test_install_callback_refuses_a_foreign_or_malformed_shop(install_shop, clock, vault, shop_param, status, words):
    adapter = adapter_for(install_shop, MemoryShopState(), clock, vault)
    pairs = resigned(callback_query(adapter, install_shop), install_shop.secret, shop=shop_param)
    with pytest.raises(InstallRejected) as excinfo:
        adapter.finish_install(pairs, REDIRECT)
    assert excinfo.value.status == status and words in excinfo.value.reason


def test_install_callback_with_a_code_shopify_refuses(install_shop, clock, vault):
    adapter = adapter_for(install_shop, MemoryShopState(), clock, vault)
    pairs = resigned(callback_query(adapter, install_shop), install_shop.secret, code="f" * 32)
    with pytest.raises(InstallRejected) as excinfo:
        adapter.finish_install(pairs, REDIRECT)
    assert excinfo.value.status == 502
    assert "authorization code was not found or was already used" in excinfo.value.reason
    assert install_shop.secret not in excinfo.value.reason


def test_the_callback_signature_matches_shopifys_published_example():
    # From Shopify's OAuth docs: secret "hush" and this query give this hmac.
    query = (
        "code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"
        "&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173"
    )
    pairs = parse_qsl(query)
    assert query_hmac("hush", pairs) == dict(pairs)["hmac"]
    assert redirect_hmac("hush", pairs) == dict(pairs)["hmac"]  # the sandbox signs the same way
    assert query_hmac("hush", [("a", "1&b=2")]) != query_hmac("hush", [("a", "1"), ("b", "2")])
    assert urlencode(pairs)  # the pairs survive a round trip
