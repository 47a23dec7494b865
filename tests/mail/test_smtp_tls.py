"""SMTP over STARTTLS and implicit TLS, against aiosmtpd on 127.0.0.1 with a certificate made here.

The certificate is signed by a throwaway authority; ``mail.smtp.ca_file`` points the
transport at it, as a merchant would for a relay with a private CA. Without it the
certificate does not verify and nothing is sent in clear text instead.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aftercare.dispatch import Dispatcher, execute_due
from aftercare.mail.transports import SmtpTransport
from aftercare.testing import make_event, make_order

from .conftest import SENDER, Shopmail, SinkHandler, free_port


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """(CA certificate file, server certificate chain file, server key file) for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("aftercare test CA")).issuer_name(_name("aftercare test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_file, chain_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, chain_file, key_file


class TlsSinkHandler(SinkHandler):
    """Keeps, beside each message, whether its session was encrypted."""

    def __init__(self):
        super().__init__()
        self.encrypted: list[bool] = []

    async def handle_DATA(self, server, session, envelope):
        # STARTTLS leaves its mark on the session; implicit TLS only on the transport.
        self.encrypted.append(session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None)
        return await super().handle_DATA(server, session, envelope)


def _server_context(certificates) -> ssl.SSLContext:
    _ca, chain, key = certificates
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    return context


@pytest.fixture
def starttls_server(certificates):
    handler = TlsSinkHandler()
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(),
        tls_context=_server_context(certificates), require_starttls=True,
    )  # fmt: skip
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.fixture
def implicit_tls_server(certificates):
    handler = TlsSinkHandler()
    # TLS from the first byte, port 465 style
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=_server_context(certificates))
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def tls_app(aftercare_app, port: int, security: str, ca_file: str):
    smtp = {"host": "127.0.0.1", "port": port, "security": security, "timeout": 5, "ca_file": ca_file}
    app = aftercare_app(Shopmail(), shop={"sender": SENDER, "mail": {"transport": "smtp", "smtp": smtp}})
    return app


def check_live(app) -> list[str]:
    """What ``aftercare check --live`` says of the shop's relay."""
    return SmtpTransport(app.mail_settings("test").smtp).check_live()


def send_one(app) -> None:
    Dispatcher(app).dispatch(make_event("order_paid", make_order()))
    execute_due(app)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_goes_encrypted_to_a_relay_whose_certificate_verifies(aftercare_app, certificates, security, request):
    server = "starttls_server" if security == "starttls" else "implicit_tls_server"
    controller, handler = request.getfixturevalue(server)
    app = tls_app(aftercare_app, controller.port, security, str(certificates[0]))
    try:
        assert check_live(app) == []
        send_one(app)
    finally:
        app.plugins.channels()["send_email"].close()
    (received,) = handler.received
    assert handler.encrypted == [True]
    assert received.rcpt_tos == ["ana@example.com"]


def test_a_certificate_that_does_not_verify_sends_nothing_and_says_why(aftercare_app, starttls_server):
    controller, handler = starttls_server
    app = tls_app(aftercare_app, controller.port, "starttls", "")  # the system's CAs do not know ours
    try:
        (problem,) = check_live(app)
        send_one(app)
    finally:
        app.plugins.channels()["send_email"].close()
    assert problem.startswith(f"SMTP 127.0.0.1:{controller.port}: TLS failure (starttls): CERTIFICATE_VERIFY_FAILED")
    assert handler.received == []
    (mail,) = app.store.list_actions()
    assert mail.state.value == "due" and "CERTIFICATE_VERIFY_FAILED" in mail.reason  # retried later, not sent in clear


def test_a_relay_that_requires_starttls_refuses_a_client_that_does_not_use_it(aftercare_app, starttls_server):
    controller, handler = starttls_server  # require_starttls: 530 to MAIL FROM before STARTTLS
    app = tls_app(aftercare_app, controller.port, "none", "")
    try:
        send_one(app)
    finally:
        app.plugins.channels()["send_email"].close()
    assert handler.received == []
    (mail,) = app.store.list_actions()
    assert mail.state.value == "due" and "530" in mail.reason
