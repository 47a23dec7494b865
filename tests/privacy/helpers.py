"""A customer with a full record (orders, mail, a survey answer, consent), and a search of every byte."""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from aftercare.report import shop_report
from aftercare.sandbox import Item
from aftercare.sandbox.deployment import Customers, Deployment
from aftercare.testing import START

EMAIL = "anastasia.erase@example.com"
FIRST, LAST = "Anastasia", "Quillfeather"
OTHER = "boris.keep@example.com"
WALLET = Item("Leather Card Holder", 1, Decimal("35.00"), "CARD-TAN")
COFFEE = Item("Single-Origin Coffee 250 g", 1, Decimal("11.50"), "COFFEE-250")


def customer_with_a_history(running: Deployment) -> dict[str, str]:
    """Two customers' orders shipped and delivered, their mail sent, the first one answering the
    survey and confirming the newsletter; returns the first one's terms (email, name, phone)."""
    shop = running.sandboxes["shop"]
    first = shop.create_order(email=EMAIL, first_name=FIRST, last_name=LAST, locale="en", items=[WALLET])
    second = shop.create_order(email=OTHER, locale="en", items=[COFFEE])
    running.advance(timedelta(hours=1))
    for order in (first, second):
        shop.ship(order.id)
    running.advance(timedelta(hours=24))
    for order in (first, second):
        shop.deliver(order.id)
    readers = Customers(running, random.Random(1), 1.0, 1.0, scores=((2, 1),), only=frozenset({EMAIL}))
    for _ in range(8 * 4):
        running.advance(timedelta(hours=6))
        readers.read_new_mail()
    running.finish()
    assert readers.answers and readers.optins, "the customer's record lacks a survey answer or a consent"
    order = running.app.store.latest_order("shop", str(first.id))
    assert order is not None and order.shipping_address is not None
    phone = order.shipping_address.phone
    assert phone, "the sandbox order has no phone to look for"
    return {"email": EMAIL, "name": f"{FIRST} {LAST}", "last name": LAST, "phone": phone,
            "street": order.shipping_address.address1}  # fmt: skip


def store_files(running: Deployment) -> list[Path]:
    database = Path(running.app.config.database_url.removeprefix("sqlite:///"))
    return [p for p in (database, database.with_name(database.name + "-wal")) if p.exists()]


def leftovers(running: Deployment, terms: dict[str, str]) -> list[tuple[str, str]]:
    """(file, which term) for every store file and outbox file that holds a term, in any case."""
    files = store_files(running) + sorted(running.outbox.glob("*"))
    found = []
    for path in files:
        data = path.read_bytes().lower()
        for label, term in terms.items():
            if term and term.lower().encode("utf-8") in data:
                found.append((path.name, label))
    return found


def report(running: Deployment) -> dict:
    figures = shop_report(running.app.store, "shop", START - timedelta(days=1), running.app.now() + timedelta(days=1))
    return dataclasses.asdict(figures)
