"""The sandbox Shopify shop's GraphQL resolvers: the Admin API's queries and mutations over its state.

:class:`Resolvers` gives graphql-core the root values of one execution against
:mod:`.shopify_schema`; :func:`connection` and :func:`search` are Shopify's
pagination (Relay connections) and search syntax, the subset aftercare uses.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from graphql import GraphQLError

from .shopify_rest import RestShapes, fulfillment_line_id, gid, parse_gid
from .shopify_schema import datetime_text
from .state import Address, Coupon, Customer, Fulfillment, Line, Order, Product, Return, UnknownRecord, money

if TYPE_CHECKING:
    from .shopify import ShopifySandbox

#: Shopify's answer to an app not approved for protected customer data, one per field.
PROTECTED_CUSTOMER_DATA = (
    "This app is not approved to access the {} field. See https://shopify.dev/docs/apps/launch/protected-customer-data"
)
#: Where Search & Discovery keeps a product's complementary products.
COMPLEMENTARY = ("shopify--discovery--product_recommendation", "complementary_products")
#: The sandbox shop's currency (``shop { currencyCode }``).
SHOP_CURRENCY = "EUR"
_TERM = re.compile(r"""(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)""")


def _cursor(key: tuple) -> str:
    return base64.b64encode(json.dumps(list(key)).encode()).decode()


def _uncursor(cursor: str) -> list:
    try:
        return json.loads(base64.b64decode(cursor))
    except ValueError:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from None


def connection(
    items: Sequence[Any],
    render: Callable[[Any], dict],
    key: Callable[[Any], tuple] | None = None,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """A Relay connection over ``items`` (already in order); cursors encode the sort key,
    so a page boundary survives records changing between pages."""
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for size in (first, last):
        if size is not None and not 0 <= size <= 250:
            raise GraphQLError("first/last must be between 0 and 250")
    key = key or (lambda item: (items.index(item),))
    keyed = [(list(key(item)), item) for item in items]
    if after:
        mark = _uncursor(after)
        keyed = [pair for pair in keyed if pair[0] > mark]
    if before:
        mark = _uncursor(before)
        keyed = [pair for pair in keyed if pair[0] < mark]
    more_after = more_before = False
    if first is not None and len(keyed) > first:
        keyed, more_after = keyed[:first], True
    if last is not None and len(keyed) > last:
        keyed, more_before = keyed[-last:], True
    nodes = [render(item) for _, item in keyed]
    cursors = [_cursor(tuple(k)) for k, _ in keyed]
    return {
        "nodes": nodes,
        "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=True)],
        "pageInfo": {
            "hasNextPage": more_after,
            "hasPreviousPage": more_before or bool(after),
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


def search(items: Iterable[Any], query: str | None, fields: dict[str, Callable[[Any], Any]]) -> list[Any]:
    """Shopify search syntax, the subset aftercare uses: ``field:value``, ``field:>=value``
    (``>``, ``<``, ``<=``), quoted values, terms joined by spaces meaning AND."""
    if not query or not query.strip():
        return list(items)
    terms = []
    rest = _TERM.sub(" ", query).replace(" AND ", " ").strip()
    if rest:
        raise GraphQLError(f"sandbox: unsupported search syntax {rest!r} in query {query!r}")
    for name, op, raw in _TERM.findall(query):
        if name not in fields:
            raise GraphQLError(f"sandbox: unsupported search field {name!r}; supported: {', '.join(sorted(fields))}")
        value = raw[1:-1] if raw[:1] in "'\"" else raw
        terms.append((fields[name], op, value))
    return [item for item in items if all(_matches(get(item), op, value) for get, op, value in terms)]


def _matches(actual: Any, op: str, wanted: str) -> bool:
    if isinstance(actual, datetime):
        moment = datetime.fromisoformat(wanted.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=actual.tzinfo)
        left, right = actual, moment
    elif isinstance(actual, int):
        left, right = actual, int(wanted)
    elif isinstance(actual, list | tuple):
        return any(str(a).lower() == wanted.lower() for a in actual)
    else:
        left, right = str(actual or "").lower(), wanted.lower()
    return {
        "": left == right,
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
    }[op]


class Resolvers:
    """Root values for one execution: dicts whose callables graphql-core's default
    resolver calls with the field's arguments."""

    def __init__(self, shop: ShopifySandbox) -> None:
        self.shop = shop
        self.state = shop.state

    # -- rendering -----------------------------------------------------------------
    @staticmethod
    def money_bag(amount: Decimal, currency: str) -> dict[str, Any]:
        value = {"amount": money(amount), "currencyCode": currency}
        return {"shopMoney": value, "presentmentMoney": dict(value)}

    @staticmethod
    def address(address: Address | None) -> dict[str, Any] | None:
        if address is None:
            return None
        return {
            "firstName": address.first_name,
            "lastName": address.last_name,
            "name": f"{address.first_name} {address.last_name}",
            "company": address.company or None,
            "address1": address.address1,
            "address2": address.address2 or None,
            "city": address.city,
            "province": address.province or None,
            "zip": address.zip,
            "country": address.country_code,
            "countryCodeV2": address.country_code,
            "phone": address.phone or None,
        }

    def customer(self, customer: Customer) -> dict[str, Any]:
        return {
            "__typename": "Customer",
            "id": gid("Customer", customer.id),
            "legacyResourceId": str(customer.id),
            "email": customer.email,
            "firstName": customer.first_name,
            "lastName": customer.last_name,
            "displayName": f"{customer.first_name} {customer.last_name}".strip() or customer.email,
            "locale": customer.locale,
            "phone": customer.phone or None,
            "tags": list(customer.tags),
            "createdAt": datetime_text(customer.created_at),
            "updatedAt": datetime_text(customer.updated_at),
            "emailMarketingConsent": {
                "marketingState": customer.marketing_state.upper(),
                "marketingOptInLevel": customer.marketing_opt_in_level.upper(),
                "consentUpdatedAt": datetime_text(customer.consent_updated_at),
            },
            "defaultEmailAddress": {
                "emailAddress": customer.email,
                "marketingState": customer.marketing_state.upper(),
                "marketingOptInLevel": customer.marketing_opt_in_level.upper(),
                "marketingUpdatedAt": datetime_text(customer.consent_updated_at),
            }
            if customer.email
            else None,
            "metafield": lambda info, key, namespace=None: self.metafield(customer, namespace, key),
            **self._withheld("Customer", ("firstName", "lastName", "defaultEmailAddress", "email", "phone")),
        }

    def product(self, product: Product) -> dict[str, Any]:
        """A catalogue product; an unpublished one is a draft without an online store page."""
        price = {"amount": money(product.price), "currencyCode": SHOP_CURRENCY}
        page = f"https://{self.shop.shop_domain}/products/{product.handle}"
        media = None
        if product.image_url:
            image = {"url": lambda info, transform=None: product.image_url, "altText": product.title}
            media = {"__typename": "MediaImage", "id": gid("MediaImage", product.id), "alt": product.title,
                     "preview": {"image": image}}  # fmt: skip
        return {
            "__typename": "Product",
            "id": gid("Product", product.id),
            "title": product.title,
            "handle": product.handle,
            "status": "ACTIVE" if product.published else "DRAFT",
            "onlineStoreUrl": page if product.published else None,
            "featuredMedia": media,
            "priceRangeV2": {"minVariantPrice": price, "maxVariantPrice": dict(price)},
            "metafield": lambda info, key, namespace=None: self.product_metafield(product, namespace, key),
        }

    def product_metafield(self, product: Product, namespace: str | None, key: str) -> dict[str, Any] | None:
        """Search & Discovery's complementary products: a ``list.product_reference`` metafield
        whose ``references`` resolve to the products that still exist."""
        if (namespace, key) != COMPLEMENTARY or not product.related:
            return None
        related = [self.state.products[i] for i in product.related if i in self.state.products]

        def references(info, first=None, after=None, last=None, before=None):  # noqa: ANN001, ANN202
            page = {"first": first, "after": after, "last": last, "before": before}
            return connection(related, self.product, lambda p: (p.id,), **page)

        return {
            "__typename": "Metafield",
            "id": gid("Metafield", product.id * 10 + 7),
            "namespace": namespace,
            "key": key,
            "type": "list.product_reference",
            "value": json.dumps([gid("Product", i) for i in product.related]),
            "createdAt": None,
            "updatedAt": None,
            "references": references,
        }

    def metafield(self, customer: Customer, namespace: str | None, key: str) -> dict[str, Any] | None:
        """``Customer.metafield(namespace:, key:)``: null when the customer has none there.
        Without a namespace Shopify reads the app's reserved one, which the sandbox never fills."""
        for entry in customer.metafields:
            if (entry["namespace"], entry["key"]) == (namespace, key):
                return {
                    "__typename": "Metafield",
                    "id": gid("Metafield", entry["id"]),
                    "namespace": entry["namespace"],
                    "key": entry["key"],
                    "type": entry["type"],
                    "value": entry["value"],
                    "createdAt": datetime_text(customer.created_at),
                    "updatedAt": datetime_text(customer.updated_at),
                }
        return None

    def _withheld(self, kind: str, names: Sequence[str]) -> dict[str, Any]:
        """Protected customer data as an unapproved app gets it: null, with an error at its path."""
        if not self.shop.redact_customer_data:
            return {}

        def refuse(info, name=""):  # noqa: ANN001, ANN202 - a graphql-core resolver
            raise GraphQLError(
                PROTECTED_CUSTOMER_DATA.format(f"{kind}.{info.field_name}"), extensions={"code": "ACCESS_DENIED"}
            )

        return dict.fromkeys(names, refuse)

    def line(self, order: Order, line: Line) -> dict[str, Any]:
        return {
            "__typename": "LineItem",
            "id": gid("LineItem", line.id),
            "title": line.title,
            "name": f"{line.title} - {line.variant_title}" if line.variant_title else line.title,
            "variantTitle": line.variant_title or None,
            "quantity": line.quantity,
            "sku": line.sku,
            "originalUnitPriceSet": self.money_bag(line.unit_price, order.currency),
            "product": {"id": gid("Product", line.product_id), "title": line.title},
            "variant": {"id": gid("ProductVariant", line.variant_id), "title": line.variant_title, "sku": line.sku},
        }

    def fulfillment(self, order: Order, fulfillment: Fulfillment) -> dict[str, Any]:
        lines = {line.id: line for line in order.lines}
        items = [
            {
                "id": gid("FulfillmentLineItem", fulfillment_line_id(fulfillment, i)),
                "quantity": lines[i].quantity,
                "lineItem": self.line(order, lines[i]),
            }
            for i in fulfillment.line_ids
            if i in lines
        ]
        tracking = [
            {"company": fulfillment.carrier, "number": fulfillment.tracking_number, "url": fulfillment.tracking_url}
        ]
        return {
            "__typename": "Fulfillment",
            "id": gid("Fulfillment", fulfillment.id),
            "name": f"#{order.number}.{fulfillment.number}",
            "status": "SUCCESS",
            "displayStatus": (fulfillment.shipment_status or "fulfilled").upper(),
            "createdAt": datetime_text(fulfillment.created_at),
            "updatedAt": datetime_text(fulfillment.updated_at),
            "deliveredAt": datetime_text(fulfillment.delivered_at),
            "inTransitAt": datetime_text(fulfillment.in_transit_at),
            "estimatedDeliveryAt": None,
            "trackingInfo": lambda info, first=None: tracking[:first] if first is not None else tracking,
            "fulfillmentLineItems": lambda info, first=None, after=None: connection(
                items, lambda x: x, first=first, after=after
            ),
        }

    def return_(self, order: Order, request: Return) -> dict[str, Any]:
        fulfillment = order.fulfillments[-1]
        lines = {line.id: line for line in order.lines}
        items = [
            {
                "__typename": "ReturnLineItem",
                "id": gid("ReturnLineItem", item_id),
                "quantity": lines[line_id].quantity,
                "returnReason": request.reason.upper(),
                "returnReasonDefinition": {
                    "id": gid("ReturnReasonDefinition", sum(map(ord, request.reason))),
                    "deleted": False,
                    "handle": request.reason.replace("_", "-"),
                    "name": request.reason.replace("_", " ").capitalize(),
                },
                "customerNote": None,
                "fulfillmentLineItem": {
                    "id": gid("FulfillmentLineItem", fulfillment_line_id(fulfillment, line_id)),
                    "quantity": lines[line_id].quantity,
                    "lineItem": self.line(order, lines[line_id]),
                },
            }
            for item_id, line_id in zip(request.line_item_ids, request.line_ids, strict=True)
        ]
        return {
            "__typename": "Return",
            "id": gid("Return", request.id),
            "name": f"#{order.number}-R{request.number}",
            "status": request.status.upper(),
            "returnLineItems": lambda info, first=None, after=None: connection(
                items, lambda x: x, first=first, after=after
            ),
        }

    def order(self, order: Order) -> dict[str, Any]:
        customer = self.state.customers.get(order.customer_id)
        fulfillment = self.shop.fulfillment_status(order)
        cur = order.currency
        refunds = [
            {
                "__typename": "Refund",
                "id": gid("Refund", r.id),
                "createdAt": datetime_text(r.created_at),
                "note": r.reason or None,
                "totalRefundedSet": self.money_bag(r.amount, cur),
            }
            for r in order.refunds
        ]

        def listed(rows: list, first: int | None) -> list:
            return rows[:first] if first is not None else rows

        return {
            "__typename": "Order",
            "id": gid("Order", order.id),
            "legacyResourceId": str(order.id),
            "name": f"#{order.number}",
            "email": order.email,
            "note": order.note or None,
            "createdAt": datetime_text(order.created_at),
            "updatedAt": datetime_text(order.updated_at),
            "processedAt": datetime_text(order.created_at),
            "cancelledAt": datetime_text(order.cancelled_at),
            "cancelReason": order.cancel_reason.upper() if order.cancel_reason else None,
            "closedAt": None,
            "test": order.test,
            "tags": list(order.tags),
            "discountCodes": list(order.discount_codes),
            "customerLocale": order.locale,
            "currencyCode": cur,
            "displayFinancialStatus": self.shop.financial_status(order).upper(),
            "displayFulfillmentStatus": (fulfillment or "unfulfilled").upper(),
            "totalPriceSet": self.money_bag(order.total, cur),
            "subtotalPriceSet": self.money_bag(order.subtotal, cur),
            "totalRefundedSet": self.money_bag(order.refunded, cur),
            "customer": self.customer(customer) if customer else None,
            "shippingAddress": self.address(order.shipping_address),
            "billingAddress": self.address(order.billing_address),
            **self._withheld("Order", ("email", "shippingAddress", "billingAddress")),
            "lineItems": lambda info, first=None, after=None: connection(
                order.lines, lambda line: self.line(order, line), first=first, after=after
            ),
            "fulfillments": lambda info, first=None: listed(
                [self.fulfillment(order, f) for f in order.fulfillments], first
            ),
            "refunds": lambda info, first=None: listed(refunds, first),
            "returns": lambda info, first=None, after=None: connection(
                order.returns, lambda r: self.return_(order, r), first=first, after=after
            ),
        }

    def subscription(self, sub: dict[str, Any]) -> dict[str, Any]:
        return {
            "__typename": "WebhookSubscription",
            "id": gid("WebhookSubscription", sub["id"]),
            "topic": sub["topic"].replace("/", "_").upper(),
            "uri": sub["uri"],
            "callbackUrl": sub["uri"],
            "format": sub["format"],
            "includeFields": list(sub["include_fields"]),
            "filter": sub["filter"],
            "createdAt": datetime_text(sub["created_at"]),
            "updatedAt": datetime_text(sub["created_at"]),
        }

    def discount_node(self, coupon: Coupon) -> dict[str, Any]:
        codes = [{"id": gid("DiscountRedeemCode", coupon.id + 1), "code": coupon.code, "asyncUsageCount": 0}]
        return {
            "__typename": "DiscountCodeNode",
            "id": gid("DiscountCodeNode", coupon.id),
            "codeDiscount": {
                "__typename": "DiscountCodeBasic",
                "title": coupon.title,
                "startsAt": datetime_text(coupon.starts_at),
                "endsAt": datetime_text(coupon.ends_at),
                "usageLimit": coupon.usage_limit,
                "appliesOncePerCustomer": coupon.applies_once_per_customer,
                "asyncUsageCount": 0,
                "codes": lambda info, first=None, after=None: connection(codes, lambda x: x, first=first, after=after),
            },
        }

    def node(self, value: str) -> dict[str, Any] | None:
        try:
            kind, record_id = parse_gid(value)
        except UnknownRecord:
            return None
        if kind == "Order" and record_id in self.state.orders:
            order = self.state.orders[record_id]
            return self.order(order) if self.shop.readable(order) else None
        if kind == "Customer" and record_id in self.state.customers:
            return self.customer(self.state.customers[record_id])
        if kind == "Product" and record_id in self.state.products:
            return self.product(self.state.products[record_id])
        if kind == "WebhookSubscription" and record_id in self.shop.subscriptions:
            return self.subscription(self.shop.subscriptions[record_id])
        if kind == "DiscountCodeNode" and record_id in self.state.coupons:
            return self.discount_node(self.state.coupons[record_id])
        return None

    # -- queries -------------------------------------------------------------------
    def query_root(self) -> dict[str, Any]:
        shop = self.shop
        return {
            "orders": self.orders,
            "order": lambda info, id: self._typed(id, "Order"),
            "node": lambda info, id: self.node(id),
            "nodes": lambda info, ids: [self.node(i) for i in ids],
            "customers": self.customers,
            "customer": lambda info, id: self._typed(id, "Customer"),
            "product": lambda info, id: self._typed(id, "Product"),
            "codeDiscountNodeByCode": self.discount_by_code,
            "webhookSubscriptions": self.webhook_subscriptions,
            "shop": {
                "id": gid("Shop", 548380009),
                "name": "Sandbox Shop",
                "myshopifyDomain": shop.shop_domain,
                "email": "owner@sandbox-shop.example",
                "currencyCode": "EUR",
                "ianaTimezone": "Etc/UTC",
            },
            "currentAppInstallation": {
                "id": gid("AppInstallation", 1),
                "accessScopes": [{"handle": scope, "description": scope.replace("_", " ")} for scope in shop.scopes],
            },
        }

    def _typed(self, value: str, kind: str) -> dict[str, Any] | None:
        node = self.node(value)
        return node if node is not None and node["__typename"] == kind else None

    _ORDER_SORT: ClassVar[dict[str, Callable[[Order], Any]]] = {
        "UPDATED_AT": lambda o: o.updated_at.isoformat(),
        "CREATED_AT": lambda o: o.created_at.isoformat(),
        "PROCESSED_AT": lambda o: o.created_at.isoformat(),
        "ID": lambda o: o.id,
        "ORDER_NUMBER": lambda o: o.number,
        "NUMBER": lambda o: o.number,
        "TOTAL_PRICE": lambda o: float(o.total),
        "RELEVANCE": lambda o: o.id,
        "CUSTOMER_NAME": lambda o: o.email,
    }

    def orders(
        self, info, first=None, after=None, last=None, before=None, query=None, sortKey="PROCESSED_AT", reverse=False
    ):
        shop = self.shop
        fields: dict[str, Callable[[Order], Any]] = {
            "updated_at": lambda o: o.updated_at,
            "created_at": lambda o: o.created_at,
            "processed_at": lambda o: o.created_at,
            "financial_status": shop.financial_status,
            "fulfillment_status": lambda o: "shipped" if o.fulfillments else "unshipped",
            "status": lambda o: "cancelled" if o.cancelled_at else "open",
            "return_status": lambda o: "return_requested" if o.returns else "no_return",
            "email": lambda o: o.email,
            "name": lambda o: f"#{o.number}",
            "id": lambda o: o.id,
            "tag": lambda o: o.tags,
            "customer_id": lambda o: o.customer_id,
        }
        oldest = shop.oldest_readable()
        readable = [o for o in self.state.orders.values() if oldest is None or o.created_at >= oldest]
        found = search(readable, query, fields)
        sort = self._ORDER_SORT[sortKey]
        # Each order's sort value once per query: a backfill pages through thousands of orders.
        values = {o.id: sort(o) for o in found}
        key = (lambda o: (values[o.id], o.id)) if not reverse else (lambda o: (_Reverse(values[o.id]), _Reverse(o.id)))
        found.sort(key=key)
        return connection(
            found,
            self.order,
            lambda o: (values[o.id], o.id) if not reverse else (str(values[o.id]), o.id),
            first=first,
            after=after,
            last=last,
            before=before,
        )

    def customers(self, info, first=None, after=None, last=None, before=None, query=None, sortKey="ID", reverse=False):
        fields = {
            "email": lambda c: c.email,
            "id": lambda c: c.id,
            "updated_at": lambda c: c.updated_at,
            "tag": lambda c: c.tags,
        }
        found = sorted(search(self.state.customers.values(), query, fields), key=lambda c: c.id, reverse=reverse)
        return connection(found, self.customer, lambda c: (c.id,), first=first, after=after, last=last, before=before)

    def discount_by_code(self, info, code):
        coupon = self.state.coupon_by_code(code)
        return self.discount_node(coupon) if coupon else None

    def webhook_subscriptions(self, info, first=None, after=None, last=None, before=None, topics=None):
        subs = sorted(self.shop.subscriptions.values(), key=lambda s: s["id"])
        if topics:
            subs = [s for s in subs if s["topic"].replace("/", "_").upper() in topics]
        return connection(
            subs, self.subscription, lambda s: (s["id"],), first=first, after=after, last=last, before=before
        )

    # -- mutations -------------------------------------------------------------------
    def mutation_root(self) -> dict[str, Any]:
        return {
            "discountCodeBasicCreate": self.discount_code_basic_create,
            "customerEmailMarketingConsentUpdate": self.consent_update,
            "tagsAdd": self.tags_add,
            "orderUpdate": self.order_update,
            "webhookSubscriptionCreate": self.webhook_subscription_create,
            "webhookSubscriptionDelete": self.webhook_subscription_delete,
        }

    def discount_code_basic_create(self, info, basicCodeDiscount):
        spec = basicCodeDiscount
        errors = []

        def error(field: str, message: str, code: str) -> None:
            errors.append({"field": ["basicCodeDiscount", field], "message": message, "code": code})

        code = (spec.get("code") or "").strip()
        if not code:
            error("code", "Code can't be blank", "BLANK")
        elif len(code) > 255:
            error("code", "Code is too long (maximum is 255 characters)", "TOO_LONG")
        elif self.state.coupon_by_code(code):
            error("code", "Code must be unique. Please try a different code.", "TAKEN")
        if not spec.get("startsAt"):
            error("startsAt", "Starts at can't be blank", "BLANK")
        value = ((spec.get("customerGets") or {}).get("value")) or {}
        percentage, amount = value.get("percentage"), (value.get("discountAmount") or {}).get("amount")
        if (percentage is None) == (amount is None):
            error("customerGets", "Value must have exactly one of percentage or discountAmount", "INVALID")
        elif percentage is not None and not 0 < percentage <= 1:
            error("customerGets", "Value must be between 0.0 and 1.0", "INVALID")
        context = spec.get("context") or {}
        customer_ids = []
        for value_gid in (context.get("customers") or {}).get("add") or []:
            try:
                _, customer_id = parse_gid(value_gid, "Customer")
            except UnknownRecord:
                customer_id = None
            if customer_id not in self.state.customers:
                error("context", f"Customer {value_gid} does not exist", "INVALID")
            customer_ids.append(customer_id)
        if errors:
            return {"codeDiscountNode": None, "userErrors": errors}
        now = self.shop.now()
        minimum = (((spec.get("minimumRequirement") or {}).get("subtotal")) or {}).get("greaterThanOrEqualToSubtotal")
        coupon = Coupon(
            id=self.state.next_id(),
            code=code,
            kind="percent" if percentage is not None else "fixed_amount",
            amount=Decimal(str(percentage * 100)) if percentage is not None else Decimal(str(amount)),
            created_at=now,
            updated_at=now,
            title=spec.get("title") or code,
            starts_at=_datetime(spec.get("startsAt")),
            ends_at=_datetime(spec.get("endsAt")),
            usage_limit=spec.get("usageLimit"),
            applies_once_per_customer=bool(spec.get("appliesOncePerCustomer")),
            customer_ids=customer_ids,
            minimum_amount=Decimal(str(minimum)) if minimum is not None else None,
            raw=dict(spec),
        )
        self.state.coupons[coupon.id] = coupon
        return {"codeDiscountNode": self.discount_node(coupon), "userErrors": []}

    def consent_update(self, info, input):  # noqa: A002 - the GraphQL argument's name
        try:
            _, customer_id = parse_gid(input["customerId"], "Customer")
            customer = self.state.customers[customer_id]
        except (UnknownRecord, KeyError):
            return {
                "customer": None,
                "userErrors": [{"field": ["input", "customerId"], "message": "Customer not found", "code": "INVALID"}],
            }
        consent = input["emailMarketingConsent"]
        customer.marketing_state = consent["marketingState"].lower()
        if consent.get("marketingOptInLevel"):
            customer.marketing_opt_in_level = consent["marketingOptInLevel"].lower()
        customer.consent_updated_at = _datetime(consent.get("consentUpdatedAt")) or self.shop.now()
        customer.updated_at = self.shop.now()
        rest = RestShapes(self.shop).customer(customer)
        event_id = str(uuid.uuid4())  # one action, two topics
        self.shop.fire(
            "customers_email_marketing_consent/update",
            {
                "customer_id": customer.id,
                "email_address": customer.email,
                "email_marketing_consent": rest["email_marketing_consent"],
            },
            event_id,
        )
        self.shop.fire("customers/update", rest, event_id)
        return {"customer": self.customer(customer), "userErrors": []}

    def tags_add(self, info, id, tags):  # noqa: A002
        try:
            kind, record_id = parse_gid(id)
        except UnknownRecord:
            kind, record_id = "", 0
        record = {"Order": self.state.orders, "Customer": self.state.customers}.get(kind, {}).get(record_id)
        if record is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Node does not exist"}]}
        added = [tag.strip() for tag in tags if tag.strip() and tag.strip() not in record.tags]
        if added:
            record.tags.extend(added)
            record.updated_at = self.shop.now()
            if kind == "Order":
                self.shop.order_changed(record, "updated")
            else:
                self.shop.fire("customers/update", RestShapes(self.shop).customer(record))
        return {"node": self.node(id), "userErrors": []}

    def order_update(self, info, input):  # noqa: A002
        try:
            _, order_id = parse_gid(input["id"], "Order")
            order = self.state.order(order_id)
        except UnknownRecord:
            return {"order": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        if "note" in input:
            order.note = input["note"] or ""
        if input.get("tags") is not None:
            order.tags = list(dict.fromkeys(t.strip() for t in input["tags"] if t.strip()))
        if input.get("email"):
            order.email = input["email"]
        order.updated_at = self.shop.now()
        self.shop.order_changed(order, "updated")
        return {"order": self.order(order), "userErrors": []}

    def webhook_subscription_create(self, info, topic, webhookSubscription):
        spec = webhookSubscription
        uri = spec.get("uri") or spec.get("callbackUrl") or ""
        name = _topic_name(topic)
        if not re.match(r"^(https://|http://(127\.0\.0\.1|localhost)[:/]|pubsub://|arn:aws:events:)", uri):
            return {
                "webhookSubscription": None,
                "userErrors": [{"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}],
            }
        if any(s["topic"] == name and s["uri"] == uri for s in self.shop.subscriptions.values()):
            return {
                "webhookSubscription": None,
                "userErrors": [
                    {
                        "field": ["webhookSubscription", "uri"],
                        "message": "Address for this topic has already been taken",
                    }
                ],
            }
        sub = {
            "id": self.state.next_id(),
            "topic": name,
            "uri": uri,
            "format": spec.get("format") or "JSON",
            "include_fields": list(spec.get("includeFields") or []),
            "filter": spec.get("filter"),
            "created_at": self.shop.now(),
        }
        self.shop.subscriptions[sub["id"]] = sub
        return {"webhookSubscription": self.subscription(sub), "userErrors": []}

    def webhook_subscription_delete(self, info, id):  # noqa: A002
        try:
            _, sub_id = parse_gid(id, "WebhookSubscription")
        except UnknownRecord:
            sub_id = 0
        if self.shop.subscriptions.pop(sub_id, None) is None:
            return {
                "deletedWebhookSubscriptionId": None,
                "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}],
            }
        return {"deletedWebhookSubscriptionId": id, "userErrors": []}


class _Reverse:
    """Sort key wrapper that inverts the order (for ``reverse: true``)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value


def _topic_name(enum: str) -> str:
    """``FULFILLMENT_EVENTS_CREATE`` -> ``fulfillment_events/create``."""
    resource, _, action = enum.lower().rpartition("_")
    return f"{resource}/{action}"


def _datetime(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
