"""Both adapters' mappers fed mutated real payloads (../shared/fixtures, WooCommerce 11
recordings included, and the packaged samples): odd numbers and strings, wrong types, None,
deep nesting and dropped keys at random places. Only PayloadError may escape a mapper; an
order it maps survives the JSON round trip the queue and the store make, and its "shipped"
mail goes the real way (dispatch, tracking_notice's templates, the outbox) without failing."""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aftercare.actions import ActionKind, ActionState
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.templates import (
    default_context,
    format_locale_for,
    format_money,
    locale_chain,
    resolve,
    template_roots,
)
from aftercare.models import Event, Money, Shipment
from aftercare.platform import PayloadError, WebhookDelivery
from aftercare.plugins import tracking_notice
from aftercare.testing import make_event
from tests.adapters.signed_shops import adapter_for, map_delivery, payloads

PLATFORMS = ("shopify", "woocommerce")
REAL = {platform: payloads(platform) for platform in PLATFORMS}

odd_numbers = st.sampled_from(
    ["1e999999999", "-1e999999999", "sNaN", "NaN", "-Infinity", "1E+12", "999999999999.999999", "0.0000001", "-0",
     "0x10", "1_000", "١٢٣", " 12 ", 10**30, -(2**63), 2**64, 10**400, 1e308, -1e-308, float("nan"), float("inf"),
     0, -1, 1.5]
)  # fmt: skip
odd_dates = st.sampled_from(
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59", "0001-01-01T00:00:00",
     "2026-02-30T10:00:00Z", "1969-12-31T23:59:59Z", "2100-01-01T00:00:00", "2026-07-01", "2026-07-01T10:00:00",
     "20260701T100000Z", "2026-07-01T10:00:00+25:00", "yesterday", 1796172629, 10**20, -(10**20)]
)  # fmt: skip
odd_links = st.sampled_from(
    ["javascript:alert(document.domain)", "JAVASCRIPT:alert(1)", "data:text/html,<b>x</b>", "/relative", "//host/x",
     "https://[::1", "https://", "http://exa mple.com", "https://example.com/\r\nx", "mailto:a@b.c", "ftp://x.y/z"]
)  # fmt: skip
odd_strings = st.sampled_from(
    ["", " ", "null", "gid://shopify/Order/x", "gid://shopify/Order/99999999999999999999", "9" * 80,
     "a\r\nBcc: eve@example.com", "<script>alert(1)</script>{{ 7*7 }}", "\x00", "\ud800", "é" * 3000, "EUR", "eur",
     "XXX", "subscribed", "completed", "delivered", "refunded", "cancelled", "fulfilled", "success", "refund"]
)  # fmt: skip
wrong_types = st.one_of(
    st.none(), st.booleans(), st.just({}), st.just([]), st.just([None]), st.just({"": None}),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
)  # fmt: skip
#: Nested lists in place of a value; "DEEP" is written out as 1,100 levels (deeper than any JSON parser here goes).
nested = st.one_of(st.integers(2, 60).map(lambda depth: json.loads("[" * depth + "]" * depth)), st.just("DEEP"))
replacements = st.one_of(odd_numbers, odd_dates, odd_links, odd_strings, wrong_types, nested)

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d")


def odd_value_for(original: Any) -> st.SearchStrategy:
    """Mostly odd values of the original's own kind (a date for a date...): that is what a
    mapper parses, and where a value it cannot hold would slip through."""
    if isinstance(original, str) and _DATE.match(original):
        kin = odd_dates
    elif isinstance(original, str) and original.startswith(("http://", "https://")):
        kin = odd_links
    elif isinstance(original, int | float) or (isinstance(original, str) and _NUMBER.match(original)):
        kin = odd_numbers
    else:
        kin = odd_strings
    return st.one_of(kin, kin, replacements)


DROP = object()
SERIALS = itertools.count()  # event keys unique across examples: a repeated key would be deduplicated


