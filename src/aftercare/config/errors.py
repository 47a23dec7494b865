"""A config's problems: one line each, ``toml.path: problem``, collected into one :class:`ConfigError`.

Secrets are never echoed: a value is quoted back only when its key does not look like one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError


class ConfigError(Exception):
    """One or more problems in a config file, each a line ``path: problem``."""

    def __init__(self, problems: Iterable[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in self.problems))


def describe_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """pydantic errors as ``toml.path: problem`` lines, secrets never echoed."""
    lines = []
    for error in exc.errors(include_url=False):
        path = prefix
        for part in error["loc"]:
            path = f"{path}[{part}]" if isinstance(part, int) else join_path(path, str(part))
        lines.append(f"{path or '(top level)'}: {problem_text(error)}")
    return lines


def problem_text(error: Mapping[str, Any]) -> str:
    """One pydantic error in the words of a config problem (the value quoted back unless secret)."""
    kind = error["type"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key (check its spelling)"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    given = error.get("input")
    credentials = isinstance(given, str) and "://" in given and "@" in given  # a URL's user:password@
    if isinstance(given, str | int | float | bool) and not _looks_secret(error["loc"]) and not credentials:
        message += f" (got {given!r})"
    return message


def _looks_secret(loc: tuple[Any, ...]) -> bool:
    name = str(loc[-1]).lower() if loc else ""
    return any(word in name for word in ("secret", "token", "password", "key"))


def join_path(path: str, key: str) -> str:
    """``path.key``, or ``key`` at the top level."""
    return f"{path}.{key}" if path else key
