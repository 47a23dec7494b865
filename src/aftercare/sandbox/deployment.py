"""A whole aftercare on 127.0.0.1 around sandbox shops and one manual clock: what ``aftercare demo``
plays and the end-to-end tests drive.

Everything is the real thing: the sandbox shops (the platforms' APIs and
signed webhooks), the receiver served by uvicorn, the worker with its Huey
SQLite queue, a SQLite store and the outbox mail transport. Only time is
simulated: one :class:`~aftercare.clock.ManualClock` is shared by the app and
the sandboxes, so moving it makes days pass while webhooks, delayed actions,
quiet hours and fire-time checks behave as they would over real days.

:func:`deployment` wires the pieces; :class:`Customers` read their mail
(:func:`read_mail`) and follow its links; :func:`run_week` plays a week of
orders, decided up front from a seed. The demo's summary of it is in
:mod:`aftercare.demo`.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
import uvicorn

from aftercare.actions import ActionState
from aftercare.app import App
from aftercare.asgi import create_asgi_app
from aftercare.clock import ManualClock
from aftercare.config import Config
from aftercare.links import OPTIN_PATH, SURVEY_PATH, InvalidLink
from aftercare.models import ConsentState, Customer, EventKind, SurveyKind
from aftercare.pages import read_survey_link
from aftercare.vault import new_secret_key
from aftercare.worker import Worker

from .base import SandboxShop
from .shopify import ShopifySandbox
from .twilio import TwilioSandbox
from .woocommerce import WooCommerceSandbox

#: A Monday morning; any aware time works, a fixed one makes every run alike.
START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)

#: Shop id -> (platform, time zone). Both platforms, each with its own sandbox.
SHOPS: dict[str, tuple[str, str]] = {
    "demo-shopify": ("shopify", "Europe/Madrid"),
    "demo-woo": ("woocommerce", "Europe/Sofia"),
}

#: Every built-in plugin on, with delays short enough that a week shows them all.
DEMO_PLUGINS: dict[str, dict[str, Any]] = {
    # Texts go to the Twilio sandbox; related products come from the sandbox shops' catalogue.
    "tracking_notice": {"enabled": True, "delivered_notice": True, "sms": True, "complementary_products": 2},
    "coupon": {"enabled": True, "value": 10, "valid_days": 30, "prefix": "THANKS", "reward_for": ["optin_confirmed"]},
    "newsletter_optin": {"enabled": True, "days_after_delivery": 1, "customer_tag": "newsletter"},
    # The relationship NPS (marketing mail: the signed-up regulars) a day after their first delivery.
    "satisfaction_survey": {
        "enabled": True,
        "kind": "csat",
        "days_after_delivery": 1,
        "days_after_shipping": 4,
        "every_months": 6,
        "relationship_days_after_delivery": 1,
    },
    "review_request": {
        "enabled": True,
        "days_after_delivery": 3,
        "days_after_shipping": 6,
        "max_products": 2,
        "review_url": "https://shop.example/products/{product_id}#reviews",
        "complementary_products": 2,
    },
    "return_ack": {
        "enabled": True,
        "policy_url": "https://shop.example/returns",
        "policy_lines": {
            "en": ["30 days from delivery", "Unused, in the original packaging"],
            "es": ["30 días desde la entrega", "Sin usar, en su embalaje original"],
            "bg": ["30 дни от доставката", "Неизползван, в оригиналната опаковка"],
        },
        "tag": "return-requested",
    },
    "usage_tips": {
        "enabled": True,
        "days_after_delivery": 2,
        "groups": {
            "coffee": {
                "title_keywords": ["coffee", "pour-over"],
                "tips": {
                    "en": ["Grind just before brewing", "Water just off the boil, about 94 °C"],
                    "es": ["Muele el café justo antes de prepararlo", "Agua recién hervida, a unos 94 °C"],
                    "bg": ["Смелете кафето точно преди приготвяне", "Вода малко под кипене, около 94 °C"],
                },
            },
            "wool": {
                "title_keywords": ["wool", "socks"],
                "tips": {"en": ["Wash cold, dry flat"], "es": ["Lavar en frío, secar en plano"],
                         "bg": ["Перете на студено, сушете хоризонтално"]},
            },
        },
    },
    "warranty_reminder": {
        "enabled": True,
        "claim_url": "https://shop.example/warranty",
        "groups": {"leather": {"title_keywords": ["leather", "ceramic"], "months": 12, "days_before": 30}},
    },
    "delivery_exception": {"enabled": True, "coupon": {"enabled": True, "value": 15, "valid_days": 30}},
    # A week is short: a customer who has not ordered again 5 days on, coffee that lasts 2 days a bag.
    "win_back": {"enabled": True, "days": 5, "coupon": True, "coupon_value": 15, "coupon_prefix": "COMEBACK"},
    "replenishment": {
        "enabled": True,
        "shop_url": "https://shop.example",
        "groups": {"coffee": {"title_keywords": ["coffee"], "cycle_days": 2}},
    },
    # Birthdays of the customers who signed up before the week (Deployment.sign_up, run_week).
    "greetings": {"enabled": True, "send_hour": 9},
}

#: The first lost parcel of the week's first shop fails delivery this long after it left.
FAILED_DELIVERY_AFTER = timedelta(hours=30)
#: The year the signed-up regulars were born in: a leap year has every birthday.
BIRTH_YEAR = 1988

#: The week runs thousands of times faster than real time, but Shopify's cost bucket refills in
#: real seconds: at Shopify's standard 50 points/s the demo would mostly wait for the bucket.
#: A Plus-sized bucket keeps it quick; tests/e2e and bench/backfill.py exercise the real limits.
#: The Shopify shop logs in as a new merchant's app must since 2026: client credentials.
#: Both keep birthdays where a birthday app or checkout field would (the adapters read them there).
DEMO_SANDBOX_OPTIONS: dict[str, dict[str, Any]] = {
    "demo-shopify": {
        "bucket_size": 2000,
        "restore_rate": 1000,
        "auth": "client_credentials",
        "birthday_field": "facts.birth_date",
    },
    "demo-woo": {"birthday_field": "billing_birth_date"},
}

#: The shops' texting number: Twilio's magic test number, which no real phone has.
DEMO_TEXT_SENDER = "+15005550006"


# -- the deployment ------------------------------------------------------------------


@dataclass
class Deployment:
    """A running aftercare with its sandbox shops; :func:`deployment` builds and stops it."""

    folder: Path
    clock: ManualClock
    sandboxes: dict[str, SandboxShop]
    app: App
    worker: Worker
    url: str
    http: requests.Session
    consumer: Any = None
    #: Where the shops' texts go (``[mail.sms] api_url``); None when texts are off.
    twilio: TwilioSandbox | None = None

    @property
    def outbox(self) -> Path:
        return self.app.config.resolve_path(self.app.config.mail.outbox_dir)

    def webhook_address(self, shop_id: str) -> str:
        return f"{self.url}/webhooks/{shop_id}"

    def register_webhooks(self, shop_id: str) -> None:
        """Subscribe the receiver to every topic the hooks need, through the adapter, as
        ``aftercare webhooks register`` does; the sandbox then signs and sends them."""
        self.app.adapter(shop_id).register_webhooks(self.webhook_address(shop_id), list(EventKind))

    def settle(self, timeout: float = 30.0) -> None:
        """Deliver every queued webhook and do every piece of work due now, until nothing moves.

        The consumer threads work too; claims make sure nothing runs twice, and
        this loop makes sure nothing is still under way when it returns.
        """
        deadline = time.monotonic() + timeout
        while True:
            for shop in self.sandboxes.values():
                shop.flush(max(0.1, deadline - time.monotonic()))
            self.worker.run_now()
            if self._quiet():
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the deployment did not settle: work keeps arriving")
            time.sleep(0.005)

    def finish(self) -> None:
        """Stop the queue consumer (letting its tasks finish), then do what is left in this
        thread: after this nothing changes behind the caller's back, so figures are final."""
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
            self.consumer = None
        self.settle()

    def _quiet(self) -> bool:
        store, now = self.app.store, self.app.now()
        if self.consumer is not None and self.worker.queue.backlog():
            return False
        if any(shop.sender.pending(lambda _d: True) for shop in self.sandboxes.values()):
            return False
        if store.pending_events(now, limit=1) or store.due_actions(now, limit=1):
            return False
        if store.count_events_by_state().get("dispatching", 0):
            return False
        return store.count_actions_by_state().get(ActionState.RUNNING.value, 0) == 0

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        self.settle()

    def sign_up(self, shop_id: str, email: str, *, locale: str = "en", birthday: date | None = None) -> int:
        """A customer who signed up at the shop before ordering: yes to marketing mail (through
        the adapter, as aftercare records a double opt-in) and, on Shopify, to marketing texts,
        with ``birthday`` where the shop keeps birthdays (its ``birthday_field``). Their id."""
        shop = self.sandboxes[shop_id]
        customer = shop.add_customer(email=email, locale=locale)
        known = Customer(email=email, platform_id=str(customer.id))
        self.app.adapter(shop_id).set_marketing_consent(known, ConsentState.SUBSCRIBED, "double_opt_in")
        if isinstance(shop, ShopifySandbox):
            shop.set_sms_consent(customer.id)
        if birthday is not None and shop.birthday_field:
            shop.set_birthday(customer.id, birthday.isoformat())
        return customer.id


