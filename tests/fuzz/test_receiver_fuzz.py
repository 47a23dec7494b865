"""Random headers and bodies against the receiver's routes: never a 5xx; for the in-memory
`test` shop and for a Shopify and a WooCommerce shop (signed and unsigned deliveries)."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from aftercare.asgi import create_asgi_app
from aftercare.queue import Enqueuer
from tests.adapters.signed_shops import platform_app, signed_headers
from tests.fuzz.test_mapper_fuzz import READ, REAL, SWEEP, _at, encode, kind_of, mutate, settable

header_names = st.sampled_from(
    ["content-length", "content-type", "x-aftercare-hmac-sha256", "x-aftercare-topic", "x-shopify-topic",
     "x-wc-webhook-topic", "x-wc-webhook-signature", "x-shopify-hmac-sha256", "x-random"]
)  # fmt: skip
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    st.integers(min_value=-5, max_value=10**12).map(str),
)
bodies = st.one_of(
    st.binary(max_size=2048),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20), lambda c: st.lists(c, max_size=4)
                 | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20).map(lambda v: repr(v).encode()),
    st.integers(1, 300).map(lambda depth: b"[" * depth + b"]" * depth),
)  # fmt: skip
paths = st.sampled_from(["/webhooks/test", "/webhooks/nope", "/unsubscribe/abc", "/healthz"])


@pytest.fixture
def client(aftercare_app):
    app = aftercare_app()
    receiver = create_asgi_app(app, Enqueuer.for_app(app))
    with TestClient(receiver, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=paths, headers=st.lists(st.tuples(header_names, header_values), max_size=6), body=bodies)
def test_random_requests_never_get_a_5xx(client, path, headers, body):
    method = "GET" if path == "/healthz" else "POST"
    answer = client.request(method, path, content=body, headers=headers)
    assert answer.status_code < 500, (path, headers, body[:200], answer.status_code, answer.text[:300])


# -- a Shopify and a WooCommerce shop, signed and unsigned -----------------------------------------

platform_header_names = st.sampled_from(
    ["X-Shopify-Topic", "X-Shopify-Webhook-Id", "X-Shopify-Triggered-At", "X-Shopify-Shop-Domain",
     "X-Shopify-API-Version", "X-WC-Webhook-Topic", "X-WC-Webhook-Source", "X-WC-Webhook-Delivery-ID",
     "X-WC-Webhook-Resource", "X-WC-Webhook-Event", "X-WC-Webhook-ID", "content-type"]
)  # fmt: skip
platform_header_values = st.one_of(
    header_values,
    st.sampled_from(
        ["orders/paid", "fulfillments/create", "refunds/create", "returns/request", "order.updated", "order.created",
         "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "https://shop.example/", "x" * 300, ""]
    ),
)  # fmt: skip


def real_bodies(platform):
    """A real payload with one field its mapper reads set to an odd value of its kind, as JSON."""

    def build(choice):
        index, path_pick, value_pick = choice
        topic, original = REAL[platform][index]
        read = [path for path in READ[platform][index] if settable(original, path)]
        path = read[path_pick % len(read)]
        values = SWEEP[kind_of(_at(original, path))] + SWEEP["any"]
        body = mutate(json.loads(json.dumps(original)), path, values[value_pick % len(values)])
        return topic, encode(body)

    return st.tuples(st.integers(0, len(REAL[platform]) - 1), st.integers(0, 10**6), st.integers(0, 100)).map(build)


deep_bodies = st.integers(1025, 5000).map(lambda depth: (None, b'{"id":' * depth + b"1" + b"}" * depth))


@pytest.fixture(params=["shopify", "woocommerce"])
def platform_client(request, aftercare_app):
    app = platform_app(aftercare_app, request.param)
    receiver = create_asgi_app(app, Enqueuer.for_app(app))
    with TestClient(receiver, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield request.param, app.config.shops[0].id, c


@settings(
    max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    signed=st.booleans(),
    extra=st.lists(st.tuples(platform_header_names, platform_header_values), max_size=4),
)
def test_random_deliveries_to_a_platform_shop_never_get_a_5xx(platform_client, data, signed, extra):
    platform, shop, client = platform_client
    topic, body = data.draw(
        st.one_of(real_bodies(platform), real_bodies(platform), deep_bodies, bodies.map(lambda raw: (None, raw))),
        label="body",
    )
    headers = signed_headers(platform, body, topic) if signed else {}
    for name, value in extra:  # replace what the platform sent, or add to it
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()} | {name: value}
    answer = client.post(f"/webhooks/{shop}", content=body, headers=headers)
    assert answer.status_code < 500, (platform, signed, headers, body[:200], answer.status_code, answer.text[:300])
    if not signed and not body.strip().startswith(b"webhook_id="):  # WooCommerce's creation ping is unsigned
        assert answer.status_code in (400, 401, 403, 413), answer.status_code  # nothing unsigned is taken
