"""`aftercare demo` leaves its config beside its store and prints the three commands that explore
its week; they work on it, and the week ends this morning, so its dates read as today's."""

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from aftercare.cli import cli
from aftercare.demo import week_start


def test_the_demo_writes_its_config_and_the_commands_it_prints_work_on_its_week(tmp_path):
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "aftercare", "demo", "--dir", str(folder), "--orders", "3", "--days", "2"],
        capture_output=True, text=True, timeout=180, env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    config = folder / "aftercare.toml"
    printed = re.findall(r"^  aftercare -c (\S+) (.+)$", done.stdout, re.MULTILINE)
    assert [(path, command.split()[0]) for path, command in printed] == [
        (str(config), "report"), (str(config), "actions"), (str(config), "simulate")
    ]  # fmt: skip

    for _path, command in printed:
        result = CliRunner().invoke(cli, ["-c", str(config), *command.split(), "--json"], catch_exceptions=False)
        assert result.exit_code == 0, (command, result.output)
        data = json.loads(result.stdout)
        if command == "report":
            assert sum(sum(shop["emails_sent"].values()) for shop in data) > 0, data
        elif command.startswith("actions"):
            assert data and {row["shop_id"] for row in data} <= {"demo-shopify", "demo-woo"}
        else:
            assert data["events"] > 0 and data["plugins"], data

    today = datetime.now(UTC).date()
    coupons = re.findall(r"│ (demo-\S+) +│ (thanks-\S+) .*│ (\d{4}-\d\d-\d\d) +│", done.stdout)
    assert coupons, done.stdout
    for _shop, _code, until in coupons:  # 30 days from a day of this week, never from last March
        assert today < datetime.fromisoformat(until).date() <= today + timedelta(days=31)


def test_the_week_ends_at_the_last_seven_in_the_morning_utc():
    assert week_start(datetime(2026, 12, 3, 9, 30, tzinfo=UTC), 7) == datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    assert week_start(datetime(2026, 12, 3, 6, 59, tzinfo=UTC), 7) == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    assert week_start(datetime(2026, 12, 3, 7, 0, tzinfo=UTC), 2) == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def test_the_written_config_reads_back_as_the_same_config(tmp_path):
    from aftercare.config import Config, load_config
    from aftercare.demo import write_config
    from aftercare.sandbox.deployment import DEMO_PLUGINS

    config = Config.model_validate({
        "secret_key": "k" * 40, "plugins": DEMO_PLUGINS, "mail": {"frequency_cap": 5, "quiet_hours_start": "22:30"},
        "shops": [{"id": "north", "platform": "shopify", "webhook_secret": "s", "production": True,
                   "sender": "North <hi@north.example>", "shop_domain": "north.myshopify.com", "access_token": "t",
                   "mail": {"reply_to": "care@north.example"}}],
        "base_dir": tmp_path,
    })  # fmt: skip
    again = load_config(write_config(config, tmp_path / "aftercare.toml"))
    assert again.model_dump() == config.model_dump()
    assert again.shops[0].access_token == "t"  # noqa: S105 (the platform key a merchant would write)
