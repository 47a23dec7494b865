"""The Shopify adapter: webhooks in, Admin GraphQL API out."""

from __future__ import annotations

import dataclasses
import hmac
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import requests

from aftercare.models import ConsentState, Customer, Event, EventKind, Order, RelatedProduct
from aftercare.platform import (
    Adapter,
    AdapterSettings,
    CouponResult,
    CouponSpec,
    InstallRejected,
    LiveWarning,
    PayloadError,
    PlatformError,
    PollBatch,
    PrivacyRequest,
    ShopInfo,
    ShopState,
    WebhookDelivery,
    WebhookSubscription,
)

from . import webhooks
from .auth import GrantedToken, token_source
from .client import GraphQLClient, user_errors
from .gql import awaits_delivery, exception_events, order_from_graphql, state_events
from .payload import Reader, gid, numeric_id
from .settings import ShopifySettings
from .webhook_payload import WebhookMapper, order_from_rest

log = logging.getLogger(__name__)

#: Scopes aftercare's calls and webhook topics need (a write scope implies its read scope).
REQUIRED_SCOPES = {
    "read_orders": ("read_orders", "write_orders"),
    "write_orders": ("write_orders",),
    "read_fulfillments": ("read_fulfillments", "write_fulfillments"),
    "read_returns": ("read_returns", "write_returns"),
    "write_customers": ("write_customers",),
    "write_discounts": ("write_discounts",),
}

#: Without read_all_orders the Admin API reads only the orders of the last 60 days.
RECENT_ORDERS = timedelta(days=60)
ALL_ORDERS_SCOPE = "read_all_orders"
#: A version is supported for 12 months from its release month; warn this long before.
SUPPORT_MONTHS = 12
SUPPORT_WARNING = timedelta(days=91)

_WATCH_KEY = "delivery_watch"  # ShopState: {order id: first seen awaiting delivery (ISO)}