def places(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path into ``value`` (keys and indexes), containers and leaves alike."""
    found = [path]
    if len(path) > 12:  # inside a nesting a mutation made: nothing there is read
        return found
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):  # the first items stand for the rest
            found += places(item, (*path, index))
    return found


class _Recording(dict):
    """A payload object that notes every key a mapper looks up (found or not)."""

    def __init__(self, data: dict, path: tuple, seen: set) -> None:
        super().__init__({key: _recording(value, (*path, key), seen) for key, value in data.items()})
        self._path, self._seen = path, seen

    def get(self, key: Any, default: Any = None) -> Any:
        self._seen.add((*self._path, key))
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self._seen.add((*self._path, key))
        return super().__getitem__(key)


def _recording(value: Any, path: tuple, seen: set) -> Any:
    if isinstance(value, dict):
        return _Recording(value, path, seen)
    if isinstance(value, list):
        return [_recording(item, (*path, index), seen) for index, item in enumerate(value)]
    return value


def read_by_mapper(platform: str, topic: str, body: Any) -> list[tuple]:
    """The paths the adapter's mapping looks up in ``body``: the values worth mutating most
    (a payload has hundreds of fields, a mapper reads a few dozen)."""
    seen: set = set()
    delivery = WebhookDelivery(shop_id="test", topic=topic, delivery_id="d-0", body=b"")
    delivery.__dict__["payload"] = _recording(body, (), seen)  # what cached_property would hold
    adapter_for(platform, shop_id="test").parse_webhook(delivery)
    return sorted(seen, key=repr)


READ = {platform: [read_by_mapper(platform, *real) for real in REAL[platform]] for platform in PLATFORMS}


def settable(body: Any, path: tuple) -> bool:
    """Whether ``mutate`` can put a value at ``path`` (its parent still exists)."""
    parent = body
    for step in path[:-1]:
        if not _holds(parent, step):
            return False
        parent = parent[step]
    last = path[-1] if path else None
    return (
        not path
        or isinstance(parent, dict)
        or (isinstance(parent, list) and isinstance(last, int) and last < len(parent))
    )


def _holds(container: Any, step: Any) -> bool:
    if isinstance(container, dict):
        return step in container
    return isinstance(container, list) and isinstance(step, int) and step < len(container)


def _at(body: Any, path: tuple) -> Any:
    """The value at ``path``, None where the key is absent (a mapper read it and found none)."""
    for step in path:
        if not _holds(body, step):
            return None
        body = body[step]
    return body


def mutate(body: Any, path: tuple, new: Any) -> Any:
    if not path:
        return body if new is DROP else new
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    if new is DROP:
        if path[-1] in parent if isinstance(parent, dict) else True:
            del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return body


def encode(body: Any) -> bytes:
    text = json.dumps(body)  # NaN and Infinity as the stdlib writes them: the receiver's fallback reads them
    return text.replace('"DEEP"', "[" * 1100 + "]" * 1100).encode("utf-8", "surrogatepass")


@pytest.fixture
def mail_app(aftercare_app):
    return aftercare_app(
        tracking_notice, settings={"tracking_notice": {"enabled": True}}, shop={"sender": "shop@example.com"}
    )


def mails_without_failure(app, event: Event) -> None:
    """The order's "shipped" mail through dispatch and the outbox: it must not fail."""
    serial = next(SERIALS)
    parcel = event.order.shipments[0] if event.order.shipments else Shipment(f"fuzz-{serial}")
    shipped = replace(make_event("shipped", event.order, key=f"fuzz:{serial}"), shipment=parcel)
    app.adapter("test").put_order(event.order)  # what the worker re-reads for a partial order
    Dispatcher(app).dispatch(shipped)
    for action in execute_due(app):
        # A customer address no mail can go to fails the action with that reason: the mail
        # code's clear answer to a bad address, not a crash. Anything else is.
        if action.state is ActionState.FAILED:
            assert action.reason.startswith("unusable address"), (action.kind, action.reason)
        if action.kind is ActionKind.SEND_EMAIL and action.state is ActionState.DROPPED:
            assert "email" in action.reason.lower() or "address" in action.reason.lower(), action.reason


@settings(
    max_examples=120, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), platform=st.sampled_from(PLATFORMS))
