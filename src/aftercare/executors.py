"""How the core performs platform actions: through the shop's adapter.

Registered through the same ``register_channels`` hook a plugin would use,
so a plugin can replace any of them. Email (``send_email``) is the mail
channel's job.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from aftercare import hookimpl
from aftercare.actions import ActionJob, ActionKind, ActionRecord
from aftercare.models import ConsentState, Customer, Money
from aftercare.platform import CouponSpec


@hookimpl
def register_channels(register):
    register(ActionKind.CREATE_COUPON.value, create_coupon)
    register(ActionKind.ADD_ORDER_NOTE.value, add_order_note)
    register(ActionKind.TAG_ORDER.value, tag_order)
    register(ActionKind.TAG_CUSTOMER.value, tag_customer)
    register(ActionKind.SET_MARKETING_CONSENT.value, set_marketing_consent)


def create_coupon(job: ActionJob) -> dict[str, Any]:
    action, app = job.action, job.app
    p = action.payload
    minimum = p.get("minimum_subtotal")
    spec = CouponSpec(
        code=p["code"],
        kind=p["kind"],
        value=Decimal(p["value"]),
        currency=p["currency"],
        customer_email=p.get("customer_email", ""),
        customer_id=p.get("customer_id", ""),
        expires_at=datetime.fromisoformat(p["expires_at"]) if p.get("expires_at") else None,
        minimum_subtotal=Money.parse(minimum["amount"], minimum["currency"]) if minimum else None,
        title=f"aftercare {action.plugin} for order {action.order_id}",
    )
    result = app.adapter(action.shop_id).create_coupon(spec)
    return {"code": result.code, "platform_id": result.platform_id, "created": result.created}


def add_order_note(job: ActionJob) -> dict[str, Any]:
    action, app = job.action, job.app
    app.adapter(action.shop_id).add_order_note(action.order_id, action.payload["text"])
    return {}


def tag_order(job: ActionJob) -> dict[str, Any]:
    action, app = job.action, job.app
    app.adapter(action.shop_id).tag_order(action.order_id, action.payload["tags"])
    return {"tags": action.payload["tags"]}


def tag_customer(job: ActionJob) -> dict[str, Any]:
    action, app = job.action, job.app
    app.adapter(action.shop_id).tag_customer(_customer(action), action.payload["tags"])
    return {"tags": action.payload["tags"]}


def set_marketing_consent(job: ActionJob) -> dict[str, Any]:
    """Tell the platform, and record the change in the store's history unless it is already the
    latest state there (the opt-in page records the customer's confirmation before a plugin asks
    for this action): the history keeps changes, not repeats."""
    action, app = job.action, job.app
    state = ConsentState(action.payload["state"])
    customer = _customer(action)
    app.adapter(action.shop_id).set_marketing_consent(customer, state, action.payload["source"])
    # One transaction that reads the latest state and writes only a change, under a lock on the
    # customer: a retried action and the page's own confirmation add no repeat row.
    app.store.record_consent_change(action.shop_id, customer.email, state, action.payload["source"])
    return {"state": state.value}


def _customer(action: ActionRecord) -> Customer:
    ref = action.payload["customer"]
    return Customer(email=ref["email"], platform_id=ref.get("platform_id", ""))
