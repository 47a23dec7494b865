"""The CLI as a merchant meets it: init, check, plugins list, trigger; errors exit 2 in one line."""

import json

import pytest
from click.testing import CliRunner

from aftercare import serialize
from aftercare.cli import cli
from aftercare.testing import make_event, make_order

LOCAL_PLUGIN = """
from aftercare import hookimpl
from aftercare.testing import MemoryAdapter


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)


@hookimpl
def on_delivered(event, ctx):
    ctx.later(days=7).tag_order("review-asked", key="review")
    ctx.add_order_note("delivered: " + event.shipment.tracking_number)

@hookimpl
def on_shipment_exception(event, ctx):
    ctx.add_order_note(f"{event.exception.problem.value}: " + event.shipment.tracking_number, key="problem")
"""

CONFIG = """
plugins_folder = "local"

[[shops]]
id = "acme"
platform = "memory"
webhook_secret = "${ACME_SECRET}"
production = true
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "reviews.py").write_text(LOCAL_PLUGIN)
    (tmp_path / "aftercare.toml").write_text(CONFIG)
    (tmp_path / "order.json").write_text(serialize.dumps(make_order(shop_id="acme")))
    monkeypatch.setenv("ACME_SECRET", "s3cr3t-value")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output, result.stderr if hasattr(result, "stderr") else ""


def test_init_writes_the_example_and_check_accepts_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("init")
    assert code == 0 and (tmp_path / "aftercare.toml").exists()
    code, out, _ = run("check")
    assert code == 0, out
    assert "demo" in out and "shopify" in out
    assert "demo-secret-not-for-production" not in out and "demo-token" not in out
    code, _, err = run("init")
    assert code == 2 and "exists; use --force" in err


def test_broken_config_exits_2_with_one_line_naming_the_key(project):
    (project / "aftercare.toml").write_text(CONFIG.replace('webhook_secret = "${ACME_SECRET}"\n', ""))
    code, out, err = run("check")
    assert code == 2
    assert err.strip() == "error: aftercare.toml: shops[0].webhook_secret: required"
    assert "Traceback" not in out + err


def test_missing_config_file_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run("--config", "nope.toml", "check")
    assert code == 2 and "aftercare init" in err


def test_check_never_prints_secrets(project):
    code, out, _ = run("check")
    assert code == 0 and "s3cr3t-value" not in out


def test_plugins_list_json_tells_source_hooks_and_shops(project):
    code, out, _ = run("plugins", "list", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["reviews"]["source"] == "local"
    assert rows["reviews"]["hooks"] == ["on_delivered", "on_shipment_exception", "register_adapters"]
    assert rows["reviews"]["enabled_for"] == ["acme"]
    assert rows["shopify"]["source"] == "built-in" and rows["shopify"]["hooks"] == ["register_adapters"]


def test_trigger_dry_run_shows_actions_and_stores_nothing(project):
    code, out, _ = run("trigger", "--shop", "acme", "--event", "delivered", "--order", "order.json", "--dry-run",
                       "--json")  # fmt: skip
    assert code == 0, out
    report = json.loads(out)
    assert [(a["plugin"], a["action"], a["outcome"]) for a in report["actions"]] == [
        ("reviews", "tag_order", "would be recorded (dry run)"),
        ("reviews", "add_order_note", "would be recorded (dry run)"),
    ]
    code, _, err = run("actions", "list", "--json")
    assert code == 2 and "no database at" in err  # not even an empty database file was made


def test_trigger_twice_executes_once(project):
    args = ("trigger", "--shop", "acme", "--event", "delivered", "--order", "order.json", "--json")
    first = json.loads(run(*args)[1])
    second = json.loads(run(*args)[1])
    outcomes = [(a["action"], a["outcome"]) for a in first["actions"]]
    assert outcomes == [("tag_order", "due"), ("add_order_note", "done")]
    assert [a["outcome"] for a in second["actions"]] == ["already recorded (due)", "already recorded (done)"]
    listed = json.loads(run("actions", "list", "--json")[1])
    assert len(listed) == 2


def test_trigger_a_shipment_exception_with_the_carriers_problem(project):
    args = ("trigger", "--shop", "acme", "--event", "shipment_exception", "--order", "order.json", "--json")
    code, out, _ = run(*args, "--problem", "ready_for_pickup")
    assert code == 0, out
    (action,) = json.loads(out)["actions"]
    assert (action["action"], action["outcome"]) == ("add_order_note", "done")
    (note,) = json.loads(run("actions", "list", "--json")[1])
    assert note["payload"]["text"] == "ready_for_pickup: JJD000390007"


def test_trigger_of_unreadable_order_exits_2(project):
    (project / "bad.json").write_text("{not json")
    code, _, err = run("trigger", "--shop", "acme", "--event", "order_paid", "--order", "bad.json")
    assert code == 2 and err.startswith("error: bad.json: not JSON")
    code, _, err = run("trigger", "--shop", "nope", "--event", "order_paid", "--order", "order.json")
    assert code == 2 and "no shop 'nope' (known: acme)" in err


def test_replay_still_runs_trigger_for_one_release_and_names_it_on_stderr(project):
    args = ["--shop", "acme", "--event", "delivered", "--order", "order.json", "--dry-run", "--json"]
    new = CliRunner().invoke(cli, ["trigger", *args], prog_name="aftercare", catch_exceptions=False)
    old = CliRunner().invoke(cli, ["replay", *args], prog_name="aftercare", catch_exceptions=False)
    assert new.exit_code == old.exit_code == 0, old.output
    assert [(a["plugin"], a["action"], a["outcome"]) for a in json.loads(old.stdout)["actions"]] == [
        (a["plugin"], a["action"], a["outcome"]) for a in json.loads(new.stdout)["actions"]
    ]
    assert new.stderr == ""
    assert old.stderr == "note: `aftercare replay` is now `aftercare trigger`; the old name goes in the next release\n"
    code, _, err = run("replay", "--shop", "nope", "--event", "order_paid", "--order", "order.json")
    assert code == 2 and "no shop 'nope' (known: acme)" in err


def test_replay_is_hidden_from_the_help_and_trigger_listed():
    listing = CliRunner().invoke(cli, ["--help"], prog_name="aftercare", terminal_width=200).output
    assert "  trigger " in listing and "  replay " not in listing


def test_events_list_shows_why_an_event_failed_and_events_retry_makes_it_pending(project):
    from aftercare.app import App

    app = App.from_file(project / "aftercare.toml")
    app.store.upgrade()
    with app.store.transaction() as conn:
        event = make_event("order_paid", make_order("5", shop_id="acme", partial=True))
        [(event_id, _)] = app.store.add_events(conn, [event])
    app.store.claim_events([event_id])
    app.store.event_dispatch_failed(event_id, "attempt 8: could not re-read order order-5: HTTP 503", None)
    app.close()
    code, out, _ = run("events", "list", "--json")
    [row] = json.loads(out)
    assert code == 0 and row["state"] == "failed" and row["attempts"] == 1
    assert row["reason"] == "attempt 8: could not re-read order order-5: HTTP 503"
    assert run("events", "retry", str(event_id))[1] == f"event {event_id}: pending again\n"
    assert json.loads(run("events", "list", "--json")[1])[0]["state"] == "pending"
    code, _, err = run("events", "retry", str(event_id))
    assert code == 2 and f"event {event_id}: it is pending, not failed" in err
