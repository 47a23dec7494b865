"""Start-up: ``--help``, ``-h`` and ``--version`` import click and the command table only (no
store, no web stack, no plugin manager); a plugin's commands load when asked for by name; ``-c``
is taken after the command as well as before it. (The time itself is measured in
docs/benchmarks.md, not here.)"""

import subprocess
import sys
import types

import click
import pytest
from click.testing import CliRunner

from aftercare import hookimpl
from aftercare.cli import cli
from aftercare.plugin_manager import PluginManager

HEAVY = ("sqlalchemy", "starlette", "pydantic", "huey", "jinja2", "rich", "requests", "aftercare.plugin_manager",
         "aftercare.config", "aftercare.app", "aftercare.store")  # fmt: skip


def modules_after(args):
    """The modules of ``aftercare ARGS`` in a fresh interpreter, as ``main()`` runs it."""
    script = (
        "import sys\n"
        f"sys.argv = ['aftercare', *{list(args)!r}]\n"
        "from aftercare.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    *output, modules = done.stdout.splitlines()
    return "\n".join(output) + done.stderr, eval(modules)  # noqa: S307 (our own print of a list of names)


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["-h"], []])
def test_version_and_help_import_neither_the_store_nor_the_web_stack_nor_the_plugins(args):
    output, modules = modules_after(args)
    assert "aftercare, version" in output or "Commands:" in output
    assert [m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY)] == []


def test_an_unknown_command_loads_the_plugins_to_look_for_it():
    output, modules = modules_after(["nosuch"])
    assert "aftercare.plugin_manager" in modules


def test_h_is_help_on_every_command():
    for args in (["-h"], ["events", "-h"], ["events", "list", "-h"], ["report", "-h"]):
        result = CliRunner().invoke(cli, args, prog_name="aftercare")
        assert result.exit_code == 0 and "Show this message and exit." in result.output, args
        assert "-h, --help" in result.output


def test_help_says_where_the_plugins_commands_are():
    listing = CliRunner().invoke(cli, ["--help"], terminal_width=200).output
    assert "aftercare plugins list" in listing and "loaded when asked for by name" in listing


def test_a_plugins_command_is_found_when_asked_for_by_name(monkeypatch):
    @click.command("hello")
    def hello():
        """Say hello."""
        click.echo("hello from a plugin")

    plugin = types.ModuleType("hello_plugin")
    plugin.register_commands = hookimpl(lambda cli: cli.add_command(hello))
    original = PluginManager.load.__func__
    with_hello = classmethod(lambda cls, **kw: original(cls, extra=[("hello", plugin)], **kw))
    monkeypatch.setattr(PluginManager, "load", with_hello)
    monkeypatch.setattr(cli, "commands", dict(cli.commands))  # what the plugin adds goes with the test
    result = CliRunner().invoke(cli, ["hello"])
    assert (result.exit_code, result.output) == (0, "hello from a plugin\n")


def test_no_such_command_is_still_a_usage_error():
    result = CliRunner().invoke(cli, ["nosuch"])
    assert result.exit_code == 2 and "No such command 'nosuch'" in result.output


def test_config_is_taken_after_the_command_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AFTERCARE_CONFIG", raising=False)
    for args in (["-c", "elsewhere.toml", "check"], ["check", "-c", "elsewhere.toml"],
                 ["check", "--config", "elsewhere.toml"], ["actions", "list", "-c", "elsewhere.toml"],
                 ["actions", "-c", "elsewhere.toml", "list"]):  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, args
        assert "elsewhere.toml: no such config file" in result.output, (args, result.output)
    result = CliRunner().invoke(cli, ["-c", "first.toml", "check", "-c", "elsewhere.toml"])
    assert "elsewhere.toml: no such config file" in result.output  # the one nearer the command wins


def test_tab_completion_of_a_command_name_imports_no_command_module():
    script = (
        "import os, sys\n"
        "os.environ.update(_AFTERCARE_COMPLETE='bash_complete', COMP_WORDS='aftercare ev', COMP_CWORD='1')\n"
        "sys.argv = ['aftercare']\n"
        "from aftercare.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    *output, modules = done.stdout.splitlines()
    assert output == ["plain,events"]
    assert [m for m in eval(modules) if m.startswith(("aftercare.cli.", *HEAVY)) and m != "aftercare.cli.common"] == []  # noqa: S307