#: The demo shops' ``[shops.mail.brand]`` by platform: their look and address in every mail's footer.
DEMO_BRANDS: dict[str, dict[str, str]] = {
    "shopify": {
        "logo_url": "https://demo-shopify.example/logo.png",
        "accent_color": "#0f766e",
        "shop_url": "https://demo-shopify.example",
        "postal_address": "Demo Shopify Shop SL\nCalle Mayor 1\n28013 Madrid, Spain",
        "support_email": "help@demo-shopify.example",
    },
    "woocommerce": {
        "logo_url": "https://demo-woocommerce.example/logo.png",
        "accent_color": "#7c3aed",
        "shop_url": "https://demo-woocommerce.example",
        "postal_address": "Demo WooCommerce Shop EOOD\nul. Vitosha 1\n1000 Sofia, Bulgaria",
        "support_url": "https://demo-woocommerce.example/help",
    },
}


def demo_config(
    folder: Path,
    sandboxes: Mapping[str, SandboxShop],
    public_url: str,
    plugins: Mapping,
    console: bool = False,
    mail: Mapping[str, Any] | None = None,
    twilio: TwilioSandbox | None = None,
) -> Config:
    """The config a merchant would write for these shops, built in memory; ``mail`` changes
    its ``[mail]`` (an SMTP relay on 127.0.0.1 in place of the outbox, say); with ``twilio``
    the shops text through it (``[mail.sms]``)."""
    texts = {"sms": {"enabled": True, "from_number": DEMO_TEXT_SENDER, **twilio.sms_settings()}} if twilio else {}
    shops = []
    for shop_id, shop in sandboxes.items():
        platform, timezone = SHOPS.get(shop_id, (shop.platform, "UTC"))
        secret = shop.secret if isinstance(shop, ShopifySandbox) else shop.default_secret  # type: ignore[attr-defined]
        shops.append(
            {
                "id": shop_id,
                "platform": platform,
                "name": f"Demo {platform.capitalize()} Shop",
                "webhook_secret": secret,
                "production": True,
                "timezone": timezone,
                "sender": f"Demo Shop <hello@{shop_id}.example>",
                "mail": {"brand": DEMO_BRANDS.get(platform, {})},
                **shop.adapter_settings(),
            }
        )
    return Config.model_validate(
        {
            "database": "sqlite:///aftercare.db",
            "queue": "sqlite:///aftercare-queue.db",
            "public_url": public_url,
            # Fresh each run: a token kept from an earlier run is then unreadable, and a new one is asked for.
            "secret_key": new_secret_key(),
            "plugins": dict(plugins),
            # Every plugin mails in the same week here: a cap of 3 would hide the later ones.
            "mail": {"transport": "outbox", "outbox_dir": "outbox", "frequency_cap": 5, **texts, **(mail or {})},
            "console": {"enabled": console},
            "shops": shops,
            "base_dir": folder,
        }
    )


