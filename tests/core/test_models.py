"""Core models: invariants and the JSON round trip the queue and the store rely on."""

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aftercare import serialize
from aftercare.models import Event, EventKind, Money, Order, Refund
from aftercare.testing import SAMPLES, START, make_event, make_order, sample_order


def test_money_refuses_floats_and_bad_currencies():
    with pytest.raises(TypeError):
        Money(19.99, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.parse(19.99, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(Decimal("1"), "euro")
    assert Money.parse("19.99", "eur") == Money(Decimal("19.99"), "EUR")


def test_timestamps_must_be_aware_utc():
    with pytest.raises(ValueError, match="UTC"):
        make_order(created_at=datetime(2026, 1, 1, 12, 0))
    with pytest.raises(ValueError, match="UTC"):
        make_order(created_at=datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))


def test_event_must_belong_to_its_orders_shop():
    order = make_order()
    with pytest.raises(ValueError, match="differs"):
        Event(EventKind.ORDER_PAID, "other", order, START, "k")


def test_event_json_round_trip_keeps_every_field():
    order = make_order(refunds=(Refund("r-1", START, Money(Decimal("10.00"), "EUR"), "damaged", ("line-1",)),))
    event = make_event(EventKind.DELIVERED, order)
    text = event.to_json()
    again = Event.from_json(text)
    assert again == event
    assert isinstance(again.order.total.amount, Decimal)
    assert again.order.shipments[0].shipped_at.tzinfo is not None
    assert '"59.90"' in text  # money travels as text, never a float


def test_big_platform_ids_survive_as_strings():
    order = make_order(platform_id="820982911946154508")
    assert Event.from_json(make_event("order_paid", order).to_json()).order.platform_id == "820982911946154508"


def test_decoding_reports_where_the_data_is_wrong():
    data = serialize.to_data(make_order())
    data["customer"]["marketing_consent"] = "maybe"
    with pytest.raises(ValueError, match=r"Order\.customer\.marketing_consent"):
        serialize.from_data(Order, data)


amounts = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False, places=2)
texts = st.text(max_size=30)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(amount=amounts, number=texts, email=texts, note=texts, when=instants)
def test_round_trip_holds_for_any_values(amount, number, email, note, when):
    order = make_order(number=number, email=email, total=Money(amount, "USD"), updated_at=when)
    event = replace(make_event(EventKind.REFUNDED, order), topic=note, occurred_at=when)
    assert Event.from_json(event.to_json()) == event
    # dumps lets orjson walk the dataclasses; it must give exactly what to_data gives
    assert json.loads(serialize.dumps(event)) == serialize.to_data(event)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fast_and_plain_encodings_agree_on_real_orders(name):
    event = make_event(EventKind.DELIVERED, sample_order(name))
    assert json.loads(serialize.dumps(event)) == serialize.to_data(event)


def test_values_orjson_refuses_still_encode():
    data = {"event": make_event("order_paid", make_order()), "beyond_64_bits": 2**70}
    assert json.loads(serialize.dumps(data)) == serialize.to_data(data)


def test_an_event_re_read_whole_keeps_what_it_reported_and_gains_what_it_lacked():
    from dataclasses import replace as _replace

    from aftercare.models import Shipment, ShipmentStatus
    from aftercare.testing import START, make_event, make_order

    whole = make_order()
    reported = Shipment(whole.shipments[0].platform_id, status=ShipmentStatus.DELIVERED, delivered_at=START)
    partial = _replace(whole, number="", customer=_replace(whole.customer, first_name=""), shipments=(reported,),
                       partial=True)  # fmt: skip
    event = _replace(make_event("delivered", partial), shipment=reported)

    completed = event.with_whole_order(whole)
    assert completed.order == whole
    assert completed.shipment.carrier == whole.shipments[0].carrier  # from the order
    assert completed.shipment.tracking_number == whole.shipments[0].tracking_number
    assert (completed.shipment.status, completed.shipment.delivered_at) == (ShipmentStatus.DELIVERED, START)


def test_a_customers_birthday_round_trips_and_events_stored_before_it_read_as_none():
    order = make_order("1001")
    event = make_event("order_paid", replace(order, customer=replace(order.customer, birthday=date(2000, 2, 29))))
    text = event.to_json()
    assert Event.from_json(text) == event
    older = text.replace(',"birthday":"2000-02-29"', "")
    assert "birthday" not in older and Event.from_json(older).order.customer.birthday is None
