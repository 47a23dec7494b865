"""``--json`` on every command that prints: each one's option is checked from the command table,
and the ones added for #20 print what their lines say."""

import importlib
import json

import click
import pytest
from click.testing import CliRunner

from aftercare.cli import COMMANDS, cli

#: Commands without --json, and why.
WITHOUT_JSON = {
    "serve": "runs until stopped and logs (log_format = json)",
    "demo": "a show; what it did is in its store (`report --json` on its config)",
    "sandbox": "serves a shop until stopped",
    "preview": "prints the rendered message itself",
    **{
        f"sandbox order {move}": "prints JSON always"
        for move in ("pay", "ship", "deliver", "return", "refund", "cancel")
    },  # fmt: skip
}


def leaves(command, path):
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from leaves(sub, f"{path} {name}")
        if not command.invoke_without_command:
            return
    yield path, command


def every_command():
    for name, entry in COMMANDS.items():
        module, _, attribute = entry.target.partition(":")
        yield from leaves(getattr(importlib.import_module(module), attribute), name)


@pytest.mark.parametrize(("path", "command"), list(every_command()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_command_that_prints_takes_json(path, command):
    has_json = any("--json" in param.opts for param in command.params)
    assert has_json != (path in WITHOUT_JSON), f"{path}: {WITHOUT_JSON.get(path, 'no --json')}"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AFTERCARE_CONFIG", raising=False)
    return tmp_path


def run(*args, stdin=None):
    result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_init_migrate_and_console_users_print_json(folder):
    assert run("init", "--json") == {"wrote": "aftercare.toml", "next": "aftercare --config aftercare.toml check"}
    migrated = run("migrate", "--json")
    assert migrated["applied"] and migrated["revision"] == migrated["applied"][-1].split()[0]
    assert run("migrate", "--json") == {"revision": migrated["revision"], "applied": []}
    added = run("console", "add-user", "ana", "--shops", "demo", "--password-stdin", "--json", stdin="a long secret\n")
    assert added == {"name": "ana", "shops": ["demo"], "added": True}
    assert run("console", "remove-user", "ana", "--json") == {"removed": "ana"}
    assert run("customers", "forget", "nobody@example.com", "--json")["found"] is False
    new = run("bundle", "new", "acme", "--json")
    assert new == {"wrote": "bundles/acme", "next": "aftercare bundle check bundles/acme"}
