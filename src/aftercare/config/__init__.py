"""The merchant's TOML config: reading, ``${ENV}`` secrets, validation, clear errors.

Every problem is reported as one line naming its TOML path and what was
expected (``shops[1].webhook_secret: required``), collected into one
:class:`ConfigError` so the merchant sees them all at once. Secrets are
``SecretStr``: they print as ``**********``, even in ``check``.

Validation happens in two steps because the shape of some tables is only
known once plugins are loaded: :func:`load_config` checks the core keys, and
:func:`validate_shop_settings` / :func:`plugin_settings_for` check a shop's
platform keys and each plugin's settings against the models the adapter and
the plugins declare.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from aftercare.config.console import ConsoleSettings
from aftercare.config.errors import ConfigError, describe_errors, join_path, problem_text
from aftercare.config.mail import MailSettings
from aftercare.vault import MIN_SECRET_KEY_LENGTH

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SHOP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: The databases the store runs on (``database``): SQLite, and PostgreSQL through psycopg.
DATABASE_BACKENDS = ("sqlite", "postgresql")
#: The queues (``queue``): a SQLite file (the embedded default), or Redis.
QUEUE_PREFIXES = ("sqlite:///", "redis://", "rediss://", "unix://")
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
#: A locale as the config writes it: ``es``, ``es-MX``, ``pt_BR``.
LOCALE_TAG = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
#: The core's mail templates, one folder per locale (the plugins ship the same ones).
MAIL_TEMPLATES = Path(__file__).resolve().parents[1] / "mail" / "templates"


@functools.cache
def mail_locales() -> tuple[str, ...]:
    """The locales a shop may have: those the core's mail templates are written in (en, es, bg)."""
    return tuple(sorted(p.name for p in MAIL_TEMPLATES.iterdir() if p.is_dir() and not p.name.startswith("_")))


class ShopConfig(BaseModel):
    """One shop. Keys not listed here belong to the shop's platform adapter."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    platform: str
    webhook_secret: SecretStr
    #: A shop not marked production never executes actions: it records them
    #: with the reason, like a dry run. Staging clones must never mail customers.
    production: bool = False
    locale: str = "en"
    timezone: str = "UTC"
    name: str = ""
    sender: str = ""
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: ``[shops.mail]``: this shop's overrides of ``[mail]`` (only the keys it sets).
    mail: MailSettings = Field(default_factory=MailSettings)
    #: This shop's ``retention_days`` (else the top-level one).
    retention_days: int | None = Field(default=None, ge=0)
    #: A bundle folder (``bundle.toml``, ``templates/``, ``plugins/``), relative to the
    #: config file: a client's setup shared by its shops (see docs/agencies.md).
    bundle: str = ""

    @field_validator("id")
    @classmethod
    def _id_is_a_slug(cls, value: str) -> str:
        if not SHOP_ID.match(value):
            raise ValueError("must be lowercase letters, digits, '-' or '_' (it appears in webhook URLs)")
        return value

    @field_validator("locale")
    @classmethod
    def _locale_with_templates(cls, value: str) -> str:
        known = mail_locales()
        language = re.split(r"[-_]", value, maxsplit=1)[0]
        if not LOCALE_TAG.match(value) or language not in known:
            choices = ", ".join(known)
            raise ValueError(f"no mail templates in this locale: use {choices} (or a regional tag, like 'es-MX')")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like 'Europe/Madrid')") from None
        return value

    @property
    def platform_keys(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ServerSettings(BaseModel):
    """``[server]``: the webhook receiver and the embedded worker of ``aftercare serve``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: Webhook bodies above this many bytes are refused with 413.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    #: Bodies of every other route (customer pages, forms, the console) above this are refused with 413.
    max_form_bytes: int = Field(default=64 * 1024, ge=1024)
    #: A request body that does not arrive within this many seconds is answered 408.
    body_timeout_seconds: float = Field(default=30, gt=0)
    #: Open connections above this are answered 503 (uvicorn's limit_concurrency).
    max_connections: int = Field(default=1000, ge=1)
    #: An idle keep-alive connection is closed after this many seconds.
    keep_alive_seconds: float = Field(default=5, gt=0)
    #: Worker threads of the embedded queue consumer.
    workers: int = Field(default=2, ge=1, le=64)
    #: Processes of ``serve`` answering on its port: one receiver is bound by one core, so a
    #: machine with cores to spare acknowledges more webhooks a second with 2 (docs/benchmarks.md).
    receivers: int = Field(default=1, ge=1, le=64)
    #: serve's worker child runs this much nicer (Unix ``nice``) than its receivers: when both
    #: want the CPU, acknowledging webhooks comes first and the worker catches up after; 0: equal.
    worker_nice: int = Field(default=10, ge=0, le=19)
    #: A claim on an event or an action lasts this long unless its worker renews it (its
    #: heartbeat does, while the work runs); one left to run out belongs to a worker that
    #: died, and the sweep makes the event pending or the action due again.
    claim_lease_seconds: float = Field(default=600, gt=0)
    #: Worker threads one shop's actions may occupy at once in a process; 0 means half of
    #: ``workers`` (at least one), so a shop with a slow SMTP relay or platform never holds them all.
    shop_concurrency: int = Field(default=0, ge=0, le=64)
    #: The sweep dispatches a pending event only once it has waited this many seconds, so an
    #: event whose queue message is on its way is not picked up twice; also how long an event
    #: released from a dead worker's claim or backed off after a failed dispatch waits at least.
    pending_grace_seconds: float = Field(default=30, ge=0)
    #: ``/healthz`` answers 503 once no worker's heartbeat (every 5 s) came for this long.
    heartbeat_limit_seconds: float = Field(default=15, gt=5)
    #: Addresses or networks (CIDR) of reverse proxies whose ``X-Forwarded-For`` names the client
    #: (the console's per-address login limit, logs). Empty: the header is ignored, whoever sends it.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                problem = f"{entry!r} is not an IP address or network (like '10.0.0.5' or '10.0.0.0/8')"
                raise ValueError(problem) from None
        return value


