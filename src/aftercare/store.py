"""The store: event inbox, action outbox (with its schedule), hook runs,
consent, customer history, survey answers, adapter state and sync cursors.

SQLAlchemy 2 Core over SQLite (a WAL file, the embedded default) or
PostgreSQL. Nothing here is SQLite-only: the one dialect-specific construct,
"insert unless the key exists", has a branch for each of the two.

The schedule is the outbox itself: a delayed action is a ``due`` row whose
``due_at`` lies ahead, indexed by (state, due_at), so an action cannot be
scheduled without being recorded, or the other way round.

The schema is owned by the Alembic migrations in ``aftercare/migrations``;
:meth:`Store.migrate` brings any older database to the current one, under a lock.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import enum
import fcntl
import functools
import hashlib
import hmac
import itertools
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aftercare.actions import (
    MESSAGE_KINDS,
    ActionKind,
    ActionRecord,
    ActionRequest,
    ActionState,
    Cancellation,
    ReasonCode,
    Recheck,
)
from aftercare.models import (
    ConsentState,
    Customer,
    Event,
    EventKind,
    Order,
    SurveyAnswer,
    SurveyKind,
    SurveyPurpose,
    normalise_email,
)
from aftercare.platform import PrivacyRequest

log = logging.getLogger("aftercare.store")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, whatever the database keeps."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        value = value.astimezone(UTC)
        # SQLite keeps text: store it without offset, always UTC, so it sorts.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: The reason of an action put back until the action it depends on is done.
WAITING_FOR = "waiting for "

metadata = sa.MetaData()

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("dedupe_key", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("topic", sa.String(128), nullable=False, server_default=""),
    sa.Column("source", sa.String(32), nullable=False, server_default="webhook"),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),  # EVENT_STATES
    sa.Column("body", sa.Text, nullable=False),
    # A claim (migration 0007): who is dispatching it, and until when unless renewed.
    sa.Column("claimed_by", sa.String(64), nullable=False, server_default=""),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    # Failed dispatches: how many, why the last one failed, and when to try again.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retry_at", UTCDateTime, nullable=True),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("shop_id", "dedupe_key", name="uq_events_shop_dedupe"),
    sa.Index("ix_events_shop_order", "shop_id", "order_id"),
    sa.Index("ix_events_state", "state"),
    # The console's overview (migration 0005): events of a shop since a time, the last one per topic.
    sa.Index("ix_events_shop_received", "shop_id", "received_at"),
    sa.Index("ix_events_shop_topic_received", "shop_id", "topic", "received_at"),
)

rejected_deliveries = sa.Table(
    "rejected_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(128), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("shop_id", "delivery_id", name="uq_rejected_deliveries_shop_delivery"),
)

hook_runs = sa.Table(
    "hook_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id"), nullable=False),
    sa.Column("plugin", sa.String(64), nullable=False),
    sa.Column("hook", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # ok | failed
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("actions_requested", sa.Integer, nullable=False, server_default="0"),
    sa.Column("duration_ms", sa.Float, nullable=False, server_default="0"),
    sa.Column("ran_at", UTCDateTime, nullable=False),
    sa.Index("ix_hook_runs_event", "event_id"),
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String(512), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("plugin", sa.String(64), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("customer_email", sa.String(320), nullable=False, server_default=""),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("reason_code", sa.String(32), nullable=False, server_default=""),  # ReasonCode (migration 0012)
    sa.Column("rechecks", sa.String(128), nullable=False, server_default=""),
    sa.Column("depends_on", sa.String(512), nullable=False, server_default=""),
    sa.Column("hook", sa.String(64), nullable=False, server_default=""),
    sa.Column("event_key", sa.String(255), nullable=False, server_default=""),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # A claim (migration 0007): who is running it, and until when unless renewed.
    sa.Column("claimed_by", sa.String(64), nullable=False, server_default=""),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Index("ix_actions_state_due", "state", "due_at"),
    sa.Index("ix_actions_shop_order", "shop_id", "order_id"),
    sa.Index("ix_actions_customer", "shop_id", "customer_email"),
    # The console (migration 0005): counts per shop and state, and pages of one state newest first.
    sa.Index("ix_actions_shop_state_id", "shop_id", "state", "id"),
    sa.Index("ix_actions_state_id", "state", "id"),
)

#: An action whose channel did its work (the relay accepted the mail), by idempotency key (migration 0010):
#: written in its own transaction the moment the channel returns, before anything else, and deleted by the
#: transaction that records the action done. A run that finds its action's mark does not call the channel
#: again: the record was what failed, not the send.
sent_marks = sa.Table(
    "sent_marks",
    metadata,
    sa.Column("idempotency_key", sa.String(512), primary_key=True),
    sa.Column("message_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("sent_at", UTCDateTime, nullable=False),
)

consent = sa.Table(
    "consent",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Index("ix_consent_shop_email", "shop_id", "email"),
)

customer_history = sa.Table(
    "customer_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("event_kind", sa.String(32), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Index("ix_customer_history_shop_email", "shop_id", "email"),
)

survey_answers = sa.Table(
    "survey_answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("order_id", sa.String(64), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # csat | nps | ces
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("answered_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False, server_default="order"),  # order | relationship
    sa.UniqueConstraint("shop_id", "order_id", "kind", "purpose", name="uq_survey_answers_shop_order_kind_purpose"),
    sa.Index("ix_survey_answers_shop_answered", "shop_id", "answered_at"),
)

console_users = sa.Table(
    "console_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("shops", sa.Text, nullable=False),  # "all", or shop ids separated by commas
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("name", name="uq_console_users_name"),
)

#: Console logins per key ("name:NAME", "address:IP") in the current window (migration 0009):
#: counted before the password is checked, in the store so every serve process shares them.
login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Index("ix_login_attempts_window_start", "window_start"),
)

#: Signed-in console sessions (migration 0009), by a hash of the id in the cookie: logout deletes the row.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_console_sessions_expires_at", "expires_at"),
    sa.Index("ix_console_sessions_user_name", "user_name"),
)

adapter_state = sa.Table(
    "adapter_state",
    metadata,
    sa.Column("shop_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.JSON, nullable=True),
)

#: Each worker process's heartbeat (migration 0007): ``/healthz`` tells a dead or stuck worker by it.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # Store.claimant of that process
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("beat_at", UTCDateTime, nullable=False),
    sa.Column("progress_at", UTCDateTime, nullable=True),  # when it last finished an event or action
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("shop_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


# -- privacy (migration 0011): erasures and the platforms' privacy requests ----

#: An erased customer, by a keyed hash of their normalised email (:func:`customer_hash`), per shop
#: ("" for every shop): a later event about them is dropped at ingest (:meth:`Store.add_events`).
erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("email_hash", sa.String(64), nullable=False),
    sa.Column("erased_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("shop_id", "email_hash", name="uq_erasures_shop_hash"),
)

#: A platform's request to erase or export (Shopify's compliance webhooks), kept until the worker did it.
#: ``body`` holds what the platform sent (the customer's email among it) while pending; a done
#: request keeps none of it.
privacy_requests = sa.Table(
    "privacy_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),  # PRIVACY_REQUEST_KINDS
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | working (claimed) | done | failed
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime, nullable=True),  # a worker does it until then, unless it died
    sa.Column("done_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("shop_id", "delivery_id", name="uq_privacy_requests_shop_delivery"),
    sa.Index("ix_privacy_requests_state", "state"),
)

#: Addresses a shop must not mail, and why (:class:`SuppressionReason`; aftercare.mail.policy says
#: what each reason stops). Per shop: one client's list says nothing about another's.
mail_suppressions = sa.Table(
    "mail_suppressions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("shop_id", sa.String(64), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("shop_id", "email", "reason", name="uq_mail_suppressions_shop_email_reason"),
)


#: pending -> dispatching (claimed) -> dispatched; or back to pending (retry_at) and, after a limit, failed.
EVENT_STATES = ("pending", "dispatching", "dispatched", "failed")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    event: Event
    received_at: datetime
    state: str
    attempts: int = 0
    reason: str = ""
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """The freshest heartbeat of any worker, and when any of them last finished some work
    (or started: a worker that just started has not had the time to be stuck)."""

    beat_at: datetime | None
    progress_at: datetime | None


@dataclass(frozen=True, slots=True)
class Backlog:
    """Work that should have been done by now: events still pending, actions past their due time."""

    pending_events: int
    overdue_actions: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a claimed action ended, as :meth:`Store.record_outcome` writes it.

    ``state`` is done, dropped or failed for good, or due again at ``due_at``
    (a retry, a deferral). ``attempted``: the channel was called (counts in
    ``attempts``). ``sent``: the channel did its work (a relay accepted the
    mail), so a sent mark is written before the outcome.
    """

    state: ActionState
    reason: str = ""
    result: dict[str, Any] | None = None
    attempted: bool = False
    due_at: datetime | None = None
    sent: bool = False
    code: ReasonCode = ReasonCode.NONE  # what kind of reason ``reason`` is


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


@dataclass(frozen=True, slots=True)
class Suppression:
    email: str
    reason: SuppressionReason
    detail: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SentMark:
    """The channel of the action with this key did its work at ``sent_at``, with this result."""

    idempotency_key: str
    message_id: str
    result: dict[str, Any]
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSurveyAnswer:
    """A customer's answer as kept: one per shop, order, survey kind and purpose."""

    shop_id: str
    order_id: str
    email: str
    answer: SurveyAnswer
    source: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class HookRun:
    plugin: str
    hook: str
    outcome: str
    error: str = ""
    actions_requested: int = 0
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A console account as kept: its name, password hash, and the shops it may see (``("all",)``: every one)."""

    name: str
    password_hash: str
    shops: tuple[str, ...]
    created_at: datetime


def describe_database_error(exc: BaseException) -> str:
    """What failed, briefly, without the host, the user or the statement (for /healthz and one-line errors):
    ``Connection refused``, ``unable to open database file``, ``database or disk is full``."""
    original = getattr(exc, "orig", None) or exc
    if isinstance(original, OSError) and original.strerror:
        return original.strerror
    lines = str(original).strip().splitlines()
    text = lines[0] if lines else ""
    return text.rsplit(": ", 1)[-1].strip() or type(original).__name__


#: SQLite's answers that pass (a lock held too long, a disk that filled or failed for a moment), by primary name.
_SQLITE_TRANSIENT = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN")
_SQLITE_TRANSIENT_TEXT = ("database is locked", "database table is locked", "disk i/o error",
                          "database or disk is full", "unable to open database file")  # fmt: skip
#: PostgreSQL: a server that became read-only (a failover in progress) is transient too, though psycopg
#: calls it an InternalError; every other transient condition is an OperationalError there.
_POSTGRES_TRANSIENT_STATES = ("25006",)


def transient_database_error(exc: BaseException) -> bool:
    """Whether a database error may pass by itself, so the work it interrupted is tried again
    rather than failed: the one place that decides.

    True for a dropped or refused connection (``connection_invalidated``, any
    OperationalError on PostgreSQL: shutdown, terminated backend, lock and
    statement timeouts, serialization failures, deadlocks, too many
    connections), a pool with no connection to spare, and SQLite's "database
    is locked", disk I/O and disk-full errors. False for integrity,
    programming and data errors, and for SQLite's OperationalErrors that are
    programming errors there ("no such table", a syntax error).
    """
    if isinstance(exc, (sa.exc.TimeoutError, sa.exc.DisconnectionError)):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    original = exc.orig
    if isinstance(original, sqlite3.Error):
        name = getattr(original, "sqlite_errorname", "") or ""
        if name.startswith(_SQLITE_TRANSIENT):
            return True
        return isinstance(original, sqlite3.OperationalError) and str(original).lower().startswith(
            _SQLITE_TRANSIENT_TEXT
        )
    if getattr(original, "sqlstate", None) in _POSTGRES_TRANSIENT_STATES:
        return True
    return isinstance(exc, sa.exc.OperationalError)


#: Every error the database driver raises (it cannot connect, or refused a statement): what a command
#: reports in one line as a database it cannot open (``aftercare.cli.common.reaching_the_store``).
DATABASE_ERRORS: tuple[type[Exception], ...] = (sa.exc.DBAPIError,)
#: The database rather than the data failed (a lost or refused connection, a lock, a full disk, a missing
#: table): the receiver answers the whole batch 503 instead of retrying its deliveries one by one.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)


def database_driver(url: str) -> str | None:
    """The driver module a PostgreSQL database URL needs (``psycopg``, ``psycopg2``...); None for
    SQLite, and for a URL that cannot be read (the store reports that itself when it opens it)."""
    try:
        database = sa.engine.make_url(url)
        # psycopg (3) for postgresql+psycopg://, and for postgresql:// since SQLAlchemy 2.1.
        return database.get_driver_name() if database.get_backend_name() == "postgresql" else None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError):
        return None


def redacted_url(url: str) -> str:
    """A database (or Redis) URL with its password hidden, for messages and ``aftercare config``."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url.split("@")[-1]


def create_engine(url: str) -> Engine:
    """An engine with the settings aftercare relies on (WAL and durable commits on SQLite)."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives power loss
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


#: The ``cursors`` row /healthz's write probe keeps (under the empty shop id, which no shop can have).
HEALTH_PROBE_CURSOR = "healthz"

#: Retention deletes at most this many rows a transaction, and this many transactions a table a run.
RETENTION_BATCH, RETENTION_BATCHES = 500, 10
#: A claim older than its lease and not renewed belongs to a worker that died (``[server] claim_lease_seconds``).
DEFAULT_CLAIM_LEASE = timedelta(seconds=600)
#: How long an action's outcome is retried on fresh connections before the worker holds it for its heartbeat.
OUTCOME_RETRY = timedelta(seconds=10)
#: The waits between those tries: short first (a dropped connection is back at once), then up to 2 s.
_OUTCOME_RETRY_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def wall_clock() -> datetime:
    """Claims and heartbeats are about processes being alive, so they run on the wall clock,
    not the app's (the demo's clock jumps hours at a time)."""
    return datetime.now(UTC)


#: Names the PostgreSQL advisory lock that migrations queue on (with the schema's name).
MIGRATION_LOCK = "aftercare.migrations:"


class SchemaOutOfDate(Exception):
    """The database's schema is not the revision this aftercare expects: none yet, older, or newer."""

    def __init__(self, current: str | None, head: str) -> None:
        from aftercare.migrations import known_revision

        self.current, self.head = current, head
        self.newer = current is not None and not known_revision(current)
        if current is None:
            text = f"no aftercare schema yet (this aftercare needs revision {head}): run `aftercare migrate`"
        elif self.newer:
            text = (f"the schema is at revision {current}, which this aftercare does not know"
                    f" (a newer aftercare migrated it; it needs {head}): upgrade aftercare")  # fmt: skip
        else:
            text = f"the schema is at revision {current}, this aftercare needs {head}: run `aftercare migrate`"
        super().__init__(text)


