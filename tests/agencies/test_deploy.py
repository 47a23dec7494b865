"""The deployment recipes in deploy/ parse, run real commands, and run as written: the example config
checks, and serve comes up with its config folder read-only and its state in /var/lib/aftercare."""

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from aftercare.cli import cli
from aftercare.config import load_config
from aftercare.migrations import head_revision

from ..conftest import REPO
from ..core.test_migrate import lines_until
from ..runtime.test_processes import stop, wait_for

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


def read_unit(path):
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str
    unit.read(path)
    return unit


def test_systemd_units_run_real_commands_and_stop_gracefully():
    for name in ("aftercare-serve.service", "aftercare-worker@.service"):
        service = read_unit(DEPLOY / "systemd" / name)["Service"]
        assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30, name
        assert service["Restart"] == "on-failure" and service["EnvironmentFile"].startswith("/etc/aftercare/")
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        service = read_unit(path)["Service"]
        command = shlex.split(service["ExecStart"])
        assert command[0].endswith("/aftercare")
        accepts(command[3:])  # after: aftercare --config FILE


def test_systemd_services_write_only_to_the_state_directory_and_start_after_one_migration():
    migrate = read_unit(DEPLOY / "systemd" / "aftercare-migrate.service")
    assert migrate["Service"]["Type"] == "oneshot"
    assert shlex.split(migrate["Service"]["ExecStart"])[3:] == ["migrate"]
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        unit = read_unit(path)
        service = unit["Service"]
        assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/aftercare", path.name
        assert service["StateDirectory"] == "aftercare" and service["WorkingDirectory"] == "/var/lib/aftercare"
        if path.name in ("aftercare-serve.service", "aftercare-worker@.service"):  # started after one migration
            assert "aftercare-migrate.service" in unit["Unit"]["Requires"].split(), path.name
            assert "aftercare-migrate.service" in unit["Unit"]["After"].split(), path.name


def test_a_systemd_timer_runs_aftercare_sync_periodically():
    timer = read_unit(DEPLOY / "systemd" / "aftercare-sync.timer")
    assert timer["Timer"]["Unit"] == "aftercare-sync.service" and timer["Timer"]["OnCalendar"] == "*:0/15"
    assert timer["Install"]["WantedBy"] == "timers.target"
    sync = read_unit(DEPLOY / "systemd" / "aftercare-sync.service")
    assert sync["Service"]["Type"] == "oneshot"
    assert shlex.split(sync["Service"]["ExecStart"])[3:] == ["sync"]


def test_compose_runs_one_migration_then_serve_two_workers_redis_and_postgresql():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"migrate", "serve", "worker-1", "worker-2", "sync", "redis", "db"}
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
    for name in ("serve", "worker-1", "worker-2", "sync"):
        assert services[name]["stop_signal"] == "SIGTERM"
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert set(services[name]["depends_on"]) == {"db", "redis", "migrate"}
    for name in ("migrate", "serve", "worker-1", "worker-2", "sync"):
        assert "./aftercare.toml:/etc/aftercare/aftercare.toml:ro" in services[name]["volumes"]
        assert "state:/var/lib/aftercare" in services[name]["volumes"]
    for name in ("migrate", "serve", "worker-1", "worker-2"):
        accepts(services[name]["command"])
    [loop] = services["sync"]["command"]  # sh -c: sync, sleep, again
    assert services["sync"]["entrypoint"] == ["sh", "-c"] and services["sync"]["init"] is True
    sync_then_sleep = r'aftercare sync && touch /tmp/aftercare-synced; sleep "\$\$\{SYNC_EVERY_SECONDS:-(\d+)\}"'
    assert re.fullmatch(f"while true; do {sync_then_sleep}; done", loop), loop
    accepts(["sync"])
    # The receiver only: the workers are their own services, each with a health check of its own.
    assert "--no-worker" in services["serve"]["command"]
    for name in ("serve", "worker-1", "worker-2", "sync", "redis", "db"):  # migrate runs once and exits
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    for name in ("worker-1", "worker-2"):
        test = services[name]["healthcheck"]["test"]
        assert test[1] == "aftercare", test
        accepts(test[2:])
    containerfile = (DEPLOY / "Containerfile").read_text()
    assert 'ENTRYPOINT ["aftercare"]' in containerfile and "STOPSIGNAL SIGTERM" in containerfile
    assert "pip install --no-cache-dir '.[postgres,redis]'" in containerfile


def systemd_environment():
    """The variables of deploy/systemd/env.example, as the units' EnvironmentFile= gives them."""
    lines = (DEPLOY / "systemd" / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def compose_environment():
    """What compose gives the aftercare services: deploy/.env's variables plus its `environment:`."""
    dotenv = {"POSTGRES_PASSWORD": "pw", "AFTERCARE_SECRET_KEY": "k" * 40, "AFTERCARE_PUBLIC_URL": "https://a.example",
              "SHOPIFY_WEBHOOK_SECRET": "s", "SHOPIFY_SHOP_DOMAIN": "x.myshopify.com",
              "SHOPIFY_ACCESS_TOKEN": "t"}  # fmt: skip
    declared = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["serve"]["environment"]
    interpolated = {k: re.sub(r"\$\{(\w+)(:\?[^}]*)?\}", lambda m: dotenv[m.group(1)], v) for k, v in declared.items()}
    return {**dotenv, **interpolated}


@pytest.mark.parametrize("environment", [systemd_environment, compose_environment], ids=["systemd", "compose"])
def test_aftercare_check_accepts_the_deploy_example_config_with_the_recipes_variables(environment, monkeypatch):
    variables = environment()
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["--config", str(DEPLOY / "aftercare.toml"), "check"])
    assert result.exit_code == 0, result.output
    assert f"store: {variables['AFTERCARE_DATABASE'].replace(':pw@', ':***@')}" in result.stdout
    config = load_config(DEPLOY / "aftercare.toml", environ=variables)
    assert Path(config.mail.outbox_dir).is_relative_to("/var/lib/aftercare")
    for url in (config.database_url, config.queue_url):
        assert not url.startswith("sqlite:") or url.startswith("sqlite:////var/lib/aftercare/"), url


