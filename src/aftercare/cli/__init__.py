"""The ``aftercare`` command line: the one place that imports click.

Verbs for commands, nouns for groups. Every command that prints takes ``--json``.
User mistakes (a broken config, a missing file, a payload the adapter cannot
read) end with one line per problem on stderr and exit status 2, never a
traceback.

:data:`COMMANDS` is the table of the built-in commands: the module of each and
the line ``aftercare --help`` lists for it. A command's module (and what it
needs: the app, the store, the runtime) is imported only when the command runs
or shows its own help, so the table costs no more than click to load.

Plugins are not loaded to answer ``--help``, ``--version`` or a built-in command: a
plugin's commands (``register_commands``) are added when a command the table does not
know is asked for, so ``aftercare --help`` lists the built-in commands and says where
the plugins' are. ``-c/--config`` is taken before the command and after it alike.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from aftercare import __version__
from aftercare.cli.common import USAGE_ERROR

CONFIG_ENV = "AFTERCARE_CONFIG"
DEFAULT_CONFIG = "aftercare.toml"
#: ``-p no:NAME``: the one form of ``-p`` (pytest's way of blocking a plugin).
BLOCK_PREFIX = "no:"


@dataclass(frozen=True)
class Entry:
    """Where a built-in command lives (``module:attribute``) and its help's first paragraph."""

    target: str
    summary: str


COMMANDS: dict[str, Entry] = {
    "init": Entry("aftercare.cli.config:init", "Write a config file from the example (the embedded default)."),
    "check": Entry(
        "aftercare.cli.config:check",
        "Validate the config: shops, platform keys, plugin settings. Secrets are never shown.",
    ),
    "shopify": Entry(
        "aftercare.cli.shopify:shopify", "Shopify shops: installing the app on a store its organization does not own."
    ),
    "plugins": Entry("aftercare.cli.plugins:plugins", "Installed plugins."),
    "trigger": Entry(
        "aftercare.cli.trigger:trigger",
        "Run the hooks for ORDER as if EVENT just happened, and show the actions per plugin.",
    ),
    "actions": Entry("aftercare.cli.actions:actions", "The action outbox."),
    "events": Entry("aftercare.cli.events:events", "The event inbox."),
    "migrate": Entry(
        "aftercare.cli.migrate:migrate",
        "Bring the store's schema to this version's revision; print it. Run it once, before the services.",
    ),
    "serve": Entry(
        "aftercare.cli.serve:serve",
        "Receive webhooks, and run a worker beside them (the embedded default: one command).",
    ),
    "worker": Entry(
        "aftercare.cli.serve:worker",
        "Consume the queue only (scale-out: run several beside `serve`). SIGTERM finishes work in flight.",
    ),
    "sync": Entry(
        "aftercare.cli.serve:sync",
        "Poll shops for orders changed since their cursor; store and enqueue the events webhooks would give.",
    ),
    "preview": Entry(
        "aftercare.cli.mail:preview", "Render TEMPLATE exactly as the mail channel would for ORDER, without sending it."
    ),
    "templates": Entry("aftercare.cli.mail:templates", "Mail templates: which file each shop uses."),
    "sandbox": Entry(
        "aftercare.cli.sandbox:sandbox",
        "Run a local Shopify or WooCommerce shop that aftercare's adapters can talk to.",
    ),
    "report": Entry(
        "aftercare.cli.report:report",
        "Emails, coupons, repeat purchases, CSAT, NPS, CES and TGW per shop for a period (default: 30 days).",
    ),
    "demo": Entry(
        "aftercare.cli.demo:demo",
        "A week of two sandbox shops (Shopify and WooCommerce) through aftercare, in seconds.",
    ),
    "bundle": Entry(
        "aftercare.cli.bundles:bundle", "Client bundles: settings, templates and plugins shared by a client's shops."
    ),
    "webhooks": Entry("aftercare.cli.webhooks:webhooks", "The platform's webhook subscriptions for a shop."),
    "console": Entry(
        "aftercare.cli.console:console",
        "The web console's accounts (the pages are served by `aftercare serve` under /console).",
    ),
    "customers": Entry(
        "aftercare.cli.customers:customers", "One customer's data: erase it, or print all of it (docs/privacy.md)."
    ),
    "simulate": Entry(
        "aftercare.cli.console:simulate",
        "What-if: replay the shop's stored events of the last DAYS through a config, in a dry run.",
    ),
}

#: Old names of built-in commands, kept for one release: each runs the command it names after a
#: one-line note of the new name on stderr, and ``--help`` does not list it.
ALIASES: dict[str, str] = {
    "replay": "trigger",  # it runs the hooks for an order file; `simulate` replays stored events
}


#: ``ctx.meta`` key: this command line has called the group's ``more`` already.
MORE_LOADED = "aftercare.more_commands_loaded"


