"""The interface between the core and a shop platform (Shopify, WooCommerce, ...).

An adapter is a class registered through the ``register_adapters`` hook. The
core creates one instance per configured shop and calls it to:

- verify and parse webhooks (the receiver),
- map a platform order payload to an :class:`~aftercare.models.Order` (replay, samples),
- re-read an order when a delayed action fires (DESIGN rule 3),
- poll for changes (``aftercare sync``),
- perform platform actions (coupons, notes, tags, consent),
- manage webhook subscriptions,
- log in to the platform (``authentication``), and install through a link where the
  platform grants access that way (``install_url``/``finish_install``).

Adapters import this module, :mod:`aftercare.models`, :mod:`aftercare.clock`
and ``aftercare.hookimpl``; nothing else of the core.
"""

from __future__ import annotations

import abc
import decimal
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from aftercare import serialize
from aftercare.models import ConsentState, Customer, Event, EventKind, Money, Order, RelatedProduct


@dataclass(frozen=True)
class CallsListener:
    """Hears of each call an adapter makes to its platform's API (the answer's HTTP status,
    None when no answer came) and of each wait for the platform's rate limit (seconds).
    The runtime's metrics listen; adapters report with :func:`report_call` and :func:`report_wait`."""

    call: Callable[[str, int | None], None]
    wait: Callable[[str, float], None]


calls_listener = CallsListener(call=lambda platform, status: None, wait=lambda platform, seconds: None)


def report_call(platform: str, status: int | None) -> None:
    calls_listener.call(platform, status)


def report_wait(platform: str, seconds: float) -> None:
    calls_listener.wait(platform, seconds)


