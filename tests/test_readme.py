"""The README's first plugin and its test are the ones in examples/plugins, and the test passes."""

import re
import subprocess
import sys

from .conftest import REPO

EXAMPLES = REPO / "examples" / "plugins"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)


def test_readme_shows_the_example_plugin_and_its_test():
    plugin, test = python_blocks()
    assert plugin == (EXAMPLES / "thank_you.py").read_text(encoding="utf-8")
    assert test == (EXAMPLES / "test_thank_you.py").read_text(encoding="utf-8")
    assert len(plugin.strip().splitlines()) <= 25


def test_the_example_plugin_test_passes(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         str(EXAMPLES / "test_thank_you.py")],
        cwd=EXAMPLES, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
