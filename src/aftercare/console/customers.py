"""One customer's history across the shops a user may see: every order, every message with its
subject, coupons and whether they were redeemed, survey answers, returns, refunds and delivery
problems, in one timeline (the console's customer page and ``aftercare customers show``).

Read from the store only: the customer history finds the orders (indexed by shop and address),
each order's timeline (:func:`aftercare.console.queries.timeline`) gives what happened to it.
Hook runs and dispatch states stay on the order's own page; this page says what the customer
lived through, in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aftercare.actions import ActionKind, ActionRecord, ActionState
from aftercare.console.messages import recipient_of, subject_of
from aftercare.console.queries import TimelineEntry, timeline
from aftercare.models import Event, EventKind, SurveyPurpose, normalise_email
from aftercare.store import Store

#: How many of the customer's orders, newest first, one history shows.
ORDERS_SHOWN = 100

_EVENT_WORDS = {
    EventKind.ORDER_PAID: "order paid",
    EventKind.SHIPPED: "shipped",
    EventKind.DELIVERED: "delivered",
    EventKind.SHIPMENT_EXCEPTION: "delivery problem",
    EventKind.RETURN_REQUESTED: "return requested",
    EventKind.ORDER_CANCELLED: "order cancelled",
    EventKind.REFUNDED: "refunded",
    EventKind.OPTIN_CONFIRMED: "newsletter confirmed",
}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    shop_id: str
    order_id: str
    order_number: str
    #: "order", "message", "coupon", "answer" or "action" (what the page styles it as).
    what: str
    text: str
    #: The action behind a message or coupon (its id opens the message view), else None.
    action_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "shop": self.shop_id,
            "order": self.order_number or self.order_id,
            "order_id": self.order_id,
            "what": self.what,
            "text": self.text,
            "action_id": self.action_id,
        }


def customer_history(store: Store, shop_ids: Sequence[str], email: str) -> list[HistoryEntry]:
    """The customer's timeline in these shops, oldest first; [] if the store knows no order of theirs."""
    email = normalise_email(email)
    orders = [
        (shop_id, order_id, timeline(store, shop_id, order_id))
        for shop_id, order_id in store.orders_of_customer(shop_ids, email, limit=ORDERS_SHOWN)
    ]
    paid_with = _codes_paid_with(orders)
    entries: list[HistoryEntry] = []
    for shop_id, order_id, lines in orders:
        events = [line.event.event for line in lines if line.event is not None]
        number = next((e.order.number for e in reversed(events) if e.order.number), "")
        for line in lines:
            what, text = _words(line)
            if not text:
                continue
            if what == "coupon" and line.action is not None and line.action.state is ActionState.DONE:
                code = _code(line.action.result.get("code") or line.action.payload.get("code", ""))
                used = any(c == code and at > line.at and o != order_id for o, c, at in paid_with[shop_id])
                text += " (redeemed)" if used else " (not redeemed yet)"
            action_id = line.action.id if line.action is not None else None
            entries.append(HistoryEntry(line.at, shop_id, order_id, number, what, text, action_id))
    entries.sort(key=lambda e: (e.at, e.shop_id, e.order_id))
    return entries


def _codes_paid_with(
    orders: Sequence[tuple[str, str, list[TimelineEntry]]],
) -> dict[str, list[tuple[str, str, datetime]]]:
    """Per shop: (order, discount code, when paid) of the customer's paid orders."""
    used: dict[str, list[tuple[str, str, datetime]]] = {shop_id: [] for shop_id, _o, _l in orders}
    for shop_id, order_id, lines in orders:
        paid = [line for line in lines if line.event is not None and line.event.event.kind is EventKind.ORDER_PAID]
        if paid:
            order = paid[-1].event.event.order  # type: ignore[union-attr]
            used[shop_id] += [(order_id, _code(code), paid[0].at) for code in order.discount_codes]
    return used


def _code(code: object) -> str:
    return str(code).strip().lower()  # WooCommerce lower-cases codes


def _words(line: TimelineEntry) -> tuple[str, str]:
    """What the line is (the page styles it) and what it says; '' for what the history leaves out."""
    if line.event is not None:
        return "order", _event_words(line.event.event)
    if line.answer is not None:
        answer = line.answer.answer
        scale = answer.kind.scale
        said = f': "{answer.comment.strip()}"' if answer.comment.strip() else ""
        kind = answer.kind.value.upper()
        survey = f"relationship {kind}" if answer.purpose is SurveyPurpose.RELATIONSHIP else kind
        return "answer", f"{survey} answer {answer.score} ({scale.start}-{scale.stop - 1}){said}"
    assert line.action is not None
    return _action_words(line.action)


def _event_words(event: Event) -> str:
    words = _EVENT_WORDS.get(event.kind)
    if words is None:
        return ""  # a survey answer: shown from the stored answer, with its latest score
    order = event.order
    if event.kind is EventKind.ORDER_PAID:
        return f"{words}: {order.total.amount} {order.total.currency}, {len(order.lines)} line(s)"
    if event.exception is not None:
        message = f' ("{event.exception.message}")' if event.exception.message else ""
        return f"{words}: {event.exception.problem.value.replace('_', ' ')}{message}"
    if event.shipment is not None and event.kind in (EventKind.SHIPPED, EventKind.DELIVERED):
        parcel = " ".join(p for p in (event.shipment.carrier, event.shipment.tracking_number) if p)
        return f"{words}: {parcel}" if parcel else words
    if event.return_request is not None and event.return_request.reason:
        return f"{words}: {event.return_request.reason}"
    if event.refund is not None and event.refund.amount is not None:
        return f"{words}: {event.refund.amount.amount} {event.refund.amount.currency}"
    return words


def _action_words(action: ActionRecord) -> tuple[str, str]:
    outcome = "" if action.state is ActionState.DONE else f" [{action.state.value}"
    outcome += f": {action.reason}]" if outcome and action.reason else ("]" if outcome else "")
    if action.kind is ActionKind.SEND_EMAIL:
        subject = subject_of(action) or "(no subject kept)"
        return "message", f"mail from {action.plugin}: {subject}, to {recipient_of(action)}{outcome}"
    if action.kind in (ActionKind.SEND_SMS, ActionKind.SEND_WHATSAPP):
        channel = "text" if action.kind is ActionKind.SEND_SMS else "WhatsApp message"
        to = action.payload.get("to") or "no number"
        return "message", f"{channel} from {action.plugin}: {action.payload.get('template', '')}, to {to}{outcome}"
    if action.kind is ActionKind.CREATE_COUPON:
        code = action.result.get("code") or action.payload.get("code", "")
        return "coupon", f"coupon from {action.plugin}: {code}{outcome}"
    return "action", ""  # notes, tags, consent: the order's own page shows them
