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
named plugins, which keeps tests and debugging deterministic. It limits plugins,
never adapters: an entry point or file that registers platforms (implements
``register_adapters``) always loads, so a shop keeps its platform.

Blocking by name, like pytest's ``-p no:NAME``: ``disabled_plugins`` in the
config, ``AFTERCARE_DISABLE_PLUGINS=a,b`` and ``aftercare -p no:NAME``. A
blocked plugin is never imported nor registered; ``plugins list`` shows it.

Wrappers (``@hookimpl(wrapper=True)``, old-style ``hookwrapper=True``) wrap
each plugin's call of a post-sale hook: the dispatcher calls every plugin on
its own (its own ``ctx``, its errors its own), and the wrappers run around
each of those calls in pluggy's order (docs/plugins.md).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from aftercare import PROJECT, hookspecs
from aftercare.actions import ActionDropped, ActionJob
from aftercare.config import ConfigError
from aftercare.models import EventKind
from aftercare.platform import Adapter
from aftercare.settings import PluginSettings

if TYPE_CHECKING:
    from aftercare.bundles import Bundle

ENTRY_POINT_GROUP = PROJECT
#: The core's own channels (pyproject.toml), loaded whatever ``entry_points`` and ``only`` say.
CORE_GROUP = f"{PROJECT}.core"
ONLY_ENV = "AFTERCARE_PLUGINS"
DISABLE_ENV = "AFTERCARE_DISABLE_PLUGINS"
#: The config key of the blocked names (its unknown names are errors).
DISABLED_KEY = "disabled_plugins"
#: Where a name blocked by the command line comes from (``aftercare -p no:NAME``).
COMMAND_LINE = "-p no:NAME"
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
    #: Blocked by name (``disabled_plugins``, $AFTERCARE_DISABLE_PLUGINS, ``-p no:NAME``):
    #: never imported, so it has no hooks; ``blocked`` says which of them blocked it.
    blocked: str = ""

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
#: A channel's ``refuses(job)``: the drop it would raise for good if it ran the action now, or None.
RefusalCheck = Callable[[ActionJob], ActionDropped | None]


