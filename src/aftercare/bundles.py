"""Bundles: one client's setup (plugins, settings, mail voice, templates, local plugins) in a folder.

An agency runs many client shops from one deployment. A bundle is what one
client's shops share, kept in a folder the agency can version and check
before deploying::

    bundles/acme/
        bundle.toml      [plugins.NAME] settings, [mail] sender / quiet hours / caps, [mail.brand]
        templates/       overrides, <locale>/<template>.html ... (like [mail] templates_dir)
        plugins/         one-file plugins of this client only (like plugins_folder)

A shop names it with ``bundle = "bundles/acme"``. Plugin settings layer as
plugin default < ``[plugins.NAME]`` (deployment) < bundle < ``[shops.plugins.NAME]``;
mail as ``[mail]`` < bundle ``[mail]`` < ``[shops.mail]``; templates as shop
folder, bundle, deployment, plugin, built-in (docs/agencies.md).

A bundle holds no secrets and no infrastructure (SMTP relay, transport,
signing key): it is shared and checked without credentials
(``aftercare bundle check``), and those stay with the deployment and the shop.

A bundle's local plugins load into the one plugin manager under a
namespaced name (``acme.reviews``) and get settings only for the shops of
that bundle, so they never run for another client's shop.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aftercare.config import ConfigError, describe_errors
from aftercare.config.mail import MailSettings

BUNDLE_FILE = "bundle.toml"
TEMPLATES = "templates"
PLUGINS = "plugins"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: ``[mail]`` keys that are infrastructure or secrets: they belong to the deployment or the shop.
NOT_IN_BUNDLE = ("transport", "outbox_dir", "smtp", "secret_key", "templates_dir")


class BundleFile(BaseModel):
    """The shape of ``bundle.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: What this bundle is for (shown by ``bundle check``).
    description: str = ""
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: The client's mail voice: ``sender``, ``reply_to``, quiet hours, frequency cap, and its
    #: look, ``[mail.brand]`` (logo, accent colour, address; ``css`` relative to the bundle folder).
    mail: MailSettings = Field(default_factory=MailSettings)

    @field_validator("mail", mode="before")
    @classmethod
    def _no_infrastructure(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for key in NOT_IN_BUNDLE:
                if key in value:
                    raise ValueError(
                        f"{key} cannot be set in a bundle (infrastructure and secrets stay in the "
                        f"config's [mail] or [shops.mail]; templates go in the bundle's {TEMPLATES}/ folder)"
                    )
        return value


@dataclass(frozen=True, eq=False)
class Bundle:
    """A loaded bundle. ``label`` is how messages name its file (as the config wrote it).

    Compared by identity: the app loads each folder once and its shops share that one."""

    name: str
    path: Path
    label: str
    description: str = ""
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)
    mail: MailSettings = field(default_factory=MailSettings)
    #: The stems of ``plugins/*.py`` (the plugins' short names).
    plugin_files: tuple[str, ...] = ()

    @property
    def templates(self) -> Path:
        return self.path / TEMPLATES

    @property
    def plugins_folder(self) -> Path:
        return self.path / PLUGINS

    def plugin_name(self, short: str) -> str:
        """The name a local plugin is registered under: ``acme.reviews``."""
        return f"{self.name}.{short}"

    @property
    def local(self) -> dict[str, str]:
        """Registered name -> short name of this bundle's own plugins."""
        return {self.plugin_name(short): short for short in self.plugin_files}


