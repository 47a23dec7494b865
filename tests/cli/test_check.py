"""``aftercare check`` (and every command that loads the config, serve and worker too) refuses a
locale no mail is written in and a production shop that would mail over SMTP with no sender,
naming the TOML key; ``check --json`` prints what the table shows."""

import json

import pytest
from click.testing import CliRunner

from aftercare.cli import cli
from aftercare.config import ConfigError, load_config

SHOP = """
[mail]
transport = "smtp"

[[shops]]
id = "acme"
platform = "woocommerce"
webhook_secret = "s"
url = "https://acme.example"
consumer_key = "ck_x"
consumer_secret = "cs_x"
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AFTERCARE_CONFIG", raising=False)
    return tmp_path


def write(folder, extra="", top=""):
    path = folder / "aftercare.toml"
    path.write_text(top + SHOP + extra)
    return path


@pytest.mark.parametrize("locale", ["espanol", "fr", "ES", ""])
def test_a_locale_without_mail_templates_is_refused_naming_the_key(folder, locale):
    write(folder, f'locale = "{locale}"\n')
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 2
    expected = "error: aftercare.toml: shops[0].locale: no mail templates in this locale: use bg, en, es"
    assert result.stderr.startswith(expected)


@pytest.mark.parametrize("locale", ["en", "es", "bg", "es-MX", "bg_BG"])
def test_the_template_locales_and_their_regional_tags_are_accepted(folder, locale):
    write(folder, f'locale = "{locale}"\n')
    assert CliRunner().invoke(cli, ["check"]).exit_code == 0


def test_a_production_shop_without_a_sender_is_refused_by_check_and_by_every_loader(folder):
    path = write(folder, "production = true\n")
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: aftercare.toml: shops[0].sender: required for a production shop that mails over SMTP; "
        "set it here, in [shops.mail] or in [mail] (or production = false)"
    ]
    with pytest.raises(ConfigError, match=r"shops\[0\].sender: required"):
        load_config(path)  # what serve and worker load
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 2


@pytest.mark.parametrize(
    ("extra", "top"),
    [
        ('production = true\nsender = "Acme <hi@acme.example>"\n', ""),
        ('production = true\n[shops.mail]\nsender = "Acme <hi@acme.example>"\n', ""),
        ("production = true\n", ""),  # with [mail] sender below
        ("production = false\n", ""),
        ("production = true\n", "dry_run = true\n"),
    ],
)
def test_a_sender_anywhere_or_no_production_mail_passes(folder, extra, top):
    path = write(folder, extra, top)
    if extra == "production = true\n" and not top:
        path.write_text(path.read_text().replace('transport = "smtp"', 'transport = "smtp"\nsender = "a@acme.example"'))
    assert CliRunner().invoke(cli, ["check"]).exit_code == 0


def test_check_json_prints_each_shop(folder):
    write(folder, 'locale = "es"\n')
    result = CliRunner().invoke(cli, ["check", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["config"] == "aftercare.toml"
    [shop] = report["shops"]
    assert (shop["id"], shop["platform"], shop["locale"], shop["production"]) == ("acme", "woocommerce", "es", False)
    assert "cs_x" not in result.stdout and "ck_x" not in result.stdout


def test_a_bundled_production_shop_may_take_its_sender_from_the_bundle_and_needs_one(folder):
    assert CliRunner().invoke(cli, ["bundle", "new", "acme"]).exit_code == 0
    write(folder, 'production = true\nbundle = "bundles/acme"\n')
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: aftercare.toml: shops[0].sender: required for a production shop that mails over SMTP; "
        "set it here, in [shops.mail] or in [mail] (or production = false) (or in the bundle's [mail])"
    ]
    assert CliRunner().invoke(cli, ["worker"]).exit_code == 2
    bundle = folder / "bundles" / "acme" / "bundle.toml"
    bundle.write_text(bundle.read_text() + '\n[mail]\nsender = "Acme <hi@acme.example>"\n')
    assert CliRunner().invoke(cli, ["check"]).exit_code == 0