def private_mounts():
    """The command prefix of a private mount namespace (root, or a user namespace), or skip."""
    for prefix in (["unshare", "--mount"], ["unshare", "--map-root-user", "--mount"]):
        try:
            probe = subprocess.run([*prefix, "mount", "-t", "tmpfs", "tmpfs", "/mnt"], capture_output=True, timeout=10)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    if os.environ.get("CI"):
        pytest.fail("no private mount namespace (unshare --mount) for the read-only config test")
    pytest.skip("no private mount namespace (unshare --mount)")


def as_the_units_run(tmp_path, *commands):
    """``commands`` run as systemd runs the units: /etc/aftercare read-only and /var/lib/aftercare
    the only writable state. Tests run as root here, where chmod 555 stops no write, so the config
    folder is a read-only bind mount in a private mount namespace (what ProtectSystem=strict does), and
    /var/lib/aftercare a bind mount of a temporary folder over a tmpfs /var/lib (in that namespace only:
    the host's /var/lib is untouched, and nothing is left mounted when the process ends)."""
    etc, state = tmp_path / "etc", tmp_path / "state"
    script = (
        'set -e; mount --bind "$ETC" "$ETC"; mount -o remount,bind,ro "$ETC"; mount -t tmpfs tmpfs /var/lib;'
        ' mkdir /var/lib/aftercare; mount --bind "$STATE" /var/lib/aftercare; cd /var/lib/aftercare; '
        + " && ".join(f'"$PYTHON" -m aftercare --config "$ETC/aftercare.toml" {c}' for c in commands[:-1])
        + (" && " if len(commands) > 1 else "")
        + f'exec "$PYTHON" -m aftercare --config "$ETC/aftercare.toml" {commands[-1]}'
    )
    env = {**os.environ, **systemd_environment(), "ETC": str(etc), "STATE": str(state), "PYTHON": sys.executable,
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    return subprocess.Popen([*private_mounts(), "sh", "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip


def test_serve_runs_as_the_units_run_it_with_its_config_folder_read_only(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "state").mkdir()
    shutil.copy(DEPLOY / "aftercare.toml", tmp_path / "etc" / "aftercare.toml")
    server = as_the_units_run(tmp_path, "migrate", "serve --port 0 --sweep-interval 0.2")
    try:
        up = lines_until(server, "aftercare serve: listening on")
        assert f"schema at revision {head_revision()}" in up
        url = up.splitlines()[-1].rsplit(" ", 1)[1]
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_for(lambda: client.get("/healthz").json().get("worker") == "ok", what="the worker's heartbeat")
    finally:
        output = stop(server)
    assert server.returncode == 0, output
    assert "Traceback" not in output and "Read-only file system" not in output, output
    assert {"aftercare.db", "aftercare-queue.db"} <= {p.name for p in (tmp_path / "state").iterdir()}
    assert [p.name for p in (tmp_path / "etc").iterdir()] == ["aftercare.toml"]


def test_a_relative_store_path_in_the_read_only_config_folder_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "etc" / "aftercare.toml").write_text('database = "sqlite:///aftercare.db"\n')
    refused = as_the_units_run(tmp_path, "serve --port 0")
    output, _ = refused.communicate(timeout=60)
    assert refused.returncode == 2
    assert output.splitlines() == [
        f"error: database: cannot open sqlite:///{tmp_path / 'etc' / 'aftercare.db'}: unable to open database file"
    ]


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
    from aftercare.cli import common

    monkeypatch.setattr(common, "installed", lambda module: module != missing)
    config = tmp_path / "aftercare.toml"
    config.write_text(keys)
    result = CliRunner().invoke(cli, ["--config", str(config), "events", "list"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [line]
    assert "hunter2" not in result.output


def test_sqlite_needs_neither_extra(tmp_path, monkeypatch):
    from aftercare.cli import common

    monkeypatch.setattr(common, "installed", lambda module: module not in ("psycopg", "psycopg2", "redis"))
    config = tmp_path / "aftercare.toml"
    config.write_text('database = "sqlite:///aftercare.db"\nqueue = "sqlite:///queue.db"\n')
    assert CliRunner().invoke(cli, ["--config", str(config), "migrate"]).exit_code == 0  # lists never create it
    result = CliRunner().invoke(cli, ["--config", str(config), "events", "list", "--json"])
    assert (result.exit_code, result.stdout) == (0, "[]\n"), result.output


def test_the_extras_install_the_drivers_the_backends_need():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith(("psycopg", "redis")) for d in project["dependencies"])
    extras = {name: [d.split(">=")[0] for d in found] for name, found in project["optional-dependencies"].items()}
    assert (extras["postgres"], extras["redis"]) == (["psycopg[binary]"], ["redis"])
    assert "aftercare[postgres,redis]" in project["optional-dependencies"]["test"]
