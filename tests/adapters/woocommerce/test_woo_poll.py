"""Polling over mocked HTTP: the query, re-querying from the newest change
rather than trusting page numbers, and sharing the state diff with webhooks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
import responses
from responses import matchers

from aftercare.models import EventKind

API = "https://shop.example/wp-json/wc/v3"
T0 = datetime(2026, 7, 11, 8, 0, tzinfo=UTC)


@pytest.fixture
def http():
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def order_at(wc_fixtures):
    base = wc_fixtures("order_retrieve.json")

    def make(order_id: int, modified: datetime, **changes) -> dict:
        order = copy.deepcopy(base) | {"id": order_id, "number": str(order_id)} | changes
        order["date_modified_gmt"] = modified.strftime("%Y-%m-%dT%H:%M:%S")
        return order

    return make


def wc_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def query(modified_after: datetime, page: int = 1) -> list:
    return [
        matchers.query_param_matcher(
            {
                "modified_after": wc_time(modified_after),
                "dates_are_gmt": "true",
                "orderby": "modified",
                "order": "asc",
                "per_page": "100",
                "page": str(page),
            }
        )
    ]


def test_first_poll_reads_the_last_day_and_yields_events(adapter, http, order_at, clock):
    start = clock.now() - timedelta(hours=24) - timedelta(seconds=120)
    an_hour_ago = clock.now() - timedelta(hours=1)
    http.get(
        f"{API}/orders",
        match=query(start),
        json=[order_at(1, an_hour_ago), order_at(2, an_hour_ago + timedelta(minutes=5))],
        headers={"X-WP-Total": "2", "X-WP-TotalPages": "1"},
    )
    (batch,) = adapter.poll(None)
    assert [(e.kind, e.dedupe_key, e.source) for e in batch.events] == [
        (EventKind.ORDER_PAID, "order:1:paid", "poll"),
        (EventKind.ORDER_PAID, "order:2:paid", "poll"),
    ]
    assert batch.cursor == "2026-07-12T08:05:00+00:00"
    assert (batch.orders_seen, batch.orders_total) == (2, 2)


def test_poll_resumes_from_cursor_with_overlap_and_finds_nothing_twice(adapter, http, order_at):
    http.get(f"{API}/orders", match=query(T0 - timedelta(seconds=120)), json=[order_at(1, T0)])
    (first,) = adapter.poll(None, since=T0)
    http.get(f"{API}/orders", match=query(T0 - timedelta(seconds=120)), json=[order_at(1, T0)])
    (again,) = adapter.poll(first.cursor)
    assert len(first.events) == 1 and again.events == []
    assert again.cursor == first.cursor


def test_pages_are_re_queried_from_the_newest_change(adapter, http, order_at):
    """Page 2 is never asked for by number: after page 1 the query restarts at
    the newest modification seen, so an order changed meanwhile (order 1, now
    shipped) is read again at its new place and nothing is skipped."""
    page1 = [order_at(i, T0 + timedelta(minutes=i)) for i in range(1, 101)]
    high = T0 + timedelta(minutes=100)
    http.get(
        f"{API}/orders",
        match=query(T0 - timedelta(seconds=120)),
        json=page1,
        headers={"X-WP-Total": "102", "X-WP-TotalPages": "2"},
    )
    changed = order_at(1, high + timedelta(minutes=1), status="completed")
    newest = order_at(101, high + timedelta(minutes=2))
    http.get(
        f"{API}/orders",
        match=query(high - timedelta(seconds=120)),
        json=[page1[-2], page1[-1], changed, newest],
        headers={"X-WP-Total": "4", "X-WP-TotalPages": "1"},
    )

    first, second = adapter.poll(None, since=T0)
    assert len(first.events) == 100
    assert [(e.kind, e.order.platform_id) for e in second.events] == [
        (EventKind.SHIPPED, "1"),
        (EventKind.ORDER_PAID, "101"),
    ]
    assert second.cursor == (high + timedelta(minutes=2)).isoformat()


def test_a_full_page_inside_the_overlap_moves_on_by_page(adapter, http, order_at):
    """A bulk update gives more than a page of orders the same second: re-querying
    from there would return the same page forever, so the page number advances."""
    same_second = [order_at(i, T0) for i in range(1, 101)]
    start = T0 - timedelta(seconds=120)
    http.get(f"{API}/orders", match=query(start), json=same_second, headers={"X-WP-TotalPages": "2"})
    http.get(
        f"{API}/orders",
        match=query(start, page=2),
        json=[order_at(101, T0)],
        headers={"X-WP-TotalPages": "2"},
    )
    first, second = adapter.poll(None, since=T0)
    assert len(first.events) == 100 and len(second.events) == 1


def test_webhook_then_poll_of_the_same_change_gives_nothing_new(adapter, http, deliver, lifecycle):
    assert [e.kind for e in deliver(lifecycle["tracked"])] == [
        EventKind.ORDER_PAID,
        EventKind.SHIPPED,
    ]
    before = adapter.state.get("order:727")
    http.get(f"{API}/orders", json=[lifecycle["tracked"]])
    (batch,) = adapter.poll(None, since=datetime(2017, 3, 22, tzinfo=UTC))
    assert batch.events == []
    assert adapter.state.get("order:727") == before


def test_poll_then_webhook_gives_nothing_new(adapter, http, deliver, lifecycle, wc_fixtures):
    http.get(f"{API}/orders", json=[lifecycle["refunded"]])
    http.get(f"{API}/orders/727/refunds", json=[wc_fixtures("order_refund_retrieve.json")])
    (batch,) = adapter.poll(None, since=datetime(2017, 3, 22, tzinfo=UTC))
    assert [e.kind for e in batch.events] == [
        EventKind.ORDER_PAID,
        EventKind.SHIPPED,
        EventKind.REFUNDED,
    ]
    assert deliver(lifecycle["refunded"]) == []


def test_poll_reads_the_refund_lines_the_order_summary_lacks(adapter, http, lifecycle, wc_fixtures):
    """The order's refunds[] has neither lines nor date; the refunds endpoint has both."""
    refund = wc_fixtures("order_refund_retrieve.json")
    http.get(f"{API}/orders", json=[lifecycle["refunded"]])
    http.get(f"{API}/orders/727/refunds", json=[refund])
    (batch,) = adapter.poll(None, since=datetime(2017, 3, 22, tzinfo=UTC))
    refunded = batch.events[-1]
    assert refunded.kind is EventKind.REFUNDED
    assert refunded.refund == refunded.order.refunds[0]
    assert refunded.refund.lines_known
    assert refunded.refund.line_item_ids == tuple(str(line["meta_data"][0]["value"]) for line in refund["line_items"])
    assert refunded.refund.created_at == datetime.fromisoformat(refund["date_created_gmt"]).replace(tzinfo=UTC)
    assert not refunded.order.partial
    assert [e.order for e in batch.events] == [refunded.order] * 3


