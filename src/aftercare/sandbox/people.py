"""Believable customers and baskets for sandbox orders, in English, Spanish and Bulgarian.

The demo and the tests need orders that look like a real shop's: names and
addresses that match the customer's language, a few products with prices in
the shop's currency. Everything comes from a seeded ``random.Random`` so a run
can be repeated exactly.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

from .state import Address

LOCALES = ("en", "es", "bg")


@dataclass(frozen=True)
class Person:
    first_name: str
    last_name: str
    email: str
    locale: str
    address: Address
    phone: str


@dataclass(frozen=True)
class Product:
    product_id: int
    variant_id: int
    title: str
    variant_title: str
    sku: str
    price: Decimal  # in the shop currency


_NAMES = {
    "en": (
        ("Olivia", "Amelia", "Jack", "Harry", "Emily", "George", "Grace", "Oscar", "Ruby", "Thomas"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Walker", "Wright", "Hughes"),
        (("London", "E1 6AN", "GB"), ("Manchester", "M1 1AE", "GB"), ("Dublin", "D02 X285", "IE")),
        ("High Street", "Station Road", "Church Lane", "Victoria Road"),
    ),
    "es": (
        ("Lucía", "Sofía", "Martina", "Hugo", "Mateo", "Daniel", "Valeria", "Pablo", "Carmen", "Javier"),
        ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Fernández", "Ruiz", "Díaz", "Moreno"),
        (("Madrid", "28013", "ES"), ("Sevilla", "41004", "ES"), ("Valencia", "46002", "ES")),
        ("Calle Mayor", "Avenida de la Constitución", "Calle de Alcalá", "Paseo del Prado"),
    ),
    "bg": (
        ("Мария", "Иван", "Георги", "Елена", "Димитър", "Петя", "Николай", "Виктория", "Стефан", "Ралица"),
        ("Иванов", "Петрова", "Георгиев", "Димитрова", "Николов", "Стоянова", "Тодоров", "Илиева"),
        (("София", "1000", "BG"), ("Пловдив", "4000", "BG"), ("Варна", "9000", "BG")),
        ("ул. Витоша", "бул. Васил Левски", "ул. Граф Игнатиев", "бул. Сливница"),
    ),
}

_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z", "и": "i", "й": "y",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
    "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sht", "ъ": "a", "ь": "y", "ю": "yu", "я": "ya",
}  # fmt: skip

_PRODUCTS = (
    ("Merino Wool Beanie", "Charcoal", "BEANIE-CHAR", Decimal("24.00")),
    ("Ceramic Pour-Over Set", "White", "POUR-WHT", Decimal("48.50")),
    ("Linen Tea Towel", "Sage", "TOWEL-SAGE", Decimal("12.90")),
    ("Canvas Tote Bag", "Natural", "TOTE-NAT", Decimal("19.00")),
    ("Trail Running Socks", "M", "SOCK-TRAIL-M", Decimal("14.00")),
    ("Single-Origin Coffee 250 g", "Whole bean", "COFFEE-250", Decimal("11.50")),
    ("Beeswax Candle", "Large", "CANDLE-L", Decimal("29.00")),
    ("Leather Card Holder", "Tan", "CARD-TAN", Decimal("35.00")),
)

#: What the shop relates to each product, by SKU (Shopify's complementary products, WooCommerce's
#: cross-sells): mails that suggest products find these (:func:`catalogue`).
RELATED_SKUS = {
    "BEANIE-CHAR": ("SOCK-TRAIL-M", "TOTE-NAT"),
    "POUR-WHT": ("COFFEE-250", "TOWEL-SAGE"),
    "TOWEL-SAGE": ("CANDLE-L",),
    "TOTE-NAT": ("CARD-TAN", "TOWEL-SAGE"),
    "SOCK-TRAIL-M": ("BEANIE-CHAR",),
    "COFFEE-250": ("POUR-WHT", "CANDLE-L"),
    "CANDLE-L": ("TOWEL-SAGE", "POUR-WHT"),
    "CARD-TAN": ("TOTE-NAT",),
}
#: The product ids of :data:`_PRODUCTS` in orders (Shopify-like magnitudes): the first one's, then one by one.
FIRST_PRODUCT_ID, FIRST_VARIANT_ID = 7_480_000_000, 44_100_000_000

#: Rough exchange rates from the EUR list prices, rounded to a price ending.
_RATES = {"EUR": Decimal("1"), "USD": Decimal("1.1"), "GBP": Decimal("0.85"), "BGN": Decimal("1.95583")}
#: The currency a customer of each language pays in, unless the shop says otherwise.
LOCALE_CURRENCY = {"en": "GBP", "es": "EUR", "bg": "BGN"}

CARRIERS = {
    "UPS": "https://www.ups.com/track?tracknum={number}",
    "DHL Express": "https://www.dhl.com/en/express/tracking.html?AWB={number}",
    "Correos": "https://www.correos.es/es/es/herramientas/localizador/envios/detalle?tracking-number={number}",
    "Speedy": "https://www.speedy.bg/bg/track-shipment?shipmentNumber={number}",
    "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
}
LOCALE_CARRIER = {"en": "Royal Mail", "es": "Correos", "bg": "Speedy"}


def ascii_slug(text: str) -> str:
    text = "".join(_LATIN.get(ch, ch) for ch in text.lower())
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text if ch.isalnum())


def person(rng: random.Random, locale: str | None = None) -> Person:
    locale = locale or rng.choice(LOCALES)
    if locale not in _NAMES:
        raise ValueError(f"no sample names for locale {locale!r}; use one of {', '.join(LOCALES)}")
    firsts, lasts, cities, streets = _NAMES[locale]
    first, last = rng.choice(firsts), rng.choice(lasts)
    city, postcode, country = rng.choice(cities)
    number = rng.randint(1, 180)
    # Mobile numbers valid in each country's plan: a text is sent only to a number that is.
    phone = {"GB": "+44 7400 1", "IE": "+353 85 10", "ES": "+34 612 3", "BG": "+359 88 40"}[country]
    phone += f"{rng.randint(0, 99999):05d}"
    email = f"{ascii_slug(first)}.{ascii_slug(last)}{rng.randint(1, 999)}@example.com"
    street = f"{number} {rng.choice(streets)}" if locale == "en" else f"{rng.choice(streets)} {number}"
    address = Address(first, last, street, city, postcode, country, phone=phone)
    return Person(first, last, email, locale, address, phone)


def basket(rng: random.Random, currency: str, size: int | None = None) -> list[tuple[Product, int]]:
    """One to three products with quantities, priced in ``currency``."""
    rate = _RATES.get(currency)
    if rate is None:
        raise ValueError(f"no sample prices in {currency}; use one of {', '.join(_RATES)}")
    chosen = rng.sample(range(len(_PRODUCTS)), size or rng.randint(1, 3))
    items = []
    for index in chosen:
        title, variant, sku, eur = _PRODUCTS[index]
        price = (eur * rate).quantize(Decimal("1")) - Decimal("0.01") if rate != 1 else eur
        product = Product(FIRST_PRODUCT_ID + index, FIRST_VARIANT_ID + index, title, variant, sku, price)
        items.append((product, rng.choice((1, 1, 1, 2))))
    return items


def catalogue() -> list[tuple[int, str, Decimal, list[int]]]:
    """The products baskets are made of, as a shop's catalogue lists them: id, title, EUR price
    and the ids of the products the shop relates to it (:data:`RELATED_SKUS`)."""
    ids = {sku: FIRST_PRODUCT_ID + index for index, (_title, _variant, sku, _eur) in enumerate(_PRODUCTS)}
    return [
        (ids[sku], title, eur, [ids[related] for related in RELATED_SKUS.get(sku, ())])
        for title, _variant, sku, eur in _PRODUCTS
    ]


def tracking(rng: random.Random, carrier: str) -> tuple[str, str]:
    """A tracking number in the carrier's style and its tracking page."""
    if carrier == "UPS":
        number = "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16))
    elif carrier in ("Royal Mail", "Correos"):
        prefix = "RM" if carrier == "Royal Mail" else "PQ"
        number = f"{prefix}{rng.randint(10**8, 10**9 - 1)}{'GB' if carrier == 'Royal Mail' else 'ES'}"
    else:
        number = str(rng.randint(10**9, 10**11))
    template = CARRIERS.get(carrier, "https://track.example/{number}")
    return number, template.format(number=number)
