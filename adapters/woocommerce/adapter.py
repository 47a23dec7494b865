"""The WooCommerce adapter: one shop, verified webhooks, polling and actions.

WooCommerce reports whole orders, never transitions, and never retries a failed
webhook delivery (it disables the webhook after a few failures instead), so
webhooks and polling feed the same state diff (:mod:`.transitions`) and either
one alone is enough to catch every change.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from aftercare.models import ConsentState, Customer, Event, EventKind, Money, Order, RelatedProduct, normalise_email
from aftercare.platform import (
    Adapter,
    CouponResult,
    CouponSpec,
    PayloadError,
    PlatformError,
    PollBatch,
    PrivacyRequest,
    ShopInfo,
    ShopState,
    WebhookDelivery,
    WebhookSubscription,
    birthday_date,
    tracking_link,
)

from . import webhooks
from .client import WooClient, error_code, total_items, total_pages
from .mapping import OrderMapper, customer_consent, meta_value, order_meta_value, parse_gmt, tags_from_meta
from .settings import WooCommerceSettings
from .transitions import SeenState, derive_events, state_key

ORDER_TOPICS = ("order.created", "order.updated")
#: A customer deleted in WordPress (its erasure tool, or by hand): erased here too, if subscribed.
CUSTOMER_DELETED = "customer.deleted"
PER_PAGE = 100
COUPON_KINDS = {"percent": "percent", "fixed_amount": "fixed_cart"}

log = logging.getLogger(__name__)


class WooCommerceAdapter(Adapter):
    platform = "woocommerce"
    Settings = WooCommerceSettings
    #: Every post-sale moment is a change of the whole order: created (paid at
    #: checkout) or updated (status, tracking meta, refunds).
    topics: ClassVar[Mapping[EventKind, Sequence[str]]] = {
        EventKind.ORDER_PAID: ORDER_TOPICS,
        EventKind.SHIPPED: ("order.updated",),
        EventKind.DELIVERED: ("order.updated",),
        EventKind.RETURN_REQUESTED: ("order.updated",),
        EventKind.ORDER_CANCELLED: ("order.updated",),
        EventKind.REFUNDED: ("order.updated",),
        EventKind.SHIPMENT_EXCEPTION: ("order.updated",),
    }

    settings: WooCommerceSettings

    def __init__(
        self,
        shop: ShopInfo,
        settings: WooCommerceSettings,
        state: ShopState,
        clock: Callable[[], datetime],
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(shop, settings, state, clock)
        self.mapper = OrderMapper(shop.id, settings)
        extra = {"jitter": jitter} if jitter is not None else {}
        self.client = WooClient(settings, clock=clock, sleep=sleep, **extra)

    @classmethod
    def offline_settings(cls) -> WooCommerceSettings:
        """Valid settings for mapping payloads offline; ``.invalid`` can never resolve."""
        return WooCommerceSettings(url="https://shop.invalid", consumer_key="ck_offline", consumer_secret="cs_offline")

    # -- webhooks -----------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        return webhooks.verify(
            headers,
            body,
            secret=self.shop.webhook_secret.get_secret_value(),
            shop_url=self.settings.url,
            shop_id=self.shop.id,
        )

    def parse_webhook(self, delivery: WebhookDelivery) -> list[Event]:
        """Order created/updated deliveries give the transitions not seen before;
        other topics (deleted, restored, customers, coupons, actions) give none;
        ``customer.deleted`` is a privacy request (:meth:`privacy_request`)."""
        if delivery.is_ping or delivery.topic not in ORDER_TOPICS:
            return []
        return self._events_for(delivery.payload, source="webhook", topic=delivery.topic)

    def privacy_request(self, delivery: WebhookDelivery) -> PrivacyRequest | None:
        """``customer.deleted`` (body ``{"id": N}``, the deleted customer's id) asks to erase that
        customer: the worker finds their emails by the id in the stored orders."""
        if delivery.is_ping or delivery.topic != CUSTOMER_DELETED:
            return None
        payload = delivery.payload
        raw = payload.get("id") if isinstance(payload, Mapping) else None
        text = str(raw) if isinstance(raw, int | str) and not isinstance(raw, bool) else ""
        if not (text.isascii() and text.isdigit() and int(text) > 0):
            raise PayloadError(delivery.topic, "id", "is not a customer id (a positive whole number)")
        return PrivacyRequest("customer_redact", customer_id=str(int(text)))

    def parse_order(self, payload: Mapping[str, Any]) -> Order:
        return self.mapper.order(payload)

    def _events_for(self, payload: Any, *, source: str, topic: str, complete: bool = False) -> list[Event]:
        """Map the order, diff it with what was seen, and remember the new state.

        ``complete`` (polling, never the receiver): when there are events, read what
        the payload lacks (refund lines, the customer's consent) before they go out."""
        facts = self.mapper.facts(payload, topic or "order")
        key = state_key(facts.order.platform_id)
        stored = self.state.get(key)
        seen = SeenState.from_json(stored)
        events = derive_events(facts, seen, self.settings, source=source, topic=topic)
        if complete and events and facts.order.partial:
            order = self._completed(facts.order)
            events = [_with_order(event, order) for event in events]
        if seen.as_json() != stored:
            self.state.set(key, seen.as_json())
        return events

    # -- reading ------------------------------------------------------------
    def fetch_order(self, order_id: str) -> Order:
        """The order now, whole: refund lines from the refunds endpoint when the
        order's summary lacks them, a registered customer's consent from their record."""
        return self._completed(self.parse_order(self.client.get(f"orders/{_path_id(order_id)}")))

    def _completed(self, order: Order) -> Order:
        """``order`` with what its payload does not carry read from the shop."""
        refunds = order.refunds
        if any(not refund.lines_known for refund in refunds):
            listing = self.client.get(f"orders/{_path_id(order.platform_id)}/refunds", {"per_page": PER_PAGE})
            read = {refund.platform_id: refund for refund in self.mapper.refunds(listing, order.currency)}
            # A refund made after the order was read is in the listing but not in the order: it
            # arrives with the next change. One in the order but not yet listed keeps its summary.
            refunds = tuple(read.get(refund.platform_id, refund) for refund in refunds)
        customer = order.customer
        if customer.platform_id:
            record = self._read_customer(customer.platform_id)
            consent = customer_consent(record, self.settings.consent_meta_key)
            if consent is not ConsentState.UNKNOWN:  # else the order's meta stands
                customer = dataclasses.replace(customer, marketing_consent=consent)
            if self.settings.birthday_meta_key and isinstance(record, Mapping):
                birthday = birthday_date(meta_value(record, self.settings.birthday_meta_key))
                customer = dataclasses.replace(customer, birthday=birthday)
        return dataclasses.replace(order, refunds=refunds, customer=customer, partial=False)

    def _read_customer(self, customer_id: str) -> Any:
        """A registered customer's record (consent, birthday in its meta); None when the
        customer was deleted since the order."""
        try:
            return self.client.get(f"customers/{_path_id(customer_id)}")
        except PlatformError as error:
            if error_code(error) in ("woocommerce_rest_invalid_id", "woocommerce_rest_customer_invalid_id"):
                return None
            raise

    def poll(self, cursor: str | None, since: datetime | None = None) -> Iterator[PollBatch]:
        """Orders modified after the cursor, oldest change first, one batch per page.

        Pages are not trusted to stay put: an order modified while we page moves
        to the end of the ``orderby=modified`` list and shifts the others. So
        after each page the query restarts from the newest modification seen
        (minus ``poll_overlap_seconds``) and moves on by page number only when a
        whole page shares the overlap window. Orders read twice are harmless:
        the state diff finds nothing new in them.

        The cursor is the newest ``date_modified_gmt`` seen, ISO 8601 UTC.
        """
        high = self._poll_start(cursor, since)
        overlap = timedelta(seconds=self.settings.poll_overlap_seconds)
        query_from, page = high - overlap, 1
        done: dict[str, str] = {}  # order id -> modification already handled in this poll
        while True:
            response = self.client.request(
                "GET",
                "orders",
                params={
                    "modified_after": _wc_time(query_from),
                    "dates_are_gmt": "true",
                    "orderby": "modified",
                    "order": "asc",
                    "per_page": PER_PAGE,
                    "page": page,
                },
            )
            orders = response.json()
            if not isinstance(orders, list):
                raise PlatformError("woocommerce: GET orders did not return a list", transient=False)
            events: list[Event] = []
            for payload in orders:
                order_id, modified = _identity(payload)
                if done.get(order_id) == modified:
                    continue
                done[order_id] = modified
                try:
                    events.extend(self._events_for(payload, source="poll", topic="", complete=True))
                except PayloadError as error:
                    # One unreadable order must not stop every later change from arriving.
                    log.warning("shop %s: skipped order %s: %s", self.shop.id, order_id, error)
                when = parse_gmt(modified)
                if when is not None and when > high:
                    high = when
            yield PollBatch(
                events=events,
                cursor=high.isoformat(),
                orders_seen=len(orders),
                orders_total=total_items(response),
            )
            if not orders or page >= total_pages(response):
                return
            if high - overlap > query_from:
                query_from, page = high - overlap, 1
            else:
                page += 1

    def _poll_start(self, cursor: str | None, since: datetime | None) -> datetime:
        if cursor:
            start = parse_gmt(cursor)
            if start is None:
                raise PlatformError(f"woocommerce: unreadable poll cursor {cursor!r}", transient=False)
            return start
        if since is not None:
            return since.astimezone(UTC)
        return self.now() - timedelta(hours=self.settings.poll_first_window_hours)

    # -- actions ------------------------------------------------------------
    def create_coupon(self, spec: CouponSpec) -> CouponResult:
        """Idempotent by code, and honest about what the shop holds.

        A coupon of that code that exists already (from an earlier attempt whose
        answer was lost, or made by someone else) is adopted only if it is what
        this spec would create; otherwise the action fails naming the first
        difference, so a hand-made 50 % code is never mailed as ours. A created
        coupon is read back: WooCommerce ignores fields it does not know (it
        drops ``date_expires_gmt`` on create), so an expiry missing from its
        answer fails the action instead of mailing a promise the shop does not
        keep. The code returned is the shop's (WooCommerce lower-cases codes).
        """
        body = self._coupon_body(spec)
        existing = self._coupon_by_code(spec.code)
        if existing is not None:
            return self._adopted(spec, existing)
        try:
            created = self.client.post("coupons", body)
        except PlatformError as error:
            if error_code(error) != "woocommerce_rest_coupon_code_already_exists":
                raise
            existing = self._coupon_by_code(spec.code)
            if existing is None:
                raise
            return self._adopted(spec, existing)
        if not isinstance(created, Mapping) or "id" not in created:
            raise PlatformError("woocommerce: POST coupons answered without a coupon", transient=False)
        if spec.expires_at is not None and _coupon_expiry(created) != _whole_seconds(spec.expires_at):
            answered = created.get("date_expires_gmt")
            raise PlatformError(
                f"woocommerce: coupon {created.get('code') or spec.code} (id {created['id']}) was created "
                f"without the expiry asked for: the shop answered date_expires_gmt {answered!r}, "
                f"expected {_wc_time(spec.expires_at)!r}; not reported as done",
                transient=False,
            )
        return CouponResult(str(created.get("code") or spec.code), str(created["id"]), created=True)

    def _adopted(self, spec: CouponSpec, existing: Mapping[str, Any]) -> CouponResult:
        difference = coupon_difference(spec, existing)
        if difference:
            raise PlatformError(
                f"woocommerce: a coupon with code {existing.get('code') or spec.code} (id {existing.get('id')}) "
                f"already exists and is not the one aftercare would create: {difference}; not adopted",
                transient=False,
            )
        return CouponResult(str(existing.get("code") or spec.code), str(existing["id"]), created=False)

    def _coupon_body(self, spec: CouponSpec) -> dict[str, Any]:
        if spec.kind not in COUPON_KINDS:
            raise PlatformError(f"woocommerce: unknown coupon kind {spec.kind!r}", transient=False)
        body: dict[str, Any] = {
            "code": spec.code,
            "discount_type": COUPON_KINDS[spec.kind],
            "amount": str(spec.value),
            "individual_use": True,
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "description": spec.title,
        }
        if spec.customer_email:
            body["email_restrictions"] = [spec.customer_email]
        if spec.expires_at is not None:
            # WooCommerce 11 ignores date_expires_gmt on create; date_expires with
            # an explicit offset is kept, whatever the shop's time zone.
            body["date_expires"] = f"{_wc_time(spec.expires_at)}Z"
        if spec.minimum_subtotal is not None:
            body["minimum_amount"] = str(spec.minimum_subtotal.amount)
        return body

    def _coupon_by_code(self, code: str) -> Mapping[str, Any] | None:
        found = self.client.get("coupons", {"code": code})
        wanted = code.strip().lower()  # WooCommerce compares coupon codes case-insensitively
        for coupon in found if isinstance(found, list) else []:
            if isinstance(coupon, Mapping) and "id" in coupon and str(coupon.get("code", "")).lower() == wanted:
                return coupon
        return None

    def add_order_note(self, order_id: str, text: str) -> None:
        self.client.post(
            f"orders/{_path_id(order_id)}/notes",
            {"note": text, "customer_note": self.settings.notes_visible_to_customer},
        )

    def tag_order(self, order_id: str, tags: Sequence[str]) -> None:
        self._add_tags(f"orders/{_path_id(order_id)}", tags)

    def tag_customer(self, customer: Customer, tags: Sequence[str]) -> None:
        self._add_tags(self._customer_record(customer), tags)

    def _add_tags(self, record: str, tags: Sequence[str]) -> None:
        key = self.settings.tags_meta_key
        answer = self.client.get(record)
        current = answer if isinstance(answer, Mapping) else {}
        read = order_meta_value if record.startswith("orders/") else meta_value  # orders: the old key too
        present = tags_from_meta(read(current, key))
        merged = tuple(dict.fromkeys([*present, *(t.strip() for t in tags if t.strip())]))
        if merged != tags_from_meta(meta_value(current, key)):
            self._put_meta(record, key, ", ".join(merged))

    def related_products(self, product_id: str) -> list[RelatedProduct]:
        """The product's cross-sells, then its upsells (``cross_sell_ids``, ``upsell_ids`` of
        ``GET products/{id}``), read in one ``GET products?include=...``; only published ones
        with a page. A product deleted since the order relates nothing."""
        try:
            record = self.client.get(f"products/{_path_id(product_id)}")
        except PlatformError as error:
            if error_code(error) == "woocommerce_rest_product_invalid_id":
                return []
            raise
        ids = list(dict.fromkeys(_product_ids(record, "cross_sell_ids") + _product_ids(record, "upsell_ids")))
        if not ids:
            return []
        listing = self.client.get(
            "products", {"include": ",".join(ids[:PER_PAGE]), "per_page": PER_PAGE, "status": "publish"}
        )
        found = {str(p.get("id")): p for p in listing if isinstance(p, Mapping)} if isinstance(listing, list) else {}
        currency = self._shop_currency()
        related = (_related_product(found[i], currency) for i in ids if i in found)
        return [product for product in related if product is not None]

    def _shop_currency(self) -> str:
        """The store's currency (its products' prices are in it), kept in the adapter's state."""
        kept = self.state.get(CURRENCY_KEY)
        if isinstance(kept, str) and kept:
            return kept
        answer = self.client.get("data/currencies/current")
        code = answer.get("code") if isinstance(answer, Mapping) else None
        code = code.upper() if isinstance(code, str) and len(code) == 3 and code.isalpha() else ""
        if code:
            self.state.set(CURRENCY_KEY, code)
        return code

    def set_marketing_consent(self, customer: Customer, state: ConsentState, source: str) -> None:
        """Written with its time and source on the customer, or for a guest on
        their latest order (guests have no customer record in WooCommerce)."""
        value = {"state": state.value, "at": self.now().isoformat(), "source": source}
        self._put_meta(self._customer_record(customer), self.settings.consent_meta_key, value)

    def _put_meta(self, record: str, key: str, value: Any) -> None:
        """Write one meta entry and confirm it from the answer: WooCommerce answers
        200 to a write it dropped (protected ``_`` keys on customers, a plugin's
        filter), and an action must not say done for what the shop does not hold."""
        answer = self.client.put(record, {"meta_data": [{"key": key, "value": value}]})
        kept = meta_value(answer, key) if isinstance(answer, Mapping) else None
        if kept == value:
            return
        what = record.split("/", 1)[0].rstrip("s")
        raise PlatformError(
            f"WooCommerce did not keep {what} meta {key!r}: PUT {record} answered 200 without it "
            "(a plugin filtering meta, or a protected key)",
            transient=False,
        )

    def _customer_record(self, customer: Customer) -> str:
        """``customers/<id>`` or, for a guest, ``orders/<id>`` of their latest order."""
        if customer.platform_id:
            return f"customers/{_path_id(customer.platform_id)}"
        email = normalise_email(customer.email)
        if not email:
            raise PlatformError("woocommerce: customer has neither id nor email", transient=False)
        registered = self.client.get("customers", {"email": email, "role": "all"})
        if isinstance(registered, list) and registered and isinstance(registered[0], Mapping):
            return f"customers/{_path_id(str(registered[0].get('id', '')))}"
        orders = self.client.get("orders", {"search": email, "orderby": "date", "order": "desc", "per_page": 20})
        for order in orders if isinstance(orders, list) else []:
            billing = order.get("billing") if isinstance(order, Mapping) else None
            if isinstance(billing, Mapping) and str(billing.get("email", "")).lower() == email:
                return f"orders/{_path_id(str(order.get('id', '')))}"
        raise PlatformError(f"woocommerce: no customer or order for {email}", transient=False)

    # -- webhook subscriptions ---------------------------------------------
    def list_webhooks(self) -> list[WebhookSubscription]:
        return [_subscription(hook) for hook in self._webhooks()]

    def _webhooks(self) -> list[Mapping[str, Any]]:
        return [
            hook
            for page in self.client.pages("webhooks", {"per_page": PER_PAGE})
            for hook in page
            if isinstance(hook, Mapping) and "id" in hook
        ]

    def register_webhooks(self, address: str, kinds: Sequence[EventKind]) -> list[WebhookSubscription]:
        """Create the missing subscriptions, and replace ours that are not active.

        WooCommerce disables a webhook after repeated failed deliveries (it never
        retries them) and keeps its failure count when it is re-activated, so a
        re-activated webhook dies at its next failure. A disabled or paused one
        is deleted and created anew instead: same topic and address, a fresh count.
        """
        wanted = sorted({topic for kind in kinds for topic in self.topics.get(kind, ())})
        ours: dict[str, list[Mapping[str, Any]]] = {}
        for hook in self._webhooks():
            if hook.get("delivery_url") == address:
                ours.setdefault(str(hook.get("topic", "")), []).append(hook)
        result = []
        for topic in wanted:
            hooks = ours.get(topic, [])
            active = next((hook for hook in hooks if hook.get("status") == "active"), None)
            if active is None:
                for stale in hooks:
                    self.client.delete(f"webhooks/{_path_id(str(stale['id']))}", {"force": "true"})
                active = self.client.post(
                    "webhooks",
                    {
                        "name": f"aftercare {topic}",
                        "topic": topic,
                        "delivery_url": address,
                        "secret": self.shop.webhook_secret.get_secret_value(),
                        "status": "active",
                    },
                )
            result.append(_subscription(active, topic=topic, address=address))
        return result

    def remove_webhooks(self, address: str) -> int:
        removed = 0
        for hook in self._webhooks():
            if hook.get("delivery_url") == address:
                self.client.delete(f"webhooks/{_path_id(str(hook['id']))}", {"force": "true"})
                removed += 1
        return removed

    # -- health -------------------------------------------------------------
    def check_live(self) -> list[str]:
        """One cheap authenticated read; a problem is reported, never raised."""
        try:
            answer = self.client.request("GET", "orders", params={"per_page": 1}, retries=0)
        except PlatformError as error:
            return [_explain(error, self.settings.url)]
        if not isinstance(answer.json(), list):
            return [
                f"woocommerce: {self.settings.url} answered GET orders without a list of "
                "orders; is url the shop's home address?"
            ]
        # Coupons, notes and tags are writes: a Read key logs in and fails them all. WooCommerce checks
        # the key's write permission (401) before it looks for the order; order 0 never exists (404 or
        # 400 with a Read/Write key), so the probe changes nothing.
        try:
            self.client.request("POST", "orders/0", data={}, retries=0)
        except PlatformError as error:
            if " 401 " in error.message or " 403 " in error.message:
                return [f"the API key cannot write ({error.message}): coupons, order notes and tags would "
                        "fail; give the key Read/Write permissions"]  # fmt: skip
        return []


def _explain(error: PlatformError, url: str) -> str:
    message = error.message
    if " 401 " in message or " 403 " in message:
        return f"{message} (check consumer_key/consumer_secret and that the key has Read/Write permissions)"
    if message.startswith("woocommerce 404"):
        return f"{message} (url {url})"
    return message


def _with_order(event: Event, order: Order) -> Event:
    """The event carrying the completed order, and its refund as the order now knows it."""
    refund = order.refund(event.refund.platform_id) if event.refund is not None else None
    return dataclasses.replace(event, order=order, refund=refund or event.refund)


def coupon_difference(spec: CouponSpec, coupon: Mapping[str, Any]) -> str:
    """The first way ``coupon`` (a WooCommerce answer) differs from what ``spec``
    creates, like ``amount is '50.00', expected '10'``; empty when it matches."""
    emails = coupon.get("email_restrictions")
    found_emails = sorted(normalise_email(str(e)) for e in emails) if isinstance(emails, list) else emails
    wanted_emails = [normalise_email(spec.customer_email)] if spec.customer_email.strip() else []
    minimum = spec.minimum_subtotal.amount if spec.minimum_subtotal is not None else Decimal(0)
    expires = _whole_seconds(spec.expires_at) if spec.expires_at is not None else None
    # (field, as compared on the shop, as compared from the spec, as the shop wrote it, as we would)
    checks: list[tuple[str, Any, Any, Any, Any]] = [
        ("discount_type", coupon.get("discount_type"), COUPON_KINDS.get(spec.kind), None, None),
        ("amount", _decimal(coupon.get("amount")), spec.value, coupon.get("amount"), str(spec.value)),
        ("email_restrictions", found_emails, wanted_emails, None, None),
        ("usage_limit", coupon.get("usage_limit"), 1, None, None),
        ("usage_limit_per_user", coupon.get("usage_limit_per_user"), 1, None, None),
        ("individual_use", coupon.get("individual_use"), True, None, None),
        (
            "date_expires_gmt",
            _coupon_expiry(coupon),
            expires,
            coupon.get("date_expires_gmt"),
            _wc_time(expires) if expires else None,
        ),
        (
            "minimum_amount",
            _decimal(coupon.get("minimum_amount")) or Decimal(0),
            minimum,
            coupon.get("minimum_amount"),
            str(minimum),
        ),
    ]
    for name, found, wanted, found_text, wanted_text in checks:
        if found != wanted:
            shown = found_text if found_text is not None or wanted_text is not None else found
            return f"{name} is {shown!r}, expected {wanted_text if wanted_text is not None else wanted!r}"
    return ""


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except ArithmeticError:
        return None


def _coupon_expiry(coupon: Mapping[str, Any]) -> datetime | None:
    """The coupon's expiry as the shop holds it (``date_expires_gmt``), whole seconds, UTC."""
    when = parse_gmt(coupon.get("date_expires_gmt"))
    return _whole_seconds(when) if when is not None else None


def _whole_seconds(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(microsecond=0)


def _subscription(hook: Mapping[str, Any], *, topic: str = "", address: str = "") -> WebhookSubscription:
    """A WooCommerce webhook. Its REST answer has no failure count (WC_Webhook keeps
    one, unexposed), so the count is known only when a shop's answer carries it."""
    failures = hook.get("failure_count")
    return WebhookSubscription(
        str(hook["id"]),
        str(hook.get("topic") or topic),
        str(hook.get("delivery_url") or address),
        status=str(hook.get("status") or "active"),
        failure_count=failures if isinstance(failures, int) and not isinstance(failures, bool) else None,
    )


def _identity(payload: Any) -> tuple[str, str]:
    if not isinstance(payload, Mapping):
        return "", ""
    return str(payload.get("id")), str(payload.get("date_modified_gmt"))


def _path_id(value: str) -> str:
    """Ids go into URL paths: only digits, so nothing can reach another endpoint."""
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        raise PlatformError(f"woocommerce: {value!r} is not a WooCommerce id", transient=False)
    return text


def _wc_time(when: datetime) -> str:
    """WooCommerce's GMT date format: ISO 8601 without offset."""
    return when.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat()


#: Where the adapter keeps the store's currency once read.
CURRENCY_KEY = "shop_currency"


def _product_ids(record: Any, key: str) -> list[str]:
    values = record.get(key) if isinstance(record, Mapping) else None
    if not isinstance(values, list):
        return []
    return [str(v) for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0]


def _related_product(product: Mapping[str, Any], currency: str) -> RelatedProduct | None:
    """A listed product as a mail shows it; None without a name or an http(s) page."""
    name, link = product.get("name"), product.get("permalink")
    url = tracking_link(link) if isinstance(link, str) else ""
    if not isinstance(name, str) or not name.strip() or not url or product.get("status", "publish") != "publish":
        return None
    images = product.get("images")
    first = images[0] if isinstance(images, list) and images and isinstance(images[0], Mapping) else {}
    image = tracking_link(first.get("src")) if isinstance(first.get("src"), str) else ""
    price = None
    text = product.get("price")
    if currency and isinstance(text, str) and text.strip():
        try:
            price = Money.parse(text, currency)
        except ValueError:
            price = None
    return RelatedProduct(platform_id=str(product.get("id")), title=name.strip(), url=url, image_url=image, price=price)
