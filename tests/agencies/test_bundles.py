"""Bundles: precedence of settings, errors naming the file and key, local plugins only for
their shops, template lookup order, and the `bundle new` / `bundle check` commands."""

import pytest
from click.testing import CliRunner

from aftercare.cli import cli
from aftercare.config import ConfigError
from aftercare.mail.templates import template_roots
from aftercare.testing import make_event, make_order, order_for

from .conftest import write_bundle

SHOPS = """
[[shops]]
id = "plain"
platform = "memory"
webhook_secret = "s-plain"
production = true

[[shops]]
id = "acme-one"
platform = "memory"
webhook_secret = "s-one"
production = true
bundle = "bundles/acme"

[[shops]]
id = "acme-two"
platform = "memory"
webhook_secret = "s-two"
production = true
bundle = "bundles/acme"
{acme_two_extra}

[[shops]]
id = "globex"
platform = "memory"
webhook_secret = "s-globex"
production = true
bundle = "bundles/globex"
"""


def deployment(tmp_path, head="", acme="", acme_two_extra="", globex=""):
    write_bundle(tmp_path, "acme", acme)
    write_bundle(tmp_path, "globex", globex)
    path = tmp_path / "aftercare.toml"
    path.write_text(head + SHOPS.format(acme_two_extra=acme_two_extra))
    return path


def test_precedence_is_default_then_deployment_then_bundle_then_shop(tmp_path, apps):
    path = deployment(
        tmp_path,
        head="[plugins.coupon]\nenabled = true\nvalue = 11\nvalid_days = 61\n",
        acme="[plugins.coupon]\nvalue = 12\nprefix = 'ACME'\n",
        acme_two_extra="[shops.plugins.coupon]\nvalue = 13\n",
    )
    app = apps(path)
    coupon = {shop_id: shop.plugin_settings["coupon"] for shop_id, shop in app.shops.items()}

    assert coupon["plain"].value == 11  # deployment over the plugin's default (10)
    assert coupon["globex"].value == 11 and coupon["globex"].prefix == ""  # its bundle says nothing
    assert coupon["acme-one"].value == 12  # bundle over deployment
    assert coupon["acme-two"].value == 13  # shop over bundle
    assert {c.valid_days for c in coupon.values()} == {61}  # a key only the deployment sets reaches all
    assert coupon["acme-one"].prefix == coupon["acme-two"].prefix == "ACME"
    assert coupon["acme-one"].minimum_order == 0  # the plugin's default under everything


def test_a_bundle_may_turn_a_plugin_off_that_the_deployment_turned_on(tmp_path, apps):
    path = deployment(tmp_path, head="[plugins.coupon]\nenabled = true\n", acme="[plugins.coupon]\nenabled = false\n")
    app = apps(path)
    assert "coupon" in app.shop("plain").enabled_plugins()
    assert "coupon" not in app.shop("acme-one").enabled_plugins()


def test_bundle_errors_name_the_file_and_key(tmp_path, apps):
    path = deployment(tmp_path, acme="[plugins.coupon]\nvalue = 0\n[plugins.nope]\nx = 1\n[mail]\nfrequency_cap = -1\n")
    with pytest.raises(ConfigError) as excinfo:
        apps(path)
    assert excinfo.value.problems == [
        "bundles/acme/bundle.toml: mail.frequency_cap: input should be greater than or equal to 0 (got -1)"
    ]

    (tmp_path / "bundles" / "acme" / "bundle.toml").write_text("[plugins.coupon]\nvalue = 0\n[plugins.nope]\nx = 1\n")
    with pytest.raises(ConfigError) as excinfo:
        apps(path)
    problems = excinfo.value.problems
    assert "bundles/acme/bundle.toml: plugins.coupon.value: input should be greater than 0 (got 0)" in problems
    assert any(p.startswith("bundles/acme/bundle.toml: plugins.nope: no such plugin") for p in problems)


def test_infrastructure_and_missing_bundles_are_refused(tmp_path, apps):
    path = deployment(tmp_path, acme="[mail.smtp]\nhost = 'relay.example'\n")
    with pytest.raises(ConfigError) as excinfo:
        apps(path)
    assert excinfo.value.problems[0].startswith("bundles/acme/bundle.toml: mail: smtp cannot be set in a bundle")

    path.write_text(path.read_text().replace('bundle = "bundles/globex"', 'bundle = "bundles/missing"'))
    (tmp_path / "bundles" / "acme" / "bundle.toml").write_text("")
    with pytest.raises(ConfigError) as excinfo:
        apps(path)
    assert (
        excinfo.value.problems[0].startswith("shops[3].bundle: ")
        and "no such bundle folder" in excinfo.value.problems[0]
    )


