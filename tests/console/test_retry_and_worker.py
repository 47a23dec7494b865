"""Retrying a dropped action asks first and says why it was dropped; without a running worker the
console is read-only and says so (issue #20)."""

from dataclasses import replace
from datetime import timedelta

from aftercare.actions import ActionState
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.models import ReturnRequest
from aftercare.testing import START, make_event, make_order

from .conftest import csrf_of, later, login


def returned_after_asking(app):
    """Notes' delayed note (with the default fire-time checks) dropped because a return was requested."""
    order = make_order("7", shop_id="north")
    app.adapter("north").put_order(order)
    Dispatcher(app).dispatch(make_event("order_paid", order, key="paid-7"))
    returning = replace(order, returns=(ReturnRequest("ret-1", START, reason="unwanted"),))
    app.adapter("north").put_order(returning)
    Dispatcher(app).dispatch(make_event("return_requested", returning, key="return-7"))
    later(app, 8)
    execute_due(app)
    (dropped,) = app.store.list_actions(shop_id="north", state=ActionState.DROPPED)
    assert dropped.reason == "fire-time check: a return was requested"
    return dropped


def test_retry_of_a_dropped_action_asks_first_and_says_why_it_was_dropped(client, console_app):
    dropped = returned_after_asking(console_app)
    console_app.store.heartbeat(None)
    login(client, "nora")
    timeline = client.get("/console/shops/north/orders/order-7").text
    assert f'href="/console/actions/{dropped.id}/retry?back=' in timeline  # a link to the question, not a POST
    ask = client.get(f"/console/actions/{dropped.id}/retry?back=/console/shops/north/orders/order-7")
    assert ask.status_code == 200
    assert "fire-time check: a return was requested" in ask.text
    assert "The order 7 is now returned (a return was requested)" in ask.text
    assert "A retry runs the same fire-time checks" in ask.text
    assert console_app.store.get_action(dropped.id).state is ActionState.DROPPED  # asking changes nothing
    csrf = csrf_of(ask.text)
    # A POST without the confirmation (an old form, a script) shows the question and changes nothing.
    unconfirmed = client.post(f"/console/actions/{dropped.id}/retry", data={"csrf": csrf})
    assert unconfirmed.status_code == 200 and "Retry it now" in unconfirmed.text
    assert console_app.store.get_action(dropped.id).state is ActionState.DROPPED
    back = "/console/shops/north/orders/order-7"
    done = client.post(f"/console/actions/{dropped.id}/retry", data={"csrf": csrf, "confirm": "yes", "back": back})
    assert done.status_code == 303 and done.headers["location"] == "/console/shops/north/orders/order-7"
    assert console_app.store.get_action(dropped.id).reason == "retried by nora in the console"


def test_the_question_is_404_for_another_shop_and_for_an_action_that_cannot_be_retried(client, console_app):
    dropped = returned_after_asking(console_app)
    (due,) = console_app.store.list_actions(shop_id="north", state=ActionState.DUE) or [None]
    login(client, "nora")
    order = make_order("8", shop_id="south")
    console_app.adapter("south").put_order(order)
    Dispatcher(console_app).dispatch(make_event("order_paid", order, key="paid-8"))
    theirs = console_app.store.list_actions(shop_id="south")[0]
    assert client.get(f"/console/actions/{theirs.id}/retry").status_code == 404
    done = next(a for a in console_app.store.list_actions(shop_id="north") if a.state is ActionState.DONE)
    assert client.get(f"/console/actions/{done.id}/retry").status_code == 404
    assert client.get(f"/console/actions/{dropped.id}/retry").status_code == 200
    assert due is None or client.get(f"/console/actions/{due.id}/retry").status_code == 404


def test_without_a_worker_the_console_is_read_only_and_says_so(client, console_app):
    dropped = returned_after_asking(console_app)
    login(client, "nora")
    page = client.get("/console/shops/north/orders/order-7").text
    assert "Read-only:" in page and "no worker has started" in page
    assert f'href="/console/actions/{dropped.id}/retry' not in page and "disabled" in page
    listed = client.get("/console/actions").text
    assert "Read-only:" in listed and '<button type="button" disabled title="Read-only: no worker runs">Retry' in listed
    csrf = csrf_of(listed)
    refused = client.post(f"/console/actions/{dropped.id}/retry", data={"csrf": csrf, "confirm": "yes"})
    assert refused.status_code == 409 and "Read-only" in refused.text
    assert console_app.store.get_action(dropped.id).state is ActionState.DROPPED
    # A worker beats: the banner goes and the buttons are live again.
    console_app.store.heartbeat(None)
    page = client.get("/console/shops/north/orders/order-7").text
    assert "Read-only:" not in page and f'href="/console/actions/{dropped.id}/retry' in page


def test_a_worker_stopped_long_ago_is_read_only_too(client, console_app):
    import sqlalchemy as sa

    from aftercare.store import wall_clock, workers

    console_app.store.heartbeat(None)
    with console_app.store.transaction() as conn:
        conn.execute(sa.update(workers).values(beat_at=wall_clock() - timedelta(minutes=5)))
    login(client, "nora")
    page = client.get("/console/shops/north").text
    assert "Read-only:" in page and "not running since" in page
