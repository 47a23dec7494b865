"""``[mail.sms]``: text messages (SMS and WhatsApp) over Twilio's REST API.

A table of ``[mail]`` because texts are messages to the same customers under
the same rules: the shop's quiet hours and frequency cap count mails and texts
together, and ``[shops.mail.sms]`` overrides it per shop key by key, as
``[shops.mail]`` does. The account SID and auth token are never in the file:
they are read from the environment variables named here.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class WhatsAppTemplate(BaseModel):
    """A WhatsApp template approved in Twilio's Content Template Builder, and its variables.

    WhatsApp lets a business start a conversation only with an approved template:
    ``content_sid`` names it, ``variables`` fill its ``{{1}}``, ``{{2}}``... in order,
    each a Jinja expression rendered with the mail's context (``"customer.first_name"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content_sid: str = Field(pattern=r"^HX[0-9a-fA-F]{32}$")
    variables: list[str] = []


class SmsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Off until a shop turns it on: plugins' ``send_sms`` actions are then dropped with the reason.
    enabled: bool = False
    #: The sending number (E.164, ``+34600111222``), or a Messaging Service below.
    from_number: str = ""
    #: A Twilio Messaging Service (``MG…``): Twilio picks the number; wins over ``from_number``.
    messaging_service_sid: str = Field("", pattern=r"^(MG[0-9a-fA-F]{32})?$")
    #: The WhatsApp sender (E.164) for ``send_whatsapp``; empty: no WhatsApp.
    whatsapp_from: str = ""
    #: Our template name -> the approved WhatsApp template that carries it.
    whatsapp_templates: dict[str, WhatsAppTemplate] = {}
    #: Where the credentials are: environment variable names, never the values.
    account_sid_env: str = "TWILIO_ACCOUNT_SID"
    auth_token_env: str = "TWILIO_AUTH_TOKEN"
    #: Twilio's API (a regional edge, or a test server on 127.0.0.1).
    api_url: str = Field("https://api.twilio.com", pattern=r"^https?://\S+$")
    timeout_seconds: float = Field(10, gt=0, le=60)

    @field_validator("from_number", "whatsapp_from")
    @classmethod
    def _e164(cls, value: str) -> str:
        if value and not E164.match(value):
            raise ValueError(f"{value!r} is not an E.164 number (+, country code, number: +34600111222)")
        return value

    @model_validator(mode="after")
    def _can_send(self) -> SmsSettings:
        if self.enabled and not (self.from_number or self.messaging_service_sid):
            raise ValueError("enabled texts need from_number or messaging_service_sid")
        return self