class PluginManager:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}
        self._adapters: dict[str, type[Adapter]] | None = None
        self._channels: dict[str, Executor] | None = None
        self._refusals: dict[str, RefusalCheck] = {}
        self._calls: dict[str, list[HookCall]] = {}
        #: Names never to import nor register, and where each was blocked from.
        self._disabled: dict[str, str] = {}
        self._blocked: dict[str, PluginInfo] = {}
        #: Every entry point and plugins_folder file seen, loaded or not (``only``, blocked).
        self._found: set[str] = set()

    # -- loading ----------------------------------------------------------
    @classmethod
    def load(
        cls,
        *,
        entry_points: bool = True,
        local_folder: Path | None = None,
        only: Sequence[str] = (),
        disabled: Sequence[str] = (),
        blocked: Iterable[str] = (),
        extra: Iterable[tuple[str, object]] = (),
    ) -> PluginManager:
        """Build the manager the app uses. ``only`` (or $AFTERCARE_PLUGINS) limits the plugins that
        load, never the adapters. ``disabled`` (the config's ``disabled_plugins``: an unknown name
        is an error), $AFTERCARE_DISABLE_PLUGINS and ``blocked`` (the command line's ``-p no:NAME``)
        name plugins never imported nor registered."""
        manager = cls()
        allowed = set(only) | _names_from_env(ONLY_ENV)
        for name in _names_from_env(DISABLE_ENV):
            manager._disabled.setdefault(name, f"${DISABLE_ENV}")
        for name in blocked:
            manager._disabled.setdefault(name, COMMAND_LINE)
        for name in disabled:
            manager._disabled.setdefault(name, DISABLED_KEY)
        # The core's channels first (platform actions through the adapter, mail), so that a plugin
        # registered later may replace one; found by entry point, so this module imports none of them.
        for ep in sorted(importlib.metadata.entry_points(group=CORE_GROUP), key=lambda ep: ep.name):
            manager.register(ep.load(), ep.name, source="core")
        if entry_points:
            manager._load_entry_points(allowed)
        if local_folder is not None:
            manager._load_folder(local_folder, allowed)
        for name, plugin in extra:
            manager.register(plugin, name, source="registered")
        manager._check_disabled(disabled)
        return manager

    def _load_entry_points(self, allowed: set[str]) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._info or ep.name in self._blocked:
                continue
            self._found.add(ep.name)
            dist = ep.dist
            builtin = dist is not None and dist.name == DISTRIBUTION
            source = "built-in" if builtin else "entry point"
            version = dist.version if dist is not None else ""
            if ep.name in self._disabled:  # before the import: a blocked plugin's code never runs
                self._block(ep.name, source, version, ep.value)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken third-party plugin must say which one
                raise ConfigError([f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}"]) from None
            if allowed and ep.name not in allowed and not self._registers_platforms(module):
                continue  # ``only`` limits the plugins; an adapter stays, or its shops lose their platform
            self.register(module, ep.name, source=source, version=version)

    def _load_folder(self, folder: Path, allowed: set[str]) -> None:
        if not folder.is_dir():
            raise ConfigError([f"plugins_folder: {folder} is not a folder"])
        for path in _plugin_files(folder):
            name = path.stem
            if name in self._info or name in self._blocked:
                raise ConfigError([f"plugins_folder: {path.name} has the name of an installed plugin"])
            self._found.add(name)
            if name in self._disabled:
                self._block(name, "local", "", str(path))
                continue
            module = _import_file(path, name, "plugins_folder")
            if allowed and name not in allowed and not self._registers_platforms(module):
                continue
            self.register(module, name, source="local", location=str(path))

    def _registers_platforms(self, plugin: object) -> bool:
        """Whether ``plugin`` implements ``register_adapters`` (read as pluggy reads a plugin)."""
        for attribute in dir(plugin):
            opts = self.pm.parse_hookimpl_opts(plugin, attribute)
            if opts is not None and (opts.get("specname") or attribute) == "register_adapters":
                return True
        return False

    def _block(self, name: str, source: str, version: str, location: str) -> None:
        self.pm.set_blocked(name)  # a later registration under the name is refused too
        self._blocked[name] = PluginInfo(
            name=name, source=source, version=version, hooks=(), settings=PluginSettings, location=location,
            blocked=self._disabled[name],
        )  # fmt: skip

    def _check_disabled(self, names: Sequence[str]) -> None:
        """The config's ``disabled_plugins`` names only plugins that are installed or in ``plugins_folder``."""
        known = {name for name, info in self._info.items() if info.source != "core"} | self._found
        available = ", ".join(sorted(known)) or "none"
        problems = [
            f"{DISABLED_KEY}[{index}]: no such plugin is installed or in plugins_folder: {name!r}"
            f" (installed: {available})"
            for index, name in enumerate(names)
            if name not in known
        ]  # fmt: skip
        if problems:
            raise ConfigError(problems)

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
            if name in self._disabled:
                self._block(name, f"bundle {bundle.name}", "", str(path))
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
            if self.pm.register(plugin, name=name) is None:
                return  # blocked by name (docs/plugins.md)
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

    def blocked(self) -> list[PluginInfo]:
        """The plugins found but blocked by name: never imported, never registered."""
        return list(self._blocked.values())

    def blocked_names(self) -> set[str]:
        """Every name blocked (found or not): what the config may mention though it does not load."""
        return set(self._disabled)

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
            refusals: dict[str, RefusalCheck] = {}

            def register(kind: str, executor: Executor, *, refuses: RefusalCheck | None = None) -> None:
                found[kind] = executor if _takes_a_job(executor) else _called_with_action_and_app(executor)
                refusals.pop(kind, None)  # a channel replaced without a check takes the old one's away
                if refuses is not None:
                    refusals[kind] = refuses

            # get_hookimpls() lists in registration order (pluggy calls them in reverse):
            # walking it forwards lets a later registration replace an earlier one.
            for call in reversed(self.hook_calls("register_channels")):
                call.function(*[{"register": register}[name] for name in call.argnames])
            self._channels, self._refusals = found, refusals
        return self._channels

    def refusal_checks(self) -> dict[str, RefusalCheck]:
        """The registered channels' ``refuses`` checks, by kind: only the channels that gave one."""
        self.channels()
        return self._refusals

    def hook_calls(self, hook: str) -> list[HookCall]:
        """The implementations of ``hook`` in pluggy's call order (tryfirst/trylast honoured), one
        call each; the hook's wrappers, if any, run around each of those calls."""
        if hook not in self._calls:
            caller = getattr(self.pm.hook, hook)
            impls = caller.get_hookimpls()
            plain = [impl for impl in reversed(impls) if not (impl.wrapper or impl.hookwrapper)]
            if len(plain) == len(impls):
                self._calls[hook] = [HookCall(impl.plugin_name, impl.function, tuple(impl.argnames)) for impl in plain]
            else:
                argnames = tuple(caller.spec.argnames) if caller.spec else ()
                self._calls[hook] = [self._wrapped_call(hook, impl, plain, argnames) for impl in plain]
        return self._calls[hook]

    def _wrapped_call(
        self, hook: str, impl: pluggy.HookImpl, plain: list[pluggy.HookImpl], argnames: tuple[str, ...]
    ) -> HookCall:
        """One plugin's implementation inside the hook's wrappers: pluggy calls the hook with every
        other plugin's implementation left out, so wrappers see this plugin's call alone."""
        others = {other.plugin for other in plain if other.plugin is not impl.plugin}
        subset = self.pm.subset_hook_caller(hook, remove_plugins=others)

        def call(*args: Any) -> Any:
            return subset(**dict(zip(argnames, args, strict=True)))

        return HookCall(impl.plugin_name, call, argnames)


def _takes_a_job(executor: Executor) -> bool:
    """A channel is called ``executor(job)``; one written as ``executor(action, app)`` (before 0.2:
    two required positional arguments, or ``*args``) is still called so, for one more release."""
    try:
        parameters = inspect.signature(executor).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): called the current way
        return True
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters if p.kind in positional and p.default is inspect.Parameter.empty]
    return len(required) != 2 and not any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)


def _called_with_action_and_app(executor: Executor) -> Executor:
    @functools.wraps(executor)
    def call(job: ActionJob) -> dict[str, Any] | None:
        return executor(job.action, job.app)

    return call


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


def _names_from_env(variable: str) -> set[str]:
    value = os.environ.get(variable, "")
    return {name.strip() for name in value.split(",") if name.strip()}
