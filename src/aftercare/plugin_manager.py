"""The plugin manager: pluggy, the ``aftercare`` entry points, and a local folder.

Where plugins come from:

- **built-in**: the adapters and plugins shipped in this distribution. They
  are found through the same ``aftercare`` entry-point group as anyone
  else's; only their source label differs.
- **entry point**: another installed distribution's ``[project.entry-points.aftercare]``.
- **local**: ``*.py`` files in the config's ``plugins_folder`` (a merchant's
  one-file plugin), loaded by path; ``_*.py`` and ``test_*.py`` are skipped.
- **bundle NAME**: ``*.py`` files in a bundle's ``plugins/`` folder, loaded the
  same way under the name ``NAME.FILE``; the app gives them settings (and so
  runs them) only for the shops of that bundle.

``AFTERCARE_PLUGINS=a,b`` (or ``load_plugins`` in the config) loads only the
named plugins, which keeps tests and debugging deterministic.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from aftercare import PROJECT, hookspecs
from aftercare.config import ConfigError
from aftercare.models import EventKind
from aftercare.platform import Adapter
from aftercare.settings import PluginSettings

if TYPE_CHECKING:
    from aftercare.bundles import Bundle

ENTRY_POINT_GROUP = PROJECT
ONLY_ENV = "AFTERCARE_PLUGINS"
POST_SALE_HOOKS = tuple(kind.hook for kind in EventKind)
DISTRIBUTION = "aftercare"
LOCAL_PACKAGE = "aftercare_local_plugins"


@dataclass(frozen=True)
class PluginInfo:
    name: str
    source: str  # "built-in" | "entry point" | "local" | "core" | "registered"
    version: str
    hooks: tuple[str, ...]
    settings: type[PluginSettings]
    location: str

    @property
    def handles_events(self) -> bool:
        return any(h in POST_SALE_HOOKS for h in self.hooks)


@dataclass(frozen=True)
class HookCall:
    """One plugin's implementation of one hook, ready to call."""

    plugin: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]


Executor = Callable[..., dict[str, Any] | None]


