"""Loading plugins: ``only`` limits plugins and never adapters, wrappers run, a plugin is blocked by name."""

import json
import sys
import types

import pytest
from click.testing import CliRunner

from aftercare import hookimpl
from aftercare.app import App
from aftercare.cli import cli
from aftercare.config import ConfigError, load_config
from aftercare.dispatch import Dispatcher
from aftercare.plugin_manager import PluginManager
from aftercare.serve import _worker_command
from aftercare.testing import make_event, make_order

ADAPTER = """
from aftercare import hookimpl
from aftercare.testing import MemoryAdapter


@hookimpl
def register_adapters(register):
    register(MemoryAdapter)
"""

PLUGIN = """
from aftercare import hookimpl


@hookimpl
def on_order_paid(event, ctx):
    ctx.tag_order("{name}")
"""

NEVER_IMPORTED = "raise RuntimeError('a blocked plugin is never imported')\n"


def plugin_module(name, **hooks):
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, function)
    return module


# -- only: plugins, never adapters -----------------------------------------------------


def test_only_limits_the_plugins_and_keeps_every_adapter():
    manager = PluginManager.load(only=["coupon"])
    assert [p.name for p in manager.plugins() if p.handles_events] == ["coupon"]
    assert {"shopify", "woocommerce"} <= set(manager.adapters())


def test_the_environment_limits_the_plugins_and_keeps_every_adapter(monkeypatch):
    monkeypatch.setenv("AFTERCARE_PLUGINS", "tracking_notice")
    manager = PluginManager.load()
    assert [p.name for p in manager.plugins() if p.handles_events] == ["tracking_notice"]
    assert {"shopify", "woocommerce"} <= set(manager.adapters())


def test_only_keeps_a_local_file_that_registers_a_platform(tmp_path):
    (tmp_path / "platform_of_mine.py").write_text(ADAPTER)
    (tmp_path / "thanks.py").write_text(PLUGIN.format(name="thanks"))
    (tmp_path / "other.py").write_text(PLUGIN.format(name="other"))
    manager = PluginManager.load(entry_points=False, local_folder=tmp_path, only=["thanks"])
    assert sorted(p.name for p in manager.plugins()) == ["platform_of_mine", "thanks"]
    assert set(manager.adapters()) == {"memory"}


def test_load_plugins_in_the_config_keeps_the_shops_platform(tmp_path):
    (tmp_path / "aftercare.toml").write_text(
        'database = "sqlite:///a.db"\nload_plugins = ["coupon"]\n'
        '[[shops]]\nid = "demo"\nplatform = "woocommerce"\nurl = "http://127.0.0.1:1"\n'
        'consumer_key = "ck_x"\nconsumer_secret = "cs_x"\nwebhook_secret = "s"\n'
    )
    app = App(load_config(tmp_path / "aftercare.toml"))
    try:
        assert app.shop("demo").adapter_class.platform == "woocommerce"
        assert [p.name for p in app.plugins.plugins() if p.handles_events] == ["coupon"]
    finally:
        app.close()


# -- wrappers ----------------------------------------------------------------------------


def test_a_wrapper_runs_around_each_plugins_call_of_a_hook(aftercare_app):
    seen = []

    @hookimpl
    def first(event, ctx):
        seen.append(("first", ctx.plugin))
        ctx.tag_order("first")

    @hookimpl
    def second(event, ctx):
        seen.append(("second", ctx.plugin))
        raise RuntimeError("second breaks")

    @hookimpl(wrapper=True)
    def wrap(event, ctx):
        seen.append(("before", ctx.plugin))
        try:
            return (yield)
        except RuntimeError as exc:
            seen.append(("saw", str(exc)))
            raise
        finally:
            ctx.tag_order("wrapped")

    @hookimpl(hookwrapper=True)
    def old_style(event, ctx):
        outcome = yield
        seen.append(("old style", ctx.plugin, outcome.exception is None))

    app = aftercare_app(
        plugin_module("first", on_order_paid=first),
        plugin_module("second", on_order_paid=second),
        plugin_module("tracing", on_order_paid=wrap),
        plugin_module("old_tracing", on_order_paid=old_style),
    )
    results = Dispatcher(app).dispatch(make_event("order_paid", make_order())).results
    assert [(r.plugin, r.outcome) for r in results.runs] == [("second", "failed"), ("first", "ok")]
    assert [r.payload["tags"] for r in results.sink.requests] == [["first"], ["wrapped"]]
    assert seen == [
        ("before", "second"), ("second", "second"), ("saw", "second breaks"), ("old style", "second", False),
        ("before", "first"), ("first", "first"), ("old style", "first", True),
    ]  # fmt: skip


def test_a_wrapper_of_register_channels_is_kept(aftercare_app):
    seen = []

    @hookimpl
    def register_channels(register):
        register("pigeon", lambda action, app: None)

    @hookimpl(wrapper=True)
    def around(register):
        seen.append("around")
        return (yield)

    manager = PluginManager.load(
        entry_points=False,
        extra=[("pigeons", plugin_module("pigeons", register_channels=register_channels)),
               ("watch", plugin_module("watch", register_channels=around))],
    )  # fmt: skip
    assert {"pigeon", "send_email", "create_coupon"} <= set(manager.channels())
    plain = [impl for impl in manager.pm.hook.register_channels.get_hookimpls() if not impl.wrapper]
    assert seen == ["around"] * len(plain)  # once around each plugin's registration


