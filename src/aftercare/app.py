"""The app: one config, its plugins, its store, its clock, an adapter per shop.

Everything that runs (the CLI, the receiver, the worker, the tests) builds one
:class:`App` and passes it along; there are no module-level singletons.
Building it validates the whole config, including each shop's platform keys,
its bundle and each plugin's settings per shop, so a mistake is reported
before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from aftercare.bundles import Bundle, load_bundle
from aftercare.clock import Clock, SystemClock
from aftercare.config import (
    Config,
    ConfigError,
    SettingsSource,
    ShopConfig,
    describe_errors,
    load_config,
    plugin_settings_source,
    validate_layers,
)
from aftercare.config.mail import MailSettings, merge_shop_settings, shop_mail_settings
from aftercare.context import ShopProfile
from aftercare.platform import Adapter, AdapterSettings, ShopInfo, ShopState
from aftercare.plugin_manager import PluginManager
from aftercare.settings import PluginSettings
from aftercare.store import ERASURE_KEY_PURPOSE, Store
from aftercare.vault import Vault, derive_key


@dataclass
class Shop:
    """A configured shop with its validated adapter settings and plugin settings."""

    config: ShopConfig
    adapter_class: type[Adapter]
    adapter_settings: AdapterSettings
    plugin_settings: dict[str, PluginSettings]
    profile: ShopProfile
    bundle: Bundle | None = None
    _adapter: Adapter | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.config.id

    def enabled_plugins(self) -> list[str]:
        return [name for name, settings in self.plugin_settings.items() if settings.enabled]

    @property
    def keeps_tokens(self) -> bool:
        """Whether its adapter keeps a token it obtains in the store (Shopify client credentials, installs)."""
        return bool(self.adapter_class.stored_secrets(self.adapter_settings))


class App:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        plugins: PluginManager | None = None,
        extra_plugins: Iterable[tuple[str, object]] = (),
        blocked_plugins: Iterable[str] = (),
    ) -> None:
        """``blocked_plugins``: names blocked besides the config's ``disabled_plugins`` (``-p no:NAME``)."""
        self.config = config
        self._mail_settings: tuple[Config, dict[str, MailSettings]] = (config, {})
        self.clock: Clock = clock or SystemClock()
        folder = config.resolve_path(config.plugins_folder) if config.plugins_folder else None
        self.plugins = plugins or PluginManager.load(
            local_folder=folder, only=config.load_plugins, disabled=config.disabled_plugins, blocked=blocked_plugins,
            extra=extra_plugins,
        )  # fmt: skip
        bundles = load_bundles(config)
        for bundle in dict.fromkeys(bundles.values()):
            self.plugins.load_bundle(bundle)
        self.shops: dict[str, Shop] = _build_shops(config, self.plugins, bundles)
        self.store = Store(
            config.database_url, self.clock, claim_lease=timedelta(seconds=config.server.claim_lease_seconds)
        )
        # Events about an erased customer are dropped at ingest, recognised by this key's hash of them.
        self.store.erasure_key = (
            derive_key(config.secret_key, ERASURE_KEY_PURPOSE) if config.secret_key is not None else None
        )
        self.store.previous_erasure_keys = tuple(
            derive_key(key, ERASURE_KEY_PURPOSE) for key in config.previous_secret_keys
        )
        #: Seals the tokens adapters keep in the store; None without a ``secret_key``.
        self.vault = (
            Vault(config.secret_key, previous=config.previous_secret_keys) if config.secret_key is not None else None
        )

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> App:
        return cls(load_config(path), **kwargs)  # type: ignore[arg-type]

    def now(self):  # noqa: ANN201 - a datetime, the app's time
        return self.clock.now()

    def mail_settings(self, shop_id: str) -> MailSettings:
        """The mail settings shop ``shop_id`` runs with (``[mail]`` under its ``[shops.mail]``), merged
        once per shop: every mail, link and live check reads them."""
        config, merged = self._mail_settings
        if config is not self.config:  # the config was replaced (a test does): merge anew
            config, merged = self._mail_settings = (self.config, {})
        if shop_id not in merged:
            merged[shop_id] = shop_mail_settings(config, self.shop(shop_id).config)
        return merged[shop_id]

    def shop(self, shop_id: str) -> Shop:
        try:
            return self.shops[shop_id]
        except KeyError:
            known = ", ".join(self.shops) or "none configured"
            raise KeyError(f"no shop {shop_id!r} (known: {known})") from None

    def adapter(self, shop_id: str) -> Adapter:
        """The shop's adapter, remembering its state (WooCommerce's last seen orders) in the store."""
        shop = self.shop(shop_id)
        if shop._adapter is None:
            shop._adapter = self.new_adapter(shop_id, self.store.shop_state(shop_id))
        return shop._adapter

    def new_adapter(self, shop_id: str, state: ShopState) -> Adapter:
        """Another adapter for the shop with its own state: reading without touching the store's."""
        shop = self.shop(shop_id)
        info = ShopInfo(
            id=shop.id,
            webhook_secret=shop.config.webhook_secret,
            locale=shop.config.locale,
            timezone=shop.config.timezone,
            secrets=self.vault,
            longest_delay=max(
                (settings.longest_delay() for settings in shop.plugin_settings.values() if settings.enabled),
                default=timedelta(0),
            ),
        )
        return shop.adapter_class(info, shop.adapter_settings, state, self.now)

    def is_dry_run(self, shop_id: str) -> str:
        """Why actions of this shop are recorded but not executed, or '' if they run."""
        if self.config.dry_run:
            return "dry run: the config says dry_run = true"
        if not self.shop(shop_id).config.production:
            return f"dry run: shop {shop_id!r} is not marked production = true"
        return ""

    def close(self) -> None:
        self.store.close()