class PluginManager:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}
        self._adapters: dict[str, type[Adapter]] | None = None
        self._channels: dict[str, Executor] | None = None
        self._calls: dict[str, list[HookCall]] = {}

    # -- loading ----------------------------------------------------------
    @classmethod
    def load(
        cls,
        *,
        entry_points: bool = True,
        local_folder: Path | None = None,
        only: Sequence[str] = (),
        extra: Iterable[tuple[str, object]] = (),
    ) -> PluginManager:
        """Build the manager the app uses. ``only`` (or $AFTERCARE_PLUGINS) limits what loads."""
        manager = cls()
        allowed = set(only) | _names_from_env()
        from aftercare import executors  # core actions on the platform (coupons, notes, ...)
        from aftercare.mail import channel as mail_channel

        manager.register(executors, "core-executors", source="core")
        manager.register(mail_channel, "core-mail", source="core")
        if entry_points:
            manager._load_entry_points(allowed)
        if local_folder is not None:
            manager._load_folder(local_folder, allowed)
        for name, plugin in extra:
            manager.register(plugin, name, source="registered")
        return manager

    def _load_entry_points(self, allowed: set[str]) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if (allowed and ep.name not in allowed) or ep.name in self._info:
                continue
            dist = ep.dist
            builtin = dist is not None and dist.name == DISTRIBUTION
            try:
                module = ep.load()
            except Exception as exc:  # a broken third-party plugin must say which one
                raise ConfigError([f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}"]) from None
            self.register(
                module,
                ep.name,
                source="built-in" if builtin else "entry point",
                version=dist.version if dist is not None else "",
            )

    def _load_folder(self, folder: Path, allowed: set[str]) -> None:
        if not folder.is_dir():
            raise ConfigError([f"plugins_folder: {folder} is not a folder"])
        for path in _plugin_files(folder):
            name = path.stem
            if allowed and name not in allowed:
                continue
            if name in self._info:
                raise ConfigError([f"plugins_folder: {path.name} has the name of an installed plugin"])
            module = _import_file(path, name, "plugins_folder")
            self.register(module, name, source="local", location=str(path))

    def load_bundle(self, bundle: Bundle) -> None:
        """Register a bundle's ``plugins/*.py`` as ``BUNDLE.FILE`` (idempotent per manager).

        They may implement only the post-sale hooks: an adapter, a channel or a
        command would act for every shop of the deployment, not just the bundle's.
        """
        for path in _plugin_files(bundle.plugins_folder) if bundle.plugins_folder.is_dir() else ():
            short, name = path.stem, bundle.plugin_name(path.stem)
            where = f"{bundle.plugins_folder / path.name}"
            if short in self._info and self._info[short].source != "core":
                raise ConfigError([f"{where}: has the name of an installed plugin; rename the file"])
            if name in self._info:
                if self._info[name].location != str(path):
                    raise ConfigError([f"{where}: another bundle named {bundle.name!r} already provides {name}"])
                continue
            module = _import_file(path, name.replace(".", "__").replace("-", "_"), where)
            self.register(module, name, source=f"bundle {bundle.name}", location=str(path))
            other = [h for h in self._info[name].hooks if h not in POST_SALE_HOOKS]
            if other:
                self.pm.unregister(name=name)
                del self._info[name]
                self._calls.clear()
                raise ConfigError(
                    [
                        f"{where}: a bundle plugin may implement only the post-sale hooks, not {', '.join(other)} "
                        "(it would act for every shop; install it as a plugin instead)"
                    ]  # fmt: skip
                )

    def register(self, plugin: object, name: str, *, source: str, version: str = "", location: str = "") -> None:
        settings = getattr(plugin, "Settings", PluginSettings)
        if not (isinstance(settings, type) and issubclass(settings, PluginSettings)):
            raise ConfigError([f"plugin {name!r}: Settings must subclass aftercare.settings.PluginSettings"])
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise ConfigError([f"plugin {name!r}: {exc}"]) from None
        hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
        self._info[name] = PluginInfo(
            name=name,
            source=source,
            version=version or getattr(plugin, "__version__", ""),
            hooks=hooks,
            settings=settings,
            location=location or getattr(plugin, "__file__", "") or "",
        )
        self._adapters = self._channels = None
        self._calls.clear()

    # -- what is loaded ---------------------------------------------------
    def plugins(self) -> list[PluginInfo]:
        return [info for info in self._info.values() if info.source != "core"]

    def info(self, name: str) -> PluginInfo:
        return self._info[name]

    def adapters(self) -> dict[str, type[Adapter]]:
        if self._adapters is None:
            found: dict[str, type[Adapter]] = {}

            def register(adapter: type[Adapter]) -> None:
                if not (isinstance(adapter, type) and issubclass(adapter, Adapter)):
                    raise TypeError(f"register_adapters: {adapter!r} is not an Adapter subclass")
                found[adapter.platform] = adapter

            self.pm.hook.register_adapters(register=register)
            self._adapters = found
        return self._adapters

    def channels(self) -> dict[str, Executor]:
        if self._channels is None:
            found: dict[str, Executor] = {}

            def register(kind: str, executor: Executor) -> None:
                found[kind] = executor

            # get_hookimpls() lists in registration order (pluggy calls them in reverse):
            # walking it forwards lets a later registration replace an earlier one.
            for impl in self.pm.hook.register_channels.get_hookimpls():
                impl.function(register=register)
            self._channels = found
        return self._channels

    def hook_calls(self, hook: str) -> list[HookCall]:
        """The implementations of ``hook`` in pluggy's call order (tryfirst/trylast honoured)."""
        if hook not in self._calls:
            impls = getattr(self.pm.hook, hook).get_hookimpls()
            self._calls[hook] = [
                HookCall(impl.plugin_name, impl.function, tuple(impl.argnames))
                for impl in reversed(impls)
                if not (impl.wrapper or impl.hookwrapper)
            ]
        return self._calls[hook]


def _plugin_files(folder: Path) -> list[Path]:
    """The plugins of a folder: ``_helpers.py`` and ``test_*.py`` may sit beside them."""
    return [p for p in sorted(folder.glob("*.py")) if not p.stem.startswith(("_", "test_"))]


def _import_file(path: Path, name: str, where: str) -> types.ModuleType:
    """Import a plugin file by path as ``aftercare_local_plugins.NAME``; errors name the file and line."""
    package = sys.modules.setdefault(LOCAL_PACKAGE, types.ModuleType(LOCAL_PACKAGE))
    package.__path__ = []  # a namespace for the loaded files, nothing to import from
    module_name = f"{LOCAL_PACKAGE}.{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        line = f" line {exc.lineno}" if isinstance(exc, SyntaxError) else ""
        prefix = f"{where}: " if where != str(path) else ""
        raise ConfigError([f"{prefix}{path}{line}: {type(exc).__name__}: {exc}"]) from None
    return module


def _names_from_env() -> set[str]:
    value = os.environ.get(ONLY_ENV, "")
    return {name.strip() for name in value.split(",") if name.strip()}