class WebhookRejected(Exception):
    """A delivery the receiver must refuse. ``status`` is the HTTP answer (401, 400, ...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PayloadError(ValueError):
    """A payload lacks a field the mapping needs, or holds a value it cannot read.

    The message names the topic and the field path, e.g.
    ``orders/paid: field 'customer.email' is missing``.
    """

    def __init__(self, topic: str, field: str, problem: str = "is missing") -> None:
        super().__init__(f"{topic}: field {field!r} {problem}")
        self.topic = topic
        self.field = field
        self.problem = problem


#: Timestamps a payload may carry: from 1970 (no shop order is older; the Unix epoch) to before
#: 2100. Outside it a value is garbage, and years like 0001 or 9999 with an offset cannot even be
#: converted to UTC (OverflowError) or be stored and compared by every database.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
#: Amounts a payload may carry: below a trillion in magnitude, at most six decimal places
#: (currencies have up to four). Beyond, a value is not a price but something that overflows
#: arithmetic (``1e999999999``) or prints as a page of digits in a mail.
AMOUNT_LIMIT_DIGITS = 12
AMOUNT_DECIMALS = 6
_AMOUNT_STEP = Decimal(1).scaleb(-AMOUNT_DECIMALS)
#: A context of its own, whatever the process's default: enough digits for any amount accepted.
_AMOUNT_CONTEXT = decimal.Context(prec=AMOUNT_LIMIT_DIGITS + AMOUNT_DECIMALS + 2)
#: Units of one order line: a line total (price x quantity) must stay a printable amount.
QUANTITY_LIMIT = 1_000_000
#: Platform ids are short; the store keeps an order id in 64 characters.
ID_LENGTH = 64
#: Longer tracking links are not a carrier's.
TRACKING_LINK_LENGTH = 2048


def payload_amount(topic: str, field: str, amount: Decimal) -> Decimal:
    """``amount`` if a shop could have charged it, else PayloadError naming ``field``.

    Trailing zeros past six decimals and positive exponents are written out
    (``19.9900000`` -> ``19.990000``, ``1E+3`` -> ``1000``) so what is stored prints plainly.
    """
    if not amount.is_finite():  # NaN, sNaN, Infinity: checked before anything that would signal
        raise PayloadError(topic, field, f"is not a finite amount: {amount}")
    if amount and amount.adjusted() >= AMOUNT_LIMIT_DIGITS:
        raise PayloadError(topic, field, f"is not a plausible amount (10^{AMOUNT_LIMIT_DIGITS} or more)")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent > 0:
        return amount.quantize(Decimal(1), context=_AMOUNT_CONTEXT)
    if exponent < -AMOUNT_DECIMALS:
        shorter = amount.quantize(_AMOUNT_STEP, rounding=decimal.ROUND_DOWN, context=_AMOUNT_CONTEXT)
        if shorter != amount:
            raise PayloadError(topic, field, f"has more than {AMOUNT_DECIMALS} decimal places")
        return shorter
    return amount


def payload_text(topic: str, field: str, text: str) -> str:
    """``text`` if it can be stored and mailed: a lone surrogate (``"\\ud800"`` in the JSON, which
    the stdlib's parser lets through) has no UTF-8 form, so no database or mail can hold it."""
    if not storable_text(text):
        raise PayloadError(topic, field, "is not valid Unicode text (a lone surrogate)")
    return text


def storable_text(text: str) -> bool:
    """False for text with a lone surrogate: it has no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def payload_id(topic: str, field: str, platform_id: str) -> str:
    """A platform id, stripped, if it can name things: ids end up in keys, links and mail
    headers, so one with a line break, a control character or a page of text is refused."""
    platform_id = platform_id.strip()
    if not platform_id or len(platform_id) > ID_LENGTH or not platform_id.isprintable():
        raise PayloadError(topic, field, f"is not an id (printable, 1 to {ID_LENGTH} characters)")
    return platform_id


def payload_quantity(topic: str, field: str, quantity: int) -> int:
    """``quantity`` if an order line could hold it (0 to QUANTITY_LIMIT - 1), else PayloadError."""
    if not 0 <= quantity < QUANTITY_LIMIT:
        raise PayloadError(topic, field, f"is not a plausible quantity (0 to {QUANTITY_LIMIT - 1:,})")
    return quantity


def payload_time(topic: str, field: str, moment: datetime) -> datetime:
    """An aware ``moment`` in UTC if it lies in [EARLIEST_TIME, LATEST_TIME), else PayloadError."""
    if moment.tzinfo is None:
        raise PayloadError(topic, field, f"has no time zone: {moment.isoformat()}")
    in_utc = plausible_time(moment)
    if in_utc is None:
        window = f"{EARLIEST_TIME:%Y-%m-%d} to {LATEST_TIME:%Y-%m-%d}"
        raise PayloadError(topic, field, f"is outside {window} (UTC): {moment.isoformat()}")
    return in_utc


def plausible_time(moment: datetime) -> datetime | None:
    """An aware ``moment`` in UTC, or None outside the window: for advisory values (a header,
    a plugin's meta) that are ignored rather than fatal when they make no sense."""
    try:
        in_utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):  # 9999-12-31T23:59:59-14:00 has no UTC
        return None
    return in_utc if EARLIEST_TIME <= in_utc < LATEST_TIME else None


def locale_tag(value: str) -> str:
    """``value`` if it looks like a language tag (``es``, ``pt-BR``, ``sr_Latn_RS``), else ``""``
    (the shop's locale applies): mails pick templates by it, so a page of letters or a line
    break from a payload must not reach that lookup or a Content-Language header."""
    value = value.strip()
    return value if _LOCALE_TAG.fullmatch(value) else ""


_LOCALE_TAG = re.compile(r"[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8}){0,4}")


def birthday_date(value: Any) -> date | None:
    """A customer field's text as a birthday: ``YYYY-MM-DD`` (Shopify's ``date`` metafield
    type, HTML's ``<input type=date>`` that WooCommerce checkout field plugins save), or
    the same followed by a time (a ``date_time`` metafield: its date part). Anything
    else is None: a ``03/04/1990`` could be either of two days, so none is guessed."""
    if not isinstance(value, str):
        return None
    text = value.strip()[:10]
    if not _ISO_DATE.fullmatch(text) or (len(value.strip()) > 10 and value.strip()[10] not in "T "):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2026-02-30
        return None


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def tracking_link(url: str) -> str:
    """``url`` if it is an absolute http(s) link, else ``""``: a platform's tracking URL reaches
    customers' mails as a link, and ``javascript:``, ``data:`` or a relative one must not."""
    url = url.strip()
    if not url or len(url) > TRACKING_LINK_LENGTH or not url.isprintable() or " " in url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # an unbalanced [ or a bad port
        return ""
    return url if parts.scheme.lower() in ("http", "https") and host else ""


class InstallRejected(Exception):
    """An install callback the receiver must refuse. ``status`` is the HTTP answer,
    ``reason`` a sentence for the person who followed the link (never a secret)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PlatformError(Exception):
    """A platform API call failed.

    ``transient`` errors (network, 5xx, throttling) are retried by the queue,
    after ``retry_after`` seconds when the platform said so; permanent ones
    (validation, 4xx) fail the action with ``message`` as its reason.
    """

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.retry_after = retry_after


@dataclass(frozen=True)
class WebhookDelivery:
    """A verified webhook: who sent it, what it is about, and its raw body."""

    shop_id: str
    topic: str
    delivery_id: str
    body: bytes
    triggered_at: datetime | None = None
    api_version: str = ""
    is_ping: bool = False

    @functools.cached_property
    def payload(self) -> Any:
        """The body as JSON data, parsed once (the receiver checks it, the adapter maps it).

        Raises PayloadError (field ``<body>``) if the body is not JSON or is nested too deeply.
        """
        try:
            return serialize.parse_json(self.body)
        except ValueError as exc:  # UnicodeDecodeError included
            raise PayloadError(self.topic, "<body>", f"is not JSON ({exc})") from None
        except RecursionError:  # the stdlib's fallback parser, on arrays or objects nested 1,000+ deep
            raise PayloadError(self.topic, "<body>", "is nested too deeply to be an order") from None


@dataclass(frozen=True)
class PrivacyRequest:
    """A platform's request about one customer's data, or a whole shop's (Shopify's compliance webhooks).

    ``kind``: ``customer_redact`` (erase the customer), ``customer_data_request`` (export what
    is kept about them), ``shop_redact`` (erase everything of the shop). ``email`` is empty for
    ``shop_redact``; ``customer_id`` is the platform's id of the customer, if it sent one (the
    customer is found by it, or by ``order_ids``, when the email is missing or matches nothing);
    ``reference`` is the platform's id of the request, if it has one.
    """

    kind: str
    email: str = ""
    customer_id: str = ""
    order_ids: tuple[str, ...] = ()
    reference: str = ""


#: The kinds of :class:`PrivacyRequest`.
PRIVACY_REQUEST_KINDS = ("customer_redact", "customer_data_request", "shop_redact")


class ShopState(Protocol):
    """Small per-shop key/value memory kept in the store for an adapter.

    WooCommerce sends whole orders, not transitions: its adapter remembers the
    last state it saw of each order here. Values are JSON-ready data.
    """

    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any) -> None: ...


class SecretBox(Protocol):
    """Encrypts what an adapter keeps in its :class:`ShopState` that must not lie there
    in clear (access and refresh tokens). The core builds it from the deployment's
    ``secret_key``; an adapter never sees the key itself."""

    def encrypt(self, plaintext: str) -> str:
        """Authenticated encryption of ``plaintext``, as ASCII text fit for JSON."""
        ...

    def decrypt(self, sealed: str) -> str:
        """The plaintext of ``encrypt``'s answer; ValueError when it was sealed with another
        key or altered."""
        ...


@dataclass(frozen=True, slots=True)
class ShopInfo:
    """What an adapter knows about the shop it serves, besides its own settings."""

    id: str
    webhook_secret: SecretStr
    locale: str = "en"
    timezone: str = "UTC"
    #: Seals secrets the adapter keeps in the store; None when the config has no ``secret_key``
    #: (the core refuses such a config for shops whose :meth:`Adapter.stored_secrets` is not empty).
    secrets: SecretBox | None = None
    #: The longest an enabled plugin may wait after an event before it acts (and re-reads
    #: the order): a platform that cannot read old orders needs a permission for that.
    longest_delay: timedelta = timedelta(0)


class LiveWarning(str):
    """A line of ``check_live`` that is worth knowing but does not fail the check
    (an API version near its end of support, data the platform withholds)."""

    __slots__ = ()


class AdapterSettings(BaseModel):
    """Base for an adapter's own shop keys (``shop_domain``, ``access_token``...).

    Unknown keys are errors, so a typo in the TOML is reported with its path.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class CouponSpec:
    """A single-use discount code for one customer's next purchase."""

    code: str
    kind: str  # "percent" or "fixed_amount"
    value: Decimal
    currency: str
    customer_email: str = ""
    customer_id: str = ""
    expires_at: datetime | None = None
    minimum_subtotal: Money | None = None
    title: str = ""


