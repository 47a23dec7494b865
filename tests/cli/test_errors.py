"""Mistakes and failures as one line on stderr and exit status 2, never a traceback: a fresh
folder (no database: the lists never create one), an unknown shop, a retry or cancel of nothing,
an empty store to simulate (never polled), a shop that fails to sync (the others still are)."""

import json

import pytest
from click.testing import CliRunner

from aftercare import serialize
from aftercare.cli import cli
from aftercare.testing import make_order

PLATFORMS = """
from aftercare import hookimpl
from aftercare.platform import PlatformError
from aftercare.testing import MemoryAdapter


class DownAdapter(MemoryAdapter):
    platform = "down"

    def poll(self, cursor, since=None):
        raise PlatformError("connection refused by 127.0.0.1:9", transient=False)
        yield


class PolledAdapter(MemoryAdapter):
    platform = "polled"

    def poll(self, cursor, since=None):
        raise PlatformError("this shop was polled", transient=False)
        yield


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)
    register(DownAdapter)
    register(PolledAdapter)
"""

CONFIG = """
plugins_folder = "local"

[[shops]]
id = "down"
platform = "down"
webhook_secret = "s"

[[shops]]
id = "acme"
platform = "polled"
webhook_secret = "s"

[[shops]]
id = "west"
platform = "memory"
webhook_secret = "s"
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "platforms.py").write_text(PLATFORMS)
    (tmp_path / "aftercare.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AFTERCARE_CONFIG", raising=False)
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def one_error(result, *fragments):
    """Exit status 2 and exactly one line on stderr, holding each fragment."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


READERS = [
    ["report"],
    ["events", "list"],
    ["actions", "list"],
    ["events", "retry", "1"],
    ["actions", "retry", "1"],
    ["actions", "cancel", "1"],
    ["simulate", "--shop", "acme"],
    ["customers", "export", "ana@example.com"],
    ["console", "list-users"],
]


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_in_a_fresh_folder_a_reading_command_says_to_migrate_and_creates_no_database(project, args):
    one_error(run(*args), f"no database at {project / 'aftercare.db'}", "aftercare migrate")
    assert sorted(p.name for p in project.iterdir()) == ["aftercare.toml", "local"]


def test_check_in_a_fresh_folder_creates_no_database_either(project):
    tokens_kept = 'platform = "shopify"\nshop_domain = "down.myshopify.com"\nclient_id = "i"\nclient_secret = "s"'
    config = f'secret_key = "{"k" * 40}"\n' + CONFIG.replace('platform = "down"', tokens_kept)
    (project / "aftercare.toml").write_text(config)  # a shop whose token check looks for in the store
    result = run("check")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in project.iterdir()) == ["aftercare.toml", "local"]


def test_an_empty_database_file_is_a_database_without_tables(project):
    (project / "aftercare.db").write_bytes(b"")
    one_error(run("report"), "no aftercare tables", "aftercare migrate")


@pytest.mark.parametrize(
    "args",
    [["events", "list"], ["actions", "list"], ["report"], ["simulate"], ["sync"], ["check"], ["webhooks", "list"]],
    ids=" ".join,
)
def test_an_unknown_shop_is_an_error_naming_the_known_ones(project, args):
    assert run("migrate").exit_code == 0
    one_error(run(*args, "--shop", "nosuch"), "no shop 'nosuch'", "down, acme, west")


def test_a_retry_or_cancel_of_nothing_exits_2_and_says_why(project):
    assert run("migrate").exit_code == 0
    one_error(run("actions", "retry", "999"), "action 999: no such action")
    one_error(run("actions", "cancel", "998", "999"), "action 998: no such action; action 999: no such action")
    one_error(run("events", "retry", "7"), "event 7: no such event")
    result = run("actions", "retry", "999", "--json")
    assert json.loads(result.stdout) == [{"id": 999, "changed": False, "state": None, "why_not": "no such action"}]
    one_error(result, "no such action")