class LazyGroup(click.Group):
    """A group whose built-in commands are imported when first asked for by name.

    Listing them (``--help``, TAB completion) uses the table's summaries instead; commands
    added with ``add_command`` (a plugin's, through ``register_commands``) are ordinary ones
    and win over a built-in of the same name. ``aliases`` (old name -> new name) are hidden
    names of built-ins that say their new name. ``more`` is called once a command line, the
    first time a name is neither in the table nor added: it may add commands (the plugins').
    Every command it hands out also takes ``-c/--config`` after its name."""

    def __init__(
        self,
        *args: Any,
        lazy: dict[str, Entry],
        aliases: dict[str, str] | None = None,
        more: Callable[[click.Group, click.Context], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy
        self.aliases = aliases or {}
        self.more = more
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.aliases and cmd_name not in self.commands and cmd_name not in self.lazy:
            new_name = self.aliases[cmd_name]
            click.echo(f"note: `{ctx.command_path} {cmd_name}` is now `{ctx.command_path} {new_name}`; "
                       "the old name goes in the next release", err=True)  # fmt: skip
            return self.get_command(ctx, new_name)
        unknown = cmd_name not in self.commands and cmd_name not in self.lazy
        if unknown and self.more and not self._listing and not ctx.meta.get(MORE_LOADED):
            ctx.meta[MORE_LOADED] = True  # once per command line
            self.more(self, ctx)
        if cmd_name in self.commands or cmd_name not in self.lazy:
            command = self.commands.get(cmd_name)
            return accepting_config_after(command) if command is not None and not self._listing else command
        entry = self.lazy[cmd_name]
        if self._listing:  # a stand-in with the same first paragraph lists the same line
            return click.Command(cmd_name, help=entry.summary)
        module, _, attribute = entry.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        self.add_command(command, cmd_name)
        return accepting_config_after(command)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Command names from the table, without importing a command's module for its help line."""
        self._listing = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self._listing = False


#: The name of the ``-c/--config`` option every command takes after its own name.
CONFIG_AFTER = "config_after_command"


def accepting_config_after(command: click.Command) -> click.Command:
    """``command`` (and, for a group, its subcommands) with ``-c/--config PATH``, the same as
    before the command's name (``aftercare report -c shop.toml``); a name the command already
    uses for something else stays its own. Done once per command object."""
    if any(param.name == CONFIG_AFTER for param in command.params):
        return command
    taken = {name for param in command.params for name in (*param.opts, *param.secondary_opts)}
    names = [name for name in ("-c", "--config") if name not in taken]
    if names:
        command.params.append(
            click.Option(
                [*names, CONFIG_AFTER],
                metavar="PATH",
                expose_value=False,
                callback=_set_config,
                help="The TOML config file (the same as before the command).",
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accepting_config_after(sub)
    return command


def _set_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        ctx.find_root().ensure_object(dict)["config"] = value


def add_plugin_commands(group: click.Group, ctx: click.Context) -> None:
    """The commands plugins add through ``register_commands``, loaded only when a command the
    table does not know is asked for. A plugin that fails to load is one line, exit 2."""
    from aftercare.config import ConfigError
    from aftercare.plugin_manager import PluginManager

    params = ctx.find_root().params
    blocked = _blocked_by(tuple(params.get("blocked") or ()), params.get("config_path"))
    try:
        manager = PluginManager.load(blocked=blocked)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(USAGE_ERROR)
    manager.pm.hook.register_commands(cli=group)


#: ``-h`` as well as ``--help``, on every command (click hands these to each subcommand's context).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
PLUGIN_COMMANDS_NOTE = (
    "Plugins may add commands of their own (the register_commands hook): they are loaded when asked "
    "for by name, so they are not listed here; `aftercare plugins list` shows each plugin's hooks."
)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    aliases=ALIASES,
    more=add_plugin_commands,
    context_settings=CONTEXT_SETTINGS,
    epilog=PLUGIN_COMMANDS_NOTE,
)
@click.version_option(__version__, "--version", prog_name="aftercare")
@click.option(
    "--config",
    "-c",
    "config_path",
    default=lambda: os.environ.get(CONFIG_ENV, DEFAULT_CONFIG),
    show_default=f"${CONFIG_ENV} or {DEFAULT_CONFIG}",
    help="The TOML config file.",
)
@click.option(
    "-p",
    "blocked",
    multiple=True,
    metavar="no:NAME",
    callback=lambda ctx, param, values: blocked_names(values),
    help="Block plugin NAME: never imported nor registered (repeatable; also $AFTERCARE_DISABLE_PLUGINS"
    " and disabled_plugins in the config).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str, blocked: tuple[str, ...]) -> None:
    """aftercare: after-sales automation for Shopify and WooCommerce shops."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config_path
    ctx.obj["blocked_plugins"] = blocked


def blocked_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """The plugin names of ``-p no:NAME`` options; any other ``-p`` is a usage error."""
    names = []
    for value in values:
        name = value.removeprefix(BLOCK_PREFIX).strip()
        if not value.startswith(BLOCK_PREFIX) or not name:
            raise click.BadParameter(f"{value!r}: write -p no:NAME to block the plugin NAME", param_hint="-p")
        names.append(name)
    return tuple(names)


def _blocked_in(args: list[str]) -> tuple[str, ...]:
    """The plugins blocked by a command line (``-p no:NAME``) and its config's ``disabled_plugins``,
    read before the plugins' commands are added: their plugins must not be imported first. A
    mistake in either is left for the command to report."""
    try:
        with cli.make_context("aftercare", list(args), resilient_parsing=True) as ctx:
            blocked, config_path = tuple(ctx.params.get("blocked") or ()), ctx.params.get("config_path")
    except click.ClickException:
        return ()
    return _blocked_by(blocked, config_path)


def _blocked_by(blocked: tuple[str, ...], config_path: str | None) -> tuple[str, ...]:
    try:
        with open(config_path or DEFAULT_CONFIG, "rb") as file:
            disabled = tomllib.load(file).get("disabled_plugins", [])
        if not isinstance(disabled, list):
            disabled = []
    except (OSError, ValueError):
        disabled = []
    return blocked + tuple(name for name in disabled if isinstance(name, str))


def main() -> None:
    """Entry point: the built-in commands, and those plugins add (loaded only when asked for)."""
    cli(prog_name="aftercare")
