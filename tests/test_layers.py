"""The import-linter contracts cover every core module, so a new one cannot slip past them."""

import ast
import re
import tomllib
from importlib import resources

from .conftest import REPO

#: Core modules the layers contract leaves out, and why (docs/architecture.md#layers).
OUTSIDE_THE_LAYERS = {
    "aftercare.config": "what the app is made of: the TOML and every section's model, [mail] and [console] too",
    "aftercare.plugin_manager": "what the app is made of; registers the core channels itself",
    "aftercare.bundles": "what the app is made of: a client's settings, templates and plugins",
    "aftercare.vault": "imports no aftercare module",
    "aftercare.limits": "imports no aftercare module",
    "aftercare.logs": "imports no aftercare module",
    "aftercare.sandbox": "a local shop, and a whole deployment around it, for the demo and the tests",
    "aftercare.testing": "fixtures for plugin authors",
}


def contracts():
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def core_modules_on_disk():
    return {
        f"aftercare.{path.name.removesuffix('.py')}"
        for path in resources.files("aftercare").iterdir()
        if (path.name.endswith(".py") and path.name != "__init__.py")
        or (path.is_dir() and path.joinpath("__init__.py").is_file() and path.name not in ("adapters", "plugins"))
    }


def test_core_contract_lists_every_core_module():
    core = next(c for c in contracts() if c["name"].startswith("The core imports no adapter"))
    assert set(core["source_modules"]) == core_modules_on_disk()


def test_every_core_module_has_a_layer_or_a_reason_to_be_outside_them():
    layers = next(c for c in contracts() if c["type"] == "layers")
    layered = {name.strip() for layer in layers["layers"] for name in re.split(r"[:|]", layer)}
    assert not layered & OUTSIDE_THE_LAYERS.keys()
    assert layered | OUTSIDE_THE_LAYERS.keys() == core_modules_on_disk()


def imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_only_the_command_line_imports_click_or_the_command_line():
    # import-linter sees only aftercare's own modules; click is an external package, so it is checked here.
    roots = [REPO / "src" / "aftercare", REPO / "adapters", REPO / "plugins"]
    cli = REPO / "src" / "aftercare" / "cli"
    entry = REPO / "src" / "aftercare" / "__main__.py"  # `python -m aftercare` runs the command line
    offenders = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for root in roots
        for path in root.rglob("*.py")
        if cli not in path.parents and path != entry
        for name in imported_modules(path)
        if name == "click" or name.startswith("click.") or name == "aftercare.cli" or name.startswith("aftercare.cli.")
    )
    assert offenders == []