@dataclass(frozen=True, slots=True)
class CouponResult:
    code: str
    platform_id: str
    created: bool  # False when a code with this name already existed (an idempotent retry)


@dataclass(frozen=True, slots=True)
class PollBatch:
    """One page of a poll: the events it yields and the cursor to resume after it."""

    events: Sequence[Event]
    cursor: str
    orders_seen: int = 0
    orders_total: int | None = None


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    platform_id: str
    topic: str
    address: str
    #: "active", or what the platform says instead ("paused", "disabled" on WooCommerce).
    status: str = "active"
    #: Failed deliveries in a row, when the platform tells (None: it does not).
    failure_count: int | None = None


#: How long an adapter keeps one product's related products before reading them again.
RELATED_PRODUCTS_TTL = timedelta(hours=6)


class Adapter(abc.ABC):
    """One shop on one platform. Subclasses set ``platform`` and ``Settings``."""

    platform: ClassVar[str]
    Settings: ClassVar[type[AdapterSettings]] = AdapterSettings
    #: The platform topics that carry each event kind (for webhook subscriptions).
    topics: ClassVar[Mapping[EventKind, Sequence[str]]] = {}

    def __init__(
        self,
        shop: ShopInfo,
        settings: AdapterSettings,
        state: ShopState,
        clock: Callable[[], datetime],
    ) -> None:
        self.shop = shop
        self.settings = settings
        self.state = state
        self.now = clock

    @classmethod
    def offline_settings(cls) -> AdapterSettings:
        """Settings that validate but name no real shop: for mapping payloads offline
        (``aftercare.testing.sample_order``, docs). Override when ``Settings`` has required keys."""
        return cls.Settings()

    # -- webhooks -------------------------------------------------------
    @abc.abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Check the signature and headers; raise :class:`WebhookRejected` if wrong.

        ``headers`` is case-insensitive. A platform's creation ping is returned
        with ``is_ping=True`` and is never parsed.
        """

    @abc.abstractmethod
    def parse_webhook(self, delivery: WebhookDelivery) -> list[Event]:
        """Map a verified delivery to core events (none if the topic needs no hook).

        Raises :class:`PayloadError` naming topic and field when the body lacks
        what the mapping needs.
        """

    def privacy_request(self, delivery: WebhookDelivery) -> PrivacyRequest | None:
        """The privacy request a verified delivery carries (a compliance topic), else None.

        The receiver stores it for the worker instead of parsing events. Raises
        :class:`PayloadError` when a compliance body lacks what the request needs.
        """
        return None

    @abc.abstractmethod
    def parse_order(self, payload: Mapping[str, Any]) -> Order:
        """Map the platform's order payload (REST/webhook shape) to an Order."""

    # -- reading --------------------------------------------------------
    @abc.abstractmethod
    def fetch_order(self, order_id: str) -> Order:
        """Read one order now (used when a delayed action fires)."""

    @abc.abstractmethod
    def poll(self, cursor: str | None, since: datetime | None = None) -> Iterator[PollBatch]:
        """Yield the events of orders changed after ``cursor`` (or ``since``)."""

    # -- actions --------------------------------------------------------
    @abc.abstractmethod
    def create_coupon(self, spec: CouponSpec) -> CouponResult:
        """Create the code, or return the existing one of that name (idempotent)."""

    @abc.abstractmethod
    def add_order_note(self, order_id: str, text: str) -> None: ...

    @abc.abstractmethod
    def tag_order(self, order_id: str, tags: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def tag_customer(self, customer: Customer, tags: Sequence[str]) -> None: ...

    @abc.abstractmethod
    def set_marketing_consent(self, customer: Customer, state: ConsentState, source: str) -> None: ...

    # -- related products --------------------------------------------------
    def related_products(self, product_id: str) -> list[RelatedProduct]:
        """The products the shop itself relates to ``product_id``, in its order, read from the
        platform now (Shopify: Search & Discovery's complementary products; WooCommerce: the
        product's cross-sells, then its upsells); only those a customer can open and buy.
        An adapter that cannot tell answers none (this default): nothing is ever guessed."""
        return []

    def complementary_products(self, product_ids: Sequence[str], limit: int) -> list[RelatedProduct]:
        """Up to ``limit`` products related to ``product_ids`` (an order's lines), the first
        product's first, without repeats or the products themselves. Each product's list is
        kept in the adapter's state for :data:`RELATED_PRODUCTS_TTL`, so a shop's best seller
        costs one platform read per period, not one per mail. Raises PlatformError."""
        bought = {str(product_id) for product_id in product_ids if product_id}
        chosen: dict[str, RelatedProduct] = {}
        for product_id in dict.fromkeys(str(p) for p in product_ids if p):
            if len(chosen) >= limit:
                break  # enough: the other products' lists are not read
            for product in self._related_cached(product_id):
                if product.platform_id not in bought:
                    chosen.setdefault(product.platform_id, product)
        return list(chosen.values())[:limit]

    def _related_cached(self, product_id: str) -> list[RelatedProduct]:
        key = f"related_products:{product_id}"
        kept = self.state.get(key)
        now = self.now()
        if isinstance(kept, Mapping) and isinstance(kept.get("at"), str):
            try:
                fresh = now - datetime.fromisoformat(kept["at"]) < RELATED_PRODUCTS_TTL
                products = [serialize.from_data(RelatedProduct, item) for item in kept.get("products") or []]
            except (TypeError, ValueError):  # a kept entry of an older shape: read again
                fresh = False
            if fresh:
                return products
        products = self.related_products(product_id)
        self.state.set(key, {"at": now.isoformat(), "products": [serialize.to_data(p) for p in products]})
        return products

    # -- webhook subscriptions -----------------------------------------
    @abc.abstractmethod
    def list_webhooks(self) -> list[WebhookSubscription]: ...

    @abc.abstractmethod
    def register_webhooks(self, address: str, kinds: Sequence[EventKind]) -> list[WebhookSubscription]:
        """Subscribe ``address`` to the topics of ``kinds``; existing ones are kept (idempotent)."""

    @abc.abstractmethod
    def remove_webhooks(self, address: str) -> int:
        """Delete the subscriptions pointing at ``address``; return how many went."""

    # -- health ---------------------------------------------------------
    def check_live(self) -> list[str]:
        """Call the platform with the shop's credentials; return one line per problem
        (a :class:`LiveWarning` line warns without failing the check)."""
        return []

    # -- logging in -----------------------------------------------------
    @classmethod
    def stored_secrets(cls, settings: AdapterSettings) -> str:
        """What secret this shop's adapter obtains and keeps in its state (e.g. "the access
        token of the client credentials grant"), or '' if none. When not empty, the
        config must have a ``secret_key`` and ``ShopInfo.secrets`` is set."""
        return ""

    def authentication(self) -> str:
        """How the adapter logs in to this shop, in a few words for ``aftercare check``
        (e.g. "static access token", "authorization code (not installed yet: ...)")."""
        return ""

    def install_url(self, redirect_uri: str, valid_for: timedelta) -> str:
        """The link that installs the app on the shop and comes back to ``redirect_uri``.

        The adapter remembers what it needs to trust the callback (a nonce) for
        ``valid_for``. Raises :class:`PlatformError` when the shop is not set up to
        install through a link.
        """
        raise PlatformError(f"{self.platform} shops are not installed through a link", transient=False)

    def finish_install(self, query: Sequence[tuple[str, str]], redirect_uri: str) -> str:
        """Complete an install from the callback's query (pairs in order, as sent).

        Verifies the callback, obtains and keeps the credentials, and returns a
        sentence for the person who installed. Raises :class:`InstallRejected`
        with the HTTP status and the reason when the callback cannot be trusted or
        the platform refuses.
        """
        raise InstallRejected(404, f"{self.platform} shops are not installed through a link")


class MemoryShopState:
    """A :class:`ShopState` kept in a dict: for tests and one-off replays."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get(self, key: str) -> Any | None:
        return self._values.get(key)

    def set(self, key: str, value: Any) -> None:
        self._values[key] = value
