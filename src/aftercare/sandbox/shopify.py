"""A sandbox Shopify shop: the Admin GraphQL API over HTTP, and signed webhooks.

It serves ``POST /admin/api/{version}/graphql.json`` with the access token
checked (the static one, or one from the token endpoint of :mod:`.shopify_oauth`,
which expires and can be revoked), executes the adapter's operations with graphql-core against
:mod:`.shopify_schema`, charges each query's cost to a leaky bucket and
answers ``THROTTLED`` like Shopify when the bucket cannot pay. State moves fire
the REST-shaped webhooks Shopify sends (the order for ``orders/*``, a
fulfillment, a fulfillment event, a refund or a return otherwise), signed with
the app secret, retried with backoff on a non-2xx answer and with the
original payload, and a subscription whose delivery exhausted its retries is
deleted, as Shopify does for API-created subscriptions.

Delivery does not move the order's ``updated_at`` here (PLATFORMS.md 1.2: it
does not on Shopify either), so polling must re-read shipped orders to see it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar

from graphql import DocumentNode, GraphQLError, get_operation_ast, parse, validate
from graphql.execution import execute_sync

from .base import SandboxShop
from .delivery import Attempt, Delivery
from .http import Request, Response, Router, json_response
from .shopify_oauth import ShopifyOAuth
from .shopify_schema import CostMeter, datetime_text, requested_cost, schema
from .state import Address, Coupon, Customer, Fulfillment, Line, Order, Refund, Return, UnknownRecord, money

DEFAULT_SCOPES = (
    "read_orders",
    "write_orders",
    "read_fulfillments",
    "read_returns",
    "read_customers",
    "write_customers",
    "read_discounts",
    "write_discounts",
)
RECENT_ORDERS = timedelta(days=60)
#: Shopify's answer to an app not approved for protected customer data, one per field.
PROTECTED_CUSTOMER_DATA = (
    "This app is not approved to access the {} field. See https://shopify.dev/docs/apps/launch/protected-customer-data"
)
_GID = re.compile(r"^gid://shopify/(\w+)/(\d+)$")
_TERM = re.compile(r"""(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)""")


def gid(kind: str, record_id: int) -> str:
    return f"gid://shopify/{kind}/{record_id}"


def parse_gid(value: str, kind: str | None = None) -> tuple[str, int]:
    match = _GID.match(value or "")
    if match is None or (kind and match.group(1) != kind):
        raise UnknownRecord(f"{value!r} is not a {kind or 'Shopify'} id")
    return match.group(1), int(match.group(2))


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class ApiFault:
    """One misbehaving Admin API answer, queued with :meth:`ShopifySandbox.fail_next`.

    ``status`` (429, 502...) answers that HTTP status without doing anything, with
    ``Retry-After`` when ``retry_after`` is set; ``user_errors`` answers the
    mutation's payload with that ``userErrors`` message, doing nothing; ``delay``
    does the work and sleeps that long before answering (longer than the
    client's read timeout: the platform did it but the answer never came).
    ``operation`` is the kind of request it hits: ``"mutation"``, ``"query"``, or
    ``""`` for the next request of any kind.
    """

    status: int = 0
    retry_after: float | None = None
    user_errors: str = ""
    delay: float = 0.0
    operation: str = "mutation"


class CostBucket:
    """Shopify's leaky bucket of query cost points, restored at ``restore_rate`` per second."""

    def __init__(self, maximum: float, restore_rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.maximum = float(maximum)
        self.restore_rate = float(restore_rate)
        self.monotonic = monotonic
        self._available = self.maximum
        self._at = monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.monotonic()
        self._available = min(self.maximum, self._available + self.restore_rate * (now - self._at))
        self._at = now

    def take(self, cost: float) -> bool:
        """Pay ``cost`` if the bucket holds it; Shopify never lets it go negative."""
        with self._lock:
            self._refill()
            if self._available < cost:
                return False
            self._available -= cost
            return True

    def give_back(self, points: float) -> None:
        with self._lock:
            self._available = min(self.maximum, self._available + max(0.0, points))

    def drain(self) -> None:
        """Empty the bucket, as another app call on the same shop would (for tests)."""
        with self._lock:
            self._refill()
            self._available = 0.0

    def status(self) -> dict[str, float]:
        with self._lock:
            self._refill()
            return {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": int(self._available),
                "restoreRate": self.restore_rate,
            }


class ShopifySandbox(SandboxShop):
    platform = "shopify"
    first_id = 5_612_300_000_001

    def __init__(
        self,
        *,
        secret: str = "sandbox-app-secret",
        access_token: str = "shpat_sandbox",
        shop_domain: str = "sandbox-shop.myshopify.com",
        api_version: str = "2026-10",
        bucket_size: float = 1000,
        restore_rate: float = 50,
        max_query_cost: int | None = 1000,
        retry_delays: Sequence[float] = (1, 2, 4, 8, 16, 32, 64, 128),
        delete_failing_subscriptions: bool = True,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        redact_customer_data: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        client_id: str = "sandbox-client-id",
        auth: str = "static",
        token_lifetime: float = 86399,
        offline_token_lifetime: float = 3600,
        client_credentials_allowed: bool = True,
        **options: Any,
    ) -> None:
        """``scopes`` without ``read_all_orders`` (the default) hide orders older than 60 days,
        as Shopify does; ``redact_customer_data`` answers as Shopify does to an app without
        access to protected customer data (names, emails, addresses null, an error per field)."""
        if auth not in ("static", "client_credentials", "install"):
            raise ValueError(f"auth must be 'static', 'client_credentials' or 'install', not {auth!r}")
        self.secret = secret
        self.access_token = access_token
        self.client_id = client_id
        #: Which keys ``adapter_settings`` gives: the static token, client credentials, or an install.
        self.auth = auth
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.bucket = CostBucket(bucket_size, restore_rate, monotonic)
        self.max_query_cost = max_query_cost
        self.retry_delays = tuple(retry_delays)
        self.delete_failing_subscriptions = delete_failing_subscriptions
        self.scopes = tuple(scopes)
        self.redact_customer_data = redact_customer_data
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self.throttled = 0  # how many THROTTLED answers were given
        self._faults: list[ApiFault] = []
        self._faults_lock = threading.Lock()
        #: The faults answered so far, in order (a test checks the client met them).
        self.faults_given: list[ApiFault] = []
        # The app's client secret is also the secret signing its webhooks, as on Shopify.
        self.oauth = ShopifyOAuth(
            shop_domain=shop_domain,
            client_id=client_id,
            client_secret=secret,
            scopes=self.scopes,
            now=lambda: self.now(),
            static_token=access_token,
            token_lifetime=token_lifetime,
            offline_token_lifetime=offline_token_lifetime,
            client_credentials_allowed=client_credentials_allowed,
        )
        super().__init__(**options)

    webhook_user_agent = "Shopify-Captain-Hook"

    def readable(self, order: Order) -> bool:
        """Without read_all_orders the Admin API sees only the orders of the last 60 days."""
        oldest = self.oldest_readable()
        return oldest is None or order.created_at >= oldest

    def oldest_readable(self) -> datetime | None:
        """The creation time of the oldest order the API may read now (None: every order)."""
        return None if "read_all_orders" in self.scopes else self.now() - RECENT_ORDERS

    def adapter_settings(self) -> dict[str, Any]:
        if self.auth == "static":
            credentials: dict[str, Any] = {"access_token": self.access_token}
        else:
            credentials = {"client_id": self.client_id, "client_secret": self.secret}
            if self.auth == "install":
                credentials["install"] = True
        return {
            "shop_domain": self.shop_domain,
            **credentials,
            "api_version": self.api_version,
            "admin_url": self.url,
        }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "webhook_secret": self.secret, "bucket": self.bucket.status()}

    def fail_next(self, *faults: ApiFault) -> None:
        """Answer the next matching Admin API requests with these faults, one each, in order."""
        with self._faults_lock:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        with self._faults_lock:
            self._faults.clear()

    def _take_fault(self, operation: str) -> ApiFault | None:
        with self._faults_lock:
            for index, fault in enumerate(self._faults):
                if fault.operation in ("", operation):
                    del self._faults[index]
                    self.faults_given.append(fault)
                    return fault
        return None

    def _fault_answer(self, fault: ApiFault, operation: Any, headers: dict[str, str]) -> Response | None:
        """The answer a queued fault gives instead of the real one (None: answer normally, late)."""
        if fault.status:
            if fault.retry_after is not None:
                headers = {**headers, "Retry-After": f"{fault.retry_after:g}"}
            return json_response({"errors": f"sandbox fault: HTTP {fault.status}"}, fault.status, headers)
        if fault.user_errors:
            data = {}
            for field in operation.selection_set.selections:
                payload = {sub.name.value: None for sub in field.selection_set.selections}
                payload["userErrors"] = [{"field": None, "message": fault.user_errors, "code": "INVALID"}]
                data[(field.alias or field.name).value] = payload
            return json_response({"data": data}, 200, headers)
        time.sleep(fault.delay)
        return None

    # -- HTTP -------------------------------------------------------------------
    def add_routes(self, router: Router) -> None:
        router.add("POST", r"/admin/api/(?P<version>[^/]+)/graphql\.json", self._graphql)
        self.oauth.add_routes(router)

    def _graphql(self, request: Request) -> Response:
        version = request.params["version"]
        if not re.fullmatch(r"\d{4}-(01|04|07|10)|unstable", version):
            return json_response({"errors": "Not Found"}, 404)
        headers = {"X-Shopify-API-Version": version}
        if not self.oauth.accepts(request.headers.get("x-shopify-access-token", "")):
            return json_response(
                {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}, 401, headers
            )
        try:
            body = request.json()
            document, errors = _parsed_and_validated(body["query"])
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            return json_response({"errors": [{"message": f"Parse error: {exc}"}]}, 200, headers)
        variables = body.get("variables") or {}
        operation = get_operation_ast(document, body.get("operationName"))
        if errors or operation is None:
            messages = [e.formatted for e in errors] or [{"message": "no operation to run"}]
            return json_response({"errors": messages}, 200, headers)
        fault = self._take_fault(operation.operation.value)
        if fault is not None and (answer := self._fault_answer(fault, operation, headers)) is not None:
            return answer
        requested = requested_cost(document, operation, variables)
        if self.max_query_cost is not None and requested > self.max_query_cost:
            message = (
                f"Query cost is {requested}, which exceeds the single query max cost limit ({self.max_query_cost}). "
                "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the cost of "
                "a query is calculated."
            )
            extensions = {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": self.max_query_cost}
            return json_response({"errors": [{"message": message, "extensions": extensions}]}, 200, headers)
        if not self.bucket.take(requested):
            self.throttled += 1
            cost = {"requestedQueryCost": requested, "actualQueryCost": None, "throttleStatus": self.bucket.status()}
            throttled = {
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
            }
            return json_response({"errors": [throttled], "extensions": {"cost": cost}}, 200, headers)
        meter = CostMeter()
        resolvers = _Resolvers(self)
        root = resolvers.query_root() if operation.operation.value == "query" else resolvers.mutation_root()
        with self.state.lock:
            result = execute_sync(
                schema(),
                document,
                root,
                variable_values=variables,
                operation_name=body.get("operationName"),
                middleware=[meter],
            )
        actual = requested if operation.operation.value == "mutation" else min(requested, meter.cost)
        self.bucket.give_back(requested - actual)
        answer: dict[str, Any] = {}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        answer["data"] = result.data
        answer["extensions"] = {
            "cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": self.bucket.status()}
        }
        return json_response(answer, 200, headers)

    # -- derived order state --------------------------------------------------------
    @staticmethod
    def financial_status(order: Order) -> str:
        if order.paid_at is None:
            return "voided" if order.cancelled_at else "pending"
        if order.refunded >= order.total:
            return "refunded"
        return "partially_refunded" if order.refunds else "paid"

    @staticmethod
    def fulfillment_status(order: Order) -> str | None:
        return "fulfilled" if order.fulfillments else None

    # -- webhooks -------------------------------------------------------------------
    def order_changed(self, order: Order, move: str, subject: Any = None) -> None:
        rest = RestShapes(self)
        topics: list[tuple[str, dict[str, Any]]] = []
        if move == "created":
            topics.append(("orders/create", rest.order(order)))
            if order.paid_at is not None:
                topics.append(("orders/paid", rest.order(order)))
        elif move == "paid":
            topics += [("orders/paid", rest.order(order)), ("orders/updated", rest.order(order))]
        elif move == "shipped":
            topics += [
                ("fulfillments/create", rest.fulfillment(order, subject)),
                ("orders/fulfilled", rest.order(order)),
                ("orders/updated", rest.order(order)),
            ]
        elif move == "delivered":
            topics += [
                ("fulfillment_events/create", rest.fulfillment_event(order, subject, subject.events[-1])),
                ("fulfillments/update", rest.fulfillment(order, subject)),
            ]
        elif move == "return_requested":
            topics += [("returns/request", rest.return_(order, subject)), ("orders/updated", rest.order(order))]
        elif move == "refunded":
            topics += [("refunds/create", rest.refund(order, subject)), ("orders/updated", rest.order(order))]
        elif move == "cancelled":
            topics += [("orders/cancelled", rest.order(order)), ("orders/updated", rest.order(order))]
            if subject is not None:  # cancelled with a refund
                topics.append(("refunds/create", rest.refund(order, subject)))
        elif move == "updated":
            topics.append(("orders/updated", rest.order(order)))
        # One merchant action: every delivery it produces shares one X-Shopify-Event-Id.
        event_id = str(uuid.uuid4())
        for topic, payload in topics:
            self.fire(topic, payload, event_id)

    def fire(self, topic: str, payload: dict[str, Any], event_id: str | None = None) -> None:
        """Queue one delivery per subscription to ``topic``, each with its own webhook id and all
        sharing the action's event id (a new one when the action fires only this topic)."""
        event_id = event_id or str(uuid.uuid4())
        triggered_at = datetime_text(self.clock())
        for subscription in list(self.subscriptions.values()):
            if subscription["topic"] != topic:
                continue
            fields = subscription["include_fields"]
            data = {k: v for k, v in payload.items() if k in fields} if fields else payload
            body = json.dumps(data, ensure_ascii=False).encode("utf-8")
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": signature(self.secret, body),
                "X-Shopify-Shop-Domain": self.shop_domain,
                "X-Shopify-API-Version": self.api_version,
                "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": triggered_at,
            }
            delivery = Delivery(
                id=headers["X-Shopify-Webhook-Id"],
                subscription_id=subscription["id"],
                topic=topic,
                url=subscription["uri"],
                build=lambda body=body, headers=headers: (body, headers),
                retry_delays=self.retry_delays,
            )
            self.sender.submit(delivery)

    def delivered_ok(self, status: int) -> bool:
        return 200 <= status < 300  # "even redirects" count as failures

    def after_attempt(self, delivery: Delivery, attempt: Attempt, final: bool) -> None:
        if final and not attempt.ok and self.delete_failing_subscriptions:
            with self.state.lock:
                self.subscriptions.pop(delivery.subscription_id, None)