def load_bundles(config: Config) -> dict[str, Bundle]:
    """The bundle of each shop that names one (shops naming the same folder share one load)."""
    loaded: dict[Path, Bundle] = {}
    by_shop: dict[str, Bundle] = {}
    problems: list[str] = []
    for index, shop in enumerate(config.shops):
        if not shop.bundle:
            continue
        folder = config.resolve_path(shop.bundle)
        key = folder.resolve()
        if key not in loaded:
            try:
                loaded[key] = load_bundle(folder, str(Path(shop.bundle) / "bundle.toml"))
            except ConfigError as exc:
                problems.extend(f"shops[{index}].bundle: {line}" if "bundle.toml" not in line else line
                                for line in exc.problems)  # fmt: skip
                continue
        by_shop[shop.id] = loaded[key]
    names: dict[str, Path] = {}
    for key, bundle in loaded.items():
        if names.setdefault(bundle.name, key) != key:
            problems.append(
                f"{bundle.label}: another bundle folder is also named {bundle.name!r} ({names[bundle.name]})"
            )
    if problems:
        raise ConfigError(dict.fromkeys(problems))
    return by_shop


def bundle_plugin_settings(plugins: PluginManager, bundle: Bundle) -> dict[str, PluginSettings]:
    """Each plugin's settings as a shop of ``bundle`` with no overrides would get them (``bundle check``)."""
    problems = _unknown_bundle_plugins(plugins, bundle)
    settings: dict[str, PluginSettings] = {}
    for info in plugins.plugins():
        owner = _bundle_of(info.source)
        if not info.handles_events or (owner and owner != bundle.name):
            continue
        name = bundle.local.get(info.name, info.name)
        try:
            source = SettingsSource(((f"{bundle.label}: plugins.{name}", bundle.plugins.get(name, {})),))
            settings[info.name] = validate_layers(info.settings, source)  # type: ignore[assignment]
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return settings


def _bundle_of(source: str) -> str:
    """The bundle a plugin came from ('' for everything else), from its source label."""
    return source.removeprefix("bundle ") if source.startswith("bundle ") else ""


def _unknown_bundle_plugins(plugins: PluginManager, bundle: Bundle) -> list[str]:
    known = {i.name for i in plugins.plugins() if i.handles_events and not _bundle_of(i.source)}
    known |= set(bundle.local.values()) | plugins.blocked_names()
    return [
        f"{bundle.label}: plugins.{name}: no such plugin is installed or in {bundle.plugins_folder}"
        for name in bundle.plugins
        if name not in known
    ]


