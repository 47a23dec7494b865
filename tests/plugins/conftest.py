"""Shared by the built-in plugins' tests: an app sending to the real SMTP sink of tests/mail.

``plugin_app(module, settings={...}, **shop)`` gives an app with ``module``
registered (and enabled: built-ins are off by default), a production shop
whose mail goes over SMTP to the aiosmtpd server on 127.0.0.1, and
``app.sink``, the server's handler. ``inbox(app)`` reads what arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

from tests.mail.conftest import SENDER, smtp_server  # noqa: F401  (a fixture, used by plugin_app)


@dataclass(frozen=True)
class Mail:
    """One message as the SMTP sink received it."""

    to: str
    subject: str
    text: str
    html: str
    message: EmailMessage

    @property
    def transactional(self) -> bool:
        return self.message["X-Aftercare-Transactional"] == "yes"

    @property
    def key(self) -> str:
        return self.message["X-Aftercare-Key"]

    @property
    def language(self) -> str:
        return self.message["Content-Language"]


def inbox(app) -> list[Mail]:
    """Every message the SMTP sink received for ``app``, in arrival order."""
    mails = []
    for received in app.sink.received:
        message = received.message
        text = _plain(message.get_body(("plain",)).get_content())
        html = _plain(message.get_body(("html",)).get_content())
        mails.append(Mail(",".join(received.rcpt_tos), str(message["Subject"]), text, html, message))
    return mails


def _plain(content: str) -> str:
    """Line ends as Python writes them, and Babel's (narrow) no-break spaces as spaces, for readable asserts."""
    return content.replace("\r\n", "\n").replace("\u202f", " ").replace("\xa0", " ")


@pytest.fixture
def plugin_app(aftercare_app, smtp_server):  # noqa: F811  (the imported fixture)
    """``plugin_app(*plugins, settings={name: {...}}, **shop)``: plugins enabled, mail to the sink."""
    controller, handler = smtp_server
    apps = []

    def make(*plugins: Any, settings: dict[str, dict[str, Any]] | None = None, **shop: Any):
        names = [getattr(p, "name", None) or p.__name__.rsplit(".", 1)[-1] for p in plugins]
        merged = {name: {"enabled": True} for name in names}
        for name, values in (settings or {}).items():
            merged[name] = {**merged.get(name, {}), **values}
        mail = {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": controller.port, "security": "none", "timeout": 5},
            **shop.pop("mail", {}),
        }
        app = aftercare_app(
            *plugins, settings=merged, shop={"sender": SENDER, "name": "Tienda Ñandú", "mail": mail, **shop}
        )
        app.sink = handler
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.plugins.channels()["send_email"].close()