def load_bundle(folder: Path, label: str | None = None) -> Bundle:
    """Read ``folder/bundle.toml``; every problem is a line naming the file and key."""
    source = label or str(folder / BUNDLE_FILE)
    if not folder.is_dir():
        raise ConfigError([f"{folder}: no such bundle folder (make one with `aftercare bundle new NAME`)"])
    name = folder.resolve().name
    if not _NAME.match(name):
        raise ConfigError([f"{folder}: a bundle's folder name must be lowercase letters, digits, '-' or '_'"])
    path = folder / BUNDLE_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{source}: no such file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{source}: not UTF-8 text"]) from None
    _bundle_relative_css(raw, folder)
    try:
        parsed = BundleFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"{source}: {line}" for line in describe_errors(exc)]) from None
    plugin_dir = folder / PLUGINS
    files = (
        tuple(p.stem for p in sorted(plugin_dir.glob("*.py")) if not p.stem.startswith(("_", "test_")))
        if plugin_dir.is_dir()
        else ()
    )
    return Bundle(name, folder, source, parsed.description, parsed.plugins, parsed.mail, files)


def _bundle_relative_css(raw: dict[str, Any], folder: Path) -> None:
    """A bundle's ``[mail.brand] css`` names a file in the bundle's folder, not beside the config."""
    brand = raw.get("mail", {}).get("brand") if isinstance(raw.get("mail"), dict) else None
    css = brand.get("css") if isinstance(brand, dict) else None
    if isinstance(brand, dict) and isinstance(css, str) and css and not Path(css).is_absolute():
        brand["css"] = str((folder / css).resolve())


# -- a new bundle --------------------------------------------------------------------

BUNDLE_TOML = """# The {name} bundle: what this client's shops share. A shop uses it with
#   bundle = "bundles/{name}"        (in its [[shops]] table, relative to the config file)
# and may still override anything under [shops.plugins.NAME] / [shops.mail].
# Precedence: plugin default < [plugins.NAME] of the config < this file < the shop.
# No secrets here: `aftercare bundle check` runs without credentials.
description = "{name}"

# Turn plugins on and tune them (docs/plugins/NAME.md lists every setting):
# [plugins.coupon]
# enabled = true
# value = 15
# valid_days = 30
#
# [plugins.review_request]
# enabled = true
# days_after_delivery = 10

# A plugin in plugins/ is named by its file name here, e.g. plugins/thanks.py:
# [plugins.thanks]
# enabled = true

# The client's mail voice (SMTP relay, transport and keys stay in the config):
# [mail]
# sender = "Acme <hello@acme.example>"
# reply_to = "care@acme.example"
# quiet_hours_start = 21:00:00
# quiet_hours_end = 08:00:00
# frequency_cap = 2
#
# The client's look, in the header and footer of every mail (docs/mail.md):
# [mail.brand]
# logo_url = "https://acme.example/logo.png"
# accent_color = "#0f766e"
# shop_url = "https://acme.example"
# postal_address = "Acme Ltd, 1 High Street, Bristol BS1 1AA, United Kingdom"
# support_email = "care@acme.example"
# css = "brand.css"            # in this folder, inlined after the layout's own CSS
"""

TEMPLATES_README = """Template overrides of this bundle: <locale>/<template>.subject.txt, .txt and .html
(see docs/mail.md). A file here wins over the deployment's and the plugins' own,
and loses to a shop's [shops.mail] templates_dir.
"""

PLUGIN_README = """One-file plugins of this bundle (*.py, like plugins_folder). They run only for the
shops of this bundle, under the name BUNDLE.FILE (e.g. acme.thanks), and may
implement only the post-sale hooks (on_order_paid, on_shipped, ...).
"""


def is_bundle_name(name: str) -> bool:
    """Lowercase letters, digits, '-' or '_': a bundle's name is its folder's and prefixes its plugins'."""
    return bool(_NAME.match(name))


def write_bundle(folder: Path, name: str) -> None:
    """Scaffold ``folder``: bundle.toml with commented examples, templates/en/, plugins/."""
    (folder / TEMPLATES / "en").mkdir(parents=True)
    (folder / PLUGINS).mkdir()
    (folder / BUNDLE_FILE).write_text(BUNDLE_TOML.format(name=name), encoding="utf-8")
    (folder / TEMPLATES / "README.txt").write_text(TEMPLATES_README, encoding="utf-8")
    (folder / PLUGINS / "README.txt").write_text(PLUGIN_README, encoding="utf-8")