def _build_shops(config: Config, plugins: PluginManager, bundles: dict[str, Bundle]) -> dict[str, Shop]:
    problems: list[str] = []
    adapters = plugins.adapters()
    known_plugins = {info.name: info for info in plugins.plugins() if info.handles_events}
    owners = {name: _bundle_of(info.source) for name, info in known_plugins.items()}
    blocked = plugins.blocked_names()  # their settings may stay in the file: they just do not load
    for bundle in dict.fromkeys(bundles.values()):
        problems.extend(_unknown_bundle_plugins(plugins, bundle))
    for name in config.plugins:
        if name not in known_plugins and not config.load_plugins and name not in blocked:
            available = ", ".join(sorted(known_plugins)) or "none"
            problems.append(f"plugins.{name}: no such plugin is installed (installed: {available})")
    broken: set[str] = set()
    for name, info in known_plugins.items():  # checked once even when no shop is configured
        if owners[name]:
            continue  # a bundle's plugin has no deployment-wide table
        try:
            validate_layers(info.settings, SettingsSource(((f"plugins.{name}", config.plugins.get(name, {})),)))
        except ConfigError as exc:
            problems.extend(exc.problems)
            broken.add(name)
    shops: dict[str, Shop] = {}
    for index, shop_config in enumerate(config.shops):
        adapter_class = adapters.get(shop_config.platform)
        if adapter_class is None:
            available = ", ".join(sorted(adapters)) or "none"
            problems.append(
                f"shops[{index}].platform: unknown platform {shop_config.platform!r} (installed: {available})"
            )
            continue
        try:
            adapter_settings = adapter_class.Settings.model_validate(shop_config.platform_keys)
        except ValidationError as exc:
            problems.extend(describe_errors(exc, prefix=f"shops[{index}]"))
            continue
        kept = adapter_class.stored_secrets(adapter_settings)
        if kept and config.secret_key is None:
            problems.append(
                f"secret_key: required by shops[{index}], which keeps {kept} in the store encrypted with it"
                ' (add secret_key = "${AFTERCARE_SECRET_KEY}" at the top of the file)'
            )
        bundle = bundles.get(shop_config.id)
        own = set(bundle.local.values()) if bundle else set()
        for name in shop_config.plugins:
            if name not in known_plugins and name not in own and not config.load_plugins and name not in blocked:
                problems.append(f"shops[{index}].plugins.{name}: no such plugin is installed")
        plugin_settings: dict[str, PluginSettings] = {}
        for name, info in known_plugins.items():
            if owners[name] and (bundle is None or owners[name] != bundle.name):
                continue  # another client's plugin: no settings, so it never runs for this shop
            if name in broken and name not in shop_config.plugins and not (bundle and name in bundle.plugins):
                continue  # already reported once for [plugins.NAME]; the shop adds nothing to it
            try:
                plugin_settings[name] = validate_layers(  # type: ignore[assignment]
                    info.settings, plugin_settings_source(config, name, shop_config, bundle)
                )
            except ConfigError as exc:
                problems.extend(exc.problems)
        if bundle is not None:
            try:  # the bundle's [mail] under the shop's own [shops.mail], key by key
                shop_config = shop_config.model_copy(
                    update={"mail": merge_shop_settings(bundle.mail, shop_config.mail)}
                )
            except ValidationError as exc:
                problems.extend(describe_errors(exc, prefix=f"shops[{index}].mail (merged with {bundle.label})"))
        profile = ShopProfile(
            id=shop_config.id,
            platform=shop_config.platform,
            name=shop_config.name or shop_config.id,
            locale=shop_config.locale,
            timezone=shop_config.timezone,
            sender=shop_config.sender,
            production=shop_config.production,
        )
        shops[shop_config.id] = Shop(shop_config, adapter_class, adapter_settings, plugin_settings, profile, bundle)
    if problems:
        # A plugin's settings are checked once per shop; say each problem once.
        raise ConfigError(dict.fromkeys(problems))
    return shops