@contextlib.contextmanager
def deployment(
    folder: Path,
    *,
    clock: ManualClock | None = None,
    plugins: Mapping[str, Mapping[str, Any]] = DEMO_PLUGINS,
    shops: Mapping[str, str] | None = None,
    sandbox_options: Mapping[str, Mapping[str, Any]] | None = None,
    consumer_workers: int = 2,
    register: bool = True,
    console: bool = False,
    mail: Mapping[str, Any] | None = None,
) -> Iterator[Deployment]:
    """Start sandboxes, the receiver and the worker around one clock; stop them all on exit.

    ``shops`` maps shop ids to platforms (default: both demo shops);
    ``sandbox_options`` passes constructor options per shop id (bucket size,
    retry delays...). With ``register`` the receiver's webhooks are subscribed
    on each sandbox through the adapters. ``mail`` changes the ``[mail]`` settings. Each shop's
    catalogue holds the products its orders are made of, with related products; texts go to a
    :class:`TwilioSandbox`, whose made-up credentials are in the environment while it runs.
    """
    clock = clock or ManualClock(START)
    shops = dict(shops) if shops is not None else {sid: platform for sid, (platform, _tz) in SHOPS.items()}
    options = DEMO_SANDBOX_OPTIONS if sandbox_options is None else sandbox_options
    sandbox_classes: dict[str, type[SandboxShop]] = {"shopify": ShopifySandbox, "woocommerce": WooCommerceSandbox}
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        sandboxes: dict[str, SandboxShop] = {}
        for seed, (shop_id, platform) in enumerate(shops.items(), start=1):
            shop = sandbox_classes[platform](clock=clock.now, **{"seed": seed, **options.get(shop_id, {})})
            shop.start()
            stack.callback(shop.stop)
            shop.add_catalogue()
            sandboxes[shop_id] = shop
        twilio = stack.enter_context(TwilioSandbox(clock=clock.now))
        stack.enter_context(_environment(twilio.environment()))

        sock = socket.socket(socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        stack.callback(sock.close)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        app = App(demo_config(folder, sandboxes, url, plugins, console, mail, twilio), clock=clock)
        stack.callback(app.close)
        app.store.upgrade()
        worker = Worker(app)
        consumer = worker.queue.consumer(consumer_workers)
        consumer.start()

        server = uvicorn.Server(
            uvicorn.Config(create_asgi_app(app, worker.queue), log_config=None, access_log=False, lifespan="on")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="aftercare-demo-receiver")
        thread.start()
        stack.callback(thread.join, 10)
        stack.callback(setattr, server, "should_exit", True)
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)

        http = stack.enter_context(requests.Session())
        running = Deployment(folder, clock, sandboxes, app, worker, url, http, consumer, twilio)
        stack.callback(lambda: running.consumer and running.consumer.stop(graceful=True))
        if register:
            for shop_id in sandboxes:
                running.register_webhooks(shop_id)
            running.settle()
        yield running


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` while the block runs; what was there before comes back."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- simulated customers ----------------------------------------------------------------


_LINK = re.compile(r"https?://[^\s\"'<>]+")


@dataclass
class Mail:
    path: Path
    shop_id: str
    key: str
    to: str
    subject: str
    text: str

    def links(self, base: str, path: str) -> list[str]:
        prefix = base.rstrip("/") + path + "/"
        return list(dict.fromkeys(link for link in _LINK.findall(self.text) if link.startswith(prefix)))


def read_mail(path: Path) -> Mail:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    body = message.get_body(("plain", "html"))
    key = str(message.get("X-Aftercare-Key", ""))
    return Mail(
        path=path,
        shop_id=key.split("/", 1)[0],
        key=key,
        to=parseaddr(str(message["To"]))[1].lower(),
        subject=str(message["Subject"]),
        text=body.get_content() if body is not None else "",
    )


@dataclass
class Customers:
    """People who read their mail: some answer the survey, some confirm the newsletter.

    They click the links found in the .eml files and post the confirmation
    form to the receiver over HTTP, as a browser would.
    """

    running: Deployment
    rng: random.Random
    answer_rate: float = 0.6
    confirm_rate: float = 0.5
    #: CSAT 1..5, weighted like a shop that mostly pleases.
    scores: tuple[tuple[int, int], ...] = ((5, 40), (4, 30), (3, 15), (2, 10), (1, 5))
    #: NPS 0..10 (the relationship survey), weighted alike: mostly promoters, a few detractors.
    nps_scores: tuple[tuple[int, int], ...] = ((10, 30), (9, 25), (8, 20), (7, 10), (6, 8), (4, 5), (2, 2))
    #: Only these addresses act (empty: everyone who gets mail).
    only: frozenset[str] = frozenset()
    read: set[Path] = field(default_factory=set)
    answers: list[tuple[str, str, int]] = field(default_factory=list)  # shop, email, score
    optins: list[tuple[str, str]] = field(default_factory=list)

    def read_new_mail(self) -> int:
        """Open unread mail and act on it; returns how many links were followed."""
        followed = 0
        if not self.running.outbox.is_dir():
            return 0
        for path in sorted(self.running.outbox.glob("*.eml")):
            if path in self.read:
                continue
            self.read.add(path)
            mail = read_mail(path)
            if self.only and mail.to not in self.only:
                continue
            surveys = mail.links(self.running.url, SURVEY_PATH)
            optins = mail.links(self.running.url, OPTIN_PATH)
            if surveys and self.rng.random() < self.answer_rate:
                followed += self.answer_survey(mail, surveys)
            if optins and self.rng.random() < self.confirm_rate:
                followed += self.confirm(mail, optins[0])
        return followed

    def answer_survey(self, mail: Mail, links: list[str]) -> int:
        surveys = {}
        for link in links:
            with contextlib.suppress(InvalidLink):
                surveys[link] = read_survey_link(self.running.app, link.rsplit("/", 1)[1])
        nps = any(survey.kind is SurveyKind.NPS for survey in surveys.values())  # the relationship survey's
        scores, weights = zip(*(self.nps_scores if nps else self.scores), strict=True)
        wanted = self.rng.choices(scores, weights)[0]
        for link, survey in surveys.items():
            if survey.score == wanted:
                self._click_and_confirm(link, {"score": str(wanted)})
                self.answers.append((mail.shop_id, mail.to, wanted))
                return 1
        return 0

    def confirm(self, mail: Mail, link: str) -> int:
        self._click_and_confirm(link, {})
        self.optins.append((mail.shop_id, mail.to))
        return 1

    def _click_and_confirm(self, link: str, form: dict[str, str]) -> None:
        self.running.http.get(link, timeout=10).raise_for_status()  # the page asking to confirm: records nothing
        self.running.http.post(link, data=form, timeout=10).raise_for_status()


# -- the week ---------------------------------------------------------------------------

OUTCOMES = ("delivered",) * 10 + ("returned", "returned", "refunded", "refunded") + ("cancelled",) * 2 + ("lost",) * 2


@dataclass(frozen=True)
class Move:
    at: datetime
    shop_id: str
    order: int  # index into the week's orders
    move: str


@dataclass
class Week:
    """What happens to each order, decided up front from a seed so every run tells the same story."""

    moves: list[Move]
    orders: list[tuple[str, str, str]]  # shop id, locale, outcome
    emails: list[str | None]


def plan_week(shop_ids: list[str], orders_per_shop: int, rng: random.Random, start: datetime = START) -> Week:
    moves: list[Move] = []
    orders: list[tuple[str, str, str]] = []
    emails: list[str | None] = []
    locales = ("en", "es", "bg")
    for shop_id in shop_ids:
        outcomes = [OUTCOMES[i % len(OUTCOMES)] for i in range(orders_per_shop)]
        rng.shuffle(outcomes)
        for n, outcome in enumerate(outcomes):
            index = len(orders)
            locale = locales[n % 3]
            orders.append((shop_id, locale, outcome))
            # Every sixth order is from one of two regulars: coupons are once per customer and period.
            emails.append(f"regular-{n % 12 // 6 + 1}@{shop_id}.example" if n % 6 == 0 else None)
            created = start + timedelta(days=rng.randint(0, 3), hours=rng.randint(1, 13), minutes=rng.randint(0, 59))

            def at(after: datetime, low: int, high: int) -> datetime:
                return after + timedelta(hours=rng.randint(low, high))

            moves.append(Move(created, shop_id, index, "create" if outcome != "cancelled" else "create_unpaid"))
            if outcome == "cancelled":
                moves.append(Move(at(created, 2, 6), shop_id, index, "cancel"))
                continue
            if outcome == "refunded":  # out of stock: money back before anything ships
                moves.append(Move(at(created, 10, 20), shop_id, index, "refund"))
                continue
            shipped = at(created, 16, 30)
            moves.append(Move(shipped, shop_id, index, "ship"))
            if outcome == "lost":  # the carrier never reports the parcel delivered
                if shop_id == shop_ids[0] and not any(m.move == "fail_delivery" for m in moves):
                    # ...and one of them fails delivery: the notice and the apology coupon go out.
                    moves.append(Move(shipped + FAILED_DELIVERY_AFTER, shop_id, index, "fail_delivery"))
                continue
            delivered = at(shipped, 24, 54)
            moves.append(Move(delivered, shop_id, index, "deliver"))
            if outcome == "returned":
                requested = at(delivered, 20, 40)
                moves.append(Move(requested, shop_id, index, "return"))
                moves.append(Move(at(requested, 30, 48), shop_id, index, "refund"))
    moves.sort(key=lambda m: (m.at, m.order))
    return Week(moves, orders, emails)


@dataclass
class WeekResult:
    orders: dict[int, tuple[str, int]]  # week index -> (shop id, platform order id)
    customers: Customers
    days: int


def run_week(
    running: Deployment,
    *,
    orders_per_shop: int = 18,
    days: int = 7,
    seed: int = 8,
    step: timedelta = timedelta(hours=1),
    progress: Callable[[datetime], None] | None = None,
) -> WeekResult:
    """Play the week hour by hour: orders and their moves on the sandboxes, the receiver and
    worker catching up after each hour, customers reading their mail."""
    rng = random.Random(seed)
    start = running.clock.now()
    week = plan_week(list(running.sandboxes), orders_per_shop, rng, start)
    sign_up_regulars(running, week)
    customers = Customers(running, random.Random(seed + 1))
    placed: dict[int, tuple[str, int]] = {}
    pending = list(week.moves)
    end = start + timedelta(days=days)
    while running.clock.now() < end:
        now = running.clock.advance(step)
        while pending and pending[0].at <= now:
            _apply(running, week, pending.pop(0), placed)
        running.settle()
        if customers.read_new_mail():
            running.settle()
        if progress:
            progress(now)
    return WeekResult(placed, customers, days)


def sign_up_regulars(running: Deployment, week: Week) -> None:
    """The regulars signed up before the week (:meth:`Deployment.sign_up`); each shop's first
    to pay has a birthday the day after that order, so the greeting goes out within the week."""
    for shop_id in running.sandboxes:
        zone = ZoneInfo(running.app.shops[shop_id].config.timezone)
        regulars: dict[str, date | None] = {}
        for move in week.moves:
            email = week.emails[move.order]
            if move.shop_id != shop_id or not email or email in regulars or not move.move.startswith("create"):
                continue
            first_to_pay = move.move == "create" and all(day is None for day in regulars.values())
            birthday = move.at.astimezone(zone).date() + timedelta(days=1) if first_to_pay else None
            regulars[email] = birthday.replace(year=BIRTH_YEAR) if birthday else None
            running.sign_up(shop_id, email, locale=week.orders[move.order][1], birthday=regulars[email])


def _apply(running: Deployment, week: Week, move: Move, placed: dict[int, tuple[str, int]]) -> None:
    shop = running.sandboxes[move.shop_id]
    if move.move.startswith("create"):
        _shop_id, locale, _outcome = week.orders[move.order]
        order = shop.create_order(locale=locale, email=week.emails[move.order], paid=move.move == "create")
        placed[move.order] = (move.shop_id, order.id)
        return
    order_id = placed[move.order][1]
    if move.move == "ship":
        shop.ship(order_id)
    elif move.move == "deliver":
        shop.deliver(order_id)
    elif move.move == "fail_delivery":
        shop.fail_delivery(order_id, message="Address not found: the parcel goes back to the depot")
    elif move.move == "return":
        shop.request_return(
            order_id, reason=random.Random(order_id).choice(["size_too_small", "defective", "unwanted"])
        )
    elif move.move == "refund":
        shop.refund(order_id, reason="out of stock" if not shop.state.order(order_id).fulfillments else "returned")
    elif move.move == "cancel":
        shop.cancel(order_id, reason="customer")
