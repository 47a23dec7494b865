"""A sandbox Shopify shop: the Admin GraphQL API over HTTP, and signed webhooks.

It serves ``POST /admin/api/{version}/graphql.json`` with the access token
checked (the static one, or one from the token endpoint of :mod:`.shopify_oauth`,
which expires and can be revoked), executes the adapter's operations with graphql-core against
:mod:`.shopify_schema` (the resolvers are :mod:`.shopify_resolvers`), charges each query's cost to a
leaky bucket and answers ``THROTTLED`` like Shopify when the bucket cannot pay. State moves fire
the REST-shaped webhooks Shopify sends (the order for ``orders/*``, a
fulfillment, a fulfillment event, a refund or a return otherwise; shaped by :mod:`.shopify_rest`),
signed with the app secret, retried with backoff on a non-2xx answer and with the
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
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, get_operation_ast, parse, validate
from graphql.execution import execute_sync

from .base import SandboxShop
from .delivery import Attempt, Delivery
from .http import Request, Response, Router, json_response
from .shopify_oauth import ShopifyOAuth
from .shopify_resolvers import Resolvers
from .shopify_rest import RestShapes
from .shopify_schema import CostMeter, datetime_text, requested_cost, schema
from .state import Customer, MoveError, Order

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
    #: FulfillmentEventStatus (2026-01) values that report a problem, REST spelling.
    problem_statuses = ("failure", "attempted_delivery", "delayed")
    pickup_status = "ready_for_pickup"

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

    def store_customer_field(self, customer: Customer, field: str, value: str) -> None:
        """A ``date`` customer metafield ``namespace.key`` (set in the admin or by a birthday app)."""
        namespace, dot, key = field.rpartition(".")
        if not dot or not namespace or not key:
            raise ValueError(f"a Shopify metafield is namespace.key, got {field!r}")
        for metafield in customer.metafields:
            if (metafield["namespace"], metafield["key"]) == (namespace, key):
                metafield["value"] = value
                return
        customer.metafields.append(
            {"id": self.state.next_id(), "namespace": namespace, "key": key, "type": "date", "value": value}
        )

    def set_sms_consent(self, customer_id: int, state: str = "subscribed") -> Customer:
        """The customer's SMS marketing state (``subscribed``, ``unsubscribed``, ``not_subscribed``),
        apart from email's, as a checkout's SMS box or the admin sets it; the webhooks then carry it
        in ``sms_marketing_consent`` (for a customer with a phone). Fires no webhook."""
        with self.state.lock:
            customer = self.state.customers.get(customer_id)
            if customer is None:
                raise MoveError(f"no customer {customer_id}")
            customer.sms_marketing_state = state
            customer.updated_at = self.now()
            return customer

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
            **({"birthday_metafield": self.birthday_field} if self.birthday_field else {}),
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
        resolvers = Resolvers(self)
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
        elif move in ("delivered", "delivery_problem"):  # a carrier event
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


@lru_cache(maxsize=256)
def _parsed_and_validated(query: str) -> tuple[DocumentNode, tuple[GraphQLError, ...]]:
    """A query's document and its validation errors, once per distinct query text: a client
    sends the same few operations again and again, and validating against the whole Admin
    schema costs more than running them."""
    document = parse(query)
    return document, tuple(validate(schema(), document))
