"""The sandbox Shopify shop's orders and their parts as Shopify's REST resources: its webhook bodies.

Also Shopify's global ids (``gid://shopify/Order/1``), which the REST resources carry
(``admin_graphql_api_id``) and the GraphQL resolvers read and write.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .state import Address, Customer, Fulfillment, Line, Order, Refund, Return, UnknownRecord, money

if TYPE_CHECKING:
    from .shopify import ShopifySandbox

_GID = re.compile(r"^gid://shopify/(\w+)/(\d+)$")


def gid(kind: str, record_id: int) -> str:
    return f"gid://shopify/{kind}/{record_id}"


def parse_gid(value: str, kind: str | None = None) -> tuple[str, int]:
    match = _GID.match(value or "")
    if match is None or (kind and match.group(1) != kind):
        raise UnknownRecord(f"{value!r} is not a {kind or 'Shopify'} id")
    return match.group(1), int(match.group(2))


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
            "sms_marketing_consent": (
                {
                    "state": customer.sms_marketing_state,
                    "opt_in_level": "single_opt_in",
                    "consent_updated_at": None,
                    "consent_collected_from": "OTHER",
                }
                if customer.phone
                else None
            ),
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
            "message": event.message or None,
            "happened_at": self.time(event.happened_at),
            "city": event.city or None,
            "province": event.province or None,
            "country": event.country or None,
            "zip": event.zip or None,
            "address1": event.address1 or None,
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