class LinksSettings(BaseModel):
    """``[links]``: how long the links in customer mail work (see docs/privacy.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A survey link answers for this many days after it was made (when the plugin scheduled
    #: the mail, which may be days before it is sent); 0 for ever.
    survey_days: int = Field(default=30, ge=0)
    #: A newsletter opt-in confirmation link works for this many days; 0 for ever.
    optin_days: int = Field(default=7, ge=0)
    #: Survey and opt-in links of the format before opaque links (readable fields, no date
    #: inside) work until this day (UTC), then show "this link has expired". Unsubscribe
    #: links of that format always work.
    legacy_until: date = date(2027, 2, 1)


class PrivacySettings(BaseModel):
    """``[privacy]``: where Shopify's data requests are answered (see docs/privacy.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The folder (relative to the config file) where the worker writes the export a
    #: ``customers/data_request`` asks for, one JSON file each, for the merchant to hand over.
    export_folder: str = "privacy-exports"


class Config(BaseModel):
    """The whole file. Relative paths are resolved against the file's folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: SQLAlchemy URL of the store; SQLite file by default.
    database: str = "sqlite:///aftercare.db"
    #: Where the queue lives: a SQLite file (embedded default) or ``redis://...``.
    queue: str = "sqlite:///aftercare-queue.db"
    #: Name of the queue inside it (several deployments may share one Redis).
    queue_name: str = "aftercare"
    #: Public base URL of this deployment (webhook addresses, links in emails).
    public_url: str = "http://127.0.0.1:8000"
    #: Record every action but execute none, for every shop.
    dry_run: bool = False
    #: How ``serve`` and ``worker`` write their log lines: ``text``, or ``json`` (one object a
    #: line, with shop, order, plugin, action, outcome and duration where the line has them).
    log_format: Literal["text", "json"] = "text"
    #: The deployment's own key: encrypts the platform tokens kept in the store (Shopify
    #: client credentials and installs) and the links in customer mail. Any random text of 32+
    #: characters; ``aftercare init`` writes one. Changing it without keeping the old one in
    #: ``previous_secret_keys`` loses those tokens (client credentials fetch new ones; installs
    #: must be done again) and breaks the links already mailed.
    secret_key: SecretStr | None = None
    #: Keys used before ``secret_key``: links in mail already sent and platform tokens sealed
    #: with one of them still open (new ones use ``secret_key``). Rotate by moving the old key here.
    previous_secret_keys: list[SecretStr] = Field(default_factory=list)
    #: Events, done and dropped actions, hook runs, customer history and rejected deliveries older
    #: than this many days are deleted by the worker's sweep; survey answers that old keep only
    #: their score. 0 keeps everything for ever. Per shop: ``[[shops]] retention_days``.
    retention_days: int = Field(default=400, ge=0)
    #: A folder of one-file plugins (``*.py``) written for this deployment.
    plugins_folder: str = ""
    #: Load only these plugins (by name); empty means all installed. Adapters always load.
    load_plugins: list[str] = Field(default_factory=list)
    #: Plugins never imported nor registered, by name (like pytest's ``-p no:NAME``); also
    #: ``$AFTERCARE_DISABLE_PLUGINS=a,b`` and ``aftercare -p no:NAME``. Each must be installed
    #: or in ``plugins_folder``.
    disabled_plugins: list[str] = Field(default_factory=list)
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    server: ServerSettings = Field(default_factory=lambda: ServerSettings())
    mail: MailSettings = Field(default_factory=MailSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    links: LinksSettings = Field(default_factory=LinksSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    shops: list[ShopConfig] = Field(default_factory=list)

    #: Folder of the config file; set by :func:`load_config`.
    base_dir: Path = Path(".")

    @field_validator("database")
    @classmethod
    def _sqlite_or_postgresql(cls, value: str) -> str:
        scheme, separator, _rest = value.partition("://")
        if not separator or scheme.split("+")[0] not in DATABASE_BACKENDS:
            hint = " (write postgresql://)" if scheme.split("+")[0] == "postgres" else ""
            raise ValueError(
                f"{_without_password(value)!r} is not a SQLite or PostgreSQL URL{hint}: write "
                "sqlite:///aftercare.db or postgresql+psycopg://USER@HOST/DATABASE"
            )
        return value

    @field_validator("queue")
    @classmethod
    def _sqlite_or_redis(cls, value: str) -> str:
        if not value.startswith(QUEUE_PREFIXES):
            raise ValueError(
                f"{_without_password(value)!r} is not a queue aftercare runs on: write "
                "sqlite:///aftercare-queue.db or redis://HOST:PORT/DB"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_LENGTH} characters of random text "
                "(`aftercare init` writes one into a new config)"
            )
        return value

    @field_validator("previous_secret_keys")
    @classmethod
    def _long_previous_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, key in enumerate(value):
            if len(key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(f"[{index}] must be at least {MIN_SECRET_KEY_LENGTH} characters of random text")
        return value

    @model_validator(mode="after")
    def _previous_keys_need_a_current_one(self) -> Config:
        if self.previous_secret_keys and self.secret_key is None:
            raise ValueError("previous_secret_keys is set but secret_key is not: new links need a current key")
        return self

    @model_validator(mode="after")
    def _production_shops_have_a_sender(self) -> Config:
        """See :func:`sender_problem`. A bundle's shop may get its sender from the bundle's
        ``[mail]``, which the app merges: the command line checks it once the app is built."""
        problems = []
        for index, shop in enumerate(self.shops):
            if shop.bundle:
                continue
            transport = shop.mail.transport if "transport" in shop.mail.model_fields_set else self.mail.transport
            problem = sender_problem(self, index, shop, transport, shop.mail.sender or self.mail.sender)
            if problem:
                problems.append(problem)
        if problems:
            raise ConfigError(problems)
        return self

    @field_validator("shops")
    @classmethod
    def _unique_shop_ids(cls, shops: list[ShopConfig]) -> list[ShopConfig]:
        seen: set[str] = set()
        for shop in shops:
            if shop.id in seen:
                raise ValueError(f"shop id {shop.id!r} is used twice")
            seen.add(shop.id)
        return shops

    def shop(self, shop_id: str) -> ShopConfig:
        for shop in self.shops:
            if shop.id == shop_id:
                return shop
        known = ", ".join(s.id for s in self.shops) or "none configured"
        raise KeyError(f"no shop {shop_id!r} (known: {known})")

    def shop_index(self, shop_id: str) -> int:
        return next(i for i, s in enumerate(self.shops) if s.id == shop_id)

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def database_url(self) -> str:
        return _resolve_sqlite_url(self.database, self.base_dir)

    @property
    def queue_url(self) -> str:
        return _resolve_sqlite_url(self.queue, self.base_dir)


def sender_problem(config: Config, index: int, shop: ShopConfig, transport: str, mail_sender: str) -> str | None:
    """A production shop that mails over SMTP needs a ``From``: without one its first mail would
    fail after the platform actions before it (a real coupon) were done. One line naming the key,
    or None. ``transport`` and ``mail_sender`` are the shop's merged mail settings'."""
    if config.dry_run or not shop.production or transport != "smtp" or shop.sender or mail_sender:
        return None
    return (f"shops[{index}].sender: required for a production shop that mails over SMTP; "
            "set it here, in [shops.mail] or in [mail] (or production = false)")  # fmt: skip


def _without_password(url: str) -> str:
    """A URL with the password of its ``user:password@`` part starred, for messages."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def _resolve_sqlite_url(url: str, base: Path) -> str:
    """``sqlite:///name.db`` is relative to the config's folder, not the shell's."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the core keys of a config file; raise :class:`ConfigError`."""
    path = Path(path)
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(["no such file (create one with `aftercare init`)"], source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], source) from None
    except UnicodeDecodeError:
        raise ConfigError(["not UTF-8 text"], source) from None
    problems: list[str] = []
    data = expand_env(raw, os.environ if environ is None else environ, problems)
    if problems:
        raise ConfigError(problems, source)
    data["base_dir"] = path.resolve().parent
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc), source) from None
    except ConfigError as exc:  # a check across tables, naming its keys itself
        raise ConfigError(exc.problems, source) from None