def test_mutated_real_payloads_map_or_raise_payload_error(mail_app, data, platform):
    index = data.draw(st.integers(0, len(REAL[platform]) - 1), label="payload")
    topic, original = REAL[platform][index]
    body = json.loads(json.dumps(original))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        read = [path for path in READ[platform][index] if settable(body, path)] or [()]
        where = data.draw(st.one_of(*[st.sampled_from(read)] * 3, st.sampled_from(places(body))), label="path")
        new = data.draw(st.just(DROP) | odd_value_for(_at(body, where)), label="value")
        body = mutate(body, where, new if new is DROP else copy.deepcopy(new))  # st.just gives one object
    raw = encode(body)
    try:
        events = map_delivery(adapter_for(platform, shop_id="test"), topic, raw)
    except PayloadError as error:
        assert error.topic == topic and error.field, error
        return
    for event in events:
        assert Event.from_json(event.to_json()) == event
        mails_without_failure(mail_app, event)


# -- every field a mapper reads, each odd value of its kind -------------------------------------

SWEEP = {
    "date": ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", 10**20],
    "number": ["1e999999999", "sNaN", "Infinity", float("nan"), 10**400, "0.0000001", -1],
    "link": ["javascript:alert(document.domain)", "data:text/html,x", "/relative"],
    "text": ["\ud800", "a\r\nBcc: eve@example.com", "9" * 80, "x" * 5000, ""],
    "any": [None, {}, [], True, DROP],
}


def kind_of(value: Any) -> str:
    if isinstance(value, str) and _DATE.match(value):
        return "date"
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return "link"
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        return "number"
    return "text"


def mail_variables_format(app, order) -> None:
    """What rendering a mail does with an order's values, without compiling templates per order
    (the random test above renders for real): the template files the order's locale picks, the
    variables of tracking_notice's "shipped" mail, every amount through the ``money`` filter and
    every time in the zones furthest from UTC."""
    parcel = order.shipments[0] if order.shipments else Shipment("sweep")
    event = replace(make_event("shipped", order, key="sweep"), shipment=parcel)
    variables = {
        **default_context(order, app.shop("test").profile),
        **tracking_notice._parcel(event, parcel, tracking_notice.Settings()),
    }
    shop = app.shop("test").profile
    resolve(template_roots(app, "test", "tracking_notice"), "shipped", locale_chain(order.locale, shop.locale))
    pending = [variables]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
        elif isinstance(value, Money):
            format_money(value, format_locale_for(order.locale, "en"))
        elif isinstance(value, datetime):
            for zone in FURTHEST_ZONES:
                value.astimezone(zone).strftime("%x")


FURTHEST_ZONES = (ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12"))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_field_a_mapper_reads_takes_every_odd_value_of_its_kind(mail_app, platform):
    escaped, swept = [], set()
    for index, (topic, original) in enumerate(REAL[platform]):
        for path in READ[platform][index]:
            if (topic, path) in swept:  # the same field of another recording of the topic: once is enough
                continue
            swept.add((topic, path))
            for new in SWEEP[kind_of(_at(original, path))] + SWEEP["any"]:
                body = mutate(json.loads(json.dumps(original)), path, new)
                try:
                    events = map_delivery(adapter_for(platform, shop_id="test"), topic, encode(body))
                    for event in events:
                        assert Event.from_json(event.to_json()) == event
                        mail_variables_format(mail_app, event.order)
                except PayloadError as error:
                    assert error.topic == topic and error.field, error
                except Exception as exc:  # noqa: BLE001 - collected, to report every escape at once
                    escaped.append((index, path, "DROP" if new is DROP else repr(new)[:30], repr(exc)[:120]))
    assert escaped == [], "\n".join(map(str, escaped[:40]))
