"""scripts/minimum-versions pins every runtime dependency to its declared lower bound, for the CI
step that runs the tests on them: a requirement it cannot read would silently go untested."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_runtime_dependency_is_pinned_to_its_lower_bound():
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "minimum-versions")], capture_output=True, text=True, check=True
    ).stdout
    pins = dict(line.split("==") for line in out.split())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for requirement in project["dependencies"] + extras["postgres"] + extras["redis"]:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]+\])?>=(\S+)", requirement).groups()
        assert pins[name] == version, requirement
    assert pins["psycopg-binary"] == pins["psycopg"]