class ShopifyAdapter(Adapter):
    platform = "shopify"
    Settings = ShopifySettings
    topics: ClassVar[Mapping[EventKind, Sequence[str]]] = {
        EventKind.ORDER_PAID: ("orders/paid",),
        EventKind.SHIPPED: ("fulfillments/create",),
        EventKind.DELIVERED: ("fulfillment_events/create", "fulfillments/update"),
        EventKind.RETURN_REQUESTED: ("returns/request",),
        EventKind.ORDER_CANCELLED: ("orders/cancelled",),
        EventKind.REFUNDED: ("refunds/create",),
        # Only the event carries the carrier's message and where the parcel is (a pickup
        # point); fulfillments/update's shipment_status has neither, so it is not used.
        EventKind.SHIPMENT_EXCEPTION: ("fulfillment_events/create",),
    }

    #: Shopify's mandatory compliance topics, by the privacy request each carries. They are not
    #: subscribed through the API: a Dev Dashboard app names their address in its configuration.
    compliance_topics: ClassVar[Mapping[str, str]] = {
        "customers/redact": "customer_redact",
        "customers/data_request": "customer_data_request",
        "shop/redact": "shop_redact",
    }

    settings: ShopifySettings

    def __init__(
        self,
        shop: ShopInfo,
        settings: ShopifySettings,
        state: ShopState,
        clock: Callable[[], datetime],
        *,
        sleep: Callable[[float], None] | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(shop, settings, state, clock)
        extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        session = session or requests.Session()
        self.tokens = token_source(shop.id, settings, state, shop.secrets, session, clock)
        self.client = GraphQLClient(
            settings.graphql_url,
            self.tokens,
            settings.api_version,
            timeout=(settings.connect_timeout, settings.read_timeout),
            max_attempts=settings.max_attempts,
            session=session,
            **extra,
        )

    @classmethod
    def offline_settings(cls) -> ShopifySettings:
        return ShopifySettings(shop_domain="offline.myshopify.com", access_token="offline-mapping-only")

    # -- webhooks ---------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        return webhooks.verify(
            headers,
            body,
            secret=self.shop.webhook_secret.get_secret_value(),
            shop_domain=self.settings.shop_domain,
            shop_id=self.shop.id,
            previous_secret=(
                self.settings.previous_webhook_secret.get_secret_value()
                if self.settings.previous_webhook_secret
                else ""
            ),
        )

    def parse_webhook(self, delivery: WebhookDelivery) -> list[Event]:
        mapper = WebhookMapper(self.shop.id, delivery.topic, delivery.triggered_at or self.now())
        # A partial order (fulfillment, refund, return bodies) is stored as it came: the worker
        # re-reads it before the hooks run. No platform call here, in the receiver's 5 s budget.
        events = mapper.events(delivery.payload)
        if self.settings.birthday_metafield:
            events = [_birthday_unread(event) for event in events]
        for event in events:
            if event.kind is EventKind.SHIPPED:
                self._watch(event.order.platform_id)
        return events

    def privacy_request(self, delivery: WebhookDelivery) -> PrivacyRequest | None:
        kind = self.compliance_topics.get(delivery.topic)
        if kind is None:
            return None
        body = Reader(delivery.topic, delivery.payload)
        if kind == "shop_redact":
            return PrivacyRequest(kind)
        customer = body.obj("customer")
        email = customer.opt_text("email").strip()
        if email and "@" not in email:
            raise customer.fail("email", "is not an email address")
        orders_key = "orders_to_redact" if kind == "customer_redact" else "orders_requested"
        orders = body.raw(orders_key) or []
        if not isinstance(orders, list):
            raise body.fail(orders_key, "is not a list")
        reference = body.opt_obj("data_request")
        return PrivacyRequest(
            kind,
            email=email,
            customer_id=customer.opt_id("id"),
            order_ids=tuple(str(order) for order in orders),
            reference=reference.opt_text("id") if reference is not None else "",
        )

    def parse_order(self, payload: Mapping[str, Any]) -> Order:
        return order_from_rest(Reader("order", payload), self.shop.id)

    # -- reading ----------------------------------------------------------
    def fetch_order(self, order_id: str) -> Order:
        data = self.client.execute(
            "order.graphql", {"id": gid("Order", order_id), **self.settings.birthday_variables}
        )
        if data.get("order") is None:
            raise PlatformError(self._why_unreadable(order_id), transient=False)
        try:
            return order_from_graphql(Reader("graphql:order", data["order"], "order"), self.shop.id)
        except PayloadError as exc:
            raise PlatformError(str(exc), transient=False) from exc

    def _why_unreadable(self, order_id: str) -> str:
        """Why ``order(id:)`` answered null: without read_all_orders Shopify answers null for
        an order older than 60 days, as for one that does not exist."""
        try:
            data = self.client.execute("shop.graphql", attempts=1)
            installation = data.get("currentAppInstallation") or {}
            granted = {scope.get("handle") for scope in installation.get("accessScopes") or []}
        except PlatformError:
            granted = set()  # unknown: say what may be the cause
        if ALL_ORDERS_SCOPE not in granted:
            return (
                f"order {order_id} cannot be read in {self.settings.shop_domain}: cannot read orders "
                f"older than 60 days: the app lacks the {ALL_ORDERS_SCOPE} scope (or the order was deleted)"
            )
        return f"order {order_id} does not exist in {self.settings.shop_domain}"

    def poll(self, cursor: str | None, since: datetime | None = None) -> Iterator[PollBatch]:
        """Orders updated since the cursor, page by page, then the delivery watch.

        The cursor is the ISO timestamp of the newest ``updated_at`` seen. The
        search uses ``>=`` so orders sharing that second are read again rather
        than missed; their events have the same keys, so the repeat is harmless.
        """
        start = (
            since
            or _parse_cursor(cursor)
            or self.now() - timedelta(days=self.settings.poll_lookback_days)
        )
        newest = start
        given: set[str] = set()  # keys this poll gave already: the watch re-reads some of its orders
        query = f"updated_at:>='{start.isoformat().replace('+00:00', 'Z')}'"
        after: str | None = None
        while True:
            data = self.client.execute(
                "orders_changed.graphql",
                {
                    "first": self.settings.poll_page_size,
                    "query": query,
                    "after": after,
                    **self.settings.birthday_variables,
                },
            )
            try:
                connection = Reader("graphql:orders", data.get("orders"), "orders")
                nodes = list(connection.items("nodes"))
                page = connection.obj("pageInfo")
                has_next = page.flag("hasNextPage")
                after = page.text("endCursor") if has_next else None
            except PayloadError as exc:
                raise PlatformError(f"unreadable orders page: {exc}", transient=False) from exc
            read = self._read(nodes)
            orders = [order for order, _node in read]
            events: list[Event] = []
            for order, node in read:
                newest = max(newest, order.updated_at)
                events.extend(self._events_of(order, node))
            given.update(event.dedupe_key for event in events)
            yield PollBatch(events=events, cursor=_format_cursor(newest), orders_seen=len(orders))
            if not has_next:
                break
        yield from self._sweep_delivery_watch(_format_cursor(newest), given)

    def _read(self, nodes: Iterable[Reader]) -> list[tuple[Order, Reader]]:
        """Map nodes (each order with the node it came from); a node that cannot be read
        is logged and skipped so one order cannot block polling for the whole shop."""
        read = []
        for node in nodes:
            try:
                read.append((order_from_graphql(node, self.shop.id), node))
            except PayloadError as exc:
                log.error("shop %s: skipping an unreadable order: %s", self.shop.id, exc)
        return read

    def _events_of(self, order: Order, node: Reader) -> list[Event]:
        if awaits_delivery(order):
            self._watch(order.platform_id)
        events = state_events(order, ship_without_tracking=self.settings.ship_without_tracking)
        try:
            events.extend(exception_events(node, order))
        except PayloadError as exc:  # a carrier event we cannot read must not hide the order's others
            log.error("shop %s: skipping unreadable fulfillment events: %s", self.shop.id, exc)
        return events

    # -- the delivery watch ------------------------------------------------
    # Delivery (a fulfillment event) does not reliably bump the order's updated_at
    # (PLATFORMS.md 1.2), so orders with a parcel under way are re-read by id
    # on every poll until it is delivered, fails, or the watch expires.

    def _watch(self, order_id: str) -> None:
        watched = dict(self.state.get(_WATCH_KEY) or {})
        if order_id not in watched:
            watched[order_id] = self.now().isoformat()
            self.state.set(_WATCH_KEY, watched)

    def _sweep_delivery_watch(
        self, cursor: str, given: Set[str] = frozenset()
    ) -> Iterator[PollBatch]:
        watched: dict[str, str] = dict(self.state.get(_WATCH_KEY) or {})
        expiry = self.now() - timedelta(days=self.settings.delivery_watch_days)
        for order_id, since in list(watched.items()):
            if datetime.fromisoformat(since) < expiry:
                del watched[order_id]
        ids = list(watched)
        per_call = self.settings.poll_page_size  # same order fields, same cost limit as a poll page
        for chunk_start in range(0, len(ids), per_call):
            chunk = ids[chunk_start : chunk_start + per_call]
            data = self.client.execute(
                "orders_by_id.graphql",
                {"ids": [gid("Order", i) for i in chunk], **self.settings.birthday_variables},
            )
            found = [
                node for node in Reader("graphql:nodes", data).items("nodes") if node.has("id")
            ]
            read = self._read(found)
            orders = [order for order, _node in read]
            seen = {order.platform_id for order in orders}
            events: list[Event] = []
            for order, node in read:
                if not awaits_delivery(order):
                    del watched[order.platform_id]
                events.extend(
                    event
                    for event in self._events_of(order, node)
                    if event.kind in (EventKind.DELIVERED, EventKind.SHIPMENT_EXCEPTION)
                    and event.dedupe_key not in given
                )
            for order_id in chunk:
                if order_id not in seen:  # deleted, or no longer readable
                    watched.pop(order_id, None)
            yield PollBatch(events=events, cursor=cursor, orders_seen=len(orders))
        self.state.set(_WATCH_KEY, watched)

    # -- actions ----------------------------------------------------------
    def create_coupon(self, spec: CouponSpec) -> CouponResult:
        existing = self._discount_id(spec.code)
        if existing:
            return CouponResult(code=spec.code, platform_id=existing, created=False)
        customer_gid = self._customer_gid(spec.customer_id, spec.customer_email, required=False)
        try:
            data = self.client.execute(
                "discount_code_basic_create.graphql",
                {"discount": self._discount_input(spec, customer_gid)},
            )
            payload = data["discountCodeBasicCreate"]
            user_errors(payload, "discountCodeBasicCreate")
        except PlatformError:
            # A retried call may have created the code before failing: look again.
            existing = self._discount_id(spec.code)
            if existing:
                return CouponResult(code=spec.code, platform_id=existing, created=False)
            raise
        node_id = (payload.get("codeDiscountNode") or {}).get("id", "")
        return CouponResult(
            code=spec.code, platform_id=numeric_id(node_id) or node_id, created=True
        )

    def _discount_input(self, spec: CouponSpec, customer_gid: str | None) -> dict[str, Any]:
        if spec.kind == "percent":
            if not Decimal(0) < spec.value <= Decimal(100):
                raise PlatformError(
                    f"coupon percentage must be in (0, 100], got {spec.value}", transient=False
                )
            # Shopify's percentage is a Float between 0 and 1.
            value: dict[str, Any] = {"percentage": float(spec.value / Decimal(100))}
        elif spec.kind == "fixed_amount":
            value = {"discountAmount": {"amount": str(spec.value), "appliesOnEachItem": False}}
        else:
            raise PlatformError(f"unknown coupon kind {spec.kind!r}", transient=False)
        discount: dict[str, Any] = {
            "title": spec.title or f"aftercare {spec.code}",
            "code": spec.code,
            "startsAt": _iso(self.now()),
            "endsAt": _iso(spec.expires_at) if spec.expires_at else None,
            "usageLimit": 1,
            "appliesOncePerCustomer": True,
            "context": {"customers": {"add": [customer_gid]}} if customer_gid else {"all": "ALL"},
            "customerGets": {"value": value, "items": {"all": True}},
        }
        if spec.minimum_subtotal is not None:
            discount["minimumRequirement"] = {
                "subtotal": {"greaterThanOrEqualToSubtotal": str(spec.minimum_subtotal.amount)}
            }
        return discount

    def _discount_id(self, code: str) -> str:
        data = self.client.execute("discount_by_code.graphql", {"code": code})
        node = data.get("codeDiscountNodeByCode")
        if not node:
            return ""
        return numeric_id(node["id"]) or node["id"]

    def add_order_note(self, order_id: str, text: str) -> None:
        """Append ``text`` to the order's note (``orderUpdate`` replaces the note)."""
        order_gid = gid("Order", order_id)
        data = self.client.execute("order_note.graphql", {"id": order_gid})
        if data.get("order") is None:
            raise PlatformError(f"order {order_id} does not exist", transient=False)
        current = data["order"].get("note") or ""
        if text in current:
            return  # a retry after a lost answer: the note is there already
        note = f"{current}\n\n{text}" if current else text
        result = self.client.execute(
            "order_update_note.graphql", {"input": {"id": order_gid, "note": note}}
        )
        user_errors(result["orderUpdate"], "orderUpdate")

    def tag_order(self, order_id: str, tags: Sequence[str]) -> None:
        self._tags_add(gid("Order", order_id), tags)

    def tag_customer(self, customer: Customer, tags: Sequence[str]) -> None:
        self._tags_add(self._customer_gid(customer.platform_id, customer.email), tags)

    def _tags_add(self, node_gid: str, tags: Sequence[str]) -> None:
        data = self.client.execute("tags_add.graphql", {"id": node_gid, "tags": list(tags)})
        user_errors(data["tagsAdd"], "tagsAdd")

    def related_products(self, product_id: str) -> list[RelatedProduct]:
        """Search & Discovery's complementary products of ``product_id`` (its metafield
        ``shopify--discovery--product_recommendation.complementary_products``), in the
        merchant's order; only active products published to the online store (a link to open)."""
        data = self.client.execute(
            "complementary_products.graphql",
            {"id": gid("Product", product_id), "first": RELATED_PER_PRODUCT},
        )
        product = data.get("product")
        metafield = (product or {}).get("complementary") or {}
        nodes = ((metafield.get("references") or {}).get("nodes")) or []
        found = []
        for index, node in enumerate(nodes):
            try:
                related = _related_product(Reader("graphql:product", node, f"references[{index}]"))
            except PayloadError as exc:
                log.warning("shop %s: skipping an unreadable complementary product: %s", self.shop.id, exc)
                continue
            if related is not None:
                found.append(related)
        return found

    def set_marketing_consent(self, customer: Customer, state: ConsentState, source: str) -> None:
        """Record the customer's explicit choice in Shopify.

        ``source`` ``"double_opt_in"`` marks a confirmed opt-in; Shopify has no field
        for other sources (the core keeps them).
        """
        if state is ConsentState.UNKNOWN:
            raise PlatformError("cannot set email marketing consent to 'unknown'", transient=False)
        consent: dict[str, Any] = {
            "marketingState": state.value.upper(),
            "consentUpdatedAt": _iso(self.now()),
        }
        if state is ConsentState.SUBSCRIBED:
            consent["marketingOptInLevel"] = (
                "CONFIRMED_OPT_IN" if source == "double_opt_in" else "SINGLE_OPT_IN"
            )
        data = self.client.execute(
            "customer_email_marketing_consent_update.graphql",
            {
                "input": {
                    "customerId": self._customer_gid(customer.platform_id, customer.email),
                    "emailMarketingConsent": consent,
                }
            },
        )
        user_errors(
            data["customerEmailMarketingConsentUpdate"], "customerEmailMarketingConsentUpdate"
        )

    def _customer_gid(self, customer_id: str, email: str, *, required: bool = True) -> str | None:
        """The customer's gid from its id, else looked up by email."""
        if customer_id:
            return gid("Customer", customer_id)
        if email:
            quoted = email.replace("\\", "\\\\").replace('"', '\\"')
            data = self.client.execute("customer_by_email.graphql", {"query": f'email:"{quoted}"'})
            nodes = (data.get("customers") or {}).get("nodes") or []
            if nodes:
                return nodes[0]["id"]
        if required:
            raise PlatformError(f"no Shopify customer with email {email!r}", transient=False)
        return None

    # -- webhook subscriptions ------------------------------------------------
    def list_webhooks(self) -> list[WebhookSubscription]:
        found: list[WebhookSubscription] = []
        after: str | None = None
        while True:
            data = self.client.execute("webhook_subscriptions.graphql", {"after": after})
            connection = data["webhookSubscriptions"]
            for node in connection["nodes"]:
                found.append(
                    WebhookSubscription(
                        platform_id=numeric_id(node["id"]) or node["id"],
                        topic=_topic_name(node["topic"]),
                        address=node.get("uri") or "",
                    )
                )
            if not connection["pageInfo"]["hasNextPage"]:
                return found
            after = connection["pageInfo"]["endCursor"]

    def register_webhooks(
        self, address: str, kinds: Sequence[EventKind]
    ) -> list[WebhookSubscription]:
        wanted = list(dict.fromkeys(topic for kind in kinds for topic in self.topics.get(kind, ())))
        existing = {(sub.topic, sub.address): sub for sub in self.list_webhooks()}
        result = []
        for topic in wanted:
            if (topic, address) in existing:
                result.append(existing[(topic, address)])
                continue
            data = self.client.execute(
                "webhook_subscription_create.graphql",
                {"topic": _topic_enum(topic), "subscription": {"uri": address, "format": "JSON"}},
            )
            payload = data["webhookSubscriptionCreate"]
            user_errors(payload, f"webhookSubscriptionCreate {topic}")
            node = payload["webhookSubscription"]
            result.append(
                WebhookSubscription(
                    numeric_id(node["id"]) or node["id"], topic, node.get("uri") or address
                )
            )
        return result

    def remove_webhooks(self, address: str) -> int:
        removed = 0
        for sub in self.list_webhooks():
            if sub.address != address:
                continue
            data = self.client.execute(
                "webhook_subscription_delete.graphql",
                {"id": gid("WebhookSubscription", sub.platform_id)},
            )
            user_errors(data["webhookSubscriptionDelete"], "webhookSubscriptionDelete")
            removed += 1
        return removed

    # -- logging in -------------------------------------------------------------
    @classmethod
    def stored_secrets(cls, settings: AdapterSettings) -> str:
        grant = settings.grant if isinstance(settings, ShopifySettings) else "static"
        if grant == "client_credentials":
            return "the Admin API token of the client credentials grant"
        if grant == "authorization_code":
            return "the Admin API token of its install"
        return ""

    def authentication(self) -> str:
        described = self.tokens.describe()
        secret = self.settings.client_secret
        if secret is not None and not hmac.compare_digest(
            secret.get_secret_value().encode(), self.shop.webhook_secret.get_secret_value().encode()
        ):
            described += (
                "; warning: webhook_secret is not the client_secret, but Shopify signs this app's webhooks "
                "with its client secret, so they would be refused"
            )
        return described

    def requested_scopes(self) -> list[str]:
        """The scopes an install link asks for: those aftercare's calls and topics need."""
        return list(REQUIRED_SCOPES)

    def install_url(self, redirect_uri: str, valid_for: timedelta) -> str:
        if not isinstance(self.tokens, GrantedToken) or not self.tokens.installs:
            raise PlatformError(
                f"shop {self.shop.id} does not install through a link: set install = true beside its "
                "client_id and client_secret (for a store the app's organization does not own)",
                transient=False,
            )
        return self.tokens.install_url(redirect_uri, self.requested_scopes(), valid_for)

    def finish_install(self, query: Sequence[tuple[str, str]], redirect_uri: str) -> str:
        if not isinstance(self.tokens, GrantedToken) or not self.tokens.installs:
            raise InstallRejected(404, f"shop {self.shop.id} does not install through a link")
        grant = self.tokens.finish_install(query)
        granted = set(grant.scope.split(",")) if grant.scope else set()
        missing = [s for s, satisfied_by in REQUIRED_SCOPES.items() if not granted.intersection(satisfied_by)]
        done = f"aftercare is installed on {self.settings.shop_domain}."
        if grant.scope and missing:
            return f"{done} Shopify did not grant {', '.join(missing)}: some actions will fail until it does."
        return done

    # -- health ---------------------------------------------------------------
    def check_live(self) -> list[str]:
        try:
            data = self.client.execute("shop.graphql", attempts=1)
        except PlatformError as exc:
            return [exc.message]
        problems = []
        domain = ((data.get("shop") or {}).get("myshopifyDomain") or "").lower()
        if self.settings.admin_url is None and domain and domain != self.settings.shop_domain:
            problems.append(
                f"the token belongs to {domain}, not to shop_domain {self.settings.shop_domain}"
            )
        installation = data.get("currentAppInstallation") or {}
        granted = {scope.get("handle") for scope in installation.get("accessScopes") or []}
        for scope, satisfied_by in REQUIRED_SCOPES.items():
            if not granted.intersection(satisfied_by):
                problems.append(f"the access token lacks the {scope} scope")
        waits = self.shop.longest_delay
        if waits > RECENT_ORDERS and ALL_ORDERS_SCOPE not in granted:
            problems.append(
                f"the access token lacks the {ALL_ORDERS_SCOPE} scope: an enabled plugin waits up to "
                f"{waits.days} days before it re-reads an order, and Shopify lets an app read only "
                "the orders of the last 60 days without it"
            )
        problems.extend(self._version_support())
        problems.extend(self._customer_data_access())
        return problems

    def _version_support(self) -> list[str]:
        """A warning when the pinned version is out of support or will be within three months."""
        version = self.settings.api_version
        if version == "unstable":
            return []
        year, month = (int(part) for part in version.split("-"))
        ends = datetime(year + (month + SUPPORT_MONTHS - 1) // 12, (month + SUPPORT_MONTHS - 1) % 12 + 1, 1,
                        tzinfo=UTC)  # fmt: skip
        now = self.now()
        if now >= ends:
            return [LiveWarning(
                f"api_version {version} is out of support since {ends:%Y-%m-%d}: Shopify answers "
                "in its oldest supported version instead; set a current api_version"
            )]  # fmt: skip
        if ends - now <= SUPPORT_WARNING:
            return [LiveWarning(
                f"api_version {version} is supported until {ends:%Y-%m-%d} ({(ends - now).days} days "
                "from now): test and set a newer api_version"
            )]  # fmt: skip
        return []

    def _customer_data_access(self) -> list[str]:
        """A warning when Shopify withholds protected customer data (names, emails, addresses)."""
        try:
            self.client.execute("customer_data_access.graphql", attempts=1)
        except PlatformError:
            return []  # what stops the call is reported by the checks above
        withheld = sorted({error.path.removeprefix("orders.nodes[].") for error in self.client.field_errors})
        if not withheld:
            return []
        return [LiveWarning(
            f"Shopify withholds protected customer data from this app ({', '.join(withheld)}): "
            "most mails need the customer's email and name; request access to protected customer "
            "data (name, email, address) for the app in the Dev Dashboard"
        )]  # fmt: skip


