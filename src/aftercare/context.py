"""``ctx``: everything a plugin's hook may touch.

A hook receives ``(event, ctx)``. ``ctx`` is bound to one plugin and the
event's shop: it carries the plugin's settings for that shop, the app's
clock, and the action requests. Requests are only collected here; the core
stores them with their idempotency keys once every plugin has run, then
executes them (DESIGN rule 2).

Example::

    @hookimpl
    def on_delivered(event, ctx):
        ctx.later(days=ctx.settings.days).send_email("review_request", key="review")
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import phonenumbers

from aftercare.actions import (
    DEFAULT_RECHECKS,
    ActionKind,
    ActionRequest,
    Cancellation,
    Recheck,
    Scope,
    idempotency_key,
)
from aftercare.models import ConsentState, Event, Money, Order, SurveyKind, SurveyPurpose, normalise_email
from aftercare.settings import PluginSettings

#: The one key of a mail context value that asks the mail channel for related products at send
#: time (:meth:`Context.complementary_products`).
PRODUCTS_REQUEST = "aftercare:complementary_products"
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed by hand


@dataclass(frozen=True, slots=True)
class ShopProfile:
    """What a plugin may know about the shop: never its credentials."""

    id: str
    platform: str
    name: str = ""
    locale: str = "en"
    timezone: str = "UTC"
    sender: str = ""
    production: bool = False


class LinkMaker(Protocol):
    """Makes the signed links of customer pages (see :mod:`aftercare.links`)."""

    def survey(
        self,
        *,
        shop_id: str,
        order_id: str,
        email: str,
        locale: str,
        kind: SurveyKind,
        score: int,
        purpose: SurveyPurpose = SurveyPurpose.ORDER,
    ) -> str: ...

    def optin(self, *, shop_id: str, order_id: str, email: str, locale: str) -> str: ...


@dataclass
class ActionSink:
    """Collects what the hooks of one dispatch asked for."""

    requests: list[ActionRequest] = field(default_factory=list)
    cancellations: list[Cancellation] = field(default_factory=list)


class Context:
    """The API a hook uses. One instance per (plugin, event)."""

    def __init__(
        self,
        *,
        event: Event,
        plugin: str,
        hook: str,
        shop: ShopProfile,
        settings: PluginSettings,
        clock: Callable[[], datetime],
        sink: ActionSink,
        delay: timedelta = timedelta(0),
        rechecks: Sequence[Recheck] = (),
        links: LinkMaker | None = None,
        reschedule: bool = False,
    ) -> None:
        self.event = event
        self.plugin = plugin
        self.hook = hook
        self.shop = shop
        self.settings = settings
        self._clock = clock
        self._sink = sink
        self._delay = delay
        self._rechecks = tuple(rechecks)
        self._links = links
        self._reschedule = reschedule

    def now(self) -> datetime:
        """The app's clock (moved by the demo and the tests), timezone-aware UTC."""
        return self._clock()

    # -- timing ------------------------------------------------------------
    def later(
        self,
        delay: timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        rechecks: Sequence[Recheck | str] = DEFAULT_RECHECKS,
        reschedule: bool = False,
    ) -> Context:
        """A ctx whose actions are due after ``delay`` (counted from now).

        When they fall due the core re-reads the order and drops them, with
        the reason, if it was cancelled, refunded or returned or the customer
        unsubscribed; pass ``rechecks=()`` (or a subset) to change that.

        ``reschedule=True``: an action with the same key that is still due
        moves to the new time (and payload) instead of the request being
        ignored; one that already ran stays as it is. The way to say "7 days
        after delivery, or 14 after shipping if delivery is never reported"
        with one key: schedule the fallback from ``on_shipped``, reschedule
        from ``on_delivered``.
        """
        total = (delay or timedelta(0)) + timedelta(days=days, hours=hours, minutes=minutes)
        if total < timedelta(0):
            raise ValueError("ctx.later() needs a delay of zero or more")
        return Context(
            event=self.event,
            plugin=self.plugin,
            hook=self.hook,
            shop=self.shop,
            settings=self.settings,
            clock=self._clock,
            sink=self._sink,
            delay=self._delay + total,
            rechecks=rechecks if rechecks is DEFAULT_RECHECKS else tuple(Recheck(r) for r in rechecks),
            links=self._links,
            reschedule=reschedule,
        )

    # -- links for mail ----------------------------------------------------
    def survey_link(
        self, kind: SurveyKind | str, score: int, *, purpose: SurveyPurpose | str = SurveyPurpose.ORDER
    ) -> str:
        """A signed link answering survey ``kind`` (csat, nps, ces) with ``score`` for this order.

        The page it opens asks the customer to confirm (mail scanners open
        links too); the confirmed answer fires ``on_survey_answered``.
        ``purpose="relationship"``: the answer is about the customer's relationship with the
        shop, not this order; it is kept and reported apart from the order's own answer.
        """
        order = self.event.order
        return self._link_maker().survey(
            shop_id=self.shop.id, order_id=order.platform_id, email=order.customer.email,
            locale=self.locale, kind=SurveyKind(kind), score=score, purpose=SurveyPurpose(purpose),
        )  # fmt: skip

    def optin_link(self) -> str:
        """A signed double opt-in link for this order's customer; confirming fires ``on_optin_confirmed``."""
        order = self.event.order
        return self._link_maker().optin(
            shop_id=self.shop.id, order_id=order.platform_id, email=order.customer.email, locale=self.locale
        )

    # -- products for mail ---------------------------------------------------
    def complementary_products(self, limit: int, *, lines: Sequence[str] = ()) -> dict[str, Any]:
        """Up to ``limit`` products the shop itself relates to this order's products (``lines``:
        only those order lines'), for a mail's context::

            context = {"complementary_products": ctx.complementary_products(3)}

        Hooks never call the platform (a dispatch, a replay or a preview must not depend on
        it, and a mail due in a week should show next week's products): this is a request,
        JSON-ready, that the mail channel fills when the mail is sent, through the adapter
        (:meth:`aftercare.platform.Adapter.complementary_products`, cached per product). The
        template then gets a list of ``{"title", "url", "image_url", "price"}`` (``price`` a
        ``{"amount", "currency"}`` for ``|money``, or None), empty when the platform relates
        nothing, ``limit`` is 0, the platform cannot be read, or the mail is transactional
        and the customer has not opted in to marketing mail. Nothing is ever guessed.
        """
        if limit < 0:
            raise ValueError(f"complementary_products needs a limit of zero or more, got {limit}")
        wanted = {str(line) for line in lines}
        order_lines = [line for line in self.event.order.lines if not wanted or line.platform_id in wanted]
        product_ids = list(dict.fromkeys(line.product_id for line in order_lines if line.product_id))
        return {PRODUCTS_REQUEST: {"product_ids": product_ids, "limit": int(limit)}}

    @property
    def locale(self) -> str:
        """The customer's language: the order's, else the customer's, else the shop's."""
        order = self.event.order
        return order.locale or order.customer.locale or self.shop.locale

    def _link_maker(self) -> LinkMaker:
        if self._links is None:
            raise RuntimeError("this ctx cannot make links (no receiver configured)")
        return self._links

    # -- actions -----------------------------------------------------------
    def send_email(
        self,
        template: str,
        *,
        to: str | None = None,
        context: dict[str, Any] | None = None,
        transactional: bool = False,
        key: str | None = None,
        scope: Scope | str = Scope.ORDER,
        after: ActionRequest | None = None,
        lines: Sequence[str] = (),
        locale: str = "",
    ) -> ActionRequest:
        """Email ``template`` to ``to`` (default: the order's customer).

        ``context`` must be JSON-ready: it is stored with the action and given
        to the template when the mail is rendered, in the order's locale.
        Transactional mail (tracking, return acknowledgement) ignores marketing
        consent; everything else is checked against it when sent. ``after``
        holds the mail until that action is done (a coupon's code, say) and
        drops it if that action fails. ``lines`` names the order lines the mail is
        about, for the ``lines_refunded`` fire-time check. ``locale``: another
        language than the order's (a mail to the shop's staff is in the shop's).
        """
        order = self.event.order
        recipient = (to or order.customer.email).strip()
        if not recipient:
            raise ValueError(f"order {order.platform_id} has no customer email to send {template!r} to")
        payload = self._message("send_email", template, recipient, context, transactional, lines, locale)
        return self._request(ActionKind.SEND_EMAIL, key or template, payload, scope, after)

    def send_sms(
        self,
        template: str,
        *,
        context: dict[str, Any] | None = None,
        transactional: bool = False,
        key: str | None = None,
        scope: Scope | str = Scope.ORDER,
        after: ActionRequest | None = None,
        lines: Sequence[str] = (),
    ) -> ActionRequest:
        """Text ``template`` (its ``<locale>/<template>.sms`` file) to the order's phone.

        The number is the shipping address's, made E.164 with the address's country
        (``612 345 678`` in Spain is ``+34612345678``). Recorded even when the order has
        no usable number: the channel then drops it and says why. Sent only where the shop
        turned texts on (``[mail.sms]``); marketing texts need the customer's SMS consent,
        apart from email's, and count with mails in the shop's frequency cap and quiet hours.
        The key space is the action kind's own: a mail and a text may share a key.
        """
        return self._text(ActionKind.SEND_SMS, template, context, transactional, key, scope, after, lines)

    def send_whatsapp(
        self,
        template: str,
        *,
        context: dict[str, Any] | None = None,
        transactional: bool = False,
        key: str | None = None,
        scope: Scope | str = Scope.ORDER,
        after: ActionRequest | None = None,
        lines: Sequence[str] = (),
    ) -> ActionRequest:
        """A WhatsApp template message: ``template`` names the shop's approved WhatsApp
        template (``[mail.sms.whatsapp_templates]``), filled from ``context``. Otherwise
        as :meth:`send_sms` (number, consent, cap)."""
        return self._text(ActionKind.SEND_WHATSAPP, template, context, transactional, key, scope, after, lines)

    def _text(
        self,
        kind: ActionKind,
        template: str,
        context: dict[str, Any] | None,
        transactional: bool,
        key: str | None,
        scope: Scope | str,
        after: ActionRequest | None,
        lines: Sequence[str],
    ) -> ActionRequest:
        """A text of either channel to the order's phone; why there is none goes with it."""
        to, problem = _phone_of(self.event.order)
        payload = self._message(kind.value, template, to, context, transactional, lines)
        if problem:
            payload["phone_problem"] = problem
        return self._request(kind, key or template, payload, scope, after)

    def _message(
        self,
        kind: str,
        template: str,
        to: str,
        context: dict[str, Any] | None,
        transactional: bool,
        lines: Sequence[str],
        locale: str = "",
    ) -> dict[str, Any]:
        payload = {
            "template": template,
            "to": to,
            "locale": locale or self.locale,
            "context": _json_ready(context or {}, f"{kind}({template!r}) context"),
            "transactional": transactional,
        }
        if lines:
            payload["line_item_ids"] = [str(line) for line in lines]
        return payload

    def create_coupon(
        self,
        *,
        percent: Decimal | int | str | None = None,
        amount: Money | None = None,
        expires_in: timedelta | None = None,
        minimum_subtotal: Money | None = None,
        for_customer_only: bool = True,
        prefix: str = "",
        key: str = "coupon",
        scope: Scope | str = Scope.ORDER,
    ) -> ActionRequest:
        """A unique single-use code for the customer's next purchase.

        Give either ``percent`` or ``amount``. The code is chosen now and kept
        in the returned request's ``payload["code"]``, so a mail can carry it
        (pass the request as the mail's ``after``). A repeated dispatch keeps
        the first code: the whole request is deduplicated by its key.
        """
        if (percent is None) == (amount is None):
            raise ValueError("create_coupon needs exactly one of percent= or amount=")
        order = self.event.order
        if percent is not None:
            value = Decimal(str(percent))
            if not Decimal(0) < value <= Decimal(100):
                raise ValueError(f"create_coupon percent must be in (0, 100], got {value}")
            kind, currency = "percent", order.currency
        else:
            assert amount is not None
            value, kind, currency = amount.amount, "fixed_amount", amount.currency
        expires_at = self._due_at() + expires_in if expires_in is not None else None
        payload = {
            "code": _coupon_code(prefix),
            "kind": kind,
            "value": str(value),
            "currency": currency,
            "customer_email": order.customer.email if for_customer_only else "",
            "customer_id": order.customer.platform_id if for_customer_only else "",
            "expires_at": expires_at.isoformat() if expires_at else None,
            "minimum_subtotal": (
                {"amount": str(minimum_subtotal.amount), "currency": minimum_subtotal.currency}
                if minimum_subtotal
                else None
            ),
        }
        return self._request(ActionKind.CREATE_COUPON, key, payload, scope)

    def add_order_note(self, text: str, *, key: str | None = None) -> ActionRequest:
        """A private note on the order, for the merchant's staff."""
        return self._request(ActionKind.ADD_ORDER_NOTE, key or _digest(text), {"text": text}, Scope.ORDER)

    def tag_order(self, *tags: str, key: str | None = None) -> ActionRequest:
        clean = _tags(tags)
        return self._request(ActionKind.TAG_ORDER, key or ",".join(clean), {"tags": clean}, Scope.ORDER)

    def tag_customer(self, *tags: str, key: str | None = None) -> ActionRequest:
        clean = _tags(tags)
        payload = {"tags": clean, "customer": _customer_ref(self.event)}
        return self._request(ActionKind.TAG_CUSTOMER, key or ",".join(clean), payload, Scope.CUSTOMER)

    def set_marketing_consent(self, state: ConsentState | str, *, source: str, key: str | None = None) -> ActionRequest:
        """Record the customer's explicit choice on the platform and in the store.

        Only call this on an explicit customer action (a confirmed opt-in, an
        unsubscribe): consent is never inferred from an order.
        """
        state = ConsentState(state)
        payload = {"state": state.value, "source": source, "customer": _customer_ref(self.event)}
        return self._request(ActionKind.SET_MARKETING_CONSENT, key or state.value, payload, Scope.CUSTOMER)

    def cancel(self, key: str, *, reason: str = "", scope: Scope | str = Scope.ORDER) -> None:
        """Withdraw this plugin's due actions with ``key`` for this order (a
        review request after a return, say). Done and failed ones stay as they are.

        ``scope="customer"``: withdraw them instead for the customer's orders paid before this
        event (in the store's customer history): a new order withdraws the previous order's
        win-back mail, while an older order that a backfill dispatches late withdraws nothing."""
        customer = ""
        if Scope(scope) is Scope.CUSTOMER:
            customer = normalise_email(self.event.order.customer.email)
            if not customer:
                return  # no customer to speak of: nothing of theirs can be pending
        self._sink.cancellations.append(
            Cancellation(
                shop_id=self.shop.id,
                plugin=self.plugin,
                order_id=self.event.order.platform_id,
                key=key,
                reason=reason or f"cancelled by {self.plugin} in {self.hook}",
                customer_email=customer,
                paid_before=self.event.occurred_at if customer else None,
            )
        )

    # -- internals ---------------------------------------------------------
    def _due_at(self) -> datetime:
        return self.now() + self._delay

    def _request(
        self,
        kind: ActionKind,
        key: str,
        payload: dict[str, Any],
        scope: Scope | str,
        after: ActionRequest | None = None,
    ) -> ActionRequest:
        scope = Scope(scope)
        request = ActionRequest(
            kind=kind,
            shop_id=self.shop.id,
            plugin=self.plugin,
            order_id=self.event.order.platform_id,
            key=key,
            idempotency_key=idempotency_key(
                shop_id=self.shop.id, plugin=self.plugin, kind=kind, scope=scope, event=self.event, key=key
            ),
            payload=payload,
            due_at=self._due_at(),
            customer_email=normalise_email(self.event.order.customer.email),
            rechecks=self._rechecks,
            reschedule=self._reschedule,
            depends_on=after.idempotency_key if after is not None else "",
            hook=self.hook,
            event_key=self.event.dedupe_key,
        )
        self._sink.requests.append(request)
        return request


def _json_ready(value: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-ready (str, numbers, lists, dicts): {exc}") from None


def _coupon_code(prefix: str) -> str:
    body = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
    head = f"{prefix.strip().upper()}-" if prefix.strip() else ""
    return f"{head}{body[:5]}-{body[5:]}"


def _tags(tags: Sequence[str]) -> list[str]:
    clean = sorted({t.strip() for t in tags if t and t.strip()})
    if not clean:
        raise ValueError("give at least one non-empty tag")
    return clean


def _phone_of(order: Order) -> tuple[str, str]:
    """The order's phone in E.164 and '', or '' and why there is none (for the action's reason)."""
    address = order.shipping_address
    given = (address.phone if address else "").strip()
    if not given:
        return "", "the order has no phone number"
    country = (address.country_code if address else "").upper() or None
    try:
        number = phonenumbers.parse(given, country)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        where = f" for {country}" if country else " (no country on the address)"
        return "", f"the order's phone number is not a valid number{where}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


def _customer_ref(event: Event) -> dict[str, str]:
    customer = event.order.customer
    return {"email": customer.email, "platform_id": customer.platform_id}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
