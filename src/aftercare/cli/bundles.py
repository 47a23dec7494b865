"""``aftercare bundle new|check``: a client's bundle, scaffolded and checked without credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from aftercare.app import App, bundle_plugin_settings
from aftercare.bundles import is_bundle_name, load_bundle, write_bundle
from aftercare.cli.common import UserError, blocked_plugins, reports_user_errors
from aftercare.clock import SystemClock
from aftercare.config import Config, ConfigError
from aftercare.mail.templates import Root, check_bundle_templates, template_names
from aftercare.plugin_manager import PluginManager


@click.group()
def bundle() -> None:
    """Client bundles: settings, templates and plugins shared by a client's shops."""


@bundle.command("new")
@click.argument("name")
@click.option("--dir", "parent", default="bundles", show_default=True, help="Folder to create it in.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_user_errors
def bundle_new(name: str, parent: str, as_json: bool) -> None:
    """Scaffold bundles/NAME: bundle.toml with commented examples, templates/en/, plugins/."""
    if not is_bundle_name(name):
        raise UserError(f"{name!r}: a bundle name must be lowercase letters, digits, '-' or '_'")
    folder = Path(parent) / name
    if folder.exists():
        raise UserError(f"{folder} exists")
    write_bundle(folder, name)
    if as_json:
        click.echo(json.dumps({"wrote": str(folder), "next": f"aftercare bundle check {folder}"}, indent=2))
        return
    click.echo(f'wrote {folder}; use it with bundle = "{folder}" in a [[shops]] table, then:')
    click.echo(f"  aftercare bundle check {folder}")


@bundle.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@reports_user_errors
def bundle_check(ctx: click.Context, path: Path, as_json: bool) -> None:
    """Validate a bundle without credentials: settings, templates, plugins. Exit 2 on problems."""
    report = check_bundle(path, blocked=blocked_plugins(ctx))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        if report["problems"]:
            raise SystemExit(2)
        return
    if report["problems"]:
        raise ConfigError(report["problems"])
    click.echo(f"{path}: OK ({report['description'] or report['name']})")
    click.echo(f"  plugins enabled: {', '.join(report['enabled']) or '-'}")
    click.echo(f"  local plugins: {', '.join(report['local_plugins']) or '-'}")
    click.echo(f"  templates: {', '.join(report['templates']) or '-'}")


def check_bundle(path: Path, blocked: tuple[str, ...] = ()) -> dict[str, Any]:
    """Everything ``bundle check`` says: the bundle's plugins' settings as a shop of it would get
    them (plugin defaults, then the bundle), its templates rendered with the sample order, its
    local plugins imported. No shop, no credentials, no network."""
    report: dict[str, Any] = {"name": "", "description": "", "problems": [], "enabled": [], "local_plugins": []}
    report["templates"] = []
    try:
        loaded = load_bundle(path)
        manager = PluginManager.load(blocked=blocked)
        manager.load_bundle(loaded)
    except ConfigError as exc:
        report["problems"] = exc.problems
        return report
    report.update(name=loaded.name, description=loaded.description, local_plugins=sorted(loaded.local))
    try:
        settings = bundle_plugin_settings(manager, loaded)
    except ConfigError as exc:
        report["problems"].extend(exc.problems)
        settings = {}
    report["enabled"] = sorted(name for name, s in settings.items() if s.enabled)
    app = App(Config(database="sqlite:///:memory:", base_dir=path), clock=SystemClock(), plugins=manager)
    try:
        report["problems"].extend(check_bundle_templates(app, loaded))
    finally:
        app.close()
    report["templates"] = sorted(template_names([Root(loaded.templates, f"bundle {loaded.name}")]))
    return report