# -- blocking by name ----------------------------------------------------------------------


def test_a_blocked_plugin_is_never_imported_nor_registered(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text(NEVER_IMPORTED)
    (tmp_path / "thanks.py").write_text(PLUGIN.format(name="thanks"))
    monkeypatch.setenv("AFTERCARE_DISABLE_PLUGINS", "broken, coupon")
    manager = PluginManager.load(local_folder=tmp_path, blocked=["woocommerce"])
    names = {p.name for p in manager.plugins()}
    assert "thanks" in names and not names & {"broken", "coupon", "woocommerce"}
    assert "aftercare_local_plugins.broken" not in sys.modules
    assert "woocommerce" not in manager.adapters()
    blocked = {info.name: (info.source, info.blocked) for info in manager.blocked()}
    assert blocked == {
        "broken": ("local", "$AFTERCARE_DISABLE_PLUGINS"),
        "coupon": ("built-in", "$AFTERCARE_DISABLE_PLUGINS"),
        "woocommerce": ("built-in", "-p no:NAME"),
    }
    assert manager.pm.is_blocked("coupon")


def test_disabled_plugins_in_the_config_blocks_them(tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "broken.py").write_text(NEVER_IMPORTED)
    (tmp_path / "aftercare.toml").write_text(
        'database = "sqlite:///a.db"\nplugins_folder = "local"\ndisabled_plugins = ["broken", "coupon"]\n'
        "[plugins.coupon]\nenabled = true\n"  # its settings may stay: it just does not load
    )
    app = App(load_config(tmp_path / "aftercare.toml"))
    try:
        assert {"broken", "coupon"} == {info.name for info in app.plugins.blocked()}
        assert not {"broken", "coupon"} & {p.name for p in app.plugins.plugins()}
    finally:
        app.close()


def test_an_unknown_name_in_disabled_plugins_is_an_error_naming_the_key(tmp_path):
    (tmp_path / "aftercare.toml").write_text('database = "sqlite:///a.db"\ndisabled_plugins = ["coupon", "cuopon"]\n')
    with pytest.raises(ConfigError) as excinfo:
        App(load_config(tmp_path / "aftercare.toml"))
    [problem] = excinfo.value.problems
    assert problem.startswith("disabled_plugins[1]: no such plugin is installed or in plugins_folder: 'cuopon'")


def test_a_name_limited_out_by_only_may_still_be_disabled():
    manager = PluginManager.load(only=["tracking_notice"], disabled=["coupon"])
    assert [info.name for info in manager.blocked()] == ["coupon"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "broken.py").write_text(NEVER_IMPORTED)
    (tmp_path / "local" / "platform_of_mine.py").write_text(ADAPTER)
    (tmp_path / "aftercare.toml").write_text(
        'database = "sqlite:///a.db"\nplugins_folder = "local"\n'
        '[[shops]]\nid = "acme"\nplatform = "memory"\nwebhook_secret = "s"\n'
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_plugins_list_shows_what_the_command_line_blocks(project, monkeypatch):
    result = CliRunner().invoke(cli, ["-p", "no:broken", "-pno:coupon", "plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["broken"] == {"name": "broken", "source": "local", "version": "", "hooks": [], "enabled_for": [],
                              "blocked": True, "blocked_by": "-p no:NAME"}  # fmt: skip
    assert (rows["coupon"]["source"], rows["coupon"]["blocked"]) == ("built-in", True)
    assert rows["platform_of_mine"]["blocked"] is False
    monkeypatch.setenv("COLUMNS", "200")
    table = CliRunner().invoke(cli, ["-p", "no:broken", "plugins", "list"])
    assert "blocked (-p no:NAME)" in table.output


def test_without_blocking_the_broken_plugin_fails_to_import(project):
    result = CliRunner().invoke(cli, ["plugins", "list"])
    assert result.exit_code == 2 and "never imported" in result.output


def test_p_takes_only_no_name(project):
    result = CliRunner().invoke(cli, ["-p", "coupon", "plugins", "list"])
    assert result.exit_code == 2 and "write -p no:NAME" in result.output


def test_serves_worker_child_blocks_what_serve_blocks():
    command = _worker_command("aftercare.toml", 2, 5.0, "info", ["coupon", "broken"])
    assert command[command.index("worker") - 2 : command.index("worker")] == ["-pno:coupon", "-pno:broken"]


def test_what_is_blocked_is_read_before_plugins_add_their_commands(tmp_path, monkeypatch):
    from aftercare.cli import _blocked_in

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AFTERCARE_CONFIG", raising=False)
    assert _blocked_in(["-c", "x.toml", "-p", "no:coupon", "-pno:vip", "plugins", "list", "-p"]) == ("coupon", "vip")
    assert _blocked_in(["--help"]) == () and _blocked_in(["-p", "coupon", "check"]) == ()
    (tmp_path / "x.toml").write_text('disabled_plugins = ["review_request"]\n')
    assert _blocked_in(["-c", "x.toml", "-p", "no:coupon", "check"]) == ("coupon", "review_request")
    (tmp_path / "aftercare.toml").write_text("disabled_plugins = [\n")  # broken: `check` will say so
    assert _blocked_in(["check"]) == ()
