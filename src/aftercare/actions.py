"""Actions: what a plugin asks the core to do, and what became of it.

A hook never sends anything. It asks ``ctx`` for an action; the core stores
an :class:`ActionRequest` under its idempotency key, then executes it (or
only records it, in a dry run). The key is built from who asked and about
what, so dispatching the same event again, from a webhook retry or a poll,
finds the action already there and adds nothing.

Every action record carries a :class:`ActionState` and, when dropped or
failed, the reason: its text for people and its :class:`ReasonCode` for code.
The report, the CLI and the console read these records rather than logs.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aftercare.models import ConsentState, Event, FinancialStatus, Order, normalise_email


class ActionKind(enum.StrEnum):
    SEND_EMAIL = "send_email"
    CREATE_COUPON = "create_coupon"
    ADD_ORDER_NOTE = "add_order_note"
    TAG_ORDER = "tag_order"
    TAG_CUSTOMER = "tag_customer"
    SET_MARKETING_CONSENT = "set_marketing_consent"
    SEND_SMS = "send_sms"
    SEND_WHATSAPP = "send_whatsapp"


#: Messages to the customer: the frequency cap and quiet hours count them together.
MESSAGE_KINDS: tuple[ActionKind, ...] = (ActionKind.SEND_EMAIL, ActionKind.SEND_SMS, ActionKind.SEND_WHATSAPP)
#: Made only for the messages that wait for them (a coupon's code is worth nothing unread): the
#: dispatcher drops one when every such message would be refused for good now (``refuses``, hookspecs).
CARRIED_KINDS: tuple[ActionKind, ...] = (ActionKind.CREATE_COUPON,)


class ActionState(enum.StrEnum):
    DUE = "due"  # waiting to run, now or at ``due_at``
    RUNNING = "running"  # claimed by one worker; nobody else may run it
    DONE = "done"
    DROPPED = "dropped"  # decided not to run; ``reason`` says why
    FAILED = "failed"  # ran and failed for good; ``reason`` has the error text


class ReasonCode(enum.StrEnum):
    """What kind of reason an action record carries; ``reason`` keeps the text for people.

    Code decides by this, never by the text (migration 0012 gave the rows written
    before it their code from the text).
    """

    NONE = ""  # no reason
    DRY_RUN = "dry_run"  # dropped: a dry run (the config, or a shop not marked production)
    WAITING_FOR = "waiting_for"  # due: put back until the action it depends on is done
    DEPENDENCY_FAILED = "dependency_failed"  # dropped: what it depends on failed, was dropped or never recorded
    FIRE_TIME_CHECK = "fire_time_check"  # dropped: the order or the customer changed since (DESIGN rule 3)
    SUPPRESSED = "suppressed"  # dropped by the mail channel: a bounced or unsubscribed address
    NO_CONSENT = "no_consent"  # dropped by the mail channel: marketing consent withdrawn
    FREQUENCY_CAP = "frequency_cap"  # dropped by the mail channel: enough marketing mail lately
    MESSAGE_REFUSED = "message_refused"  # dropped: every message waiting for it (a coupon's mail) would be refused
    QUIET_HOURS = "quiet_hours"  # due: deferred until the shop's quiet hours end
    MIN_GAP = "min_gap"  # due: deferred until the minimum gap after the customer's last marketing mail
    WITHDRAWN = "withdrawn"  # dropped by its plugin (``ctx.cancel``)
    CHANNEL_OFF = "channel_off"  # dropped: the shop has not turned this channel on (texts, WhatsApp)
    NO_RECIPIENT = "no_recipient"  # dropped by a text channel: the order has no usable phone number
    CANCELLED = "cancelled"  # dropped by hand (the CLI, the console)
    RESCHEDULED = "rescheduled"  # due: moved by its plugin (``reschedule=True``)
    RETRY = "retry"  # due: a transient platform error, tried again later
    DATABASE_ERROR = "database_error"  # due: the store failed meanwhile, tried again later
    PLATFORM_ERROR = "platform_error"  # failed: the platform refused, or kept failing
    CHANNEL_ERROR = "channel_error"  # failed: the channel raised (a bug); the text is the exception
    NO_CHANNEL = "no_channel"  # failed: no channel is registered for its kind
    DONE_EARLIER = "done_earlier"  # done: its sent mark says the channel did its work before
    UNCONFIRMED = "unconfirmed"  # done: the channel did its work without a confirmation (a relay gone silent)
    RELEASED = "released"  # due: its worker stopped mid-run
    RETRIED = "retried"  # due: made due again by hand
    ERASED = "erased"  # dropped: its customer was erased
    OTHER = "other"  # a channel's drop or deferral without a code; a migrated text no prefix matched


class Recheck(enum.StrEnum):
    """Fire-time checks (DESIGN rule 3): drop a delayed action if the order now is..."""

    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    RETURNED = "returned"
    UNSUBSCRIBED = "unsubscribed"
    #: ...refunded in full, or every line the action is about (``send_email(..., lines=...)``)
    #: was refunded: a partial refund of other products leaves it be.
    LINES_REFUNDED = "lines_refunded"
    #: ...one of several: the customer paid for another order after this one (win-back). Read
    #: from the store's customer history, not the order: see :func:`aftercare.dispatch.fire_time_check`.
    ORDERED_AGAIN = "ordered_again"


def lines_refunded(order: Order, lines: object) -> bool:
    """The ``lines_refunded`` check: the order was refunded in full, or every one of
    ``lines`` (order line ids, as an action's payload keeps them) was."""
    if order.financial_status is FinancialStatus.REFUNDED:
        return True
    wanted = {str(line) for line in lines} if isinstance(lines, list) else set()
    return bool(wanted) and wanted <= order.refunded_line_ids


#: What a delayed action re-checks unless the plugin says otherwise.
DEFAULT_RECHECKS: tuple[Recheck, ...] = (Recheck.CANCELLED, Recheck.REFUNDED, Recheck.RETURNED, Recheck.UNSUBSCRIBED)


class Scope(enum.StrEnum):
    """What an action is unique for, besides shop, plugin, kind and key."""

    ORDER = "order"  # once per order (the default)
    CUSTOMER = "customer"  # once per customer, whatever the order


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One action as a plugin asked for it, before it is stored."""

    kind: ActionKind
    shop_id: str
    plugin: str
    order_id: str
    key: str
    idempotency_key: str
    payload: dict[str, Any]
    due_at: datetime
    customer_email: str = ""
    rechecks: tuple[Recheck, ...] = ()
    #: If an action with this key is still due, move it to this request's time and payload
    #: instead of keeping the first (``ctx.later(..., reschedule=True)``).
    reschedule: bool = False
    depends_on: str = ""  # idempotency key of an action that must be done first
    hook: str = ""
    event_key: str = ""


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A plugin withdrew its own due actions with this key for this order, or, when
    ``customer_email`` is set (``ctx.cancel(..., scope="customer")``), for that customer's orders
    paid before ``paid_before``: a new order withdraws the win-back mail of the one before."""

    shop_id: str
    plugin: str
    order_id: str
    key: str
    reason: str
    customer_email: str = ""
    paid_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action as stored: its request plus what became of it."""

    id: int
    kind: ActionKind
    shop_id: str
    plugin: str
    order_id: str
    key: str
    idempotency_key: str
    payload: dict[str, Any]
    due_at: datetime
    state: ActionState
    created_at: datetime
    updated_at: datetime
    customer_email: str = ""
    rechecks: tuple[Recheck, ...] = ()
    depends_on: str = ""
    hook: str = ""
    event_key: str = ""
    attempts: int = 0
    reason: str = ""
    reason_code: ReasonCode = ReasonCode.NONE
    result: dict[str, Any] = field(default_factory=dict)


class ActionJob:
    """What a channel gets from the dispatcher to perform one action: the action, the app, and
    what the dispatcher loads for it, each at most once, only if the channel reads it.

    ``order``: the order the action is about, as the event that caused it carried it (from the
    platform if that event is no longer stored). ``mail_settings``: the shop's ``[mail]`` under its
    ``[shops.mail]``.
    """

    def __init__(self, action: ActionRecord, app: Any, load_order: Callable[[], Order]) -> None:
        self.action = action
        self.app = app
        self._load_order = load_order

    @functools.cached_property
    def order(self) -> Order:
        return self._load_order()

    @property
    def mail_settings(self) -> Any:  # aftercare.config.mail.MailSettings; merged once per shop by the app
        return self.app.mail_settings(self.action.shop_id)


class ActionDeferred(Exception):
    """Raised by a channel: not now, try at ``until`` (quiet hours, say). Not a failure."""

    def __init__(self, until: datetime, reason: str, code: ReasonCode = ReasonCode.OTHER) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason
        self.code = code


class ActionDropped(Exception):
    """Raised by a channel: this action must not run (suppressed address, frequency cap)."""

    def __init__(self, reason: str, code: ReasonCode = ReasonCode.OTHER) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def idempotency_key(*, shop_id: str, plugin: str, kind: ActionKind, scope: Scope, event: Event, key: str) -> str:
    """``shop/plugin/kind/order:ID/key`` or ``shop/plugin/kind/customer:EMAIL/key``."""
    if scope is Scope.CUSTOMER:
        subject = f"customer:{normalise_email(event.order.customer.email)}"
    else:
        subject = f"order:{event.order.platform_id}"
    return f"{shop_id}/{plugin}/{kind.value}/{subject}/{key}"


def fire_time_reason(action: ActionRecord, order: Order) -> str:
    """DESIGN rule 3 on the order as it is now: why ``action`` must not fire, or ''.

    The one rule the dispatcher applies to a due action (after the store's own
    consent record, :func:`aftercare.dispatch.fire_time_check`) and the console's
    what-if applies to a replayed one; each check runs only if the action asks
    for it (``rechecks``).
    """
    checks = set(action.rechecks)
    if Recheck.UNSUBSCRIBED in checks and order.customer.marketing_consent is ConsentState.UNSUBSCRIBED:
        return "fire-time check: the customer unsubscribed (the platform says so)"
    if Recheck.CANCELLED in checks and order.is_cancelled:
        return "fire-time check: the order was cancelled"
    if Recheck.REFUNDED in checks and order.is_refunded:
        return "fire-time check: the order was refunded"
    if Recheck.RETURNED in checks and order.has_return:
        return "fire-time check: a return was requested"
    if Recheck.LINES_REFUNDED in checks and lines_refunded(order, action.payload.get("line_item_ids")):
        return "fire-time check: the products it is about were refunded"
    return ""
