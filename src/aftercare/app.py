"""The app: one config, its plugins, its store, its clock, an adapter per shop.

Everything that runs (the CLI, the receiver, the worker, the tests) builds one
:class:`App` and passes it along; there are no module-level singletons.
Building it validates the whole config, including each shop's platform keys
and each plugin's settings per shop, so a mistake is reported before anything
runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

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
from aftercare.context import ShopProfile
from aftercare.platform import Adapter, AdapterSettings, ShopInfo
from aftercare.plugin_manager import PluginManager
from aftercare.settings import PluginSettings
from aftercare.store import Store


@dataclass
class Shop:
    """A configured shop with its validated adapter settings and plugin settings."""

    config: ShopConfig
    adapter_class: type[Adapter]
    adapter_settings: AdapterSettings
    plugin_settings: dict[str, PluginSettings]
    profile: ShopProfile
    _adapter: Adapter | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.config.id

    def enabled_plugins(self) -> list[str]:
        return [name for name, settings in self.plugin_settings.items() if settings.enabled]


class App:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        plugins: PluginManager | None = None,
        extra_plugins: Iterable[tuple[str, object]] = (),
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        folder = config.resolve_path(config.plugins_folder) if config.plugins_folder else None
        self.plugins = plugins or PluginManager.load(local_folder=folder, only=config.load_plugins, extra=extra_plugins)
        self.shops: dict[str, Shop] = _build_shops(config, self.plugins)
        self.store = Store(config.database_url, self.clock)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> App:
        return cls(load_config(path), **kwargs)  # type: ignore[arg-type]

    def now(self):  # noqa: ANN201 - a datetime, the app's time
        return self.clock.now()

    def shop(self, shop_id: str) -> Shop:
        try:
            return self.shops[shop_id]
        except KeyError:
            known = ", ".join(self.shops) or "none configured"
            raise KeyError(f"no shop {shop_id!r} (known: {known})") from None

    def adapter(self, shop_id: str) -> Adapter:
        shop = self.shop(shop_id)
        if shop._adapter is None:
            info = ShopInfo(
                id=shop.id,
                webhook_secret=shop.config.webhook_secret,
                locale=shop.config.locale,
                timezone=shop.config.timezone,
            )
            shop._adapter = shop.adapter_class(info, shop.adapter_settings, self.store.shop_state(shop.id), self.now)
        return shop._adapter

    def is_dry_run(self, shop_id: str) -> str:
        """Why actions of this shop are recorded but not executed, or '' if they run."""
        if self.config.dry_run:
            return "dry run: the config says dry_run = true"
        if not self.shop(shop_id).config.production:
            return f"dry run: shop {shop_id!r} is not marked production = true"
        return ""

    def close(self) -> None:
        self.store.close()


def _build_shops(config: Config, plugins: PluginManager) -> dict[str, Shop]:
    problems: list[str] = []
    adapters = plugins.adapters()
    known_plugins = {info.name: info for info in plugins.plugins() if info.handles_events}
    for name in config.plugins:
        if name not in known_plugins and not config.load_plugins:
            available = ", ".join(sorted(known_plugins)) or "none"
            problems.append(f"plugins.{name}: no such plugin is installed (installed: {available})")
    broken: set[str] = set()
    for name, info in known_plugins.items():  # checked once even when no shop is configured
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
        for name in shop_config.plugins:
            if name not in known_plugins and not config.load_plugins:
                problems.append(f"shops[{index}].plugins.{name}: no such plugin is installed")
        plugin_settings: dict[str, PluginSettings] = {}
        for name, info in known_plugins.items():
            if name in broken and name not in shop_config.plugins:
                continue  # already reported once for [plugins.NAME]; the shop adds nothing to it
            try:
                plugin_settings[name] = validate_layers(  # type: ignore[assignment]
                    info.settings, plugin_settings_source(config, name, shop_config)
                )
            except ConfigError as exc:
                problems.extend(exc.problems)
        profile = ShopProfile(
            id=shop_config.id,
            platform=shop_config.platform,
            name=shop_config.name or shop_config.id,
            locale=shop_config.locale,
            timezone=shop_config.timezone,
            sender=shop_config.sender,
            production=shop_config.production,
        )
        shops[shop_config.id] = Shop(shop_config, adapter_class, adapter_settings, plugin_settings, profile)
    if problems:
        # A plugin's settings are checked once per shop; say each problem once.
        raise ConfigError(dict.fromkeys(problems))
    return shops
