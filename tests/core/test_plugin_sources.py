"""Where plugins come from: entry points of another distribution, a local folder, built-ins."""

import subprocess
import sys
import textwrap

import pytest

from aftercare.config import ConfigError
from aftercare.dispatch import Dispatcher
from aftercare.plugin_manager import PluginManager
from aftercare.testing import make_event, make_order

PLUGIN_SOURCE = """
from aftercare import hookimpl
from aftercare.settings import PluginSettings

__version__ = "1.2.3"


class Settings(PluginSettings):
    tag: str = "{tag}"


@hookimpl
def on_order_paid(event, ctx):
    ctx.tag_order(ctx.settings.tag)
"""


@pytest.fixture(scope="module")
def installed_distribution(tmp_path_factory):
    """A separate small distribution, built and installed with pip into its own folder."""
    root = tmp_path_factory.mktemp("dist")
    project = root / "aftercare-vip"
    (project / "aftercare_vip").mkdir(parents=True)
    (project / "aftercare_vip" / "__init__.py").write_text(PLUGIN_SOURCE.format(tag="vip"))
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=69"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "aftercare-vip"
            version = "1.2.3"

            [project.entry-points.aftercare]
            vip = "aftercare_vip"
            """
        )
    )
    target = root / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(project)],
        check=True,
    )  # fmt: skip
    sys.path.insert(0, str(target))
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("aftercare_vip", None)


@pytest.mark.slow
def test_entry_point_plugin_of_another_distribution_is_discovered(installed_distribution, aftercare_app):
    manager = PluginManager.load()
    vip = manager.info("vip")
    assert (vip.source, vip.version, vip.hooks) == ("entry point", "1.2.3", ("on_order_paid",))

    app = aftercare_app(entry_points=True, settings={"vip": {"tag": "gold"}})
    requests = Dispatcher(app).dispatch(make_event("order_paid", make_order())).requests
    assert [(r.plugin, r.payload["tags"]) for r in requests if r.plugin == "vip"] == [("vip", ["gold"])]

    app = aftercare_app(entry_points=True, settings={"vip": {"enabled": False}})
    requests = Dispatcher(app).dispatch(make_event("order_paid", make_order())).requests
    assert [r for r in requests if r.plugin == "vip"] == []


def test_local_folder_plugin_is_loaded_by_name(tmp_path):
    folder = tmp_path / "my_plugins"
    folder.mkdir()
    (folder / "loyalty.py").write_text(PLUGIN_SOURCE.format(tag="loyal"))
    (folder / "_helpers.py").write_text("raise RuntimeError('never imported')")
    manager = PluginManager.load(entry_points=False, local_folder=folder)
    info = manager.info("loyalty")
    assert (info.source, info.hooks, info.location) == ("local", ("on_order_paid",), str(folder / "loyalty.py"))
    assert [p.name for p in manager.plugins()] == ["loyalty"]


def test_broken_local_plugin_names_file_and_line(tmp_path):
    (tmp_path / "oops.py").write_text("def on_order_paid(event, ctx)\n    pass\n")
    with pytest.raises(ConfigError) as excinfo:
        PluginManager.load(entry_points=False, local_folder=tmp_path)
    assert f"plugins_folder: {tmp_path / 'oops.py'} line 1: SyntaxError" in str(excinfo.value)


def test_only_named_plugins_load(monkeypatch, tmp_path):
    (tmp_path / "one.py").write_text(PLUGIN_SOURCE.format(tag="1"))
    (tmp_path / "two.py").write_text(PLUGIN_SOURCE.format(tag="2"))
    monkeypatch.setenv("AFTERCARE_PLUGINS", "two")
    manager = PluginManager.load(entry_points=False, local_folder=tmp_path)
    assert [p.name for p in manager.plugins()] == ["two"]


def test_builtin_adapters_register_through_entry_points():
    manager = PluginManager.load()
    assert {"shopify", "woocommerce"} <= set(manager.adapters())
    assert manager.info("shopify").source == "built-in"
