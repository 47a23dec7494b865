"""The base of every plugin's settings model.

A plugin declares ``Settings`` (a subclass of :class:`PluginSettings`) at
module level. Defaults live in the model; the merchant tunes them under
``[plugins.<name>]`` and per shop under ``[shops.plugins.<name>]``. Unknown
keys are errors, so a typo is reported with its TOML path instead of being
silently ignored. Mark secrets with pydantic's ``SecretStr``: they are never
printed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PluginSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Turn the plugin on or off, globally or for one shop.
    enabled: bool = True
