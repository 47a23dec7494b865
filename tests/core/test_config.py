"""Config: TOML paths in every error, env secrets, layered plugin settings."""

import pytest

from aftercare.app import App
from aftercare.config import ConfigError, load_config
from aftercare.plugin_manager import PluginManager
from aftercare.testing import memory_platform

from .plugins_for_tests import ThankYou

SHOP = """
[[shops]]
id = "acme"
platform = "memory"
webhook_secret = "${ACME_SECRET}"
"""


def write(tmp_path, text):
    path = tmp_path / "aftercare.toml"
    path.write_text(text, encoding="utf-8")
    return path


def app_from(path, environ=None):
    manager = PluginManager.load(entry_points=False, extra=[("memory", memory_platform), ("thank_you", ThankYou())])
    return App(load_config(path, environ or {"ACME_SECRET": "s3cr3t"}), plugins=manager)


def problems(excinfo):
    return excinfo.value.problems


def test_missing_key_names_its_path(tmp_path):
    path = write(tmp_path, SHOP + '\n[[shops]]\nid = "second"\nplatform = "memory"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_config(path, {"ACME_SECRET": "x"})
    assert problems(excinfo) == ["shops[1].webhook_secret: required"]
    assert str(excinfo.value) == f"{path}: shops[1].webhook_secret: required"


def test_unset_environment_variable_is_named(tmp_path):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, SHOP), {})
    assert problems(excinfo) == ["shops[0].webhook_secret: environment variable ACME_SECRET is not set"]


def test_secret_comes_from_the_environment_and_never_prints(tmp_path):
    config = load_config(write(tmp_path, SHOP), {"ACME_SECRET": "s3cr3t"})
    shop = config.shops[0]
    assert shop.webhook_secret.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in str(shop)


def test_typo_in_a_key_is_an_error_not_silence(tmp_path):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, 'databse = "sqlite:///x.db"\n' + SHOP), {"ACME_SECRET": "x"})
    assert problems(excinfo) == ["databse: unknown key (check its spelling)"]


def test_bad_toml_says_where(tmp_path):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, "[[shops]\nid = 1\n"))
    assert "not valid TOML" in problems(excinfo)[0] and "line 1" in problems(excinfo)[0]


def test_plugin_setting_errors_name_the_layer_that_set_them(tmp_path):
    text = SHOP + '[shops.plugins.thank_you]\npercent = "many"\n\n[plugins.thank_you]\npercent = 5\ncolour = "red"\n'
    with pytest.raises(ConfigError) as excinfo:
        app_from(write(tmp_path, text))
    assert problems(excinfo) == [
        "plugins.thank_you.colour: unknown key (check its spelling)",
        "shops[0].plugins.thank_you.percent: input should be a valid integer, unable to parse string as an "
        "integer (got 'many')",
    ]


def test_unknown_plugin_and_platform_are_reported(tmp_path):
    text = SHOP.replace('"memory"', '"magento"') + "[plugins.cupon]\npercent = 5\n"
    with pytest.raises(ConfigError) as excinfo:
        app_from(write(tmp_path, text))
    assert problems(excinfo) == [
        "plugins.cupon: no such plugin is installed (installed: thank_you)",
        "shops[0].platform: unknown platform 'magento' (installed: memory)",
    ]


def test_bad_shop_id_and_timezone(tmp_path):
    text = SHOP.replace('"acme"', '"Acme Shop"') + 'timezone = "Mars/Olympus"\n'
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, text), {"ACME_SECRET": "x"})
    assert problems(excinfo) == [
        "shops[0].id: must be lowercase letters, digits, '-' or '_' (it appears in webhook URLs) (got 'Acme Shop')",
        "shops[0].timezone: unknown time zone 'Mars/Olympus' (use an IANA name like 'Europe/Madrid') "
        "(got 'Mars/Olympus')",
    ]


def test_relative_database_path_is_beside_the_config(tmp_path):
    config = load_config(write(tmp_path, SHOP), {"ACME_SECRET": "x"})
    assert config.database_url == f"sqlite:///{tmp_path / 'aftercare.db'}"


def test_valid_config_builds_shops_with_their_settings(tmp_path):
    app = app_from(write(tmp_path, SHOP + "[shops.plugins.thank_you]\npercent = 25\n"))
    assert app.shop("acme").plugin_settings["thank_you"].percent == 25
    assert app.shop("acme").enabled_plugins() == ["thank_you"]