def expand_env(value: Any, environ: Mapping[str, str], problems: list[str], path: str = "") -> Any:
    """Replace ``${NAME}`` in every string with the environment variable's value."""
    if isinstance(value, dict):
        return {k: expand_env(v, environ, problems, join_path(path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, environ, problems, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                problems.append(f"{path}: environment variable {name} is not set")
                return ""
            return environ[name]

        return _ENV_REF.sub(substitute, value)
    return value


@dataclass(frozen=True)
class SettingsSource:
    """Where a plugin's settings for one shop come from, layer by layer."""

    layers: tuple[tuple[str, Mapping[str, Any]], ...]  # (toml path, table), lowest precedence first

    def merged(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for _path, table in self.layers:
            result.update(table)
        return result

    def path_of(self, key: str) -> str:
        """The TOML path that supplied ``key`` (the highest layer that has it)."""
        for path, table in reversed(self.layers):
            if key in table:
                return path
        return self.layers[-1][0] if self.layers else ""


def plugin_settings_source(
    config: Config, plugin: str, shop: ShopConfig, bundle: BundleLayer | None = None
) -> SettingsSource:
    """Plugin defaults < ``[plugins.NAME]`` < the shop's bundle < ``[shops.plugins.NAME]``.

    The deployment-wide table sits below the bundle: it is the agency's house
    default, the bundle is one client's choice, and the more specific one wins.
    A bundle's own plugin (``bundle.local``) has no deployment-wide layer, and
    the bundle and the shop name it by its short name.
    """
    index = config.shop_index(shop.id)
    short = bundle.local.get(plugin, "") if bundle is not None else ""
    name = short or plugin
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if not short:
        layers.append((f"plugins.{plugin}", config.plugins.get(plugin, {})))
    if bundle is not None:
        layers.append((f"{bundle.label}: plugins.{name}", bundle.plugins.get(name, {})))
    layers.append((f"shops[{index}].plugins.{name}", shop.plugins.get(name, {})))
    return SettingsSource(layers=tuple(layers))


class BundleLayer(Protocol):
    """What :func:`plugin_settings_source` needs of a bundle (:class:`aftercare.bundles.Bundle`)."""

    @property
    def label(self) -> str: ...  # how errors name its file: ``bundles/acme/bundle.toml``

    @property
    def plugins(self) -> Mapping[str, Mapping[str, Any]]: ...  # ``[plugins.NAME]`` by short name

    @property
    def local(self) -> Mapping[str, str]: ...  # its own plugins: registered name -> short name


def validate_layers(model: type[BaseModel], source: SettingsSource) -> BaseModel:
    """Validate merged settings; each error names the layer that set the key."""
    try:
        return model.model_validate(source.merged())
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            head = source.path_of(str(loc[0])) if loc else source.layers[-1][0]
            path = head
            for part in loc:
                path = f"{path}[{part}]" if isinstance(part, int) else join_path(path, str(part))
            lines.append(f"{path}: {problem_text(error)}")
        raise ConfigError(lines) from None
