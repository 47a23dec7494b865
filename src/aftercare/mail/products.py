"""Related products in a mail, read from the platform when the mail is sent.

A hook asks for them with ``ctx.complementary_products(n)``, which puts a request in the
mail's context (:data:`aftercare.context.PRODUCTS_REQUEST`); hooks never call the platform.
When the mail goes out, :func:`with_complementary_products` replaces each such request with
what the shop's adapter finds (:meth:`aftercare.platform.Adapter.complementary_products`,
cached per product in the adapter's state): a list of ``{"title", "url", "image_url",
"price"}``, empty when the platform relates nothing. Products never come from guesses.

A transactional mail (the delivered notice) shows products only to a customer who opted in
to marketing mail: a product suggestion is marketing. A platform that cannot be read now
(a timeout, a missing scope) leaves the list empty and is logged: the notice or the review
request matters more than the suggestions, and must not wait or fail for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aftercare.actions import ActionRecord
from aftercare.context import PRODUCTS_REQUEST
from aftercare.models import ConsentState, Order, RelatedProduct, normalise_email
from aftercare.platform import PlatformError

if TYPE_CHECKING:
    from aftercare.app import App

log = logging.getLogger(__name__)


def with_complementary_products(
    app: App, action: ActionRecord, order: Order | None, context: dict[str, Any]
) -> dict[str, Any]:
    """``context`` with each products request filled (a list, maybe empty); as it was without one."""
    asked = [name for name, value in context.items() if _is_request(value)]
    if not asked:
        return context
    filled = dict(context)
    for name in asked:
        filled[name] = _products(app, action, order, context[name][PRODUCTS_REQUEST])
    return filled


def _is_request(value: Any) -> bool:
    return (
        isinstance(value, Mapping) and set(value) == {PRODUCTS_REQUEST} and isinstance(value[PRODUCTS_REQUEST], Mapping)
    )


def _products(app: App, action: ActionRecord, order: Order | None, request: Mapping[str, Any]) -> list[dict[str, Any]]:
    limit, product_ids = request.get("limit"), request.get("product_ids")
    if not isinstance(limit, int) or limit <= 0 or not isinstance(product_ids, list) or not product_ids:
        return []
    if action.payload.get("transactional") and not _opted_in(app, action, order):
        return []
    try:
        products = app.adapter(action.shop_id).complementary_products([str(p) for p in product_ids], limit)
    except PlatformError as exc:
        log.warning(
            "shop=%s action=%s: no related products in the mail: %s", action.shop_id, action.id, exc.message,
            extra={"shop": action.shop_id, "order": action.order_id},
        )  # fmt: skip
        return []
    return [as_variables(product) for product in products[:limit]]


def as_variables(product: RelatedProduct) -> dict[str, Any]:
    """A product as templates see it (JSON-ready: ``price`` goes through ``|money``)."""
    price = product.price
    return {
        "title": product.title,
        "url": product.url,
        "image_url": product.image_url,
        "price": {"amount": str(price.amount), "currency": price.currency} if price is not None else None,
    }


def _opted_in(app: App, action: ActionRecord, order: Order | None) -> bool:
    """The customer's latest recorded consent, else the platform's on the order, is "subscribed"."""
    recorded = app.store.current_consent(action.shop_id, normalise_email(str(action.payload.get("to", ""))))
    if recorded is not None:
        return recorded is ConsentState.SUBSCRIBED
    return order is not None and order.customer.marketing_consent is ConsentState.SUBSCRIBED
