"""The import-linter contracts cover every core module, so a new one cannot slip past them."""

import tomllib
from importlib import resources

from .conftest import REPO


def test_core_contract_lists_every_core_module():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    core = next(c for c in config if c["name"].startswith("The core imports no adapter"))
    on_disk = {
        f"aftercare.{path.name.removesuffix('.py')}"
        for path in resources.files("aftercare").iterdir()
        if (path.name.endswith(".py") and path.name != "__init__.py")
        or (path.is_dir() and path.joinpath("__init__.py").is_file() and path.name not in ("adapters", "plugins"))
    }
    assert set(core["source_modules"]) == on_disk
