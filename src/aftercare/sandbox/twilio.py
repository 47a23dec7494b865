"""A sandbox of Twilio's Messages API on 127.0.0.1: where the demo's and the end-to-end tests' texts go.

The real channel (:mod:`aftercare.mail.sms`) posts to it exactly as to api.twilio.com, once
``[mail.sms] api_url`` names it: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``,
form-encoded, with HTTP Basic auth of the account SID and auth token. It answers as Twilio does:

- 201 and the message (``sid`` ``SM…``, ``status`` ``queued``, ``to``, ``from``, ``body``...);
- 401, code 20003, for any other account or token;
- 400 for a message without ``To`` (21604), without ``From`` or ``MessagingServiceSid`` (21603),
  or without ``Body`` or ``ContentSid`` (21602).

``GET`` on the same path lists what was sent, newest first, as Twilio's list does. Every
accepted message is kept in :attr:`TwilioSandbox.messages`. The account SID and token are
made up for each sandbox, never a real account's: :meth:`~TwilioSandbox.environment` gives
them under the variable names :meth:`~TwilioSandbox.sms_settings` puts in ``[mail.sms]``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

from .base import system_now
from .http import LocalService, Request, Response, Router, json_response

#: The environment variables the demo's ``[mail.sms]`` reads the sandbox's credentials from:
#: names of its own, so a real ``TWILIO_*`` in the merchant's shell is never read nor changed.
ACCOUNT_SID_ENV = "AFTERCARE_DEMO_TWILIO_ACCOUNT_SID"
AUTH_TOKEN_ENV = "AFTERCARE_DEMO_TWILIO_AUTH_TOKEN"
API_VERSION = "2010-04-01"


@dataclass(frozen=True)
class Message:
    """A message Twilio accepted; ``to`` and ``from_`` as posted (``whatsapp:`` kept)."""

    sid: str
    to: str
    from_: str
    body: str
    created_at: datetime
    messaging_service_sid: str = ""
    content_sid: str = ""
    content_variables: str = ""

    def as_json(self, account_sid: str) -> dict[str, Any]:
        created = format_datetime(self.created_at, usegmt=True)
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "messaging_service_sid": self.messaging_service_sid or None,
            "to": self.to,
            "from": self.from_ or None,
            "body": self.body,
            "status": "queued",
            "num_segments": "1",
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": API_VERSION,
            "date_created": created,
            "date_updated": created,
            "date_sent": None,
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}.json",
        }


class TwilioSandbox(LocalService):
    """Twilio's Messages API for one made-up account. Use as a context manager or ``start()``/``stop()``."""

    what = "the Twilio sandbox"

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or system_now
        self.account_sid = "AC" + secrets.token_hex(16)
        self.auth_token = secrets.token_hex(16)
        self._messages: list[Message] = []
        self._lock = threading.Lock()
        self.router = Router()
        messages = f"/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages.json"
        self.router.add("POST", messages, self._create)
        self.router.add("GET", messages, self._list)

    # -- what a deployment needs -------------------------------------------
    def sms_settings(self) -> dict[str, str]:
        """The ``[mail.sms]`` keys that point the text channel here."""
        return {"api_url": self.url, "account_sid_env": ACCOUNT_SID_ENV, "auth_token_env": AUTH_TOKEN_ENV}

    def environment(self) -> dict[str, str]:
        """This account's SID and token under the variable names :meth:`sms_settings` gives."""
        return {ACCOUNT_SID_ENV: self.account_sid, AUTH_TOKEN_ENV: self.auth_token}

    @property
    def messages(self) -> list[Message]:
        """Every accepted message, oldest first."""
        with self._lock:
            return list(self._messages)

    # -- the API -------------------------------------------------------------
    def _create(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        form = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        if not form.get("To"):
            return _error(400, 21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return _error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message.")
        if not (form.get("Body") or form.get("ContentSid")):
            return _error(400, 21602, "Message body is required.")
        message = Message(
            sid="SM" + secrets.token_hex(16),
            to=form["To"],
            from_=form.get("From", ""),
            body=form.get("Body", ""),
            created_at=self.clock(),
            messaging_service_sid=form.get("MessagingServiceSid", ""),
            content_sid=form.get("ContentSid", ""),
            content_variables=form.get("ContentVariables", ""),
        )
        with self._lock:
            self._messages.append(message)
        return json_response(message.as_json(self.account_sid), 201)

    def _list(self, request: Request) -> Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        listed = [m.as_json(self.account_sid) for m in reversed(self.messages)]
        return json_response({"messages": listed, "page": 0, "page_size": len(listed), "start": 0})

    def _authorised(self, request: Request) -> bool:
        """Basic auth with this account's SID and token, for this account's path."""
        scheme, _space, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            sid, _colon, token = base64.b64decode(encoded, validate=True).partition(b":")
        except binascii.Error:
            return False
        return (
            hmac.compare_digest(sid, self.account_sid.encode())
            and hmac.compare_digest(token, self.auth_token.encode())
            and request.params["account"] == self.account_sid
        )


def _error(status: int, code: int, message: str) -> Response:
    """An error in Twilio's shape: its code, message and the page that explains it."""
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    return json_response({**body, "status": status}, status)
