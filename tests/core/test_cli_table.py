"""The command table: ``aftercare --help`` lists every built-in command from it without importing
the command's module, and says exactly what it said with every command loaded."""

import importlib
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from aftercare.cli import COMMANDS, LazyGroup, cli


def loaded(name):
    module, _, attribute = COMMANDS[name].target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_entry_names_its_command_and_the_first_paragraph_of_its_help(name):
    command = loaded(name)
    assert isinstance(command, click.Command) and command.name == name
    assert not command.hidden and not command.deprecated and command.short_help is None
    first_paragraph = command.help.split("\n\n")[0]
    assert " ".join(first_paragraph.split()) == COMMANDS[name].summary


@pytest.mark.parametrize("width", [40, 80, 200])
def test_help_from_the_table_is_the_help_with_every_command_loaded(width):
    everything = click.Group(
        "cli", commands={name: loaded(name) for name in COMMANDS}, params=cli.params, help=cli.help
    )
    lazy = LazyGroup("cli", lazy=COMMANDS, params=cli.params, help=cli.help)
    outputs = [
        CliRunner().invoke(group, ["--help"], prog_name="aftercare", terminal_width=width).output
        for group in (everything, lazy)
    ]
    assert outputs[0] == outputs[1]
    assert all(f"  {name} " in outputs[1] for name in COMMANDS)


def test_a_command_added_by_a_plugin_is_listed_and_wins_over_a_built_in_of_its_name():
    group = LazyGroup("cli", lazy=COMMANDS)

    @click.command("check")
    def own_check():
        """The plugin's own check."""
        click.echo("plugin check ran")

    @click.command("hello")
    def hello():
        """Say hello."""
        click.echo("hello")

    group.add_command(own_check)
    group.add_command(hello)
    listing = CliRunner().invoke(group, ["--help"], terminal_width=200).output
    assert "The plugin's own check." in listing and "Say hello." in listing and "The event inbox." in listing
    assert CliRunner().invoke(group, ["check"]).output == "plugin check ran\n"
    assert CliRunner().invoke(group, ["hello"]).output == "hello\n"


def test_help_loads_click_and_the_table_only():
    script = (
        "import sys\n"
        "from aftercare.cli import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='aftercare')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('aftercare', 'sqlalchemy', 'rich', 'pydantic'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "Commands:" in done.stdout
    assert done.stdout.splitlines()[-1] == "['aftercare', 'aftercare.cli', 'aftercare.cli.common']"


def test_a_command_module_is_imported_when_its_help_is_shown():
    script = (
        "import sys\n"
        "from aftercare.cli import cli\n"
        "try:\n"
        "    cli(['events', '--help'], prog_name='aftercare')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('aftercare.cli.events' in sys.modules, 'aftercare.cli.actions' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "retry" in done.stdout and done.stdout.splitlines()[-1] == "True False"
