"""The deployment recipes in deploy/ parse, and every aftercare command they run exists."""

import configparser
import shlex

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
