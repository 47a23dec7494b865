"""The ``[mail]`` table of the config (and a shop's ``[shops.mail]`` overrides)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class MailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``outbox`` writes each message as an .eml file into ``outbox_dir``; ``smtp`` sends it.
    transport: Literal["outbox", "smtp"] = "outbox"
    outbox_dir: str = "outbox"
