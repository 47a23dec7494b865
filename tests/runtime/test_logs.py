"""Logs: `log_format = "json"` writes one object a line with the fields the log call gave;
the text format is what it always was; the key is validated; --log-level reaches serve and worker."""

import json
import logging
import re

import pytest
from click.testing import CliRunner

from aftercare import logs
from aftercare.cli import cli
from aftercare.config import ConfigError, load_config
from aftercare.dispatch import Dispatcher, execute_due
from aftercare.testing import make_event, make_order

from ..core.plugins_for_tests import Mailbox, ThankYou


@pytest.fixture
def logging_as(capsys):
    """Configure the process's logging as serve does, give back what reached stderr, then undo it."""
    root = logging.getLogger()
    level = root.level

    def configure(log_format, level_name="info"):
        logs.configure(log_format, level_name)
        return lambda: capsys.readouterr().err.splitlines()

    yield configure
    for handler in [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)


def run_an_order(aftercare_app):
    app = aftercare_app(ThankYou(), Mailbox())
    Dispatcher(app).dispatch(make_event("order_paid", make_order("1001")))
    execute_due(app)
    return app


def test_json_lines_carry_shop_order_plugin_action_outcome_and_duration(aftercare_app, logging_as):
    read = logging_as("json")
    run_an_order(aftercare_app)
    lines = [json.loads(line) for line in read()]  # every line is one JSON object
    actions = [line for line in lines if line["logger"] == "aftercare.dispatch" and "action" in line]
    assert {line["action"] for line in actions} == {"send_email", "create_coupon"}
    line = next(line for line in actions if line["action"] == "send_email")
    assert line["shop"] == "test" and line["order"] == "order-1001" and line["plugin"] == "thank_you"
    assert line["outcome"] == "done" and isinstance(line["duration_ms"], float)
    assert line["level"] == "info" and line["time"].endswith("+00:00")
    assert line["message"].startswith("action shop=test order=order-1001 plugin=thank_you action=send_email outcome=")


def test_the_text_format_is_unchanged_and_shows_no_json(aftercare_app, logging_as):
    read = logging_as("text")
    run_an_order(aftercare_app)
    line = next(line for line in read() if " action=send_email " in line)
    expected = (
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO aftercare.dispatch "
        r"action shop=test order=order-1001 plugin=thank_you action=send_email outcome=done duration_ms=\d+\.\d"
    )
    assert re.fullmatch(expected, line), line


def test_the_log_level_hides_lines_below_it(aftercare_app, logging_as):
    read = logging_as("json", "warning")
    run_an_order(aftercare_app)
    assert not [line for line in read() if json.loads(line)["level"] == "info"]


def test_log_format_is_validated_and_named(tmp_path):
    path = tmp_path / "aftercare.toml"
    path.write_text('log_format = "xml"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, {})
    [problem] = excinfo.value.problems
    assert problem.startswith("log_format:") and "'text'" in problem and "'json'" in problem
    path.write_text('log_format = "json"\n')
    assert load_config(path, {}).log_format == "json"


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_take_a_log_level(command):
    assert "--log-level" in CliRunner().invoke(cli, [command, "--help"]).output
    refused = CliRunner().invoke(cli, [command, "--log-level", "chatty"])
    assert refused.exit_code == 2 and "chatty" in refused.output