def test_a_retry_and_a_cancel_that_apply_exit_0_with_json(project):
    (project / "order.json").write_text(serialize.dumps(make_order(shop_id="west")))
    assert run("migrate").exit_code == 0
    local = project / "local" / "later.py"
    local.write_text("from aftercare import hookimpl\n\n\n@hookimpl\ndef on_delivered(event, ctx):\n"
                     "    ctx.later(days=7).tag_order('asked', key='asked')\n")  # fmt: skip
    assert run("trigger", "--shop", "west", "--event", "delivered", "--order", "order.json").exit_code == 0
    [action] = json.loads(run("actions", "list", "--json").stdout)
    result = run("actions", "cancel", str(action["id"]), "--json", "--reason", "test")
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["changed"] is True
    one_error(run("actions", "cancel", str(action["id"])), f"action {action['id']}: it is dropped")
    result = run("actions", "retry", str(action["id"]))
    assert (result.exit_code, result.stdout) == (0, f"action {action['id']}: due\n")


def test_simulate_on_an_empty_store_replays_nothing_and_never_polls_the_shop(project):
    assert run("migrate").exit_code == 0
    line = one_error(run("simulate", "--shop", "acme"), "acme: no events stored since", "aftercare sync --shop acme")
    assert "polled" not in line


def test_simulate_takes_the_config_to_try_as_proposed_and_the_old_name_for_a_release(project):
    assert run("migrate").exit_code == 0
    (project / "other.toml").write_text(CONFIG.replace('id = "acme"', 'id = "east"'))
    one_error(run("simulate", "--shop", "acme", "--proposed", "other.toml"), "other.toml: ", "no shop 'acme'")
    result = run("simulate", "--shop", "acme", "--config", "other.toml")
    assert "note: `simulate --config` is now `simulate --proposed`" in result.stderr
    assert "no shop 'acme'" in result.stderr and result.exit_code == 2
    one_error(run("simulate", "--shop", "acme", "-c", "nope.toml"), "nope.toml: no such config file")


def test_sync_goes_on_past_a_failing_shop_and_names_it_at_the_end(project):
    result = run("sync", "--shop", "down", "--shop", "west")
    assert result.exit_code == 2
    assert "west: 0 order(s), 0 event(s), 0 new" in result.stdout
    errors = result.stderr.strip().splitlines()
    assert errors == [
        "error: down: connection refused by 127.0.0.1:9 (stored before it failed: 0 order(s), 0 event(s), 0 new)",
        "error: sync failed for 1 of 2 shop(s): down",
    ]
    result = run("sync", "--json")
    rows = {row["shop_id"]: row for row in json.loads(result.stdout)}
    assert (rows["down"]["error"], rows["west"]["error"]) == ("connection refused by 127.0.0.1:9", "")
    assert rows["acme"]["error"] == "this shop was polled" and result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == "error: sync failed for 2 of 3 shop(s): down, acme"


@pytest.mark.parametrize(
    ("database", "fragment"),
    [
        ("mysql://ana:hunter2@127.0.0.1/shop", "database: 'mysql://ana:***@127.0.0.1/shop' is not a SQLite or"),
        ("nonsense", "database: 'nonsense' is not a SQLite or PostgreSQL"),
        ("postgresql+nosuchdriver://127.0.0.1/x", "needs the nosuchdriver module"),
    ],
)
def test_a_database_aftercare_cannot_use_is_one_line(project, database, fragment):
    (project / "aftercare.toml").write_text(f'database = "{database}"\n' + CONFIG)
    line = one_error(run("report"), fragment)
    assert "hunter2" not in line


def test_a_queue_aftercare_cannot_use_is_one_line_naming_the_key(project):
    (project / "aftercare.toml").write_text('queue = "amqp://ana:hunter2@127.0.0.1/x"\n' + CONFIG)
    line = one_error(run("sync"), "queue: 'amqp://ana:***@127.0.0.1/x' is not a queue aftercare runs on")
    assert "hunter2" not in line


def test_a_database_that_cannot_be_reached_is_one_line(project):
    (project / "aftercare.toml").write_text('database = "postgresql+psycopg://ana:hunter2@127.0.0.1:9/x"\n' + CONFIG)
    for args in (["report"], ["events", "list"], ["sync"]):
        line = one_error(run(*args), "database: cannot open postgresql+psycopg://ana:***@127.0.0.1:9/x")
        assert "hunter2" not in line