def _topic_enum(topic: str) -> str:
    """``fulfillment_events/create`` -> ``FULFILLMENT_EVENTS_CREATE``."""
    return topic.replace("/", "_").upper()


def _topic_name(enum: str) -> str:
    """``FULFILLMENT_EVENTS_CREATE`` -> ``fulfillment_events/create`` (action = last word)."""
    resource, _, action = enum.lower().rpartition("_")
    return f"{resource}/{action}" if resource else action


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _parse_cursor(cursor: str | None) -> datetime | None:
    if not cursor:
        return None
    try:
        parsed = datetime.fromisoformat(cursor)
    except ValueError:
        raise PlatformError(f"unreadable Shopify poll cursor {cursor!r}", transient=False) from None
    if parsed.tzinfo is None:
        raise PlatformError(f"Shopify poll cursor {cursor!r} has no time zone", transient=False)
    return parsed


def _format_cursor(moment: datetime) -> str:
    return _iso(moment)


def _birthday_unread(event: Event) -> Event:
    """A paid order's event marked for the worker's re-read (``Order.partial``) when its
    customer may have a birthday metafield: webhook bodies carry no customer metafields,
    the GraphQL order (with ``birthday_metafield`` set) does."""
    order = event.order
    if event.kind is not EventKind.ORDER_PAID or order.partial or not order.customer.platform_id:
        return event
    return dataclasses.replace(event, order=dataclasses.replace(order, partial=True))


#: Complementary products read per product (Search & Discovery lets a merchant set up to 10).
RELATED_PER_PRODUCT = 10


def _related_product(node: Reader) -> RelatedProduct | None:
    """A referenced product as a mail shows it; None unless it is active and has an online store page."""
    if not node.has("id") or node.opt_text("status").upper() != "ACTIVE":
        return None
    url = node.opt_link("onlineStoreUrl")
    if not url:
        return None  # not published to the online store: nothing a customer could open
    media = node.opt_obj("featuredMedia")
    preview = media.opt_obj("preview") if media else None
    image = preview.opt_obj("image") if preview else None
    price_range = node.opt_obj("priceRangeV2")
    low = price_range.opt_obj("minVariantPrice") if price_range else None
    return RelatedProduct(
        platform_id=node.id("id"),
        title=node.text("title"),
        url=url,
        image_url=image.opt_link("url") if image else "",
        price=low.money("amount", low.currency("currencyCode")) if low else None,
    )
