"""The deployment recipes in deploy/ parse, and every aftercare command they run exists."""

import configparser
import shlex

import pytest
import yaml
from click.testing import CliRunner

from aftercare.cli import cli

from ..conftest import REPO

DEPLOY = REPO / "deploy"


def accepts(args):
    """The CLI knows this command line (checked with --help, so nothing runs)."""
    args = [a for a in args if a not in ("aftercare",)]
    options = [a for a in args if a.startswith("--config")]
    words = [a for a in args if not a.startswith("-") and "/" not in a and not a.replace(".", "").isdigit()]
    result = CliRunner().invoke(cli, [*words[:1], "--help"] if words else ["--help"])
    assert result.exit_code == 0, (args, result.output)
    for option in (a for a in args if a.startswith("--") and a not in options):
        assert option in result.output, (option, words[:1])


def test_systemd_units_run_real_commands_and_stop_gracefully():
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        unit = configparser.ConfigParser(strict=True, interpolation=None)
        unit.optionxform = str
        unit.read(path)
        service = unit["Service"]
        assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30, path.name
        assert service["Restart"] == "on-failure" and service["EnvironmentFile"].startswith("/etc/aftercare/")
        command = shlex.split(service["ExecStart"])
        assert command[0].endswith("/aftercare")
        accepts(command[3:])  # after: aftercare --config FILE


def test_compose_runs_serve_two_workers_redis_and_postgresql():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"serve", "worker-1", "worker-2", "redis", "db"}
    for name in ("serve", "worker-1", "worker-2"):
        assert services[name]["stop_signal"] == "SIGTERM"
        assert set(services[name]["depends_on"]) == {"db", "redis"}
        accepts(services[name]["command"])
    containerfile = (DEPLOY / "Containerfile").read_text()
    assert 'ENTRYPOINT ["aftercare"]' in containerfile and "STOPSIGNAL SIGTERM" in containerfile


@pytest.mark.parametrize(
    ("keys", "missing", "line"),
    [
        ('database = "postgresql+psycopg://aftercare:hunter2@db/aftercare"\n', "psycopg",
         "error: database: postgresql+psycopg://aftercare:***@db/aftercare needs the psycopg module, which is not"
         " installed: pip install 'aftercare[postgres]'"),
        ('database = "postgresql+psycopg2://aftercare@db/aftercare"\n', "psycopg2",
         "error: database: postgresql+psycopg2://aftercare@db/aftercare needs the psycopg2 module, which is not"
         " installed: write postgresql+psycopg://... to use psycopg (pip install 'aftercare[postgres]')"),
        ('queue = "redis://:hunter2@redis:6379/0"\n', "redis",
         "error: queue: redis://:***@redis:6379/0 needs the redis module, which is not installed:"
         " pip install 'aftercare[redis]'"),
    ],
)  # fmt: skip
def test_a_backend_whose_extra_is_not_installed_is_one_line_naming_the_pip_extra(tmp_path, monkeypatch, keys, missing,
                                                                                   line):  # fmt: skip
    import aftercare.cli

    monkeypatch.setattr(aftercare.cli, "installed", lambda module: module != missing)
    config = tmp_path / "aftercare.toml"
    config.write_text(keys)
    result = CliRunner().invoke(cli, ["--config", str(config), "events", "list"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [line]
    assert "hunter2" not in result.output


def test_sqlite_needs_neither_extra(tmp_path, monkeypatch):
    import aftercare.cli

    monkeypatch.setattr(aftercare.cli, "installed", lambda module: module not in ("psycopg", "psycopg2", "redis"))
    config = tmp_path / "aftercare.toml"
    config.write_text('database = "sqlite:///aftercare.db"\nqueue = "sqlite:///queue.db"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "events", "list", "--json"])
    assert (result.exit_code, result.stdout) == (0, "[]\n"), result.output


def test_the_extras_install_the_drivers_the_backends_need():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith(("psycopg", "redis")) for d in project["dependencies"])
    extras = {name: [d.split(">=")[0] for d in found] for name, found in project["optional-dependencies"].items()}
    assert (extras["postgres"], extras["redis"]) == (["psycopg[binary]"], ["redis"])
    assert "aftercare[postgres,redis]" in project["optional-dependencies"]["test"]