class RestShapes:
    """Orders and their parts as Shopify's REST resources (= webhook bodies)."""

    def __init__(self, shop: ShopifySandbox) -> None:
        self.shop = shop

    @staticmethod
    def time(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    @staticmethod
    def money_set(amount: Decimal, currency: str) -> dict[str, Any]:
        value = {"amount": money(amount), "currency_code": currency}
        return {"shop_money": value, "presentment_money": dict(value)}

    def address(self, address: Address, country_names: bool = True) -> dict[str, Any]:
        return {
            "first_name": address.first_name,
            "last_name": address.last_name,
            "name": f"{address.first_name} {address.last_name}",
            "company": address.company or None,
            "address1": address.address1,
            "address2": address.address2 or None,
            "city": address.city,
            "province": address.province or None,
            "province_code": None,
            "zip": address.zip,
            "country_code": address.country_code,
            "phone": address.phone or None,
            "latitude": None,
            "longitude": None,
        }

    def customer(self, customer: Customer) -> dict[str, Any]:
        return {
            "id": customer.id,
            "email": customer.email,
            "created_at": self.time(customer.created_at),
            "updated_at": self.time(customer.updated_at),
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "state": "enabled" if customer.registered else "disabled",
            "note": None,
            "verified_email": True,
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": customer.phone or None,
            "email_marketing_consent": {
                "state": customer.marketing_state,
                "opt_in_level": customer.marketing_opt_in_level,
                "consent_updated_at": self.time(customer.consent_updated_at),
            },
            "sms_marketing_consent": None,
            "tags": ", ".join(customer.tags),
            "currency": None,
            "tax_exemptions": [],
            "admin_graphql_api_id": gid("Customer", customer.id),
            "default_address": {
                "id": customer.id + 1,
                "customer_id": customer.id,
                **self.address(customer.address),
                "default": True,
            },
        }

    def line(self, order: Order, line: Line) -> dict[str, Any]:
        shipped = bool(order.fulfillments)
        return {
            "id": line.id,
            "admin_graphql_api_id": gid("LineItem", line.id),
            "attributed_staffs": [],
            "current_quantity": line.quantity,
            "fulfillable_quantity": 0 if shipped else line.quantity,
            "fulfillment_service": "manual",
            "fulfillment_status": "fulfilled" if shipped else None,
            "gift_card": False,
            "grams": 300,
            "name": f"{line.title} - {line.variant_title}" if line.variant_title else line.title,
            "price": money(line.unit_price),
            "price_set": self.money_set(line.unit_price, order.currency),
            "product_exists": True,
            "product_id": line.product_id,
            "properties": [],
            "quantity": line.quantity,
            "requires_shipping": True,
            "sku": line.sku,
            "taxable": True,
            "title": line.title,
            "total_discount": "0.00",
            "total_discount_set": self.money_set(Decimal(0), order.currency),
            "variant_id": line.variant_id,
            "variant_inventory_management": "shopify",
            "variant_title": line.variant_title or None,
            "vendor": "Sandbox Goods",
            "tax_lines": [],
            "duties": [],
            "discount_allocations": [],
        }

    def order(self, order: Order) -> dict[str, Any]:
        shop = self.shop
        customer = shop.state.customers.get(order.customer_id)
        cur = order.currency
        token = hashlib.md5(f"{order.id}".encode(), usedforsecurity=False).hexdigest()
        return {
            "id": order.id,
            "admin_graphql_api_id": gid("Order", order.id),
            "app_id": 580111,
            "browser_ip": "203.0.113.7",
            "buyer_accepts_marketing": bool(customer and customer.marketing_state == "subscribed"),
            "cancel_reason": order.cancel_reason,
            "cancelled_at": self.time(order.cancelled_at),
            "cart_token": None,
            "checkout_id": order.id + 7,
            "checkout_token": token[::-1],
            "client_details": None,
            "closed_at": None,
            "confirmation_number": token[:9].upper(),
            "confirmed": True,
            "contact_email": order.email,
            "created_at": self.time(order.created_at),
            "currency": cur,
            "current_subtotal_price": money(order.subtotal),
            "current_subtotal_price_set": self.money_set(order.subtotal, cur),
            "current_total_discounts": "0.00",
            "current_total_price": money(order.total - order.refunded),
            "current_total_price_set": self.money_set(order.total - order.refunded, cur),
            "current_total_tax": "0.00",
            "customer_locale": order.locale,
            "device_id": None,
            "discount_codes": [
                {"code": code, "amount": "0.00", "type": "fixed_amount"} for code in order.discount_codes
            ],
            "email": order.email,
            "estimated_taxes": False,
            "financial_status": shop.financial_status(order),
            "fulfillment_status": shop.fulfillment_status(order),
            "landing_site": "/",
            "name": f"#{order.number}",
            "note": order.note or None,
            "note_attributes": [],
            "number": order.number - 1000,
            "order_number": order.number,
            "order_status_url": f"https://{shop.shop_domain}/{order.id}/orders/{token}/authenticate?key={token[:16]}",
            "payment_gateway_names": ["shopify_payments"] if order.paid_at else [],
            "phone": None,
            "presentment_currency": cur,
            "processed_at": self.time(order.created_at),
            "source_name": "web",
            "subtotal_price": money(order.subtotal),
            "subtotal_price_set": self.money_set(order.subtotal, cur),
            "tags": ", ".join(order.tags),
            "tax_lines": [],
            "taxes_included": True,
            "test": order.test,
            "token": token,
            "total_discounts": "0.00",
            "total_discounts_set": self.money_set(Decimal(0), cur),
            "total_line_items_price": money(order.subtotal),
            "total_line_items_price_set": self.money_set(order.subtotal, cur),
            "total_outstanding": "0.00" if order.paid_at else money(order.total),
            "total_price": money(order.total),
            "total_price_set": self.money_set(order.total, cur),
            "total_shipping_price_set": self.money_set(order.shipping_price, cur),
            "total_tax": "0.00",
            "total_tax_set": self.money_set(Decimal(0), cur),
            "total_tip_received": "0.00",
            "total_weight": 300 * sum(line.quantity for line in order.lines),
            "updated_at": self.time(order.updated_at),
            "user_id": None,
            "billing_address": self.address(order.billing_address),
            "customer": self.customer(customer) if customer else None,
            "discount_applications": [],
            "fulfillments": [self.fulfillment(order, f) for f in order.fulfillments],
            "line_items": [self.line(order, line) for line in order.lines],
            "payment_terms": None,
            "refunds": [self.refund(order, r) for r in order.refunds],
            "shipping_address": self.address(order.shipping_address),
            "shipping_lines": [
                {
                    "id": order.id + 3,
                    "code": "Standard",
                    "price": money(order.shipping_price),
                    "price_set": self.money_set(order.shipping_price, cur),
                    "source": "shopify",
                    "title": "Standard",
                    "tax_lines": [],
                    "discount_allocations": [],
                }
            ],
        }

    def fulfillment(self, order: Order, fulfillment: Fulfillment) -> dict[str, Any]:
        lines = [line for line in order.lines if line.id in fulfillment.line_ids]
        return {
            "id": fulfillment.id,
            "admin_graphql_api_id": gid("Fulfillment", fulfillment.id),
            "created_at": self.time(fulfillment.created_at),
            "location_id": 24826418,
            "name": f"#{order.number}.{fulfillment.number}",
            "order_id": order.id,
            "origin_address": {},
            "receipt": {},
            "service": "manual",
            "shipment_status": fulfillment.shipment_status,
            "status": "success",
            "tracking_company": fulfillment.carrier or None,
            "tracking_number": fulfillment.tracking_number or None,
            "tracking_numbers": [fulfillment.tracking_number] if fulfillment.tracking_number else [],
            "tracking_url": fulfillment.tracking_url or None,
            "tracking_urls": [fulfillment.tracking_url] if fulfillment.tracking_url else [],
            "updated_at": self.time(fulfillment.updated_at),
            "line_items": [self.line(order, line) for line in lines],
        }

    def fulfillment_event(self, order: Order, fulfillment: Fulfillment, event) -> dict[str, Any]:
        return {
            "id": event.id,
            "fulfillment_id": fulfillment.id,
            "status": event.status,
            "message": None,
            "happened_at": self.time(event.happened_at),
            "city": None,
            "province": None,
            "country": None,
            "zip": None,
            "address1": None,
            "latitude": None,
            "longitude": None,
            "shop_id": 548380009,
            "created_at": self.time(event.happened_at),
            "updated_at": self.time(event.happened_at),
            "estimated_delivery_at": None,
            "order_id": order.id,
            "admin_graphql_api_id": gid("FulfillmentEvent", event.id),
        }

    def refund(self, order: Order, refund: Refund) -> dict[str, Any]:
        lines = {line.id: line for line in order.lines}
        return {
            "id": refund.id,
            "order_id": order.id,
            "created_at": self.time(refund.created_at),
            "note": refund.reason or None,
            "user_id": None,
            "processed_at": self.time(refund.created_at),
            "duties": [],
            "return": None,
            "restock": bool(refund.line_ids),
            "refund_shipping_lines": [],
            "admin_graphql_api_id": gid("Refund", refund.id),
            "order_adjustments": [],
            "refund_line_items": [
                {
                    "id": refund.id + index + 1,
                    "quantity": lines[line_id].quantity,
                    "line_item_id": line_id,
                    "location_id": 24826418,
                    "restock_type": "return",
                    "subtotal": float(lines[line_id].total),
                    "total_tax": 0.0,
                    "subtotal_set": self.money_set(lines[line_id].total, order.currency),
                    "total_tax_set": self.money_set(Decimal(0), order.currency),
                    "line_item": self.line(order, lines[line_id]),
                }
                for index, line_id in enumerate(refund.line_ids)
                if line_id in lines
            ],
            "transactions": [
                {
                    "id": refund.transaction_id,
                    "order_id": order.id,
                    "kind": "refund",
                    "gateway": "shopify_payments",
                    "status": "success",
                    "message": "Transaction approved",
                    "created_at": self.time(refund.created_at),
                    "test": order.test,
                    "authorization": None,
                    "parent_id": order.id + 5,
                    "processed_at": self.time(refund.created_at),
                    "source_name": "web",
                    "receipt": {},
                    "amount": money(refund.amount),
                    "currency": order.currency,
                    "admin_graphql_api_id": gid("OrderTransaction", refund.transaction_id),
                }
            ],
        }

    def return_(self, order: Order, request: Return) -> dict[str, Any]:
        lines = {line.id: line for line in order.lines}
        fulfillment = order.fulfillments[-1]
        return {
            "id": request.id,
            "admin_graphql_api_id": gid("Return", request.id),
            "status": request.status,
            "order": {"id": order.id, "admin_graphql_api_id": gid("Order", order.id)},
            "total_return_line_items": len(request.line_ids),
            "name": f"#{order.number}-R{request.number}",
            "return_line_items": [
                {
                    "id": item_id,
                    "admin_graphql_api_id": gid("ReturnLineItem", item_id),
                    "fulfillment_line_item": {
                        "id": fulfillment_line_id(fulfillment, line_id),
                        "admin_graphql_api_id": gid("FulfillmentLineItem", fulfillment_line_id(fulfillment, line_id)),
                        "line_item": {"id": line_id, "admin_graphql_api_id": gid("LineItem", line_id)},
                    },
                    "quantity": lines[line_id].quantity,
                    "return_reason": request.reason,
                    "return_reason_note": "",
                    "customer_note": None,
                }
                for item_id, line_id in zip(request.line_item_ids, request.line_ids, strict=True)
            ],
        }


def fulfillment_line_id(fulfillment: Fulfillment, line_id: int) -> int:
    return fulfillment.id * 100 + fulfillment.line_ids.index(line_id)


# -- GraphQL resolvers -------------------------------------------------------------


@lru_cache(maxsize=256)
def _parsed_and_validated(query: str) -> tuple[DocumentNode, tuple[GraphQLError, ...]]:
    """A query's document and its validation errors, once per distinct query text: a client
    sends the same few operations again and again, and validating against the whole Admin
    schema costs more than running them."""
    document = parse(query)
    return document, tuple(validate(schema(), document))


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


class _Resolvers:
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
            **self._withheld("Customer", ("firstName", "lastName", "defaultEmailAddress", "email", "phone")),
        }

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
