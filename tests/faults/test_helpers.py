"""The fault-injection helpers themselves (aftercare.testing): TcpProxy and FaultySmtpSink."""

import smtplib
import socket

import pytest

from aftercare.testing import FaultySmtpSink, TcpProxy

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]  # one test process runs them in turn

MESSAGE = "X-Aftercare-Key: {key}\r\nSubject: hello\r\n\r\nhello\r\n"


def test_the_proxy_forwards_cuts_refuses_and_comes_back_on_the_same_port():
    with FaultySmtpSink() as sink, TcpProxy(("127.0.0.1", sink.port)) as proxy:
        client = smtplib.SMTP("127.0.0.1", proxy.port, timeout=5)
        client.sendmail("shop@example.com", ["ana@example.com"], MESSAGE.format(key="k1"))
        assert sink.keys() == {"k1": 1}

        assert proxy.cut() == 2  # both ends of the one connection
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()

        port = proxy.port
        proxy.stop_accepting()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)

        proxy.resume()
        assert proxy.port == port
        with smtplib.SMTP("127.0.0.1", proxy.port, timeout=5) as again:
            again.sendmail("shop@example.com", ["ana@example.com"], MESSAGE.format(key="k2"))
        assert sink.keys() == {"k1": 1, "k2": 1}


def test_the_sink_refuses_with_the_reply_it_is_given_and_can_drop_the_connection_after_data():
    with FaultySmtpSink() as sink, smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
        sink.reply = "451 4.3.0 try again later"
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("shop@example.com", ["ana@example.com"], MESSAGE.format(key="k1"))
        assert refused.value.smtp_code == 451 and sink.refused == 1 and not sink.keys()

        sink.reply, sink.close_after_data = None, True
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.sendmail("shop@example.com", ["ana@example.com"], MESSAGE.format(key="k2"))
        assert sink.keys() == {"k2": 1}  # it reached the relay, though the client never heard so


def test_a_stopped_sink_starts_again_on_its_port():
    sink = FaultySmtpSink().start()
    port = sink.port
    sink.stop()
    assert sink.port_if_running is None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    sink.start(sink.last_port)
    try:
        assert sink.port == port
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            assert client.noop()[0] == 250
    finally:
        sink.stop()
