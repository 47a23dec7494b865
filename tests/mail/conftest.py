"""A real SMTP server on 127.0.0.1 (aiosmtpd), a test plugin that mails, and an app wired to both."""

from __future__ import annotations

import email
import socket
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from aftercare import hookimpl


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)


@dataclass
class SinkHandler:
    """Keeps every message; answers RCPT for the addresses in ``refuse`` with the given reply."""

    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.peer))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


class Shopmail:
    """Marketing mail on payment, a transactional one on shipping."""

    name = "shopmail"

    @hookimpl
    def on_order_paid(self, event, ctx):
        ctx.send_email("thank_you", context={"code": "GRACIAS-7Q2XM"})

    @hookimpl
    def on_shipped(self, event, ctx):
        ctx.send_email("how_was_it", transactional=True, key="shipped")


SENDER = "Tienda Ñandú <hola@tienda.example>"


@pytest.fixture
def mail_app(aftercare_app, smtp_server):
    """``mail_app(**shop)``: the mail channel and :class:`Shopmail`, sending to the test SMTP server."""
    controller, _handler = smtp_server
    apps = []

    def make(**shop):
        mail = {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": controller.port, "security": "none", "timeout": 5},
            **shop.pop("mail", {}),
        }
        app = aftercare_app(Shopmail(), shop={"sender": SENDER, "name": "Tienda Ñandú", "mail": mail, **shop})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.plugins.channels()["send_email"].close()
