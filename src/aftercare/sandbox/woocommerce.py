"""A sandbox WooCommerce shop: REST API v3 under /wp-json/wc/v3 and webhooks.

Authentication is what WooCommerce does on plain HTTP: OAuth 1.0a one-legged
(``oauth_consumer_key``, ``oauth_signature`` HMAC-SHA1/SHA256 keyed with
``consumer_secret&``, checked as ``check_oauth_signature()`` does), its
parameters in the query or an ``Authorization: OAuth`` header; HTTP Basic and
``consumer_key``/``consumer_secret`` query parameters count only over TLS on a
real shop, so here they get the endpoint's 401. ``key_permissions="read"``
answers writes as a Read key does. Coupons keep ``date_expires`` and ignore
``date_expires_gmt`` on create, and their codes are stored lower-cased, as
WooCommerce 11 does. Webhooks carry the whole order as the
REST API returns it, built when delivered (so quick changes collapse into one
delivery showing the final state, as on a real shop), signed with the
webhook's secret; the creation ping is ``webhook_id=N``, unsigned. A failed
delivery is never retried; after more than ``max_failures`` failures in a row
the webhook is disabled, and re-activating it (PUT status=active) keeps its
failure count, so its next failure disables it again.

What WooCommerce 11.0.1 was seen doing (../shared/fixtures/woocommerce/wc-11.0.1)
is done here too: a new order sends both ``order.created`` and ``order.updated``;
the customers endpoint drops meta keys starting with ``_`` (protected meta) on
write and on read, answering 200; an order's ``refunds[]`` summary has neither
lines nor date, ``GET orders/{id}/refunds`` has both; ``date_completed_gmt``
stays when the status moves on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

import requests

from .base import SandboxShop
from .delivery import Attempt, Delivery
from .http import Request, Response, Router, json_response
from .state import Address, Coupon, Customer, MoveError, Note, Order, Product, Refund, UnknownRecord, money

API = "/wp-json/wc/v3"
_OAUTH_REQUIRED = ("oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method")
#: parse_header()'s pattern for the ``Authorization: OAuth ...`` header.
_OAUTH_HEADER_PARAM = re.compile(r'(oauth_[a-z_-]*)=(?::?"([^"]*)"|([^,]*))')
VALID_RESOURCES = ("coupon", "customer", "order", "product")
VALID_EVENTS = ("created", "updated", "deleted", "restored")
#: WooCommerce's answers to a request without credentials, by what it tried to do.
_CANNOT = {
    "view": "Sorry, you cannot list resources.",
    "create": "Sorry, you are not allowed to create resources.",
    "edit": "Sorry, you are not allowed to edit this resource.",
    "delete": "Sorry, you are not allowed to delete this resource.",
}
_TOPIC_HOOKS = {
    "order.created": ["woocommerce_new_order"],
    "order.updated": ["woocommerce_update_order", "woocommerce_order_refunded"],
    "order.deleted": ["wp_trash_post", "woocommerce_trash_order"],
    "order.restored": ["untrashed_post", "woocommerce_untrash_order"],
}


def wc_error(code: str, message: str, status: int, **data: Any) -> Response:
    return json_response({"code": code, "message": message, "data": {"status": status, **data}}, status)


def address_json(a: Address) -> dict[str, Any]:
    """An address as WooCommerce's REST API writes it (``billing`` adds email and phone)."""
    return {
        "first_name": a.first_name,
        "last_name": a.last_name,
        "company": a.company,
        "address_1": a.address1,
        "address_2": a.address2,
        "city": a.city,
        "state": a.province,
        "postcode": a.zip,
        "country": a.country_code,
    }


