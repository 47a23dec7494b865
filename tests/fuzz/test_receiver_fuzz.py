"""Random headers and bodies against the receiver's routes: never a 5xx."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from aftercare.receiver import create_receiver
from aftercare.worker import Worker

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
    with TestClient(create_receiver(app, Worker(app)), base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        yield c


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=paths, headers=st.lists(st.tuples(header_names, header_values), max_size=6), body=bodies)
def test_random_requests_never_get_a_5xx(client, path, headers, body):
    method = "GET" if path == "/healthz" else "POST"
    answer = client.request(method, path, content=body, headers=headers)
    assert answer.status_code < 500, (path, headers, body[:200], answer.status_code, answer.text[:300])
