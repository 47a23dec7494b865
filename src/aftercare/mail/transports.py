"""How a finished message leaves: an SMTP relay, or an .eml file in the outbox folder.

SMTP errors become :class:`PlatformError`\\ s the queue understands: a 4xx
reply, a dropped connection or a timeout is transient (the queue retries with
backoff); a 5xx reply is permanent. A 5xx refusal of the *recipient* raises
:class:`RecipientRefused`, which the channel turns into a bounce on the
suppression list.

One drop is not an error: the relay closing the connection (or the
connection dropping, or no reply coming) after the message's final "." went
out. The relay may have accepted the message and only its "250" was lost, so
sending it again could deliver it twice; the send counts as done, unconfirmed
(``confirmed: false`` and the reason in its result), and is not repeated.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aftercare.config.mail import SmtpSettings
from aftercare.mail.message import envelope_recipient, envelope_sender
from aftercare.platform import PlatformError


class RecipientRefused(PlatformError):
    """The server refused the address for good (5xx to RCPT TO): a hard bounce."""

    def __init__(self, address: str, code: int, text: str) -> None:
        super().__init__(f"SMTP {code} for {address}: {text}", transient=False)
        self.address = address
        self.code = code


#: The reasons of a send that went out and was not answered (a done action's record keeps them).
UNCONFIRMED_CLOSED = "sent, unconfirmed: the relay closed the connection after the message; not resent"
UNCONFIRMED_SILENT = "sent, unconfirmed: the relay did not answer within {timeout:g} s after the message; not resent"


class _WatchesTheFinalDot:
    """An SMTP session that knows whether the current message's final "." went out: from then
    on the relay may hold the message, whatever becomes of its reply."""

    message_sent = False
    _in_data = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)  # type: ignore[misc]
        finally:
            self._in_data = False

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        if self._in_data and isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.message_sent = True


class _Smtp(_WatchesTheFinalDot, smtplib.SMTP):
    pass


class _SmtpSsl(_WatchesTheFinalDot, smtplib.SMTP_SSL):
    pass


_Session = _Smtp | _SmtpSsl


class OutboxTransport:
    """Writes each message to ``folder`` as an .eml file any mail client opens."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage, filename: str) -> dict[str, Any]:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / filename
        # Write then rename: a reader never sees half a message.
        fd, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(message.as_bytes())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return {"transport": self.name, "path": str(path)}


class SmtpTransport:
    """One relay. Keeps its connection open between messages so a batch of due mail
    goes over one session; renews it after ``keepalive`` idle seconds or
    ``max_messages_per_connection`` messages. Thread-safe: sends are serialised."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._conn: _Session | None = None
        self._sent_on_conn = 0
        self._last_used = 0.0
        self._lock = threading.Lock()
        self.connections_opened = 0

    def send(self, message: EmailMessage) -> dict[str, Any]:
        recipient = envelope_recipient(message)
        with self._lock:
            conn: _Session | None = None
            try:
                conn = self._connection()
                conn.message_sent = False
                refused = conn.send_message(message, from_addr=envelope_sender(message), to_addrs=[recipient])
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients.get(recipient, (550, b"refused"))
                raise self._reply_error(code, text, recipient) from None
            except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed...
                if exc.smtp_code in (421, -1):  # the server is closing the session
                    self._drop()
                raise self._reply_error(exc.smtp_code, exc.smtp_error, "") from None
            except (smtplib.SMTPException, OSError) as exc:  # disconnected, timeout, TLS, refused connection
                self._drop()
                if conn is not None and conn.message_sent:  # after the final ".": the relay may have it
                    silent = isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
                    reason = UNCONFIRMED_SILENT.format(timeout=self.settings.timeout) if silent else UNCONFIRMED_CLOSED
                    return {"transport": self.name, "relay": self._where(), "confirmed": False, "reason": reason}
                raise PlatformError(f"SMTP {self._where()}: {type(exc).__name__}: {exc}", transient=True) from None
            self._sent_on_conn += 1
            self._last_used = time.monotonic()
        if refused:  # only one recipient, so a partial refusal cannot happen; keep the server's word anyway
            raise PlatformError(f"SMTP refused {refused}", transient=False)
        return {"transport": self.name, "relay": self._where()}

    def close(self) -> None:
        with self._lock:
            self._close()

    def check_live(self) -> list[str]:
        """Connect, EHLO, STARTTLS and log in as a send would, then QUIT; one line per problem.

        ``aftercare check --live`` runs it so a wrong port, a relay without
        STARTTLS, a certificate that does not verify or a refused login shows
        before the first customer mail waits in the retry queue.
        """
        s, where = self.settings, f"SMTP {self._where()}"
        try:
            conn = self._open()
        except ssl.SSLError as exc:
            return [f"{where}: TLS failure ({s.security}): {exc.reason or exc}"]
        except smtplib.SMTPNotSupportedError as exc:
            if "STARTTLS" in str(exc):
                return [f"{where}: the server does not offer STARTTLS (security = 'starttls'); is the port right?"]
            return [f"{where}: the server offers no login (AUTH) but username is set"]
        except smtplib.SMTPAuthenticationError as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            return [f"{where}: login refused for {s.username!r}: {exc.smtp_code} {text}"]
        except smtplib.SMTPResponseException as exc:
            return [f"{where}: the server answered {exc.smtp_code}: {exc.smtp_error!r}"]
        except ConnectionRefusedError:
            return [f"{where}: connection refused (wrong host or port, or the relay is down)"]
        except TimeoutError:
            return [f"{where}: no answer within {s.timeout:g} s"]
        except (smtplib.SMTPException, OSError) as exc:
            return [f"{where}: {type(exc).__name__}: {exc}"]
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.quit()
        return []

    # -- internals ---------------------------------------------------------
    def _connection(self) -> _Session:
        s = self.settings
        if self._conn is not None:
            stale = time.monotonic() - self._last_used > s.keepalive
            if stale or self._sent_on_conn >= s.max_messages_per_connection or not self._alive(self._conn):
                self._close()
        if self._conn is None:
            self._conn = self._open()
            self._sent_on_conn = 0
            self.connections_opened += 1
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
        self._drop()

    def _alive(self, conn: smtplib.SMTP) -> bool:
        """A reused connection may have been closed by the server while idle: ask before sending."""
        try:
            return conn.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def _open(self) -> _Session:
        s = self.settings
        context = ssl.create_default_context(cafile=s.ca_file or None)
        conn: _Session
        if s.security == "tls":
            conn = _SmtpSsl(s.host, s.effective_port, timeout=s.timeout, context=context)
        else:
            conn = _Smtp(s.host, s.effective_port, timeout=s.timeout)
        try:
            conn.ehlo()
            if s.security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if s.username:
                assert s.password is not None
                conn.login(s.username, s.password.get_secret_value())
        except BaseException:
            conn.close()
            raise
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.effective_port}"

    def _reply_error(self, code: int, text: bytes | str, recipient: str) -> PlatformError:
        message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        if recipient and 500 <= code < 600:
            return RecipientRefused(recipient, code, message)
        # 4xx is "try again later"; an authentication failure (535) is a config
        # problem the merchant can fix while the queue keeps retrying.
        transient = not (500 <= code < 600) or code in (530, 534, 535)
        return PlatformError(f"SMTP {code} from {self._where()}: {message}", transient=transient)