def local_time(moment: datetime | None) -> str | None:
    """WooCommerce dates: ISO 8601 without offset (the shop runs on UTC here)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() if moment else None


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WooCommerceSandbox(SandboxShop):
    platform = "woocommerce"
    first_id = 1001
    #: TrackShip's shipment states that report a problem (its ``shipment_status`` order meta).
    problem_statuses = ("failure", "exception", "on_hold", "return_to_sender")
    pickup_status = "available_for_pickup"

    def __init__(
        self,
        *,
        consumer_key: str = "ck_sandbox",
        consumer_secret: str = "cs_sandbox",
        secret: str = "sandbox-webhook-secret",
        max_failures: int = 5,
        oauth_window: int = 15 * 60,
        key_permissions: str = "read_write",
        **options: Any,
    ) -> None:
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.default_secret = secret
        self.max_failures = max_failures
        self.oauth_window = oauth_window
        self.key_permissions = key_permissions
        self.webhooks: dict[int, dict[str, Any]] = {}
        self._nonces: set[str] = set()
        super().__init__(**options)

    webhook_user_agent = "WooCommerce/9.9.0 Hookshot (WordPress/6.8)"

    def adapter_settings(self) -> dict[str, Any]:
        birthday = {"birthday_meta_key": self.birthday_field} if self.birthday_field else {}
        return {"url": self.url, "consumer_key": self.consumer_key, "consumer_secret": self.consumer_secret, **birthday}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "webhook_secret": self.default_secret}

    # -- routes -----------------------------------------------------------------
    def add_routes(self, router: Router) -> None:
        routes = [
            ("GET", "/orders", self._orders_list),
            ("GET", r"/orders/(?P<id>\d+)", self._order_get),
            ("PUT", r"/orders/(?P<id>\d+)", self._order_update),
            ("POST", r"/orders/(?P<id>\d+)", self._order_update),
            ("GET", r"/orders/(?P<id>\d+)/notes", self._notes_list),
            ("GET", r"/orders/(?P<id>\d+)/refunds", self._refunds_list),
            ("POST", r"/orders/(?P<id>\d+)/notes", self._note_create),
            ("GET", "/coupons", self._coupons_list),
            ("POST", "/coupons", self._coupon_create),
            ("GET", r"/coupons/(?P<id>\d+)", self._coupon_get),
            ("GET", "/customers", self._customers_list),
            ("GET", r"/customers/(?P<id>\d+)", self._customer_get),
            ("PUT", r"/customers/(?P<id>\d+)", self._customer_update),
            ("GET", "/products", self._products_list),
            ("GET", r"/products/(?P<id>\d+)", self._product_get),
            ("GET", "/data/currencies/current", self._currency_current),
            ("GET", "/webhooks", self._webhooks_list),
            ("POST", "/webhooks", self._webhook_create),
            ("GET", r"/webhooks/(?P<id>\d+)", self._webhook_get),
            ("PUT", r"/webhooks/(?P<id>\d+)", self._webhook_update),
            ("DELETE", r"/webhooks/(?P<id>\d+)", self._webhook_delete),
        ]
        for method, path, handler in routes:
            router.add(method, API + path, self._authenticated(handler))

    def _authenticated(self, handler):
        def guarded(request: Request) -> Response:
            problem = self._authenticate(request)
            if problem is not None:
                return problem
            with self.state.lock:
                return handler(request)

        return guarded

    def _authenticate(self, request: Request) -> Response | None:
        """None when the request carries the shop's key, else WooCommerce's 401.

        As ``WC_REST_Authentication`` on a shop without TLS (``is_ssl()`` false):
        only OAuth 1.0a counts, its parameters from the query or the
        ``Authorization: OAuth ...`` header; HTTP Basic and ``consumer_key`` /
        ``consumer_secret`` query parameters are not even looked at over plain
        HTTP, so they get the endpoint's "cannot" answer."""
        params = self._oauth_params(request)
        if params:
            problem = self._check_oauth(request, params)
        else:
            verb = {"GET": "view", "POST": "create", "PUT": "edit", "DELETE": "delete"}.get(request.method, "view")
            problem = wc_error(f"woocommerce_rest_cannot_{verb}", _CANNOT[verb], 401)
        if problem is None and request.method != "GET" and self.key_permissions == "read":
            return wc_error(
                "woocommerce_rest_authentication_error", "The API key provided does not have write permissions.", 401
            )
        return problem

    def _oauth_params(self, request: Request) -> dict[str, str]:
        """``get_oauth_parameters()``: $_GET (the last of a repeated name wins), then
        the header's ``oauth_*`` values over them."""
        params = dict(request.query_pairs)
        header = request.headers.get("authorization", "").strip()
        if header.startswith("OAuth "):
            for name, quoted, bare in _OAUTH_HEADER_PARAM.findall(header):
                params[name] = unquote_plus(quoted or bare)
        if not any(params.get(name) for name in _OAUTH_REQUIRED):
            return {}
        return params

    def _check_oauth(self, request: Request, params: dict[str, str]) -> Response | None:
        missing = [name for name in _OAUTH_REQUIRED if not params.get(name)]
        if missing:
            noun = "parameter" if len(missing) == 1 else "parameters"
            return wc_error(
                "woocommerce_rest_authentication_missing_parameter", f"Missing OAuth {noun} {', '.join(missing)}", 401
            )
        if params["oauth_consumer_key"] != self.consumer_key:
            return wc_error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        sent = unquote(params.pop("oauth_signature").replace(" ", "+"))
        # check_oauth_signature(): sort by name, rawurlencode names and values, then
        # each "name=value" again, joined with %26; the URL is the shop's home + path.
        pairs = [(_rawurlencode(k), _rawurlencode(v)) for k, v in sorted(params.items())]
        query = "%26".join(_rawurlencode(f"{k}={v}") for k, v in pairs)
        string_to_sign = f"{request.method}&{_rawurlencode(f'http://{request.host}{request.path}')}&{query}"
        digest = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}.get(params["oauth_signature_method"])
        if digest is None:
            return wc_error(
                "woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid.", 401
            )
        expected = base64.b64encode(
            hmac.new(f"{self.consumer_secret}&".encode(), string_to_sign.encode(), digest).digest()
        ).decode()
        if not hmac.compare_digest(expected, sent):
            return wc_error(
                "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match.", 401
            )
        try:
            stamp = int(params["oauth_timestamp"])
        except ValueError:
            stamp = 0
        if abs(time.time() - stamp) > self.oauth_window:
            return wc_error("woocommerce_rest_authentication_error", "Invalid timestamp.", 401)
        nonce = params["oauth_nonce"]  # kept per key, whatever its timestamp
        if nonce in self._nonces:
            return wc_error(
                "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used.", 401
            )
        self._nonces.add(nonce)
        return None

    # -- shapes -------------------------------------------------------------------
    def links(self, path: str, up: str | None = None) -> dict[str, Any]:
        base = f"{self.url}{API}"
        links = {"self": [{"href": f"{base}/{path}"}], "collection": [{"href": f"{base}/{path.rsplit('/', 1)[0]}"}]}
        if up:
            links["up"] = [{"href": f"{base}/{up}"}]
        return links

    def order_json(self, order: Order) -> dict[str, Any]:
        customer = self.state.customers.get(order.customer_id)
        billing, shipping = order.billing_address, order.shipping_address

        meta = list(order.meta)
        meta_ids = {entry["key"] for entry in meta}
        if "wpml_language" not in meta_ids:
            meta.append({"id": order.id * 10, "key": "wpml_language", "value": order.locale})
        if order.fulfillments and "_wc_shipment_tracking_items" not in meta_ids:
            items = [
                {
                    "tracking_provider": "",
                    "custom_tracking_provider": f.carrier,
                    "custom_tracking_link": f.tracking_url,
                    "tracking_number": f.tracking_number,
                    "date_shipped": str(int(f.created_at.timestamp())),
                    "tracking_id": f.tracking_id,
                }
                for f in order.fulfillments
            ]
            meta.append({"id": order.id * 10 + 1, "key": "_wc_shipment_tracking_items", "value": items})
        return {
            "id": order.id,
            "parent_id": 0,
            "number": str(order.id),
            "order_key": f"wc_order_{hashlib.md5(str(order.id).encode(), usedforsecurity=False).hexdigest()[:13]}",
            "created_via": "checkout",
            "version": "9.9.0",
            "status": order.status,
            "currency": order.currency,
            "date_created": local_time(order.created_at),
            "date_created_gmt": local_time(order.created_at),
            "date_modified": local_time(order.updated_at),
            "date_modified_gmt": local_time(order.updated_at),
            "discount_total": "0.00",
            "discount_tax": "0.00",
            "shipping_total": money(order.shipping_price),
            "shipping_tax": "0.00",
            "cart_tax": "0.00",
            "total": money(order.total),
            "total_tax": "0.00",
            "prices_include_tax": True,
            "customer_id": order.customer_id if customer and customer.registered else 0,
            "customer_ip_address": "203.0.113.7",
            "customer_user_agent": "Mozilla/5.0",
            "customer_note": "",
            "billing": {**address_json(billing), "phone": billing.phone, "email": order.email},
            "shipping": {**address_json(shipping), "phone": shipping.phone},
            "payment_method": order.payment_method,
            "payment_method_title": order.payment_method_title,
            "transaction_id": f"ch_{order.id}" if order.paid_at else "",
            "date_paid": local_time(order.paid_at),
            "date_paid_gmt": local_time(order.paid_at),
            "date_completed": local_time(order.completed_at),
            "date_completed_gmt": local_time(order.completed_at),
            "cart_hash": "",
            "meta_data": meta,
            "line_items": [
                {
                    "id": line.id,
                    "name": line.title + (f" - {line.variant_title}" if line.variant_title else ""),
                    "product_id": line.product_id,
                    "variation_id": line.variant_id,
                    "quantity": line.quantity,
                    "tax_class": "",
                    "subtotal": money(line.total),
                    "subtotal_tax": "0.00",
                    "total": money(line.total),
                    "total_tax": "0.00",
                    "taxes": [],
                    "meta_data": [],
                    "sku": line.sku,
                    "price": float(line.unit_price),
                }
                for line in order.lines
            ],
            "tax_lines": [],
            "shipping_lines": [
                {
                    "id": order.id * 10 + 2,
                    "method_title": "Flat rate",
                    "method_id": "flat_rate",
                    "total": money(order.shipping_price),
                    "total_tax": "0.00",
                    "taxes": [],
                    "meta_data": [],
                }
            ],
            "fee_lines": [],
            "coupon_lines": [
                {"id": index + 1, "code": code, "discount": "0.00", "discount_tax": "0.00", "meta_data": []}
                for index, code in enumerate(order.discount_codes)
            ],
            # The summary: no lines, no date (those are in GET orders/{id}/refunds).
            "refunds": [
                {"id": r.id, "reason": r.reason, "total": f"-{money(r.amount)}", "total_tax": "0.00"}
                for r in reversed(order.refunds)
            ],
            "_links": self.links(f"orders/{order.id}"),
        }

    def store_customer_field(self, customer: Customer, field: str, value: str) -> None:
        """A customer meta key (a checkout field plugin's ``billing_birth_date``, say)."""
        _set_meta(customer.meta, {"key": field, "value": value}, self.state.next_id)

    #: The store's currency (WooCommerce > Settings > General), its products' prices' currency.
    currency = "EUR"

    def product_json(self, product: Product) -> dict[str, Any]:
        """``GET products/{id}`` as WooCommerce 11 answers it (the fields related products use, and
        their neighbours; no recorded answer is in the fixtures: this follows the REST reference)."""
        created = local_time(self.now())
        price = money(product.price)
        return {
            "id": product.id,
            "name": product.title,
            "slug": product.handle,
            "permalink": f"{self.url}/product/{product.handle}/",
            "date_created": created,
            "date_created_gmt": created,
            "type": "simple",
            "status": "publish" if product.published else "draft",
            "catalog_visibility": "visible",
            "sku": "",
            "price": price,
            "regular_price": price,
            "sale_price": "",
            "purchasable": product.published,
            "images": (
                [{"id": product.id * 10, "src": product.image_url, "name": product.handle, "alt": product.title}]
                if product.image_url
                else []
            ),
            "upsell_ids": list(product.upsells),
            "cross_sell_ids": list(product.related),
            "meta_data": [],
            "_links": self.links(f"products/{product.id}"),
        }

    def customer_json(self, customer: Customer) -> dict[str, Any]:
        address = address_json(customer.address)
        paying = any(o.customer_id == customer.id and o.paid_at for o in self.state.orders.values())
        return {
            "id": customer.id,
            "date_created": local_time(customer.created_at),
            "date_created_gmt": local_time(customer.created_at),
            "date_modified": local_time(customer.updated_at),
            "date_modified_gmt": local_time(customer.updated_at),
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "role": "customer",
            "username": customer.email.split("@")[0],
            "billing": {**address, "email": customer.email, "phone": customer.phone},
            "shipping": address,
            "is_paying_customer": paying,
            "avatar_url": "https://secure.gravatar.com/avatar/?s=96&d=mm&r=g",
            "meta_data": [entry for entry in customer.meta if not _protected(entry.get("key"))],
            "_links": self.links(f"customers/{customer.id}"),
        }

    def coupon_json(self, coupon: Coupon) -> dict[str, Any]:
        return {
            "id": coupon.id,
            "code": coupon.code,
            "amount": money(coupon.amount),
            "status": "publish",
            "date_created": local_time(coupon.created_at),
            "date_created_gmt": local_time(coupon.created_at),
            "date_modified": local_time(coupon.updated_at),
            "date_modified_gmt": local_time(coupon.updated_at),
            "discount_type": coupon.kind,
            "description": coupon.title,
            "date_expires": local_time(coupon.ends_at),
            "date_expires_gmt": local_time(coupon.ends_at),
            "usage_count": 0,
            "individual_use": coupon.individual_use,
            "product_ids": [],
            "excluded_product_ids": [],
            "usage_limit": coupon.usage_limit,
            "usage_limit_per_user": coupon.usage_limit_per_user,
            "limit_usage_to_x_items": None,
            "free_shipping": False,
            "product_categories": [],
            "excluded_product_categories": [],
            "exclude_sale_items": False,
            "minimum_amount": money(coupon.minimum_amount or 0),
            "maximum_amount": "0.00",
            "email_restrictions": list(coupon.email_restrictions),
            "used_by": [],
            "meta_data": [],
            "_links": self.links(f"coupons/{coupon.id}"),
        }

    def webhook_json(self, hook: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in hook.items() if k not in ("secret", "failure_count", "pending_delivery")}
        data["date_created"] = data["date_created_gmt"] = local_time(hook["date_created"])
        data["date_modified"] = data["date_modified_gmt"] = local_time(hook["date_modified"])
        data["_links"] = self.links(f"webhooks/{hook['id']}")
        return data

    # -- orders ---------------------------------------------------------------------
    def _orders_list(self, request: Request) -> Response:
        q = request.query
        orders = list(self.state.orders.values())
        if q.get("modified_after"):
            since = _gmt(q["modified_after"])
            orders = [o for o in orders if o.updated_at > since]
        if q.get("modified_before"):
            until = _gmt(q["modified_before"])
            orders = [o for o in orders if o.updated_at < until]
        if q.get("status") and q["status"] != "any":
            wanted = {s.strip().removeprefix("wc-") for s in q["status"].split(",")}
            orders = [o for o in orders if o.status in wanted]
        if q.get("customer"):
            orders = [o for o in orders if str(o.customer_id) == q["customer"]]
        if q.get("search"):
            term = q["search"].lower()
            orders = [o for o in orders if term in o.email.lower() or term == str(o.id)]
        orderby = q.get("orderby", "date")
        sort = {
            "date": lambda o: (o.created_at, o.id),
            "modified": lambda o: (o.updated_at, o.id),
            "id": lambda o: (o.id,),
            "include": lambda o: (o.id,),
        }.get(orderby)
        if sort is None:
            return wc_error(
                "rest_invalid_param",
                "Invalid parameter(s): orderby",
                400,
                params={"orderby": "orderby is not one of date, id, include, title, slug, modified."},
            )
        orders.sort(key=sort, reverse=q.get("order", "desc") == "desc")
        return self._page(request, orders, self.order_json)

    def _page(self, request: Request, items: list, render) -> Response:
        q = request.query
        try:
            per_page = int(q.get("per_page", 10))
            page = int(q.get("page", 1))
        except ValueError:
            return wc_error("rest_invalid_param", "Invalid parameter(s): per_page, page", 400)
        if not 1 <= per_page <= 100:
            return wc_error(
                "rest_invalid_param",
                "Invalid parameter(s): per_page",
                400,
                params={"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
            )
        total = len(items)
        pages = math.ceil(total / per_page)
        if page > max(pages, 1):
            return wc_error(
                "woocommerce_rest_invalid_page_number",
                "The page number requested is larger than the number of pages available.",
                400,
            )
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        return json_response([render(item) for item in chunk], 200, headers)

    def _order(self, request: Request) -> Order | Response:
        try:
            return self.state.order(int(request.params["id"]))
        except UnknownRecord:
            return wc_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)

    def _order_get(self, request: Request) -> Response:
        order = self._order(request)
        return order if isinstance(order, Response) else json_response(self.order_json(order))

    def _order_update(self, request: Request) -> Response:
        order = self._order(request)
        if isinstance(order, Response):
            return order
        body = request.json()
        if "status" in body:
            order.status = str(body["status"]).removeprefix("wc-")
        for entry in body.get("meta_data") or []:
            _set_meta(order.meta, entry, lambda: self.state.next_id())
        order.updated_at = self.now()
        self._trigger("order.updated", order.id)
        return json_response(self.order_json(order))

    def _notes_list(self, request: Request) -> Response:
        order = self._order(request)
        if isinstance(order, Response):
            return order
        return json_response([self.note_json(order, note) for note in reversed(order.notes)])

    def _refunds_list(self, request: Request) -> Response:
        order = self._order(request)
        if isinstance(order, Response):
            return order
        refunds = sorted(order.refunds, key=lambda r: r.id, reverse=True)
        return self._page(request, refunds, lambda refund: self.refund_json(order, refund))

    def refund_json(self, order: Order, refund: Refund) -> dict[str, Any]:
        """A refund as ``GET orders/{id}/refunds`` gives it: its lines are refund items, each
        naming the order line it refunds in ``_refunded_item_id`` meta, quantities negative."""
        lines = {line.id: line for line in order.lines}
        return {
            "id": refund.id,
            "date_created": local_time(refund.created_at),
            "date_created_gmt": local_time(refund.created_at),
            "amount": money(refund.amount),
            "reason": refund.reason,
            "refunded_by": 1,
            "refunded_payment": False,
            "meta_data": [{"id": refund.id * 10, "key": "_refund_type", "value": "partial"}],
            "line_items": [
                {
                    "id": refund.id + index + 1,
                    "name": lines[line_id].title,
                    "product_id": lines[line_id].product_id,
                    "variation_id": lines[line_id].variant_id,
                    "quantity": -lines[line_id].quantity,
                    "subtotal": f"-{money(lines[line_id].total)}",
                    "total": f"-{money(lines[line_id].total)}",
                    "meta_data": [
                        {
                            "id": refund.id * 10 + index + 1,
                            "key": "_refunded_item_id",
                            "value": str(line_id),
                            "display_key": "_refunded_item_id",
                            "display_value": str(line_id),
                        }
                    ],
                    "sku": lines[line_id].sku,
                    "price": float(lines[line_id].unit_price),
                }
                for index, line_id in enumerate(refund.line_ids)
                if line_id in lines
            ],
            "shipping_lines": [],
            "tax_lines": [],
            "fee_lines": [],
            "_links": self.links(f"orders/{order.id}/refunds/{refund.id}", up=f"orders/{order.id}"),
        }

    def note_json(self, order: Order, note: Note) -> dict[str, Any]:
        return {
            "id": note.id,
            "author": note.author,
            "date_created": local_time(note.created_at),
            "date_created_gmt": local_time(note.created_at),
            "note": note.text,
            "customer_note": note.customer_note,
            "_links": self.links(f"orders/{order.id}/notes/{note.id}", up=f"orders/{order.id}"),
        }

    def _note_create(self, request: Request) -> Response:
        order = self._order(request)
        if isinstance(order, Response):
            return order
        body = request.json()
        if not str(body.get("note") or "").strip():
            return wc_error("rest_missing_callback_param", "Missing parameter(s): note", 400)
        note = Note(
            self.state.next_id(),
            str(body["note"]),
            bool(body.get("customer_note")),
            self.now(),
            author="admin" if body.get("added_by_user") else "WooCommerce",
        )
        order.notes.append(note)
        return json_response(self.note_json(order, note), 201)

    # -- coupons --------------------------------------------------------------------
    def _coupons_list(self, request: Request) -> Response:
        coupons = sorted(self.state.coupons.values(), key=lambda c: c.id, reverse=True)
        if request.query.get("code"):
            wanted = request.query["code"].lower()
            coupons = [c for c in coupons if c.code.lower() == wanted]
        return self._page(request, coupons, self.coupon_json)

    def _coupon_get(self, request: Request) -> Response:
        coupon = self.state.coupons.get(int(request.params["id"]))
        if coupon is None:
            return wc_error("woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.", 404)
        return json_response(self.coupon_json(coupon))

    def _coupon_create(self, request: Request) -> Response:
        body = request.json()
        code = str(body.get("code") or "").strip()
        if not code:
            return wc_error("rest_missing_callback_param", "Missing parameter(s): code", 400, params=["code"])
        if self.state.coupon_by_code(code):
            return wc_error("woocommerce_rest_coupon_code_already_exists", "The coupon code already exists", 400)
        kind = body.get("discount_type", "fixed_cart")
        if kind not in ("percent", "fixed_cart", "fixed_product"):
            return wc_error("rest_invalid_param", "Invalid parameter(s): discount_type", 400)
        try:
            amount = Decimal(str(body.get("amount") or "0"))
            minimum = Decimal(str(body["minimum_amount"])) if body.get("minimum_amount") else None
        except InvalidOperation:
            return wc_error("rest_invalid_param", "Invalid parameter(s): amount", 400)
        now = self.now()
        # WooCommerce 11 ignores date_expires_gmt on create; date_expires is read
        # in the shop's time zone (UTC here) unless it carries an offset.
        expires = body.get("date_expires")
        coupon = Coupon(
            id=self.state.next_id(),
            code=code.lower(),  # wc_format_coupon_code lower-cases
            kind=kind,
            amount=amount,
            created_at=now,
            updated_at=now,
            title=str(body.get("description") or ""),
            ends_at=_gmt(expires) if expires else None,
            usage_limit=body.get("usage_limit"),
            usage_limit_per_user=body.get("usage_limit_per_user"),
            individual_use=bool(body.get("individual_use")),
            email_restrictions=[str(e).lower() for e in body.get("email_restrictions") or []],
            minimum_amount=minimum,
            raw=dict(body),
        )
        self.state.coupons[coupon.id] = coupon
        return json_response(self.coupon_json(coupon), 201)

    # -- products -------------------------------------------------------------------
    def _products_list(self, request: Request) -> Response:
        """``include`` (ids, comma-separated) and ``status`` filter, as WooCommerce's do."""
        products = sorted(self.state.products.values(), key=lambda p: p.id)
        include = request.query.get("include")
        if include:
            try:
                wanted = {int(part) for part in include.split(",") if part.strip()}
            except ValueError:
                return wc_error("rest_invalid_param", "Invalid parameter(s): include", 400)
            products = [p for p in products if p.id in wanted]
        status = request.query.get("status", "any")
        if status != "any":
            products = [p for p in products if ("publish" if p.published else "draft") == status]
        return self._page(request, products, self.product_json)

    def _product_get(self, request: Request) -> Response:
        product = self.state.products.get(int(request.params["id"]))
        if product is None:
            return wc_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
        return json_response(self.product_json(product))

    def _currency_current(self, request: Request) -> Response:
        return json_response({"code": self.currency, "name": self.currency, "symbol": "&euro;"})

    # -- customers ------------------------------------------------------------------
    def _customers_list(self, request: Request) -> Response:
        customers = [c for c in self.state.customers.values() if c.registered]
        if request.query.get("email"):
            wanted = request.query["email"].lower()
            customers = [c for c in customers if c.email.lower() == wanted]
        return self._page(request, sorted(customers, key=lambda c: c.id), self.customer_json)

    def _customer(self, request: Request) -> Customer | Response:
        customer = self.state.customers.get(int(request.params["id"]))
        if customer is None or not customer.registered:
            return wc_error("woocommerce_rest_invalid_id", "Invalid resource ID.", 404)
        return customer

    def _customer_get(self, request: Request) -> Response:
        customer = self._customer(request)
        return customer if isinstance(customer, Response) else json_response(self.customer_json(customer))

    def _customer_update(self, request: Request) -> Response:
        customer = self._customer(request)
        if isinstance(customer, Response):
            return customer
        body = request.json()
        for entry in body.get("meta_data") or []:
            if not _protected(entry.get("key")):  # WC_REST_Customers_Controller skips protected meta
                _set_meta(customer.meta, entry, lambda: self.state.next_id())
        for key in ("first_name", "last_name"):
            if key in body:
                setattr(customer, key, str(body[key]))
        customer.updated_at = self.now()
        self._trigger("customer.updated", customer.id)
        return json_response(self.customer_json(customer))

    # -- webhooks --------------------------------------------------------------------
    def _webhooks_list(self, request: Request) -> Response:
        hooks = sorted(self.webhooks.values(), key=lambda h: h["id"])
        if request.query.get("status") and request.query["status"] != "all":
            hooks = [h for h in hooks if h["status"] == request.query["status"]]
        return self._page(request, hooks, self.webhook_json)

    def _webhook(self, request: Request) -> dict[str, Any] | Response:
        hook = self.webhooks.get(int(request.params["id"]))
        if hook is None:
            return wc_error("woocommerce_rest_webhook_invalid_id", "Invalid ID.", 404)
        return hook

    def _webhook_get(self, request: Request) -> Response:
        hook = self._webhook(request)
        return hook if isinstance(hook, Response) else json_response(self.webhook_json(hook))

    def _webhook_create(self, request: Request) -> Response:
        body = request.json()
        topic = str(body.get("topic") or "")
        resource, _, event = topic.partition(".")
        if not (resource in VALID_RESOURCES and event in VALID_EVENTS) and not topic.startswith(
            ("action.woocommerce_", "action.wc_")
        ):
            return wc_error(
                "rest_invalid_param", "Invalid parameter(s): topic", 400, params={"topic": "Webhook topic is invalid."}
            )
        if not str(body.get("delivery_url") or "").startswith(("http://", "https://")):
            return wc_error("rest_invalid_param", "Invalid parameter(s): delivery_url", 400)
        now = self.now()
        hook = {
            "id": self.state.next_id(),
            "name": body.get("name") or f"Webhook created on {now:%B %d, %Y @ %I:%M %p}",
            "status": body.get("status", "active"),
            "topic": topic,
            "resource": resource,
            "event": event,
            "hooks": _TOPIC_HOOKS.get(topic, [topic.removeprefix("action.")]),
            "delivery_url": body["delivery_url"],
            "secret": body.get("secret") or self.default_secret,
            "date_created": now,
            "date_modified": now,
            "failure_count": 0,
            "pending_delivery": True,
        }
        self.webhooks[hook["id"]] = hook
        self._ping(hook)
        return json_response(self.webhook_json(hook), 201)

    def _webhook_update(self, request: Request) -> Response:
        hook = self._webhook(request)
        if isinstance(hook, Response):
            return hook
        body = request.json()
        for key in ("name", "status", "delivery_url", "secret"):
            if key in body:
                hook[key] = body[key]
        hook["date_modified"] = self.now()
        if hook["status"] == "active" and hook["pending_delivery"]:
            self._ping(hook)
        return json_response(self.webhook_json(hook))

    def _webhook_delete(self, request: Request) -> Response:
        hook = self._webhook(request)
        if isinstance(hook, Response):
            return hook
        if request.query.get("force") not in ("true", "1"):
            return wc_error("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
        del self.webhooks[hook["id"]]
        return json_response(self.webhook_json(hook))

    def _ping(self, hook: dict[str, Any]) -> None:
        """``deliver_ping()``: ``webhook_id=N``, no X-WC header, no signature; OK only on 200."""
        try:
            answer = requests.post(
                hook["delivery_url"],
                data=f"webhook_id={hook['id']}",
                headers={"User-Agent": self.webhook_user_agent, "Content-Type": "application/x-www-form-urlencoded"},
                timeout=self.sender.timeout,
                allow_redirects=False,
            )
        except requests.RequestException:
            return
        if answer.status_code == 200:
            hook["pending_delivery"] = False

    # -- state moves -> webhooks -------------------------------------------------------
    def complete(self, order_id: int) -> Order:
        """The merchant marks a paid order completed, without any tracking plugin."""
        with self.state.lock:
            order = self._live(order_id)
            if order.paid_at is None:
                raise MoveError(f"order {order.id} is not paid: pay it before completing it")
            order.status = "completed"
            order.updated_at = order.completed_at = self.now()
            self.order_changed(order, "completed")
            return order

    def order_changed(self, order: Order, move: str, subject: Any = None) -> None:
        if move == "delivered":
            order.updated_at = self.now()  # a status change always moves date_modified
        if move == "delivery_problem":
            # TrackShip keeps one entry per tracking item in the order meta ``shipment_status``
            # (the carrier's state and when it was set, in GMT); saving meta moves date_modified.
            order.updated_at = self.now()
            states = [
                {
                    "status": f.shipment_status or "in_transit",
                    "status_date": local_time(f.updated_at).replace("T", " "),
                    "tracking_number": f.tracking_number,
                }
                for f in order.fulfillments
            ]
            _set_meta(order.meta, {"key": "shipment_status", "value": states}, self.state.next_id)
        if move == "created":
            # WooCommerce 11 fires both for one new order (the save after creation is an update).
            self._trigger("order.created", order.id)
        self._trigger("order.updated", order.id)

    def _trigger(self, topic: str, resource_id: int) -> None:
        """Queue ``topic`` for every active webhook; like Action Scheduler, one pending
        delivery per (webhook, resource) at a time, its payload built when sent."""
        for hook in list(self.webhooks.values()):
            if hook["status"] != "active" or hook["topic"] != topic:
                continue
            if self.sender.pending(lambda d, h=hook: d.subscription_id == h["id"] and d.id.endswith(f":{resource_id}")):
                continue
            self.sender.submit(
                Delivery(
                    id=f"{uuid.uuid4().hex}:{resource_id}",
                    subscription_id=hook["id"],
                    topic=topic,
                    url=hook["delivery_url"],
                    build=lambda hook=hook, resource_id=resource_id: self._build(hook, resource_id),
                )
            )

    def _build(self, hook: dict[str, Any], resource_id: int) -> tuple[bytes, dict[str, str]]:
        with self.state.lock:
            if hook["resource"] == "order":
                payload = self.order_json(self.state.order(resource_id))
            elif hook["resource"] == "customer":
                payload = self.customer_json(self.state.customers[resource_id])
            else:
                payload = {"id": resource_id}
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers = {
                "Content-Type": "application/json",
                "X-WC-Webhook-Source": f"{self.url}/",
                "X-WC-Webhook-Topic": hook["topic"],
                "X-WC-Webhook-Resource": hook["resource"],
                "X-WC-Webhook-Event": hook["event"],
                "X-WC-Webhook-Signature": signature(hook["secret"], body),
                "X-WC-Webhook-ID": str(hook["id"]),
                "X-WC-Webhook-Delivery-ID": hashlib.md5(
                    f"{hook['id']}{time.time()}".encode(), usedforsecurity=False
                ).hexdigest(),
            }
            return body, headers

    def delivered_ok(self, status: int) -> bool:
        return 200 <= status < 303  # WC_Webhook::deliver: 2xx, 301 and 302 count as delivered

    def after_attempt(self, delivery: Delivery, attempt: Attempt, final: bool) -> None:
        with self.state.lock:
            hook = self.webhooks.get(delivery.subscription_id)
            if hook is None:
                return
            if attempt.ok:
                hook["failure_count"] = 0
            elif hook["failure_count"] > self.max_failures:
                hook["status"] = "disabled"  # checked before counting: the 7th failure disables (PLATFORMS 5.5)
            else:
                hook["failure_count"] += 1


def _protected(key: Any) -> bool:
    """``is_protected_meta()``: keys starting with ``_`` are the platform's own."""
    return isinstance(key, str) and key.startswith("_")


def _rawurlencode(value: str) -> str:
    """PHP's rawurlencode (RFC 3986: only letters, digits and ``-._~`` stay)."""
    return quote(str(value), safe="~")


def _set_meta(meta: list[dict[str, Any]], entry: dict[str, Any], next_id) -> None:
    """``update_meta_data``: by id when given, else replace the key's value (or add it)."""
    key, value = entry.get("key"), entry.get("value")
    for existing in meta:
        if (entry.get("id") and existing["id"] == entry["id"]) or (not entry.get("id") and existing["key"] == key):
            existing["value"] = value
            return
    meta.append({"id": next_id(), "key": key, "value": value})


def _gmt(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