def test_a_bundle_plugin_runs_only_for_the_shops_of_its_bundle(tmp_path, apps):
    path = deployment(
        tmp_path,
        acme="[plugins.thanks]\ngreeting = 'Gracias'\n",
        acme_two_extra="[shops.plugins.thanks]\ngreeting = 'Danke'\n",
    )
    app = apps(path)
    from aftercare.dispatch import Dispatcher

    requests = {}
    for shop_id in app.shops:
        order = order_for(make_order("1001"), shop_id)
        requests[shop_id] = Dispatcher(app).dispatch(make_event("order_paid", order)).requests

    assert [r.plugin for r in requests["plain"]] == []  # no bundle, no client plugin
    assert [r.plugin for r in requests["acme-one"]] == ["acme.thanks"]
    assert [r.plugin for r in requests["globex"]] == ["globex.thanks"]  # same file name, its own plugin
    assert requests["acme-one"][0].payload["context"] == {"greeting": "Gracias"}
    assert requests["acme-two"][0].payload["context"] == {"greeting": "Danke"}
    assert requests["globex"][0].payload["context"] == {"greeting": "Thanks"}
    assert app.plugins.info("acme.thanks").source == "bundle acme"


def test_a_bundle_plugin_may_not_register_adapters_channels_or_commands(tmp_path, apps):
    plugin = "from aftercare import hookimpl\n\n@hookimpl\ndef register_channels(register):\n    pass\n"
    path = deployment(tmp_path)
    (tmp_path / "bundles" / "globex" / "plugins" / "thanks.py").write_text(plugin)
    with pytest.raises(ConfigError, match="bundles/globex/plugins/thanks.py: a bundle plugin may implement only"):
        apps(path)


def test_templates_are_looked_up_shop_bundle_deployment_plugin_builtin(tmp_path, apps):
    for folder in ("shop-templates", "house"):
        (tmp_path / folder / "en").mkdir(parents=True)
    path = deployment(
        tmp_path,
        head='[mail]\ntemplates_dir = "house"\n',
        acme_two_extra='[shops.mail]\ntemplates_dir = "shop-templates"\n',
    )
    app = apps(path)
    sources = [root.source for root in template_roots(app, "acme-two", "coupon")]
    assert sources == ["shop", "bundle acme", "deployment", "plugin coupon", "built-in"]
    assert [root.source for root in template_roots(app, "plain")] == ["deployment", "built-in"]


def test_bundle_mail_sits_between_the_deployment_and_the_shop(tmp_path, apps):
    path = deployment(
        tmp_path,
        head='[mail]\nsender = "Agency <a@agency.example>"\nfrequency_cap = 5\n',
        acme='[mail]\nsender = "Acme <hi@acme.example>"\nfrequency_cap = 2\n',
        acme_two_extra="[shops.mail]\nfrequency_cap = 1\n",
    )
    app = apps(path)

    settings = app.mail_settings("plain")
    assert (settings.sender, settings.frequency_cap) == ("Agency <a@agency.example>", 5)
    settings = app.mail_settings("acme-one")
    assert (settings.sender, settings.frequency_cap) == ("Acme <hi@acme.example>", 2)
    settings = app.mail_settings("acme-two")
    assert (settings.sender, settings.frequency_cap) == ("Acme <hi@acme.example>", 1)


def run(*args, cwd):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_bundle_new_scaffolds_a_bundle_that_checks_clean(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = run("bundle", "new", "acme", cwd=tmp_path)
    assert code == 0, out
    folder = tmp_path / "bundles" / "acme"
    assert (
        (folder / "bundle.toml").is_file() and (folder / "templates" / "en").is_dir() and (folder / "plugins").is_dir()
    )
    assert "# [plugins.coupon]" in (folder / "bundle.toml").read_text()
    code, out = run("bundle", "check", "bundles/acme", cwd=tmp_path)
    assert code == 0 and "bundles/acme: OK" in out
    code, out = run("bundle", "new", "acme", cwd=tmp_path)
    assert code == 2 and "exists" in out


def test_bundle_check_exits_2_naming_file_and_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = write_bundle(tmp_path, "acme", "[plugins.coupon]\nenabled = true\nvalue = 0\n")
    (folder / "templates" / "en" / "thanks.html").write_text("<p>{{ greeting }</p>")
    code, out = run("bundle", "check", "bundles/acme", cwd=tmp_path)
    assert code == 2
    lines = out.splitlines()
    assert "error: bundles/acme/bundle.toml: plugins.coupon.value: input should be greater than 0 (got 0)" in lines
    assert any(line.startswith("error: bundles/acme/templates/en/thanks.html:1: syntax error") for line in lines)


def test_bundle_check_reports_a_local_plugin_that_does_not_import(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_bundle(tmp_path, "acme", plugin="def broken(:\n")
    code, out = run("bundle", "check", "bundles/acme", cwd=tmp_path)
    assert code == 2 and "bundles/acme/plugins/thanks.py line 1: SyntaxError" in out


def test_bundle_check_json_lists_what_the_bundle_holds(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    write_bundle(tmp_path, "acme", "[plugins.coupon]\nenabled = true\n")
    code, out = run("bundle", "check", "bundles/acme", "--json", cwd=tmp_path)
    report = json.loads(out)
    assert code == 0 and report["problems"] == []
    assert report["enabled"] == ["acme.thanks", "coupon"] and report["templates"] == ["thanks"]
