"""The REST client over mocked HTTP: retries, backoff, Retry-After, pagination,
one-line errors. Only `responses` answers; no request leaves the process."""

from __future__ import annotations

import pytest
import requests
import responses
from responses import matchers

from aftercare.platform import PlatformError

API = "https://shop.example/wp-json/wc/v3"


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


def test_basic_auth_over_https_by_default(adapter, http):
    http.get(f"{API}/orders/727", json={"id": 727})
    adapter.client.get("orders/727")
    request = http.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    assert "consumer_key" not in request.url


def test_query_string_auth_when_configured(make_adapter, http):
    adapter = make_adapter(query_string_auth=True)
    http.get(
        f"{API}/orders/727",
        json={"id": 727},
        match=[matchers.query_param_matcher({"consumer_key": "ck_test", "consumer_secret": "cs_test"})],
    )
    adapter.client.get("orders/727")
    assert "Authorization" not in http.calls[0].request.headers


def test_5xx_is_retried_with_exponential_backoff(adapter, http, sleeps):
    http.get(f"{API}/orders/727", status=502, body="Bad Gateway")
    http.get(f"{API}/orders/727", status=503, json={"code": "x", "message": "busy"})
    http.get(f"{API}/orders/727", json={"id": 727})
    assert adapter.client.get("orders/727") == {"id": 727}
    # backoff 1 s, 2 s; jitter fixed at 0.5 gives three quarters of each
    assert sleeps == [0.75, 1.5]


def test_429_honours_retry_after(adapter, http, sleeps):
    http.get(f"{API}/orders", status=429, headers={"Retry-After": "7"})
    http.get(f"{API}/orders", json=[])
    assert adapter.client.get("orders") == []
    assert sleeps == [7.0]


def test_retry_after_beyond_the_limit_fails_transient_at_once(adapter, http, sleeps):
    http.get(
        f"{API}/orders",
        status=429,
        headers={"Retry-After": "600"},
        json={"code": "too_many_requests", "message": "Slow down."},
    )
    with pytest.raises(PlatformError) as caught:
        adapter.client.get("orders")
    assert caught.value.transient and caught.value.retry_after == 600
    assert caught.value.message == "woocommerce 429 too_many_requests: Slow down."
    assert sleeps == []


def test_retries_run_out_as_transient_error(make_adapter, http, sleeps):
    adapter = make_adapter(max_retries=2)
    for _ in range(3):
        http.get(
            f"{API}/orders",
            status=500,
            json={
                "code": "internal_server_error",
                "message": "<p>There has been a critical error.</p>",
            },
        )
    with pytest.raises(PlatformError) as caught:
        adapter.client.get("orders")
    assert caught.value.transient
    assert caught.value.message == "woocommerce 500 internal_server_error: There has been a critical error."
    assert len(sleeps) == 2


def test_network_errors_are_retried(adapter, http, sleeps):
    http.get(f"{API}/orders", body=requests.ConnectionError("connection reset"))
    http.get(f"{API}/orders", body=requests.Timeout("read timed out"))
    http.get(f"{API}/orders", json=[])
    assert adapter.client.get("orders") == []
    assert len(sleeps) == 2


def test_tls_error_is_permanent_and_not_retried(adapter, http, sleeps):
    http.get(f"{API}/orders", body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(PlatformError, match="TLS error") as caught:
        adapter.client.get("orders")
    assert not caught.value.transient and sleeps == []


def test_401_is_one_clear_line_and_not_retried(adapter, http, sleeps):
    http.get(
        f"{API}/orders",
        status=401,
        json={
            "code": "woocommerce_rest_cannot_view",
            "message": "Sorry, you cannot list resources.",
            "data": {"status": 401},
        },
    )
    with pytest.raises(PlatformError) as caught:
        adapter.client.get("orders")
    assert str(caught.value) == ("woocommerce 401 woocommerce_rest_cannot_view: Sorry, you cannot list resources.")
    assert not caught.value.transient and sleeps == []


def test_html_answer_points_at_the_url(adapter, http):
    http.get(f"{API}/orders", body="<html>Welcome to WordPress</html>", content_type="text/html")
    with pytest.raises(PlatformError, match="did not answer JSON"):
        adapter.client.get("orders")


def test_pagination_follows_total_pages(adapter, http):
    for page in (1, 2, 3):
        http.get(
            f"{API}/webhooks",
            json=[{"id": page}],
            headers={"X-WP-Total": "3", "X-WP-TotalPages": "3"},
            match=[matchers.query_param_matcher({"per_page": "1", "page": str(page)})],
        )
    pages = list(adapter.client.pages("webhooks", {"per_page": 1}))
    assert pages == [[{"id": 1}], [{"id": 2}], [{"id": 3}]]


def test_redirect_loop_is_a_permanent_error(adapter, http, sleeps):
    http.get(f"{API}/orders", body=requests.TooManyRedirects("Exceeded 30 redirects."))
    with pytest.raises(PlatformError, match="request failed on GET orders") as caught:
        adapter.client.get("orders")
    assert not caught.value.transient and sleeps == []