def test_poll_reads_nothing_more_for_an_order_without_news(adapter, http, lifecycle, wc_fixtures):
    http.get(f"{API}/orders", json=[lifecycle["refunded"]])
    http.get(f"{API}/orders/727/refunds", json=[wc_fixtures("order_refund_retrieve.json")])
    adapter.poll(None, since=datetime(2017, 3, 22, tzinfo=UTC)).__next__()
    (batch,) = adapter.poll(None, since=datetime(2017, 3, 22, tzinfo=UTC))
    assert batch.events == []
    assert [call.request.path_url.split("?")[0] for call in http.calls][-1] == "/wp-json/wc/v3/orders"


def test_an_unreadable_order_does_not_stop_the_poll(adapter, http, order_at):
    broken = order_at(1, T0)
    del broken["currency"]
    http.get(f"{API}/orders", json=[broken, order_at(2, T0 + timedelta(seconds=1))])
    (batch,) = adapter.poll(None, since=T0)
    assert [e.order.platform_id for e in batch.events] == ["2"]
    assert batch.cursor == (T0 + timedelta(seconds=1)).isoformat()


def test_an_empty_poll_keeps_the_cursor(adapter, http):
    http.get(f"{API}/orders", json=[], headers={"X-WP-TotalPages": "0"})
    (batch,) = adapter.poll("2026-07-11T08:00:00+00:00")
    assert (batch.events, batch.cursor) == ([], "2026-07-11T08:00:00+00:00")
