"""``aftercare customers export`` and ``customers forget`` as a merchant runs them."""

import json

import pytest
from click.testing import CliRunner

from aftercare import serialize
from aftercare.cli import cli
from aftercare.testing import make_order

from ..core.test_cli import LOCAL_PLUGIN

CONFIG = """
plugins_folder = "local"
secret_key = "privacy-cli-test-secret-key-0123456789abcdef"

[[shops]]
id = "acme"
platform = "memory"
webhook_secret = "s3cr3t-value"
production = true
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "reviews.py").write_text(LOCAL_PLUGIN)
    (tmp_path / "aftercare.toml").write_text(CONFIG)
    (tmp_path / "order.json").write_text(serialize.dumps(make_order(shop_id="acme", email="Ana@Example.com")))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_export_lists_the_records_then_forget_erases_them(project):
    code, out = run("trigger", "--shop", "acme", "--event", "delivered", "--order", "order.json", "--json")
    assert code == 0, out

    code, out = run("customers", "export", "ana@example.com", "--json")
    assert code == 0, out
    exported = json.loads(out)
    assert exported["email"] == "ana@example.com"
    assert len(exported["records"]["events"]) == 1 and len(exported["records"]["actions"]) == 2
    code, text = run("customers", "export", "ana@example.com", "--shop", "acme")
    assert code == 0 and "events (1)" in text and "actions (2)" in text and "ana@example.com" in text.lower()

    code, out = run("customers", "forget", "ANA@example.com", "--shop", "acme")
    assert code == 0, out
    assert "events: 1" in out and "actions: 2" in out and "dropped: 1" in out  # the delayed tag, dropped

    code, out = run("customers", "export", "ana@example.com", "--json")
    assert all(rows == [] for rows in json.loads(out)["records"].values())
    code, out = run("actions", "list", "--json")
    assert sorted(a["reason"] for a in json.loads(out) if a["state"] == "dropped") == ["customer erased"]


def test_forget_names_what_is_wrong_in_one_line(project):
    code, out = run("customers", "forget", "ana@example.com", "--shop", "nope")
    assert code == 2 and out.count("\n") == 1 and "--shop: no shop 'nope'" in out
    code, out = run("customers", "forget", "not-an-email")
    assert code == 2 and "is not an email address" in out
    (project / "aftercare.toml").write_text(
        CONFIG.replace('secret_key = "privacy-cli-test-secret-key-0123456789abcdef"', "")
    )
    code, out = run("customers", "forget", "ana@example.com")
    assert code == 2 and out.startswith("error: secret_key:") and out.count("\n") == 1