class Store:
    """The only door to the database: every query aftercare makes is a method here.

    One way to make writes commit together: open ``with store.transaction() as conn:`` (or
    :meth:`bounded_transaction`) and pass that ``conn``, always as the first argument, to the
    methods that take one (``add_events(conn, ...)``, ``write_cursor(conn, ...)``...). A method
    without ``conn`` is a transaction of its own. The adapters' remembered state
    (:meth:`shop_state`), which the platform interface cannot hand a connection, joins the
    transaction it is used in by itself.
    """

    def __init__(self, url: str, clock: Any, *, claim_lease: timedelta = DEFAULT_CLAIM_LEASE) -> None:
        self.url = url
        self.engine = create_engine(url)
        self._clock = clock
        self.claim_lease = claim_lease
        #: Who this process's claims name: host, pid, and a random part (pids are reused).
        self.claimant = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._started_at = wall_clock()
        self._held_lock = threading.Lock()
        self._held: dict[str, Counter[int]] = {"events": Counter(), "actions": Counter()}
        #: Outcomes the store could not take when their action ended, by action id: the heartbeat writes them.
        self._held_outcomes: dict[int, Outcome] = {}
        self.outcome_retry = OUTCOME_RETRY
        #: The key of customers' hashes (:func:`customer_hash`), from ``secret_key``: with it, events about
        #: an erased customer are dropped at ingest. None without a ``secret_key`` (nothing can be erased).
        self.erasure_key: bytes | None = None
        #: Keys from ``previous_secret_keys``: customers erased before a rotation are still recognised.
        self.previous_erasure_keys: tuple[bytes, ...] = ()
        self._sqlite = self.engine.dialect.name == "sqlite"
        database = self.engine.url.database if self._sqlite else None
        self._write_lock = (
            SqliteWriteLock(Path(database)) if database and database != ":memory:" else contextlib.nullcontext()
        )

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -----------------------------------------------------------
    def migrate(self, on_step: Callable[[str], None] | None = None) -> str:
        """Create or migrate the schema to the head revision (keeps the data); return that revision.

        Processes that start together migrate one at a time, and only the
        first applies anything (``on_step`` hears of each revision applied):
        on PostgreSQL they queue on an advisory lock for the current schema
        (schemas isolate tests and tenants), held to the end of the
        migration's transaction; on SQLite on the write lock every
        transaction takes (:class:`SqliteWriteLock`, then ``BEGIN IMMEDIATE``).
        A schema from a newer aftercare raises :class:`SchemaOutOfDate`.
        """
        from aftercare.migrations import current_revision, head_revision, known_revision, upgrade

        with self.transaction() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:lock || coalesce(current_schema(), '')))"),
                             {"lock": MIGRATION_LOCK})  # fmt: skip
            current = current_revision(conn)
            if current is not None and not known_revision(current):
                raise SchemaOutOfDate(current, head_revision())
            upgrade(conn, on_step=on_step)
            revision = current_revision(conn)
        assert revision is not None
        return revision

    def upgrade(self) -> None:
        """:meth:`migrate`, for callers that need no revision (the demo, tests, one-off tools)."""
        self.migrate()

    def require_current_schema(self) -> str:
        """The schema's revision if it is the one this code expects; else :class:`SchemaOutOfDate`.

        Services check this instead of migrating, so a new version never changes the
        schema under processes of the old one: ``aftercare migrate`` runs once, first."""
        from aftercare.migrations import current_revision, head_revision

        with self.engine.connect() as conn:
            current = current_revision(conn)
        head = head_revision()
        if current != head:
            raise SchemaOutOfDate(current, head)
        return current

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: the one way to make writes commit together (see :class:`Store`).

        SQLite has one writer at a time, and its busy handler waits by
        sleeping in growing steps (up to 100 ms), which under load costs far
        more than the writes. So writers queue on :class:`SqliteWriteLock`
        instead (woken the moment it is free, across threads and processes),
        and ``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so a
        transaction that reads before it writes cannot fail half-way.
        """
        with self._write_lock, self.engine.begin() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            token = _in_transaction.set((self, conn))  # the adapters' state joins it (StoredShopState)
            try:
                yield conn
            finally:
                _in_transaction.reset(token)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    # -- the receiver's writes and /healthz's probes: bounded in time -------
    @contextmanager
    def bounded_transaction(self, seconds: float) -> Iterator[Connection]:
        """A write transaction (:meth:`transaction`) whose statements give up after ``seconds``
        of waiting for a lock or running, on PostgreSQL: the receiver answers 503 before the
        platform's deadline rather than waiting out a table lock. (SQLite's writers queue on
        :class:`SqliteWriteLock`; the receiver bounds its own wait for them.)"""
        with self.transaction() as conn:
            self._bound_waits(conn, seconds)
            yield conn

    def _bound_waits(self, conn: Connection, seconds: float) -> None:
        if self.engine.dialect.name == "postgresql":
            limit = f"{max(1, round(seconds * 1000))}ms"
            settings = "SELECT set_config('lock_timeout', :limit, true), set_config('statement_timeout', :limit, true)"
            conn.execute(sa.text(settings), {"limit": limit})

    def probe_read(self, seconds: float) -> None:
        """Read the inbox, giving up after ``seconds`` on PostgreSQL (a lock on ``events``)."""
        with self.engine.connect() as conn:
            self._bound_waits(conn, seconds)
            conn.execute(sa.select(events.c.id).limit(1)).all()

    def probe_write(self, seconds: float) -> None:
        """A tiny committed write, bounded as the receiver's are: a full disk, a read-only
        database or a lock that keeps the receiver from writing the inbox fails it.

        The no-op UPDATE takes the lock on ``events`` an insert takes, without changing a
        row; the write that commits is one row of its own in ``cursors`` (no shop has the
        empty id), so the probe leaves nothing behind but that row's time."""
        now = wall_clock()
        with self.bounded_transaction(seconds) as conn:
            conn.execute(sa.update(events).where(sa.false()).values(state=events.c.state))
            row = {"shop_id": "", "name": HEALTH_PROBE_CURSOR, "value": now.isoformat(), "updated_at": now}
            upsert(conn, cursors, row, ("shop_id", "name"))

    # -- inbox ------------------------------------------------------------
    def add_events(self, conn: Connection, batch: Sequence[Event]) -> list[tuple[int, bool]]:
        """Store events not seen before; return (event id, is new) for each, in order. An event about
        an erased customer is not stored: (0, False)."""
        now = self._clock.now()
        erased = self._erased_events(conn, batch)
        if erased:
            for n in sorted(erased):
                log.info("event shop=%s key=%s dropped: its customer was erased", batch[n].shop_id,
                         batch[n].dedupe_key)  # fmt: skip
            kept = [e for n, e in enumerate(batch) if n not in erased]
            ids = iter(self.add_events(conn, kept))
            return [(0, False) if n in erased else next(ids) for n in range(len(batch))]
        rows = [
            {
                "shop_id": e.shop_id,
                "dedupe_key": e.dedupe_key,
                "kind": e.kind.value,
                "order_id": e.order.platform_id,
                "topic": e.topic,
                "source": e.source,
                "occurred_at": e.occurred_at,
                "received_at": now,
                "state": "pending",
                "body": e.to_json(),
            }
            for e in batch
        ]
        keys = [(e.shop_id, e.dedupe_key) for e in batch]
        if self._sqlite:
            inserted = insert_new(conn, events, rows, ("shop_id", "dedupe_key"))
            ids = self._event_ids(conn, keys)
        else:  # the new rows' ids come back with them; only keys already taken are looked up (see insert_new)
            fresh: dict[tuple[str, str], dict[str, Any]] = {}
            for key, row in zip(keys, rows, strict=True):
                fresh.setdefault(key, row)  # a key twice in one batch: the first row's, as insert_new
            returned = insert_rows(conn, events, list(fresh.values()), skip_taken=("shop_id", "dedupe_key"),
                                   returning=("shop_id", "dedupe_key", "id"))  # fmt: skip
            ids = {(shop_id, key): event_id for shop_id, key, event_id in returned}
            inserted = set(ids)
            ids.update(self._event_ids(conn, [key for key in fresh if key not in inserted]))
        result, seen = [], set()
        for key in keys:  # a key twice in one batch is new only the first time
            result.append((ids[key], key in inserted and key not in seen))
            seen.add(key)
        return result

    def replace_event(self, event_id: int, event: Event) -> None:
        """Keep ``event`` as the stored event's body: its partial order re-read whole. Key,
        kind and order id stay (they are what made it this event)."""
        with self.transaction() as conn:
            conn.execute(sa.update(events).where(events.c.id == event_id).values(body=event.to_json()))

    def _event_ids(self, conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        result: dict[tuple[str, str], int] = {}
        for shop_id in {k[0] for k in keys}:
            wanted = [k[1] for k in keys if k[0] == shop_id]
            query = sa.select(events.c.id, events.c.dedupe_key).where(
                events.c.shop_id == shop_id, events.c.dedupe_key.in_(wanted)
            )
            for row in conn.execute(query):
                result[(shop_id, row.dedupe_key)] = row.id
        return result

    def get_event(self, event_id: int) -> StoredEvent:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).one_or_none()
        if row is None:
            raise KeyError(f"no event #{event_id}")
        return _stored_event(row)

    def get_events(self, event_ids: Sequence[int]) -> list[StoredEvent]:
        if not event_ids:
            return []
        query = sa.select(events).where(events.c.id.in_(list(event_ids))).order_by(events.c.id)
        with self.engine.connect() as conn:
            return [_stored_event(row) for row in conn.execute(query)]

    def list_events(
        self, *, shop_id: str | None = None, order_id: str | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        query = sa.select(events).order_by(events.c.id.desc()).limit(limit)
        if shop_id:
            query = query.where(events.c.shop_id == shop_id)
        if order_id:
            query = query.where(events.c.order_id == order_id)
        with self.engine.connect() as conn:
            return [_stored_event(row) for row in conn.execute(query)]

    def latest_order(self, shop_id: str, order_id: str) -> Order | None:
        """The order as its latest stored event carried it, a whole one rather than a partial one.

        Customer pages build their events from it, so they never ask the
        platform (a partial order is still re-read by the worker before the hooks).
        """
        query = (
            sa.select(events.c.body)
            .where(events.c.shop_id == shop_id, events.c.order_id == order_id)
            .order_by(events.c.id.desc())
        )
        with self.engine.connect() as conn:
            orders = [Event.from_json(body).order for body in conn.execute(query).scalars()]
        return next((o for o in orders if not o.partial), orders[0] if orders else None)

    def events_of_kind(
        self, shop_id: str, kinds: Iterable[EventKind], since: datetime | None = None, until: datetime | None = None
    ) -> list[Event]:
        """A shop's events of these kinds that occurred in [since, until), oldest first (for the report)."""
        query = (
            sa.select(events.c.body)
            .where(events.c.shop_id == shop_id, events.c.kind.in_([k.value for k in kinds]))
            .order_by(events.c.occurred_at, events.c.id)
        )
        if since is not None:
            query = query.where(events.c.occurred_at >= since)
        if until is not None:
            query = query.where(events.c.occurred_at < until)
        with self.engine.connect() as conn:
            return [Event.from_json(body) for body in conn.execute(query).scalars()]

    def pending_events(self, received_before: datetime, limit: int = 500) -> list[int]:
        """Events stored but not dispatched yet (a lost queue message, a crash), and due:
        one whose dispatch failed waits for its ``retry_at``."""
        query = (
            sa.select(events.c.id)
            .where(events.c.state == "pending", events.c.received_at <= received_before, self._event_due())
            .order_by(events.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def _event_due(self) -> sa.ColumnElement[bool]:
        return sa.or_(events.c.retry_at.is_(None), events.c.retry_at <= self._clock.now())

    # -- event claims -------------------------------------------------------
    def claim_events(self, event_ids: Sequence[int]) -> list[int]:
        """Claim the pending, due events among ``event_ids`` for this process (-> ``dispatching``);
        return those it got. One UPDATE ... RETURNING: two workers, threads or the sweep and the
        queue asking for the same event get it once between them."""
        if not event_ids:
            return []
        claim = (
            sa.update(events)
            .where(events.c.id.in_(list(event_ids)), events.c.state == "pending", self._event_due())
            .values(state="dispatching", claimed_by=self.claimant, claimed_until=wall_clock() + self.claim_lease)
            .returning(events.c.id)
        )
        with self.transaction() as conn:
            claimed = sorted(conn.execute(claim).scalars())
        self._hold("events", claimed)
        return claimed

    def still_claimed_events(self, conn: Connection, event_ids: Sequence[int]) -> set[int]:
        """Of ``event_ids``, those this process still holds (inside the transaction that records
        their dispatch: a claim taken back after its lease must not be recorded twice)."""
        query = sa.select(events.c.id).where(
            events.c.id.in_(list(event_ids)), events.c.state == "dispatching", events.c.claimed_by == self.claimant
        )
        return set(conn.execute(query.with_for_update()).scalars())

    def event_dispatch_failed(self, event_id: int, reason: str, retry_at: datetime | None) -> None:
        """Record a failed dispatch of a claimed event: pending again from ``retry_at``, or
        ``failed`` for good when ``retry_at`` is None. The reason stays on the event."""
        values: dict[str, Any] = {"attempts": events.c.attempts + 1, "reason": reason, "retry_at": retry_at}
        values["state"] = "failed" if retry_at is None else "pending"
        with self.transaction() as conn:
            conn.execute(
                sa.update(events)
                .where(events.c.id == event_id, events.c.state == "dispatching", events.c.claimed_by == self.claimant)
                .values(**values)
            )

    def retry_event(self, event_id: int) -> bool:
        """Make a failed event pending again, now, with its attempts counted afresh."""
        with self.transaction() as conn:
            changed = conn.execute(
                sa.update(events)
                .where(events.c.id == event_id, events.c.state == "failed")
                .values(state="pending", attempts=0, retry_at=None, reason="")
            )
            return changed.rowcount == 1

    def release_stale_events(self) -> int:
        """Put back events whose claim ran out unrenewed (their worker died): pending, now."""
        with self.transaction() as conn:
            return conn.execute(
                sa.update(events)
                .where(events.c.state == "dispatching", self._claim_ran_out(events))
                .values(state="pending", reason="released: its worker stopped mid-dispatch")
            ).rowcount

    # -- holding claims: what this process works on now, renewed by the heartbeat ----
    def _hold(self, table: str, ids: Iterable[int]) -> None:
        with self._held_lock:
            self._held[table].update(ids)

    def let_go(self, table: str, ids: Iterable[int]) -> None:
        """This process no longer works on these events/actions (finished, put back, or crashed):
        the heartbeat stops renewing their claims, so a claim left behind runs out."""
        with self._held_lock:
            held = self._held[table]
            for i in ids:
                held[i] -= 1
                if held[i] <= 0:
                    del held[i]

    def held(self, table: str) -> list[int]:
        with self._held_lock:
            return sorted(self._held[table])

    @staticmethod
    def _claim_ran_out(table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until <= wall_clock())

    def heartbeat(self, progress_at: datetime | None) -> None:
        """Renew the claims this process holds and say it is alive (``workers``), in one transaction."""
        now = wall_clock()
        until = now + self.claim_lease
        held_events, held_actions = self.held("events"), self.held("actions")
        with self.transaction() as conn:
            for table, ids, state in ((events, held_events, "dispatching"), (actions, held_actions, "running")):
                if ids:
                    conn.execute(
                        sa.update(table)
                        .where(table.c.id.in_(ids), table.c.state == state, table.c.claimed_by == self.claimant)
                        .values(claimed_until=until)
                    )
            row = {"id": self.claimant, "host": socket.gethostname()[:255], "pid": os.getpid(),
                   "started_at": self._started_at, "beat_at": now, "progress_at": progress_at}  # fmt: skip
            upsert(conn, workers, row, ("id",))
            conn.execute(sa.delete(workers).where(workers.c.beat_at < now - timedelta(days=1)))

    def worker_beat(self, host: str | None = None) -> WorkerBeat:
        """Of every worker, or of the workers on ``host`` (``aftercare worker --check``)."""
        query = sa.select(
            sa.func.max(workers.c.beat_at), sa.func.max(sa.func.coalesce(workers.c.progress_at, workers.c.started_at))
        )
        if host is not None:
            query = query.where(workers.c.host == host[:255])
        with self.engine.connect() as conn:
            beat_at, progress_at = conn.execute(query).one()
        return WorkerBeat(_utc(beat_at), _utc(progress_at))

    def backlog(self, older_than: timedelta) -> Backlog:
        """Events pending and actions due for longer than ``older_than`` (app clock)."""
        before = self._clock.now() - older_than
        pending = sa.and_(events.c.state == "pending", events.c.received_at <= before, self._event_due())
        overdue = sa.and_(actions.c.state == ActionState.DUE.value, actions.c.due_at <= before)
        with self.engine.connect() as conn:
            n_events, oldest_event = conn.execute(
                sa.select(sa.func.count(), sa.func.min(events.c.received_at)).where(pending)
            ).one()
            n_actions, oldest_action = conn.execute(
                sa.select(sa.func.count(), sa.func.min(actions.c.due_at)).where(overdue)
            ).one()
        oldest = [t for t in (_utc(oldest_event), _utc(oldest_action)) if t is not None]
        return Backlog(n_events, n_actions, min(oldest) if oldest else None)

    def count_events_by_state(self) -> dict[str, int]:
        query = sa.select(events.c.state, sa.func.count()).group_by(events.c.state)
        with self.engine.connect() as conn:
            return {state: n for state, n in conn.execute(query)}

    def keep_rejected_delivery(
        self, conn: Connection, *, shop_id: str, delivery_id: str, topic: str, error: str, body: bytes
    ) -> None:
        """Keep a signed delivery the adapter could not read, raw, for inspection (once per delivery)."""
        row = {
            "shop_id": shop_id,
            "delivery_id": delivery_id or f"unidentified:{self._clock.now().isoformat()}",
            "topic": topic,
            "error": error,
            "body": body,
            "received_at": self._clock.now(),
        }
        insert_new(conn, rejected_deliveries, [row], ("shop_id", "delivery_id"))

    def rejected(self, shop_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = sa.select(rejected_deliveries).order_by(rejected_deliveries.c.id.desc()).limit(limit)
        if shop_id:
            query = query.where(rejected_deliveries.c.shop_id == shop_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def record_hook_runs(self, conn: Connection, runs_by_event: Mapping[int, Iterable[HookRun]]) -> None:
        """Keep what each plugin's hook did, and mark the events dispatched."""
        now = self._clock.now()
        rows = [
            {
                "event_id": event_id,
                "plugin": r.plugin,
                "hook": r.hook,
                "outcome": r.outcome,
                "error": r.error,
                "actions_requested": r.actions_requested,
                "duration_ms": r.duration_ms,
                "ran_at": now,
            }
            for event_id, runs in runs_by_event.items()
            if event_id > 0  # 0: an event about an erased customer, not stored
            for r in runs
        ]
        if rows:
            insert_rows(conn, hook_runs, rows)
        if runs_by_event:
            conn.execute(
                sa.update(events)
                .where(events.c.id.in_(list(runs_by_event)))
                .values(state="dispatched", reason="", retry_at=None)
            )

    def hook_runs_for(self, event_id: int) -> list[HookRun]:
        query = sa.select(hook_runs).where(hook_runs.c.event_id == event_id).order_by(hook_runs.c.id)
        with self.engine.connect() as conn:
            return [
                HookRun(r.plugin, r.hook, r.outcome, r.error, r.actions_requested, r.duration_ms)
                for r in conn.execute(query)
            ]

    def failed_hook_runs(self, event_id: int) -> list[str]:
        """Plugins whose latest run on this event failed (what a retry runs again)."""
        latest: dict[str, str] = {}
        for run in self.hook_runs_for(event_id):
            latest[run.plugin] = run.outcome
        return [plugin for plugin, outcome in latest.items() if outcome == "failed"]

    # -- outbox -----------------------------------------------------------
    def add_actions(self, conn: Connection, requests: Sequence[ActionRequest]) -> set[str]:
        """Store requests whose idempotency key is new; return the new keys."""
        now = self._clock.now()
        rows = [
            {
                "idempotency_key": r.idempotency_key,
                "kind": r.kind.value,
                "shop_id": r.shop_id,
                "plugin": r.plugin,
                "order_id": r.order_id,
                "key": r.key,
                "customer_email": r.customer_email,
                "payload": r.payload,
                "due_at": r.due_at,
                "state": ActionState.DUE.value,
                "reason": "",
                "reason_code": ReasonCode.NONE.value,
                "rechecks": ",".join(r.rechecks),
                "depends_on": r.depends_on,
                "hook": r.hook,
                "event_key": r.event_key,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
            for r in requests
        ]
        new = {key for (key,) in insert_new(conn, actions, rows, ("idempotency_key",))}
        for request in requests:
            if request.reschedule and request.idempotency_key not in new:
                conn.execute(
                    sa.update(actions)
                    .where(
                        actions.c.idempotency_key == request.idempotency_key, actions.c.state == ActionState.DUE.value
                    )
                    .values(
                        due_at=request.due_at,
                        payload=request.payload,
                        rechecks=",".join(request.rechecks),
                        reason=f"rescheduled by {request.hook}",
                        reason_code=ReasonCode.RESCHEDULED.value,
                        updated_at=now,
                    )
                )
        return new

    def apply_cancellations(self, conn: Connection, cancellations: Iterable[Cancellation]) -> int:
        count = 0
        for c in cancellations:
            whose = (actions.c.order_id == c.order_id,)
            if c.customer_email:  # the customer's orders paid before it
                earlier = sa.select(customer_history.c.order_id).where(
                    customer_history.c.shop_id == c.shop_id,
                    customer_history.c.email == c.customer_email,
                    customer_history.c.event_kind == EventKind.ORDER_PAID.value,
                    customer_history.c.occurred_at < c.paid_before,
                    customer_history.c.order_id != c.order_id,
                )
                whose = (actions.c.customer_email == c.customer_email, actions.c.order_id.in_(earlier))
            result = conn.execute(
                sa.update(actions)
                .where(
                    actions.c.shop_id == c.shop_id,
                    actions.c.plugin == c.plugin,
                    *whose,
                    actions.c.key == c.key,
                    actions.c.state == ActionState.DUE.value,
                )
                .values(
                    state=ActionState.DROPPED.value,
                    reason=c.reason,
                    reason_code=ReasonCode.WITHDRAWN.value,
                    updated_at=self._clock.now(),
                )
            )
            count += result.rowcount
        return count

    def get_action(self, action_id: int) -> ActionRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(actions).where(actions.c.id == action_id)).one_or_none()
        if row is None:
            raise KeyError(f"no action #{action_id}")
        return _action_record(row)

    def action_by_key(self, conn: Connection, idempotency_key: str) -> ActionRecord | None:
        row = conn.execute(sa.select(actions).where(actions.c.idempotency_key == idempotency_key)).one_or_none()
        return _action_record(row) if row else None

    def actions_by_keys(self, keys: Iterable[str]) -> list[ActionRecord]:
        keys = list(keys)
        if not keys:
            return []
        query = sa.select(actions).where(actions.c.idempotency_key.in_(keys)).order_by(actions.c.id)
        with self.engine.connect() as conn:
            return [_action_record(r) for r in conn.execute(query)]

    def waiting_dependents(self, idempotency_key: str) -> list[ActionRecord]:
        """The actions still due that depend on the action with this key (``after=``), waiting or not yet run."""
        waiting = sa.and_(actions.c.depends_on == idempotency_key, actions.c.state == ActionState.DUE.value)
        query = sa.select(actions).where(waiting).order_by(actions.c.id)
        with self.engine.connect() as conn:
            return [_action_record(r) for r in conn.execute(query)]

    def due_actions(self, now: datetime, limit: int = 100, shop_id: str | None = None) -> list[ActionRecord]:
        query = (
            sa.select(actions)
            .where(actions.c.state == ActionState.DUE.value, actions.c.due_at <= now)
            .order_by(actions.c.due_at, actions.c.id)
            .limit(limit)
        )
        if shop_id is not None:  # the worker picks up shop by shop, so one shop's backlog cannot fill the page
            query = query.where(actions.c.shop_id == shop_id)
        with self.engine.connect() as conn:
            return [_action_record(r) for r in conn.execute(query)]

    def list_actions(
        self,
        *,
        shop_id: str | None = None,
        plugin: str | None = None,
        state: ActionState | None = None,
        order_id: str | None = None,
        limit: int = 100,
    ) -> list[ActionRecord]:
        query = sa.select(actions).order_by(actions.c.id.desc()).limit(limit)
        for column, value in (
            (actions.c.shop_id, shop_id),
            (actions.c.plugin, plugin),
            (actions.c.state, state.value if state else None),
            (actions.c.order_id, order_id),
        ):
            if value:
                query = query.where(column == value)
        with self.engine.connect() as conn:
            return [_action_record(r) for r in conn.execute(query)]

    def done_actions(
        self, shop_id: str, kind: ActionKind, since: datetime | None = None, until: datetime | None = None
    ) -> list[ActionRecord]:
        """A shop's actions of ``kind`` that were done in [since, until), oldest first (for the report)."""
        query = (
            sa.select(actions)
            .where(
                actions.c.shop_id == shop_id,
                actions.c.kind == kind.value,
                actions.c.state == ActionState.DONE.value,
            )
            .order_by(actions.c.updated_at, actions.c.id)
        )
        if since is not None:
            query = query.where(actions.c.updated_at >= since)
        if until is not None:
            query = query.where(actions.c.updated_at < until)
        with self.engine.connect() as conn:
            return [_action_record(r) for r in conn.execute(query)]

    def claim_action(self, action_id: int) -> bool:
        """Move a due action to running, claimed by this process for a lease the heartbeat
        renews while it runs (:meth:`let_go` when done); False if another worker claimed it first."""
        with self.transaction() as conn:
            result = conn.execute(
                sa.update(actions)
                .where(actions.c.id == action_id, actions.c.state == ActionState.DUE.value)
                .values(
                    state=ActionState.RUNNING.value,
                    updated_at=self._clock.now(),
                    claimed_by=self.claimant,
                    claimed_until=wall_clock() + self.claim_lease,
                )
            )
            claimed = result.rowcount == 1
        if claimed:
            self._hold("actions", [action_id])
        return claimed

    def finish_action(
        self,
        action_id: int,
        state: ActionState,
        *,
        reason: str = "",
        result: dict[str, Any] | None = None,
        attempted: bool = False,
        code: ReasonCode = ReasonCode.NONE,
    ) -> list[int]:
        """Record how an action this process claimed ended: done, dropped or failed (one try;
        the worker goes through :meth:`record_outcome`, which retries and holds).

        ``attempted``: the channel was called (a drop by a check before it is not an attempt).
        When it is done, the actions put back to wait for it (:meth:`wait_for_dependency`)
        become due now in the same transaction, so no reader ever sees it done and them
        still waiting; their ids are returned for the caller to run.
        """
        with self.transaction() as conn:
            return self._write_outcome(conn, action_id, Outcome(state, reason, result, attempted, code=code)) or []

    def reschedule_action(
        self,
        action_id: int,
        due_at: datetime,
        reason: str,
        *,
        attempted: bool = False,
        code: ReasonCode = ReasonCode.NONE,
    ) -> None:
        """Put a claimed action back, due later (a transient failure, a deferral)."""
        outcome = Outcome(ActionState.DUE, reason, attempted=attempted, due_at=due_at, code=code)
        with self.transaction() as conn:
            self._write_outcome(conn, action_id, outcome)

    def wait_for_dependency(self, action_id: int, depends_on: str, due_at: datetime) -> ActionState:
        """Put a claimed action back, due at ``due_at`` at the latest, unless the action
        ``depends_on`` is done now; return that action's state.

        One transaction with the dependency's row locked: finishing the dependency
        releases what waits for it (:meth:`finish_action`), and a dependency
        finishing between an earlier look and this one would release nothing.
        """
        with self.transaction() as conn:
            state = conn.execute(
                sa.select(actions.c.state).where(actions.c.idempotency_key == depends_on).with_for_update()
            ).scalar_one()
            if state != ActionState.DONE.value:
                self._write_outcome(conn, action_id, Outcome(ActionState.DUE, f"{WAITING_FOR}{depends_on}",
                                                             due_at=due_at, code=ReasonCode.WAITING_FOR))  # fmt: skip
        return ActionState(state)

    # -- outcomes that survive a database blip, and sent marks ------------------
    def record_outcome(self, action: ActionRecord, outcome: Outcome) -> list[int]:
        """Record how a claimed action ended, through dropped connections and a database that is
        away for a few seconds; return the ids of the actions its being done released.

        A sent mark first when the channel did its work (its own small transaction, so
        nothing else can delay it), then the outcome, each retried on a fresh connection
        for up to ``outcome_retry`` while the error is transient. The outcome is written
        only while the action is still running under this process's claim, so a retry
        after a commit whose answer was lost changes nothing. If the store still refuses,
        the outcome is held in memory with the claim: the heartbeat keeps renewing the
        claim (no sweep gives the action to another worker) and writes the outcome as
        soon as the store takes it (:meth:`write_held_outcomes`).
        """
        deadline = time.monotonic() + self.outcome_retry.total_seconds()
        try:
            if outcome.sent:
                self._mark_sent(action, outcome.result or {}, deadline)
            released = self._retrying(lambda: self._write_outcome_alone(action.id, outcome), deadline)
        except Exception as exc:
            if not transient_database_error(exc):
                raise
            self._hold_outcome(action.id, outcome)
            log.warning("action=%s: the store did not take its outcome (%s: %s); held until it does",
                        action.id, outcome.state.value, describe_database_error(exc))  # fmt: skip
            return []
        if released is None:
            log.warning("action=%s: not recorded as %s: it is no longer running under this worker's claim",
                        action.id, outcome.state.value)  # fmt: skip
            return []
        return released

    def sent_mark(self, idempotency_key: str) -> SentMark | None:
        """The sent mark of the action with this key: its channel did its work, its record is behind."""
        query = sa.select(sent_marks).where(sent_marks.c.idempotency_key == idempotency_key)
        with self.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        result = row.result if isinstance(row.result, dict) else json.loads(row.result or "{}")
        return SentMark(row.idempotency_key, row.message_id, result, row.sent_at)

    def held_outcomes(self) -> dict[int, Outcome]:
        """The outcomes this process holds for a store that would not take them, by action id."""
        with self._held_lock:
            return dict(self._held_outcomes)

    def write_held_outcomes(self) -> int:
        """Write the outcomes held for the store (one try each; the heartbeat calls it); return how many
        it wrote. Each is let go once written (or found no longer this process's, or unwritable)."""
        written = 0
        for action_id, outcome in self.held_outcomes().items():
            ok = True
            try:
                self._write_outcome_alone(action_id, outcome)
            except Exception as exc:
                if transient_database_error(exc):
                    continue  # the claim stays held and renewed; next heartbeat
                log.exception("action=%s: its held outcome cannot be written; its claim will run out", action_id)
                ok = False
            with self._held_lock:  # the heartbeat and a pickup may both get here: one lets go
                mine = self._held_outcomes.pop(action_id, None) is not None
            if mine:
                written += ok
                self.let_go("actions", [action_id])
        return written

    def _hold_outcome(self, action_id: int, outcome: Outcome) -> None:
        with self._held_lock:
            first = action_id not in self._held_outcomes
            self._held_outcomes[action_id] = outcome
        if first:  # a claim of its own, so letting go of the run does not let go of the outcome
            self._hold("actions", [action_id])

    def _mark_sent(self, action: ActionRecord, result: Mapping[str, Any], deadline: float) -> None:
        try:
            self._retrying(lambda: self._write_sent_mark(action, result), deadline)
        except Exception as exc:
            if transient_database_error(exc):
                raise  # the store is away: the outcome is held
            # A bug must not cost the outcome as well: without it the sweep would run the action again.
            log.exception("action=%s: its sent mark could not be written", action.id)

    def _write_sent_mark(self, action: ActionRecord, result: Mapping[str, Any]) -> None:
        row = {"idempotency_key": action.idempotency_key, "message_id": str(result.get("message_id") or "")[:255],
               "result": dict(result), "sent_at": self._clock.now()}  # fmt: skip
        with self.transaction() as conn:
            insert_new(conn, sent_marks, [row], ("idempotency_key",))

    def _write_outcome_alone(self, action_id: int, outcome: Outcome) -> list[int] | None:
        with self.transaction() as conn:
            return self._write_outcome(conn, action_id, outcome)

    def _write_outcome(self, conn: Connection, action_id: int, outcome: Outcome) -> list[int] | None:
        """One outcome, if the action is still running under this process's claim (else None).
        Done: its sent mark goes (a done action never runs again) and what waited for it is due now."""
        now = self._clock.now()
        values: dict[str, Any] = {"state": outcome.state.value, "reason": outcome.reason,
                                  "reason_code": outcome.code.value, "updated_at": now}  # fmt: skip
        if outcome.result is not None:
            values["result"] = outcome.result
        if outcome.attempted:
            values["attempts"] = actions.c.attempts + 1
        if outcome.state is ActionState.DUE:
            assert outcome.due_at is not None, "an action put back needs its due time"
            values["due_at"] = outcome.due_at
        mine = sa.and_(
            actions.c.id == action_id,
            actions.c.state == ActionState.RUNNING.value,
            actions.c.claimed_by == self.claimant,
        )
        if conn.execute(sa.update(actions).where(mine).values(**values)).rowcount != 1:
            return None
        if outcome.state is not ActionState.DONE:
            return []
        its_key = sa.select(actions.c.idempotency_key).where(actions.c.id == action_id).scalar_subquery()
        conn.execute(sa.delete(sent_marks).where(sent_marks.c.idempotency_key == its_key))
        waiting = sa.and_(
            actions.c.depends_on == its_key,
            actions.c.state == ActionState.DUE.value,
            actions.c.reason_code == ReasonCode.WAITING_FOR.value,
        )
        released = list(conn.execute(sa.select(actions.c.id).where(waiting)).scalars())
        if released:
            conn.execute(sa.update(actions).where(actions.c.id.in_(released)).values(due_at=now, updated_at=now))
        return released

    def _retrying(self, write: Callable[[], Any], deadline: float) -> Any:
        """``write()``, tried again after a transient database error until ``deadline`` (monotonic).
        The pool drops a connection that failed (and, on a disconnect, every older one), so each
        try runs on a fresh connection."""
        for wait in itertools.chain(_OUTCOME_RETRY_WAITS, itertools.repeat(2.0)):
            try:
                return write()
            except Exception as exc:
                if not transient_database_error(exc) or time.monotonic() + wait > deadline:
                    raise
                log.info("database error (%s); trying again in %.2fs", describe_database_error(exc), wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def release_stale_actions(self) -> int:
        """Put back actions whose claim ran out unrenewed (their worker died): due again, now."""
        with self.transaction() as conn:
            return conn.execute(
                sa.update(actions)
                .where(actions.c.state == ActionState.RUNNING.value, self._claim_ran_out(actions))
                .values(
                    state=ActionState.DUE.value,
                    reason="released: its worker stopped mid-run",
                    reason_code=ReasonCode.RELEASED.value,
                    updated_at=self._clock.now(),
                )
            ).rowcount

    def cancel_action(self, action_id: int, reason: str) -> bool:
        """Drop a due (or failed) action by hand, with who and why in the reason."""
        with self.transaction() as conn:
            return (
                conn.execute(
                    sa.update(actions)
                    .where(
                        actions.c.id == action_id,
                        actions.c.state.in_([ActionState.DUE.value, ActionState.FAILED.value]),
                    )
                    .values(
                        state=ActionState.DROPPED.value,
                        reason=reason,
                        reason_code=ReasonCode.CANCELLED.value,
                        updated_at=self._clock.now(),
                    )
                ).rowcount
                == 1
            )

    def retry_action(self, action_id: int, reason: str = "") -> bool:
        """Make a failed (or dropped) action due again, now; ``reason`` may say who asked, until it runs."""
        with self.transaction() as conn:
            return (
                conn.execute(
                    sa.update(actions)
                    .where(actions.c.id == action_id, actions.c.state != ActionState.DONE.value)
                    .values(
                        state=ActionState.DUE.value,
                        reason=reason,
                        reason_code=(ReasonCode.RETRIED if reason else ReasonCode.NONE).value,
                        due_at=self._clock.now(),
                        updated_at=self._clock.now(),
                    )
                ).rowcount
                == 1
            )

    def count_actions_by_state(self, shop_id: str | None = None) -> dict[str, int]:
        query = sa.select(actions.c.state, sa.func.count()).group_by(actions.c.state)
        if shop_id:
            query = query.where(actions.c.shop_id == shop_id)
        with self.engine.connect() as conn:
            return {state: n for state, n in conn.execute(query)}

    # -- what simulate reads --
    def every_action(self) -> list[ActionRecord]:
        """Every action, oldest first (what-if's throwaway store: no limit, no filter)."""
        with self.engine.connect() as conn:
            return [_action_record(r) for r in conn.execute(sa.select(actions).order_by(actions.c.id))]

    def actions_of_events(self, shop_id: str, event_keys: Iterable[str]) -> list[ActionRecord]:
        """The shop's actions the events with these dedupe keys caused."""
        keys = sorted(set(event_keys))
        found: list[ActionRecord] = []
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):  # bound the statement's parameters
                query = sa.select(actions).where(
                    actions.c.shop_id == shop_id, actions.c.event_key.in_(keys[start : start + 500])
                )
                found += [_action_record(r) for r in conn.execute(query)]
        return found

    # -- consent and customer history --------------------------------------
    def record_consent(self, shop_id: str, email: str, state: ConsentState, source: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                consent.insert().values(
                    shop_id=shop_id,
                    email=normalise_email(email),
                    state=state.value,
                    source=source,
                    recorded_at=self._clock.now(),
                )
            )

    def record_consent_change(self, shop_id: str, email: str, state: ConsentState, source: str) -> bool:
        """Record ``state`` unless it is the customer's current one; True if it was a change.

        Read and write happen in one transaction that holds a lock on the
        customer (SQLite's write lock; a transaction-scoped advisory lock on
        PostgreSQL, which also covers a customer without any row yet), so
        simultaneous confirmations write one history row, not one each.
        """
        with self.transaction() as conn:
            return self._record_consent_change(conn, shop_id, email, state, source)

    def _record_consent_change(
        self, conn: Connection, shop_id: str, email: str, state: ConsentState, source: str
    ) -> bool:
        email = normalise_email(email)
        if not self._sqlite:
            lock = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
            conn.execute(lock, {"key": f"consent\n{shop_id}\n{email}"})
        current = conn.execute(
            sa.select(consent.c.state)
            .where(consent.c.shop_id == shop_id, consent.c.email == email)
            .order_by(consent.c.id.desc())
            .limit(1)
        ).scalar()
        if current == state.value:
            return False
        conn.execute(consent.insert().values(shop_id=shop_id, email=email, state=state.value, source=source,
                                             recorded_at=self._clock.now()))  # fmt: skip
        return True

    def consent_history(self, shop_id: str, email: str) -> list[tuple[ConsentState, str, datetime]]:
        query = (
            sa.select(consent.c.state, consent.c.source, consent.c.recorded_at)
            .where(consent.c.shop_id == shop_id, consent.c.email == normalise_email(email))
            .order_by(consent.c.id)
        )
        with self.engine.connect() as conn:
            return [(ConsentState(s), src, at) for s, src, at in conn.execute(query)]

    def current_consent(self, shop_id: str, email: str) -> ConsentState | None:
        history = self.consent_history(shop_id, email)
        return history[-1][0] if history else None

    def record_customer_events(self, conn: Connection, batch: Sequence[Event]) -> None:
        rows = [
            {
                "shop_id": e.shop_id,
                "email": normalise_email(e.order.customer.email),
                "order_id": e.order.platform_id,
                "event_kind": e.kind.value,
                "occurred_at": e.occurred_at,
            }
            for e in batch
            if e.order.customer.email
        ]
        if rows:
            insert_rows(conn, customer_history, rows)

    def customer_history(self, shop_id: str, email: str) -> list[tuple[str, EventKind, datetime]]:
        query = (
            sa.select(customer_history.c.order_id, customer_history.c.event_kind, customer_history.c.occurred_at)
            .where(customer_history.c.shop_id == shop_id, customer_history.c.email == normalise_email(email))
            .order_by(customer_history.c.occurred_at)
        )
        with self.engine.connect() as conn:
            return [(o, EventKind(k), at) for o, k, at in conn.execute(query)]

    def order_paid_after(self, shop_id: str, email: str, order_id: str) -> str:
        """The first order the customer paid for after ``order_id`` and did not cancel, or ''.

        From the customer history (the ``ordered_again`` fire-time check): a backfill that
        dispatched the later order first is still seen."""
        email = normalise_email(email)
        paid, cancelled = EventKind.ORDER_PAID.value, EventKind.ORDER_CANCELLED.value
        mine = customer_history.c.shop_id == shop_id, customer_history.c.email == email
        this_paid = (
            sa.select(sa.func.min(customer_history.c.occurred_at))
            .where(*mine, customer_history.c.order_id == order_id, customer_history.c.event_kind == paid)
            .scalar_subquery()
        )
        cancelled_orders = sa.select(customer_history.c.order_id).where(
            *mine, customer_history.c.event_kind == cancelled
        )
        query = (
            sa.select(customer_history.c.order_id)
            .where(
                *mine,
                customer_history.c.event_kind == paid,
                customer_history.c.order_id != order_id,
                customer_history.c.occurred_at > this_paid,
                customer_history.c.order_id.not_in(cancelled_orders),
            )
            .order_by(customer_history.c.occurred_at)
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none() or ""

    # -- console logins and sessions ---------------------------------------
    def count_login_attempt(self, limits: Mapping[str, tuple[int, timedelta]]) -> list[str]:
        """Count one attempt for each key (its limit and window); return the keys now over their limit.

        Each count is one atomic statement (increment, or start a new window
        when the last one has passed) that returns the new count, so parallel
        attempts cannot all see a count below the limit.
        """
        now = self._clock.now()
        over = []
        with self.transaction() as conn:
            for key, (limit, window) in limits.items():
                expired = login_attempts.c.window_start <= now - window
                statement = (
                    _dialect_insert(conn.dialect)(login_attempts)
                    .values(key=key, attempts=1, window_start=now)
                    .on_conflict_do_update(
                        index_elements=["key"],
                        set_={
                            "attempts": sa.case((expired, 1), else_=login_attempts.c.attempts + 1),
                            "window_start": sa.case((expired, now), else_=login_attempts.c.window_start),
                        },
                    )
                    .returning(login_attempts.c.attempts)
                )
                if conn.execute(statement).scalar_one() > limit:
                    over.append(key)
        return over

    def refund_login_attempt(self, keys: Sequence[str], longest_window: timedelta) -> None:
        """Give back an attempt on each key (a login that succeeded); forget every window that has passed."""
        forget_before = self._clock.now() - longest_window
        with self.transaction() as conn:
            conn.execute(
                sa.update(login_attempts)
                .where(login_attempts.c.key.in_(list(keys)), login_attempts.c.attempts > 0)
                .values(attempts=login_attempts.c.attempts - 1)
            )
            conn.execute(sa.delete(login_attempts).where(login_attempts.c.window_start < forget_before))

    def add_console_session(self, session_hash: str, user_name: str, expires_at: datetime) -> None:
        now = self._clock.now()
        with self.transaction() as conn:
            conn.execute(sa.delete(console_sessions).where(console_sessions.c.expires_at <= now))
            conn.execute(console_sessions.insert().values(id=session_hash, user_name=user_name, created_at=now,
                                                          expires_at=expires_at))  # fmt: skip

    def console_session_user(self, session_hash: str) -> str | None:
        """The user of a session that was not ended and has not expired."""
        query = sa.select(console_sessions.c.user_name).where(
            console_sessions.c.id == session_hash, console_sessions.c.expires_at > self._clock.now()
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def end_console_sessions(self, *, session_hash: str | None = None, user_name: str | None = None) -> int:
        """End one session (logout), or every session of a user (removed); return how many."""
        query = sa.delete(console_sessions)
        if session_hash is not None:
            query = query.where(console_sessions.c.id == session_hash)
        if user_name is not None:
            query = query.where(console_sessions.c.user_name == user_name)
        assert session_hash is not None or user_name is not None
        with self.transaction() as conn:
            return conn.execute(query).rowcount

    # -- survey answers ------------------------------------------------------
    # -- mail: frequency cap and suppressions --
    def marketing_mails_sent(self, shop_id: str, customer_email: str, since: datetime, exclude: int = 0) -> int:
        """Marketing (non-transactional) messages, mails and texts, sent to this customer since ``since``,
        not counting ``exclude``: the frequency cap counts every channel together."""
        query = (
            sa.select(sa.func.count())
            .select_from(actions)
            .where(
                actions.c.shop_id == shop_id,
                actions.c.customer_email == normalise_email(customer_email),
                actions.c.kind.in_([kind.value for kind in MESSAGE_KINDS]),
                actions.c.state == ActionState.DONE.value,
                actions.c.updated_at >= since,
                actions.c.id != exclude,
                actions.c.payload["transactional"].as_boolean() == sa.false(),
            )
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def last_marketing_message_at(self, shop_id: str, customer_email: str, before_id: int) -> datetime | None:
        """When the latest marketing message (mail or text) to this customer went out, or started to.

        Sent ones count, and so do ones running now with a lower id than ``before_id`` (the
        action asking): of two due at once on two workers, the older goes and the newer waits.
        """
        query = sa.select(sa.func.max(actions.c.updated_at)).where(
            actions.c.shop_id == shop_id,
            actions.c.customer_email == normalise_email(customer_email),
            actions.c.kind.in_([kind.value for kind in MESSAGE_KINDS]),
            actions.c.id != before_id,
            sa.or_(
                actions.c.state == ActionState.DONE.value,
                sa.and_(actions.c.state == ActionState.RUNNING.value, actions.c.id < before_id),
            ),
            actions.c.payload["transactional"].as_boolean() == sa.false(),
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return _utc(value)

    def event_order(self, shop_id: str, dedupe_key: str) -> Order | None:
        """The order as the stored event with this key carried it; None if no such event is stored."""
        query = sa.select(events.c.body).where(events.c.shop_id == shop_id, events.c.dedupe_key == dedupe_key)
        with self.engine.connect() as conn:
            body = conn.execute(query).scalar_one_or_none()
        return None if body is None else Event.from_json(body).order

    def suppress(self, shop_id: str, email: str, reason: SuppressionReason, detail: str = "") -> bool:
        """Put ``email`` on the shop's suppression list; False if it was already there for this reason."""
        with self.transaction() as conn:
            return self._suppress(conn, shop_id, email, reason, detail)

    def _suppress(self, conn: Connection, shop_id: str, email: str, reason: SuppressionReason, detail: str) -> bool:
        row = {"shop_id": shop_id, "email": normalise_email(email), "reason": reason.value, "detail": detail,
               "created_at": self._clock.now()}  # fmt: skip
        return bool(insert_new(conn, mail_suppressions, [row], ("shop_id", "email", "reason")))

    def record_unsubscribe(self, shop_id: str, email: str, source: str) -> None:
        """The customer unsubscribed: their consent (``unsubscribed``, once: a repeat is no new change)
        and the suppression list every later marketing send checks, in one transaction."""
        with self.transaction() as conn:
            self._record_consent_change(conn, shop_id, email, ConsentState.UNSUBSCRIBED, source)
            self._suppress(conn, shop_id, email, SuppressionReason.UNSUBSCRIBED, source)

    def suppressions(self, shop_id: str, email: str) -> list[Suppression]:
        """The shop's suppression entries for ``email``, oldest first."""
        query = (
            sa.select(mail_suppressions)
            .where(mail_suppressions.c.shop_id == shop_id, mail_suppressions.c.email == normalise_email(email))
            .order_by(mail_suppressions.c.id)
        )
        with self.engine.connect() as conn:
            return [
                Suppression(row.email, SuppressionReason(row.reason), row.detail, row.created_at)
                for row in conn.execute(query)
            ]

    def record_survey_answer(
        self, conn: Connection, *, shop_id: str, order_id: str, email: str, answer: SurveyAnswer, source: str
    ) -> bool:
        """Keep the answer of one order, survey kind and purpose; True if it is the first one.

        A later confirmation changes the score, and the comment when it
        brings one; ``answered_at`` stays the first answer's time.
        """
        row = {
            "shop_id": shop_id,
            "order_id": order_id,
            "email": normalise_email(email),
            "kind": answer.kind.value,
            "score": answer.score,
            "comment": answer.comment,
            "source": source,
            "answered_at": answer.answered_at,
            "updated_at": self._clock.now(),
            "purpose": answer.purpose.value,
        }
        if insert_new(conn, survey_answers, [row], ("shop_id", "order_id", "kind", "purpose")):
            return True
        changes: dict[str, Any] = {"score": answer.score, "source": source, "updated_at": row["updated_at"]}
        if answer.comment:
            changes["comment"] = answer.comment
        conn.execute(
            sa.update(survey_answers)
            .where(
                survey_answers.c.shop_id == shop_id,
                survey_answers.c.order_id == order_id,
                survey_answers.c.kind == answer.kind.value,
                survey_answers.c.purpose == answer.purpose.value,
            )
            .values(**changes)
        )
        return False

    def survey_answer(
        self, shop_id: str, order_id: str, kind: SurveyKind, purpose: SurveyPurpose = SurveyPurpose.ORDER
    ) -> StoredSurveyAnswer | None:
        query = sa.select(survey_answers).where(
            survey_answers.c.shop_id == shop_id,
            survey_answers.c.order_id == order_id,
            survey_answers.c.kind == kind.value,
            survey_answers.c.purpose == purpose.value,
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return _survey_answer(row) if row else None

    def survey_answers(
        self, shop_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredSurveyAnswer]:
        """A shop's answers first given in [since, until), oldest first."""
        query = (
            sa.select(survey_answers)
            .where(survey_answers.c.shop_id == shop_id)
            .order_by(survey_answers.c.answered_at, survey_answers.c.id)
        )
        if since is not None:
            query = query.where(survey_answers.c.answered_at >= since)
        if until is not None:
            query = query.where(survey_answers.c.answered_at < until)
        with self.engine.connect() as conn:
            return [_survey_answer(r) for r in conn.execute(query)]

    # -- privacy: erasure and export of one customer (issue #19) ------------
    def forget_customer(self, shop_id: str | None, email: str, key: bytes) -> ErasureReport:
        """Erase one customer (of one shop, or of every shop): delete or strip every row that names them.

        Events keep their order stripped of the person (name, email, phone, addresses, the
        reasons they gave): the email becomes a pseudonym (a keyed hash), the same in the
        actions, so the report's counts (mails, coupons, repeat customers) stay as they were.
        Actions keep what they did, not whom they did it for; their due, running and failed ones
        end dropped with the reason "customer erased". Hook runs' errors lose the person's terms.
        Customer history, consent history, suppressions, rejected deliveries naming them and
        sent marks are deleted; survey answers keep only kind, score and time. The erasure is
        recorded as the hash alone, so a later event about them is dropped at ingest.

        The .eml files the actions wrote are returned (``outbox_files``), for the caller to
        delete: the store keeps rows, not files. On SQLite the erasure writes with
        ``secure_delete`` and then truncates the WAL, so no copy of a deleted row stays in the files.
        """
        email = normalise_email(email)
        if not email:
            raise ValueError("an email is needed to erase a customer")
        email_hash = customer_hash(key, email)
        person = _Person(email, erased_pseudonym(email_hash))
        counts: Counter[str] = Counter()
        outbox_files: list[str] = []
        with self.transaction() as conn:
            if self._sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            found = self._events_naming(conn, shop_id, email)
            for _row, event in found:
                if normalise_email(event.order.customer.email) == email:
                    person.learn(event.order)
            for row, event in found:
                stripped = _stripped_event(event, person)
                conn.execute(sa.update(events).where(events.c.id == row.id)
                             .values(body=stripped.to_json(), dedupe_key=stripped.dedupe_key,
                                     reason=person.scrub(row.reason)))  # fmt: skip
                counts["events"] += 1
            self._forget_in_actions(conn, shop_id, person, counts, outbox_files)
            event_ids = [row.id for row, _event in found]
            runs = sa.select(hook_runs.c.id, hook_runs.c.error).where(
                sa.or_(hook_runs.c.event_id.in_(event_ids), _mentions(hook_runs.c.error, email))
            )
            for run in conn.execute(runs).all():
                conn.execute(sa.update(hook_runs).where(hook_runs.c.id == run.id).values(error=person.scrub(run.error)))
                counts["hook_runs"] += 1
            for name, table in (("customer_history", customer_history), ("consent", consent),
                                ("suppressions", mail_suppressions)):  # fmt: skip
                query = sa.delete(table).where(table.c.email == email, *_of_shop(table, shop_id))
                counts[name] += conn.execute(query).rowcount
            answers = sa.update(survey_answers).where(
                survey_answers.c.email == email, *_of_shop(survey_answers, shop_id)
            )
            counts["survey_answers"] += conn.execute(answers.values(email="", comment="")).rowcount
            rejected = sa.select(rejected_deliveries.c.id, rejected_deliveries.c.body).where(
                *_of_shop(rejected_deliveries, shop_id)
            )
            named = [r.id for r in conn.execute(rejected) if email.encode("utf-8") in bytes(r.body).lower()]
            if named:
                conn.execute(sa.delete(rejected_deliveries).where(rejected_deliveries.c.id.in_(named)))
            counts["rejected_deliveries"] += len(named)
            counts["sent_marks"] += conn.execute(
                sa.delete(sent_marks).where(_mentions(sent_marks.c.idempotency_key, email))
            ).rowcount
            insert_new(conn, erasures, [{"shop_id": shop_id or "", "email_hash": email_hash,
                                         "erased_at": self._clock.now()}], ("shop_id", "email_hash"))  # fmt: skip
        self._leave_no_copy()
        return ErasureReport(**counts, outbox_files=tuple(dict.fromkeys(outbox_files)))

    def _forget_in_actions(
        self, conn: Connection, shop_id: str | None, person: _Person, counts: Counter[str], outbox_files: list[str]
    ) -> None:
        email = person.email
        query = sa.select(actions).where(
            *_of_shop(actions, shop_id),
            sa.or_(
                actions.c.customer_email == email,
                sa.func.lower(actions.c.customer_email) == email,
                _mentions(sa.cast(actions.c.payload, sa.Text), email),
                _mentions(sa.cast(actions.c.result, sa.Text), email),
                _mentions(actions.c.idempotency_key, email),
            ),
        )
        ending = (ActionState.DUE.value, ActionState.RUNNING.value, ActionState.FAILED.value)
        renamed: dict[str, str] = {}
        now = self._clock.now()
        for row in conn.execute(query).all():
            payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
            result = row.result if isinstance(row.result, dict) or row.result is None else json.loads(row.result)
            path = (result or {}).get("path")
            if isinstance(path, str) and path.endswith(".eml"):
                outbox_files.append(path)
            values: dict[str, Any] = {
                "customer_email": person.pseudonym if row.customer_email else "",
                "payload": person.scrub_json(payload),
                "result": person.scrub_json(result) if result is not None else None,
                "idempotency_key": person.scrub(row.idempotency_key),
                "key": person.scrub(row.key),
                "event_key": person.scrub(row.event_key),
                "depends_on": person.scrub(row.depends_on),
                "reason": person.scrub(row.reason),
            }
            if row.state in ending:  # a done one keeps its time: the report counts it by that
                values.update(state=ActionState.DROPPED.value, reason=ERASED_REASON,
                              reason_code=ReasonCode.ERASED.value, claimed_by="",
                              claimed_until=None, updated_at=now)  # fmt: skip
                counts["dropped"] += 1
            if values["idempotency_key"] != row.idempotency_key:
                renamed[row.idempotency_key] = values["idempotency_key"]
            conn.execute(sa.update(actions).where(actions.c.id == row.id).values(**values))
            counts["actions"] += 1
        for old, new in renamed.items():
            conn.execute(sa.update(actions).where(actions.c.depends_on == old).values(depends_on=new))
            counts["sent_marks"] += conn.execute(
                sa.delete(sent_marks).where(sent_marks.c.idempotency_key == old)
            ).rowcount

    def _events_naming(self, conn: Connection, shop_id: str | None, email: str) -> list[tuple[Any, Event]]:
        query = sa.select(events.c.id, events.c.body, events.c.reason).where(
            *_of_shop(events, shop_id), _mentions(events.c.body, email)
        )
        return [(row, Event.from_json(row.body)) for row in conn.execute(query.order_by(events.c.id)).all()]

    def customer_emails(
        self, shop_id: str | None, *, customer_id: str = "", order_ids: Sequence[str] = ()
    ) -> list[str]:
        """The emails of one shop's customer known by the platform's customer id, or by their orders
        (a privacy request without an email, or with one their orders do not carry), in the events'
        stored orders; erased customers' pseudonyms are not emails and are left out."""
        customer_id = customer_id.strip()
        order_ids = [str(order).strip() for order in order_ids if str(order).strip()]
        wanted = []
        if customer_id:  # the id is inside the stored order's JSON; the parse below checks it is the customer's
            wanted.append(events.c.body.contains(customer_id, autoescape=True))
        if order_ids:
            wanted.append(events.c.order_id.in_(order_ids))
        if not wanted:
            return []
        query = sa.select(events.c.body).where(*_of_shop(events, shop_id), sa.or_(*wanted)).order_by(events.c.id)
        emails: dict[str, None] = {}
        with self.engine.connect() as conn:
            for body in conn.execute(query).scalars():
                order = Event.from_json(body).order
                email = normalise_email(order.customer.email)
                by_id = bool(customer_id) and order.customer.platform_id == customer_id
                if "@" in email and (by_id or order.platform_id in order_ids):
                    emails[email] = None
        return list(emails)

    def _leave_no_copy(self) -> None:
        """SQLite: the erasure's pages were written with ``secure_delete``; copy the WAL into the
        file and truncate it, so no earlier version of a page survives in ``-wal``."""
        if not self._sqlite:
            return
        with self._write_lock, self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def erased(self, shop_id: str, email: str, key: bytes) -> bool:
        """Whether this customer of this shop was erased (by their hash alone)."""
        query = sa.select(erasures.c.id).where(
            erasures.c.email_hash == customer_hash(key, email), erasures.c.shop_id.in_([shop_id, ""])
        )
        with self.engine.connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def _erased_events(self, conn: Connection, batch: Sequence[Event]) -> set[int]:
        """The positions in ``batch`` of events about an erased customer (dropped at ingest)."""
        if self.erasure_key is None or not batch:
            return set()
        keys = (self.erasure_key, *self.previous_erasure_keys)
        hashes = {n: {customer_hash(key, e.order.customer.email) for key in keys}
                  for n, e in enumerate(batch) if e.order.customer.email}  # fmt: skip
        if not hashes:
            return set()
        query = sa.select(erasures.c.shop_id, erasures.c.email_hash).where(
            erasures.c.email_hash.in_(sorted(set().union(*hashes.values())))
        )
        erased = {(row.shop_id, row.email_hash) for row in conn.execute(query)}
        if not erased:
            return set()
        return {n for n, found in hashes.items()
                if any((batch[n].shop_id, h) in erased or ("", h) in erased for h in found)}  # fmt: skip

    def customer_records(self, shop_id: str | None, email: str) -> dict[str, list[dict[str, Any]]]:
        """Every record the store holds about one customer (of one shop, or of every shop), by table:
        plain data (text, numbers, ISO times), for ``customers export`` and Shopify's data requests."""
        email = normalise_email(email)
        records: dict[str, list[dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            found = self._events_naming(conn, shop_id, email)
            records["events"] = [
                {
                    "id": row.id,
                    "shop_id": e.shop_id,
                    "kind": e.kind.value,
                    "order_id": e.order.platform_id,
                    "occurred_at": e.occurred_at,
                    "source": e.source,
                    "topic": e.topic,
                    "event": json.loads(row.body),
                }  # fmt: skip
                for row, e in found
            ]
            ids = [row.id for row, _e in found]
            runs = sa.select(hook_runs).where(
                sa.or_(hook_runs.c.event_id.in_(ids), _mentions(hook_runs.c.error, email))
            )
            records["hook_runs"] = [_plain(r, ("event_id", "plugin", "hook", "outcome", "error", "ran_at"))
                                    for r in conn.execute(runs.order_by(hook_runs.c.id))]  # fmt: skip
            query = sa.select(actions).where(
                *_of_shop(actions, shop_id),
                sa.or_(sa.func.lower(actions.c.customer_email) == email,
                       _mentions(sa.cast(actions.c.payload, sa.Text), email),
                       _mentions(actions.c.idempotency_key, email)),
            )  # fmt: skip
            records["actions"] = [
                _plain(
                    r,
                    (
                        "id",
                        "shop_id",
                        "plugin",
                        "kind",
                        "order_id",
                        "state",
                        "reason",
                        "due_at",
                        "created_at",
                        "updated_at",
                        "customer_email",
                        "payload",
                        "result",
                    ),
                )  # fmt: skip
                for r in conn.execute(query.order_by(actions.c.id))
            ]
            for name, table, columns, order_by in (
                ("customer_history", customer_history, ("shop_id", "order_id", "event_kind", "occurred_at"),
                 customer_history.c.occurred_at),
                ("survey_answers", survey_answers,
                 ("shop_id", "order_id", "kind", "score", "comment", "source", "answered_at", "updated_at"),
                 survey_answers.c.answered_at),
                ("consent", consent, ("shop_id", "state", "source", "recorded_at"), consent.c.id),
                ("suppressions", mail_suppressions, ("shop_id", "reason", "detail", "created_at"),
                 mail_suppressions.c.id),
            ):  # fmt: skip
                query = sa.select(table).where(table.c.email == email, *_of_shop(table, shop_id)).order_by(order_by)
                records[name] = [_plain(r, columns) for r in conn.execute(query)]
            rejected = sa.select(rejected_deliveries).where(*_of_shop(rejected_deliveries, shop_id))
            records["rejected_deliveries"] = [
                {
                    **_plain(r, ("shop_id", "delivery_id", "topic", "error", "received_at")),
                    "body": bytes(r.body).decode("utf-8", "replace"),
                }  # fmt: skip
                for r in conn.execute(rejected.order_by(rejected_deliveries.c.id))
                if email.encode("utf-8") in bytes(r.body).lower()
            ]
        return records

    def forget_shop(self, shop_id: str) -> dict[str, Any]:
        """Delete everything kept for one shop (Shopify's ``shop/redact``, 48 hours after an
        uninstall): its events and hook runs, actions and sent marks, history, answers, consent,
        suppressions, rejected deliveries, adapter state (tokens) and cursors. Returns the count per
        table, and under ``outbox_files`` the .eml files its actions wrote, for the caller to delete."""
        counts: dict[str, Any] = {}
        with self.transaction() as conn:
            if self._sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            files = []
            for result in conn.execute(sa.select(actions.c.result).where(actions.c.shop_id == shop_id)).scalars():
                result = json.loads(result) if isinstance(result, str) else result
                if isinstance(result, dict) and str(result.get("path", "")).endswith(".eml"):
                    files.append(result["path"])
            of_shop_actions = sa.select(actions.c.idempotency_key).where(actions.c.shop_id == shop_id)
            counts["sent_marks"] = conn.execute(
                sa.delete(sent_marks).where(sent_marks.c.idempotency_key.in_(of_shop_actions))
            ).rowcount
            of_shop_events = sa.select(events.c.id).where(events.c.shop_id == shop_id)
            counts["hook_runs"] = conn.execute(
                sa.delete(hook_runs).where(hook_runs.c.event_id.in_(of_shop_events))
            ).rowcount
            tables = (("events", events), ("actions", actions), ("customer_history", customer_history),
                      ("survey_answers", survey_answers), ("consent", consent), ("suppressions", mail_suppressions),
                      ("rejected_deliveries", rejected_deliveries), ("adapter_state", adapter_state),
                      ("cursors", cursors), ("erasures", erasures))  # fmt: skip
            for name, table in tables:
                counts[name] = conn.execute(sa.delete(table).where(table.c.shop_id == shop_id)).rowcount
            ended = privacy_requests.c.state.in_(["done", "failed"])
            conn.execute(sa.delete(privacy_requests).where(privacy_requests.c.shop_id == shop_id, ended))
        self._leave_no_copy()
        counts["outbox_files"] = files
        return counts

    # -- retention ----------------------------------------------------------
    def delete_older_than(
        self, shop_id: str, before: datetime, *, batch: int = RETENTION_BATCH, batches: int = RETENTION_BATCHES
    ) -> dict[str, int]:
        """One shop's records older than ``before``, deleted in transactions of at most ``batch``
        rows (so no lock is held for long), at most ``batches`` of them per table; returns how many
        per table (a count of ``batch * batches`` means more are left, for the next sweep).

        Events go once dispatched or failed, with their hook runs, unless their order still has
        an action to run (its fire-time check reads the order from them); actions once done or
        dropped; customer history and rejected deliveries by their time. Survey answers that old
        keep shop, order, kind, score and time (the report's aggregate), not the email or comment.
        Consent and suppressions are kept: they are the proof and must outlive the rest.
        """
        open_action = sa.exists().where(
            actions.c.shop_id == events.c.shop_id,
            actions.c.order_id == events.c.order_id,
            actions.c.state.in_([ActionState.DUE.value, ActionState.RUNNING.value, ActionState.FAILED.value]),
        )
        selections = {
            "events": (events, sa.and_(events.c.received_at < before, events.c.state.in_(["dispatched", "failed"]),
                                       ~open_action)),
            "actions": (actions, sa.and_(actions.c.updated_at < before,
                                         actions.c.state.in_([ActionState.DONE.value, ActionState.DROPPED.value]))),
            "customer_history": (customer_history, customer_history.c.occurred_at < before),
            "rejected_deliveries": (rejected_deliveries, rejected_deliveries.c.received_at < before),
        }  # fmt: skip
        counts: dict[str, int] = {}
        for name, (table, old) in selections.items():
            counts[name] = 0
            for _ in range(batches):
                with self.transaction() as conn:
                    ids = list(conn.execute(sa.select(table.c.id).where(table.c.shop_id == shop_id, old)
                                            .order_by(table.c.id).limit(batch)).scalars())  # fmt: skip
                    if not ids:
                        break
                    if table is events:
                        counts["hook_runs"] = counts.get("hook_runs", 0) + conn.execute(
                            sa.delete(hook_runs).where(hook_runs.c.event_id.in_(ids))
                        ).rowcount
                    conn.execute(sa.delete(table).where(table.c.id.in_(ids)))
                counts[name] += len(ids)
                if len(ids) < batch:
                    break
        named = sa.and_(survey_answers.c.shop_id == shop_id, survey_answers.c.answered_at < before,
                        sa.or_(survey_answers.c.email != "", survey_answers.c.comment != ""))  # fmt: skip
        counts["survey_answers"] = 0
        for _ in range(batches):
            with self.transaction() as conn:
                ids = list(conn.execute(sa.select(survey_answers.c.id).where(named).limit(batch)).scalars())
                if ids:
                    conn.execute(sa.update(survey_answers).where(survey_answers.c.id.in_(ids))
                                 .values(email="", comment=""))  # fmt: skip
            counts["survey_answers"] += len(ids)
            if len(ids) < batch:
                break
        return counts

    # -- privacy requests (Shopify's compliance webhooks) --------------------
    def add_privacy_request(self, conn: Connection, *, shop_id: str, delivery_id: str, request: PrivacyRequest) -> bool:
        """Keep a platform's privacy request for the worker (once per delivery); True if new."""
        body = json.dumps({"email": request.email, "customer_id": request.customer_id,
                           "order_ids": list(request.order_ids), "reference": request.reference})  # fmt: skip
        delivery_id = delivery_id or f"unidentified:{self._clock.now().isoformat()}"
        row = {"shop_id": shop_id, "delivery_id": delivery_id, "kind": request.kind, "body": body, "state": "pending",
               "reason": "", "received_at": self._clock.now(), "done_at": None}  # fmt: skip
        return bool(insert_new(conn, privacy_requests, [row], ("shop_id", "delivery_id")))

    def claim_privacy_requests(self, limit: int = 20) -> list[StoredPrivacyRequest]:
        """Claim pending requests (and those whose worker died mid-way) for this process, oldest first:
        two workers sweeping at once do each request once."""
        now = wall_clock()
        free = sa.or_(
            privacy_requests.c.state == "pending",
            sa.and_(privacy_requests.c.state == "working", privacy_requests.c.claimed_until <= now),
        )
        candidates = sa.select(privacy_requests.c.id).where(free).order_by(privacy_requests.c.id).limit(limit)
        with self.engine.connect() as conn:  # a read first: every sweep asks, and there is rarely one
            if not conn.execute(candidates).first():
                return []
        with self.transaction() as conn:
            ids = list(conn.execute(candidates).scalars())
            if not ids:
                return []
            conn.execute(sa.update(privacy_requests).where(privacy_requests.c.id.in_(ids), free)
                         .values(state="working", claimed_until=now + self.claim_lease))  # fmt: skip
            rows = conn.execute(sa.select(privacy_requests).where(privacy_requests.c.id.in_(ids),
                                                                  privacy_requests.c.state == "working"))  # fmt: skip
            return [_privacy_request(r) for r in rows]

    def finish_privacy_request(self, request_id: int, state: str, reason: str = "") -> None:
        """Record a request done (or failed for good): its body, which names the customer, goes."""
        with self.transaction() as conn:
            if self._sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            conn.execute(sa.update(privacy_requests).where(privacy_requests.c.id == request_id)
                         .values(state=state, reason=reason, body="", claimed_until=None,
                                 done_at=self._clock.now()))  # fmt: skip
        self._leave_no_copy()

    def privacy_request_states(self) -> list[tuple[str, str, str, str]]:
        """(shop, kind, state, reason) of every request, oldest first."""
        query = sa.select(privacy_requests.c.shop_id, privacy_requests.c.kind, privacy_requests.c.state,
                          privacy_requests.c.reason).order_by(privacy_requests.c.id)  # fmt: skip
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]

    # -- what the console and the demo read ----------------------------------
    # (with the console's accounts, the command line's "is there a schema", and a cursor written in a
    # caller's transaction: every query those need, so no module outside the store builds SQL)
    def has_schema(self) -> bool:
        """Whether the database has aftercare's tables at all (a fresh one has none yet)."""
        return sa.inspect(self.engine).has_table("actions")

    def count_events(self, shop_id: str, *, since: datetime | None = None, state: str | None = None) -> int:
        """A shop's events received at or after ``since``, or in ``state``, or all of them."""
        query = sa.select(sa.func.count()).select_from(events).where(events.c.shop_id == shop_id)
        if since is not None:
            query = query.where(events.c.received_at >= since)
        if state is not None:
            query = query.where(events.c.state == state)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def count_due_actions(self, shop_id: str, now: datetime) -> int:
        """A shop's actions due at ``now`` or before and not run yet."""
        query = (
            sa.select(sa.func.count())
            .select_from(actions)
            .where(actions.c.shop_id == shop_id, actions.c.state == ActionState.DUE.value, actions.c.due_at <= now)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def last_event_per_topic(self, shop_id: str) -> list[tuple[str, str, datetime]]:
        """(topic, source, received at) of a shop's latest event of each topic, newest first: the source
        (webhook, poll, page) of that latest one, each looked up by (shop, topic, received_at)."""
        shop = events.c.shop_id == shop_id
        with self.engine.connect() as conn:
            last = conn.execute(
                sa.select(events.c.topic, sa.func.max(events.c.received_at)).where(shop).group_by(events.c.topic)
            ).all()
            found: list[tuple[str, str, datetime]] = []
            for topic, received in last:
                source = conn.execute(
                    sa.select(events.c.source)
                    .where(shop, events.c.topic == topic, events.c.received_at == received)
                    .limit(1)
                ).scalar_one()
                at = _utc(received)  # MAX() loses the column's type: SQLite hands back its UTC text
                assert at is not None
                found.append((topic, source, at))
        return sorted(found, key=lambda row: row[2], reverse=True)

    def shop_cursors(self, shop_id: str) -> list[tuple[str, str, datetime]]:
        """(name, value, updated at) of a shop's sync cursors."""
        query = sa.select(cursors.c.name, cursors.c.value, cursors.c.updated_at).where(cursors.c.shop_id == shop_id)
        with self.engine.connect() as conn:
            return [(name, value, updated) for name, value, updated in conn.execute(query)]

    def order_events(self, shop_id: str, order_id: str) -> list[StoredEvent]:
        """Every event of one order, oldest first (its timeline)."""
        query = (
            sa.select(events).where(events.c.shop_id == shop_id, events.c.order_id == order_id).order_by(events.c.id)
        )
        with self.engine.connect() as conn:
            return [_stored_event(row) for row in conn.execute(query)]

    def hook_runs_of_events(self, event_ids: Sequence[int]) -> dict[int, list[HookRun]]:
        """The hook runs of each of these events, in the order they ran (an event without any is left out)."""
        runs: dict[int, list[HookRun]] = {}
        if not event_ids:
            return runs
        query = sa.select(hook_runs).where(hook_runs.c.event_id.in_(list(event_ids))).order_by(hook_runs.c.id)
        with self.engine.connect() as conn:
            for r in conn.execute(query):
                runs.setdefault(r.event_id, []).append(
                    HookRun(r.plugin, r.hook, r.outcome, r.error, r.actions_requested, r.duration_ms)
                )
        return runs

    def order_actions(self, shop_id: str, order_id: str) -> list[ActionRecord]:
        """Every action of one order, oldest first (its timeline)."""
        query = (
            sa.select(actions)
            .where(actions.c.shop_id == shop_id, actions.c.order_id == order_id)
            .order_by(actions.c.id)
        )
        with self.engine.connect() as conn:
            return [_action_record(row) for row in conn.execute(query)]

    def actions_page(
        self,
        shop_ids: Sequence[str],
        *,
        plugin: str = "",
        state: str = "",
        order_id: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        before: int | None = None,
        limit: int,
    ) -> list[ActionRecord]:
        """Up to ``limit`` actions of these shops, newest first, with an id below ``before`` (keyset
        paging, never OFFSET), created in [since, until), of this plugin, state and order when given."""
        if not shop_ids:
            return []
        query = sa.select(actions).order_by(actions.c.id.desc()).limit(limit)
        if len(shop_ids) == 1:
            query = query.where(actions.c.shop_id == shop_ids[0])
        else:
            query = query.where(actions.c.shop_id.in_(list(shop_ids)))
        for column, value in ((actions.c.plugin, plugin), (actions.c.state, state), (actions.c.order_id, order_id)):
            if value:
                query = query.where(column == value)
        if since is not None:
            query = query.where(actions.c.created_at >= since)
        if until is not None:
            query = query.where(actions.c.created_at < until)
        if before is not None:
            query = query.where(actions.c.id < before)
        with self.engine.connect() as conn:
            return [_action_record(row) for row in conn.execute(query)]

    def orders_numbered(self, shop_ids: Sequence[str], number: str, limit: int = 20) -> list[tuple[str, str]]:
        """(shop, platform id) of the orders whose number is ``number``, with or without a leading ``#``
        (Shopify's ``#1005``, WooCommerce's ``1005``), newest first.

        The number is not a column: the stored events' bodies are searched (``"number":"1005"`` in
        the compact JSON), then each hit is checked on the parsed order: a scan of these shops'
        events, about 0.4 s per 100,000 events on SQLite (a column and an index would make it
        instant, at the price of a migration).
        Only letters, digits, ``-`` and ``_`` are searched for: nothing a LIKE pattern treats specially
        (``_`` escaped)."""
        bare = number.strip().removeprefix("#").strip()
        if not shop_ids or not bare or len(bare) > 64 or not all(c.isalnum() or c in "-_" for c in bare):
            return []
        like = bare.replace("_", "\\_")
        patterns = [events.c.body.like(f'%"number":"{p}{like}"%', escape="\\") for p in ("", "#")]
        query = (
            sa.select(events.c.shop_id, events.c.order_id, sa.func.max(events.c.id).label("last"))
            .where(events.c.shop_id.in_(list(shop_ids)), sa.or_(*patterns))
            .group_by(events.c.shop_id, events.c.order_id)
            .order_by(sa.desc("last"))
            .limit(limit)
        )
        with self.engine.connect() as conn:
            hits = [(shop_id, order_id) for shop_id, order_id, _last in conn.execute(query)]
        found = []
        for shop_id, order_id in hits:  # the pattern could match a quoted "number" anywhere in the body
            order = self.latest_order(shop_id, order_id)
            if order is not None and order.number.strip().removeprefix("#").strip() == bare:
                found.append((shop_id, order_id))
        return found

    def orders_of_customer(self, shop_ids: Sequence[str], email: str, limit: int = 100) -> list[tuple[str, str]]:
        """(shop, platform id) of this customer's orders in these shops, newest first, from the
        customer history (indexed by shop and normalised address)."""
        if not shop_ids or not email.strip():
            return []
        query = (
            sa.select(
                customer_history.c.shop_id,
                customer_history.c.order_id,
                sa.func.max(customer_history.c.occurred_at).label("last"),
                sa.func.max(customer_history.c.id).label("recorded"),
            )
            .where(
                customer_history.c.shop_id.in_(list(shop_ids)),
                customer_history.c.email == normalise_email(email),
            )
            .group_by(customer_history.c.shop_id, customer_history.c.order_id)
            .order_by(sa.desc("last"), sa.desc("recorded"))
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row.shop_id, row.order_id) for row in conn.execute(query)]

    def order_survey_answers(self, shop_id: str, order_id: str) -> list[StoredSurveyAnswer]:
        """Every survey answer given about one order (one per kind and purpose), oldest first (its timeline)."""
        query = (
            sa.select(survey_answers)
            .where(survey_answers.c.shop_id == shop_id, survey_answers.c.order_id == order_id)
            .order_by(survey_answers.c.answered_at, survey_answers.c.id)
        )
        with self.engine.connect() as conn:
            return [_survey_answer(r) for r in conn.execute(query)]

    def count_events_by_shop_and_kind(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(shop, event kind) -> (events, distinct orders among them), over every shop (the demo's summary)."""
        query = sa.select(
            events.c.shop_id, events.c.kind, sa.func.count(), sa.func.count(sa.distinct(events.c.order_id))
        ).group_by(events.c.shop_id, events.c.kind)
        with self.engine.connect() as conn:
            return {(shop_id, kind): (n, orders) for shop_id, kind, n, orders in conn.execute(query)}

    def count_actions_by_plugin_state_and_reason(self) -> dict[tuple[str, str, str], int]:
        """(plugin, state, reason) -> actions, over every shop (the demo's summary)."""
        query = sa.select(actions.c.plugin, actions.c.state, actions.c.reason, sa.func.count()).group_by(
            actions.c.plugin, actions.c.state, actions.c.reason
        )
        with self.engine.connect() as conn:
            return {(plugin, state, reason): n for plugin, state, reason, n in conn.execute(query)}

    def count_dropped_actions_by_reason_code(self) -> dict[ReasonCode, int]:
        """Dropped actions per reason code, over every shop (the demo's summary)."""
        query = (
            sa.select(actions.c.reason_code, sa.func.count())
            .where(actions.c.state == ActionState.DROPPED.value)
            .group_by(actions.c.reason_code)
        )
        with self.engine.connect() as conn:
            return {ReasonCode(code): n for code, n in conn.execute(query)}

    def console_user(self, name: str) -> ConsoleUser | None:
        query = sa.select(console_users).where(console_users.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return _console_user(row) if row else None

    def list_console_users(self) -> list[ConsoleUser]:
        """Every console account, by name."""
        with self.engine.connect() as conn:
            return [_console_user(row) for row in conn.execute(sa.select(console_users).order_by(console_users.c.name))]

    def save_console_user(self, name: str, password_hash: str, shops: Sequence[str], now: datetime) -> bool:
        """Create the account, or set its password hash and shops if it exists (keeping when it was
        created); True if it is new."""
        row = {"name": name, "password_hash": password_hash, "shops": ",".join(shops), "created_at": now}
        with self.transaction() as conn:
            if insert_new(conn, console_users, [row], ("name",)):
                return True
            conn.execute(
                sa.update(console_users)
                .where(console_users.c.name == name)
                .values(password_hash=row["password_hash"], shops=row["shops"])
            )
        return False

    def remove_console_user(self, name: str) -> bool:
        """Delete the account; False if there was none."""
        with self.transaction() as conn:
            return conn.execute(sa.delete(console_users).where(console_users.c.name == name)).rowcount == 1

    def write_cursor(self, conn: Connection, shop_id: str, value: str, name: str = "poll") -> None:
        """:meth:`set_cursor` inside the caller's transaction (sync commits a page with its cursor)."""
        upsert(conn, cursors, {"shop_id": shop_id, "name": name, "value": value, "updated_at": self._clock.now()},
               ("shop_id", "name"))  # fmt: skip

    # -- adapter state and cursors -----------------------------------------
    def shop_state(self, shop_id: str) -> StoredShopState:
        return StoredShopState(self, shop_id)

    def get_cursor(self, shop_id: str, name: str = "poll") -> str | None:
        query = sa.select(cursors.c.value).where(cursors.c.shop_id == shop_id, cursors.c.name == name)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()

    def set_cursor(self, shop_id: str, value: str, name: str = "poll") -> None:
        with self.transaction() as conn:
            self.write_cursor(conn, shop_id, value, name)


#: The store and connection of the :meth:`Store.transaction` this thread (or task) is in, if any.
_in_transaction: contextvars.ContextVar[tuple[Store, Connection] | None] = contextvars.ContextVar(
    "aftercare_in_transaction", default=None
)


class SqliteWriteLock:
    """One writer at a time for a SQLite file: a thread lock, then a lock on a file beside it.

    ``flock`` blocks in the kernel and wakes the next writer as soon as the
    lock is free, where SQLite's busy handler would sleep and poll.
    """

    def __init__(self, database: Path) -> None:
        self._path = database.with_name(database.name + ".write-lock")
        self._threads = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


class StoredShopState:
    """The :class:`aftercare.platform.ShopState` an adapter gets, kept in ``adapter_state``."""

    def __init__(self, store: Store, shop_id: str) -> None:
        self._store = store
        self._shop_id = shop_id

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """The store's transaction this runs in, if any; else one of its own.

        An adapter that derives events from remembered state (WooCommerce) must
        not remember a change whose events were then not stored: read and
        written inside the transaction that stores the events (the receiver's,
        sync's), both commit together or neither does."""
        bound = _in_transaction.get()
        if bound is not None and bound[0] is self._store:
            yield bound[1]
            return
        with self._store.transaction() as conn:
            yield conn

    def get(self, key: str) -> Any | None:
        """The value, read with a row lock on PostgreSQL (FOR UPDATE): two receivers storing
        deliveries of one order take turns on its state, as SQLite's one writer does anyway."""
        query = sa.select(adapter_state.c.value).where(
            adapter_state.c.shop_id == self._shop_id, adapter_state.c.key == key
        )
        with self._connection() as conn:
            return conn.execute(query.with_for_update()).scalar_one_or_none()

    def set(self, key: str, value: Any) -> None:
        with self._connection() as conn:
            upsert(conn, adapter_state, {"shop_id": self._shop_id, "key": key, "value": value}, ("shop_id", "key"))


# -- bulk inserts, and the two dialect-specific statements ------------------


def _dialect_insert(dialect: sa.Dialect) -> Any:
    if dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise RuntimeError(f"aftercare supports SQLite and PostgreSQL, not {dialect.name}")
    return insert


def insert_new(
    conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]], unique: Sequence[str]
) -> set[tuple[Any, ...]]:
    """Insert the rows whose unique columns are not taken; return those columns' values for them.

    One executemany INSERT ... ON CONFLICT DO NOTHING (per-row statements would
    cost more than the hooks themselves); a key twice in ``rows`` is the first
    row's. On PostgreSQL the INSERT's RETURNING says which rows went in: the
    conflict is decided on the unique index, where a SELECT of the keys first
    was planned as a sequential scan while the table's statistics said it was
    small (a new deployment, a server without autovacuum), and dispatch slowed
    with every row (39 events/s at 100,000 actions, docs/benchmarks.md). On
    SQLite, whose driver's executemany returns no rows, one SELECT for what
    exists goes first (two writers cannot race there: one writes at a time).
    """
    if not rows:
        return set()
    fresh: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        fresh.setdefault(tuple(row[name] for name in unique), row)
    if conn.dialect.name == "postgresql":
        return insert_rows(conn, table, list(fresh.values()), skip_taken=unique, returning=unique)
    taken = _existing_keys(conn, table, unique, list(fresh))
    new = {key: row for key, row in fresh.items() if key not in taken}
    insert_rows(conn, table, list(new.values()), skip_taken=unique)
    return set(new)


def insert_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    skip_taken: Sequence[str] = (),
    returning: Sequence[str] = (),
) -> set[tuple[Any, ...]]:
    """One executemany INSERT of ``rows`` (dicts with the same keys); with ``skip_taken``,
    rows whose values in those unique columns exist are left out (ON CONFLICT DO NOTHING).
    ``returning`` (PostgreSQL only): those columns' values of the rows inserted, else nothing.

    The statement is compiled once per table and columns, each distinct value
    is bound once per call, and the driver gets plain tuples: SQLAlchemy's
    per-row parameter processing was two thirds of the time of a dispatch
    (20 actions an event, many sharing their timestamps; bench/dispatch.py).
    """
    if not rows:
        return set()
    insert = _compiled_insert(conn.dialect, table, tuple(rows[0]), tuple(skip_taken), tuple(returning))
    columns = [
        _bound_values(processor, [row[name] for row in rows], memoize)
        for name, processor, memoize in insert.parameters
    ]
    rows_of_values = list(zip(*columns, strict=True))
    if not insert.positional:  # psycopg takes %(name)s parameters
        names = [name for name, _processor, _memoize in insert.parameters]
        rows_of_values = [dict(zip(names, values, strict=True)) for values in rows_of_values]
    if not returning:
        conn.exec_driver_sql(insert.sql, rows_of_values)
        return set()
    # The driver's own cursor, on the transaction's connection: SQLAlchemy's executemany keeps no rows.
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.executemany(insert.sql, rows_of_values, returning=True)
        inserted = set()
        while True:
            inserted.update(tuple(row) for row in cursor.fetchall())
            if not cursor.nextset():
                return inserted


@dataclass(frozen=True)
class _CompiledInsert:
    sql: str
    positional: bool
    #: (column, its bind processor for this dialect, whether equal values may share one bound value)
    parameters: tuple[tuple[str, Any, bool], ...]


@functools.cache
def _compiled_insert(
    dialect: sa.Dialect,
    table: sa.Table,
    columns: tuple[str, ...],
    skip_taken: tuple[str, ...],
    returning: tuple[str, ...] = (),
) -> _CompiledInsert:
    statement = _dialect_insert(dialect)(table)
    if skip_taken:
        statement = statement.on_conflict_do_nothing(index_elements=list(skip_taken))
    if returning:
        statement = statement.returning(*(table.c[name] for name in returning))
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    order = compiled.positiontup if compiled.positional else columns
    assert order is not None and sorted(order) == sorted(columns), (order, columns)
    parameters = tuple(
        (
            name,
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect),
            not isinstance(table.c[name].type, sa.JSON),  # dicts are not hashable
        )
        for name in order
    )
    return _CompiledInsert(compiled.string, compiled.positional, parameters)


def _bound_values(processor: Any, values: list[Any], memoize: bool) -> list[Any]:
    if processor is None:
        return values
    if not memoize:
        return [processor(value) for value in values]
    bound: dict[Any, Any] = {}
    result = []
    for value in values:
        if value not in bound:
            bound[value] = processor(value)
        result.append(bound[value])
    return result


def _existing_keys(
    conn: Connection, table: sa.Table, unique: Sequence[str], keys: Sequence[tuple[Any, ...]]
) -> set[tuple[Any, ...]]:
    *scope_columns, last = unique
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for key in keys:
        groups.setdefault(key[:-1], []).append(key[-1])
    found: set[tuple[Any, ...]] = set()
    for scope, values in groups.items():
        for chunk_start in range(0, len(values), 500):
            chunk = values[chunk_start : chunk_start + 500]
            query = sa.select(table.c[last]).where(table.c[last].in_(chunk))
            for column, value in zip(scope_columns, scope, strict=True):
                query = query.where(table.c[column] == value)
            found.update(scope + (value,) for value in conn.execute(query).scalars())
    return found


def upsert(conn: Connection, table: sa.Table, row: dict[str, Any], unique: Sequence[str]) -> None:
    statement = _dialect_insert(conn.dialect)(table).values(**row)
    updates = {k: statement.excluded[k] for k in row if k not in unique}
    conn.execute(statement.on_conflict_do_update(index_elements=list(unique), set_=updates))


# -- privacy helpers -----------------------------------------------------------

#: What the key of customers' hashes is derived for from ``secret_key`` (``vault.derive_key``).
ERASURE_KEY_PURPOSE = "customer erasures"
#: The reason of an action dropped because its customer was erased.
ERASED_REASON = "customer erased"
#: What stands in for a name, a phone or an address in free text after an erasure.
ERASED_TEXT = "[erased]"
#: Keys in payloads and results whose values name a person (emails are replaced by the pseudonym).
_PERSONAL_KEYS = frozenset({"first_name", "last_name", "customer_name", "full_name", "phone", "company",
                            "address1", "address2", "zip", "city", "province",
                            "comment"})  # fmt: skip  (a survey comment a staff alert carries)
_EMAIL_KEYS = frozenset({"to", "email", "customer_email", "recipient"})


def customer_hash(key: bytes, email: str) -> str:
    """The customer without the person: HMAC-SHA256 of the normalised email under the deployment's key."""
    return hmac.new(key, normalise_email(email).encode("utf-8"), hashlib.sha256).hexdigest()


def erased_pseudonym(email_hash: str) -> str:
    """What an erased customer's email becomes in the rows kept for the report: the same for each
    of their rows (so counts per customer stay), readable by no one."""
    return f"erased-{email_hash[:24]}"


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What :meth:`Store.forget_customer` changed, per table (no person in it)."""

    events: int = 0  # orders stripped of the person
    actions: int = 0  # payloads and results stripped
    dropped: int = 0  # of those, due, running or failed ones now dropped ("customer erased")
    hook_runs: int = 0  # errors scrubbed
    customer_history: int = 0  # deleted
    survey_answers: int = 0  # kept as kind, score and time only
    consent: int = 0  # deleted
    suppressions: int = 0  # deleted
    rejected_deliveries: int = 0  # deleted
    sent_marks: int = 0  # deleted
    outbox_files: tuple[str, ...] = ()  # .eml files the actions wrote, for the caller to delete

    @property
    def found(self) -> bool:
        return any(getattr(self, name) for name in self.__slots__ if name != "outbox_files") or bool(self.outbox_files)


@dataclass(frozen=True, slots=True)
class StoredPrivacyRequest:
    id: int
    shop_id: str
    delivery_id: str
    request: PrivacyRequest
    state: str
    reason: str
    received_at: datetime


def _privacy_request(row: Any) -> StoredPrivacyRequest:
    body = json.loads(row.body) if row.body else {}
    request = PrivacyRequest(
        row.kind,
        email=body.get("email", ""),
        customer_id=body.get("customer_id", ""),
        order_ids=tuple(body.get("order_ids", ())),
        reference=body.get("reference", ""),
    )
    return StoredPrivacyRequest(row.id, row.shop_id, row.delivery_id, request, row.state, row.reason, row.received_at)


class _Person:
    """What names one customer in free text: their email, names, phones and street, as their orders had them."""

    def __init__(self, email: str, pseudonym: str) -> None:
        self.email = email
        self.pseudonym = pseudonym
        self.terms: set[str] = set()

    def learn(self, order: Order) -> None:
        customer = order.customer
        names = [customer.first_name, customer.last_name, customer.name]
        address = order.shipping_address
        if address is not None:
            names += [address.first_name, address.last_name, f"{address.first_name} {address.last_name}".strip(),
                      address.phone, address.address1, address.address2]  # fmt: skip
        self.terms.update(term.strip() for term in names if len(term.strip()) >= 3)

    def scrub(self, text: str) -> str:
        if not text:
            return text
        text = re.sub(re.escape(self.email), self.pseudonym, text, flags=re.IGNORECASE)
        for term in sorted(self.terms, key=len, reverse=True):
            text = re.sub(rf"(?<!\w){re.escape(term)}(?!\w)", ERASED_TEXT, text, flags=re.IGNORECASE)
        return text

    def scrub_json(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.scrub_json(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_json(v, key) for v in value]
        if not isinstance(value, str) or not value:
            return value
        if key in _PERSONAL_KEYS:
            return ""
        if key in _EMAIL_KEYS and self.email in value.lower():
            return self.pseudonym
        return self.scrub(value)


def _stripped_event(event: Event, person: _Person) -> Event:
    """The event with its order kept for the report and the person gone."""
    order = event.order
    kept = Customer(email=person.pseudonym if order.customer.email else "", locale=order.customer.locale)
    order = dataclasses.replace(
        order,
        customer=kept,
        shipping_address=None,
        refunds=tuple(dataclasses.replace(r, reason="") for r in order.refunds),
        returns=tuple(dataclasses.replace(r, reason="") for r in order.returns),
    )
    event = dataclasses.replace(
        event,
        order=order,
        refund=dataclasses.replace(event.refund, reason="") if event.refund else None,
        return_request=dataclasses.replace(event.return_request, reason="") if event.return_request else None,
    )
    scrubbed = person.scrub_json(json.loads(event.to_json()))  # a note or a line's property may still name them
    return Event.from_json(json.dumps(scrubbed))


def _mentions(column: Any, email: str) -> sa.ColumnElement[bool]:
    return sa.func.lower(column).contains(email, autoescape=True)


def _of_shop(table: Any, shop_id: str | None) -> list[sa.ColumnElement[bool]]:
    return [] if shop_id is None else [table.c.shop_id == shop_id]


def _plain(row: Any, columns: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in columns:
        value = getattr(row, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, str) and name in ("payload", "result") and value[:1] in "{[":
            value = json.loads(value)
        out[name] = value
    return out


def _stored_event(row: Any) -> StoredEvent:
    return StoredEvent(
        id=row.id, event=Event.from_json(row.body), received_at=row.received_at, state=row.state,
        attempts=row.attempts, reason=row.reason, retry_at=row.retry_at,
    )  # fmt: skip


def _utc(value: Any) -> datetime | None:
    """An aggregate's datetime (MIN, MAX lose the column's type: SQLite hands back its UTC text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]


def _console_user(row: Any) -> ConsoleUser:
    return ConsoleUser(row.name, row.password_hash, tuple(row.shops.split(",")), row.created_at)


def _survey_answer(row: Any) -> StoredSurveyAnswer:
    answer = SurveyAnswer(SurveyKind(row.kind), row.score, row.answered_at, row.comment, SurveyPurpose(row.purpose))
    return StoredSurveyAnswer(row.shop_id, row.order_id, row.email, answer, row.source, row.updated_at)


def _action_record(row: Any) -> ActionRecord:
    payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
    return ActionRecord(
        id=row.id,
        kind=ActionKind(row.kind),
        shop_id=row.shop_id,
        plugin=row.plugin,
        order_id=row.order_id,
        key=row.key,
        idempotency_key=row.idempotency_key,
        payload=payload,
        due_at=row.due_at,
        state=ActionState(row.state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        customer_email=row.customer_email,
        rechecks=tuple(Recheck(r) for r in row.rechecks.split(",") if r),
        depends_on=row.depends_on,
        hook=row.hook,
        event_key=row.event_key,
        attempts=row.attempts,
        reason=row.reason,
        reason_code=ReasonCode(row.reason_code),
        result=row.result or {},
    )
