"""A parcel fails delivery on each platform's sandbox: the webhook reaches the real receiver, the worker
runs delivery_exception, and the notice and the apology coupon reach an SMTP relay on 127.0.0.1; the
coupon exists once on the platform and the staff have a note. The same report seen again by polling
adds nothing."""

from __future__ import annotations

from collections import Counter
from email.utils import parseaddr

import pytest

from aftercare.sync import sync_shop
from aftercare.testing import FaultySmtpSink

PLUGINS = {
    "tracking_notice": {"enabled": True},
    "delivery_exception": {"enabled": True, "coupon": {"enabled": True, "value": 15, "prefix": "SORRY"}},
}


@pytest.fixture
def smtp():
    with FaultySmtpSink() as sink:
        yield sink


def messages(sink):
    return [
        (parseaddr(str(m["To"]))[1], str(m["Subject"]), m.get_body(("plain",)).get_content()) for m in sink.received
    ]


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_failed_delivery_gets_the_notice_and_one_apology_coupon(deploy, smtp, platform):
    mail = {"transport": "smtp", "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none", "timeout": 5}}
    running = deploy({"shop": platform}, plugins=PLUGINS, mail=mail)
    shop = running.sandboxes["shop"]
    order = shop.create_order(locale="es", email="lucia@example.com", first_name="Lucía")
    running.settle()
    parcel = shop.ship(order.id)
    running.settle()

    status = "failure"
    shop.fail_delivery(order.id, status=status, message="Dirección incompleta")
    running.settle()
    shop.fail_delivery(order.id, status=status)  # the carrier says it again
    running.settle()

    parcel_id = str(parcel.id) if platform == "shopify" else parcel.tracking_id
    about = f"order:{order.id}"
    assert smtp.keys() == Counter(
        {
            f"shop/tracking_notice/send_email/{about}/shipped:{parcel_id}": 1,
            f"shop/delivery_exception/send_email/{about}/exception:{parcel_id}:{status}": 1,
            f"shop/delivery_exception/send_email/{about}/apology": 1,
        }
    )
    by_subject = {subject: text for _to, subject, text in messages(smtp)}
    notice = by_subject[f"Un problema con tu paquete del pedido {_number(shop, order)}"]
    assert "Hola, Lucía:" in notice and "no se ha podido entregar tu paquete" in notice
    if platform == "shopify":  # the fulfillment event carries the carrier's message; TrackShip's meta does not
        assert "Mensaje de la empresa de transporte: Dirección incompleta" in notice
    assert parcel.tracking_number in notice
    apology = by_subject["Perdona lo de tu paquete: un 15 % de descuento en tu próximo pedido"]
    (coupon,) = shop.coupons()
    assert coupon["code"].upper().startswith("SORRY-") and coupon["code"].upper() in apology.upper()
    assert {to for to, _subject, _text in messages(smtp)} == {"lucia@example.com"}

    notes = _notes(shop, order.id)
    assert len([n for n in notes if "Carrier report: the delivery failed" in n]) == 1
    assert "Apology coupon offered." in notes[-1]

    # `aftercare sync` sees the same report: the event is there already, nothing is sent again.
    before = len(running.app.store.list_actions())
    report = sync_shop(running.app, running.worker.queue, "shop", since=order.created_at)
    running.settle()
    # (Shopify's poll gives the paid and exception events again, keyed as the webhooks were;
    # WooCommerce's adapter remembers the transitions it reported and gives none.)
    assert report.events == (2 if platform == "shopify" else 0) and report.new_events == 0
    assert len(running.app.store.list_actions()) == before and len(smtp.received) == 3


def _number(shop, order):
    return f"#{order.number}" if shop.platform == "shopify" else str(order.id)


def _notes(shop, order_id):
    with shop.state.lock:
        order = shop.state.order(order_id)
        return [note.text for note in order.notes] or [part for part in order.note.split("\n\n") if part]
