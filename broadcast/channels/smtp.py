"""SMTP: real mail through the council's relay, STARTTLS or implicit TLS, a plain-text and an HTML part.

The standard library's smtplib runs in a small pool of threads, each send on one of a few kept-open connections.
Every message carries a Message-ID made from the delivery key, so a resend has the same one and mail systems
that dedupe by Message-ID show it once. 4xx answers are retried; 5xx are not.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from typing import TYPE_CHECKING, Any

from broadcast.channels.base import ChannelError, Receipt
from broadcast.channels.lists import ListChannel

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor
    from email.message import EmailMessage

    import httpx

    from broadcast.channels.base import Post
    from broadcast.prepare.recipients import Recipient

SECURITY = {"starttls": 587, "tls": 465, "none": 25}
IDLE_CHECK = 10.0  # seconds unused after which a connection is checked with NOOP before it carries a message
LOCAL = ("127.0.0.1", "localhost", "::1")
AUTH_HINT = ("check the relay's user name and password, put them in the environment variables named in the "
             "channel file, then resend")


class Smtp(ListChannel):
    kind = "smtp"
    variant = "body"
    unit = "characters (email)"
    media = ("email",)
    checkable = False
    idempotent = False
    bulk_concurrency = 4  # connections to the relay; settings.connections overrides it
    default_rate = 0.0

    def __init__(self, config: Any, page_url: str):
        super().__init__(config, page_url)
        from broadcast.errors import ConfigError

        self.security = str(self.settings.get("security", "starttls"))
        if self.security not in SECURITY:
            raise ConfigError(config.path, "settings.security", f"unknown value {self.security!r}",
                              "use starttls (port 587) or tls (port 465)")
        self.host = self.setting("host")
        if self.security == "none" and self.host not in LOCAL:
            raise ConfigError(config.path, "settings.security", "plain SMTP would send personal data in clear",
                              "use starttls or tls; none is only for a test server on 127.0.0.1")
        self.port = int(self.settings.get("port", SECURITY[self.security]))
        self.sender = self.setting("from")
        self.connections = int(self._number("connections", self.bulk_concurrency, whole=True))
        self.concurrency_limit = self.connections
        self._idle: list[tuple[smtplib.SMTP, float]] = []
        self._pool: ThreadPoolExecutor | None = None

    # -- connections --------------------------------------------------------------------------------
    def _tls(self) -> ssl.SSLContext:
        ca_file = self.settings.get("ca_file")
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def _connect(self) -> smtplib.SMTP:
        """A logged-in connection; errors say whether trying again could help (nothing was sent yet)."""
        timeout = float(self.settings.get("timeout", 30))
        try:
            if self.security == "tls":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout,
                                                            context=self._tls())
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=timeout)
                if self.security == "starttls":
                    connection.ehlo()
                    if not connection.has_extn("starttls"):
                        raise ChannelError(f"{self.name}: {self.host} does not offer STARTTLS", transient=False,
                                           hint="set security = \"tls\" (port 465) if the relay takes implicit TLS")
                    connection.starttls(context=self._tls())
            if self.config.secrets.get("username"):
                connection.login(self.secret("username"), self.secret("password"))
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(f"{self.name}: the relay refused the login ({exc.smtp_code})", transient=False,
                               status=exc.smtp_code, hint=AUTH_HINT) from None
        except smtplib.SMTPNotSupportedError:
            raise ChannelError(f"{self.name}: {self.host} does not offer a login (AUTH) on this connection",
                               transient=False, hint="check the port and security with the relay's "
                               "administrator, or leave out username and password if it relays by address") from None
        except ssl.SSLCertVerificationError as exc:
            raise ChannelError(f"{self.name}: {self.host}'s certificate is not trusted ({exc.verify_message})",
                               transient=False, hint="set ca_file to the relay's CA certificate") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"{self.name}: cannot connect to {self.host}:{self.port} ({type(exc).__name__}: "
                               f"{exc})", transient=True, hint="check the relay and the network") from None
        return connection

    async def open(self, client: httpx.AsyncClient) -> None:
        from concurrent.futures import ThreadPoolExecutor

        # Threads, not the default executor: concurrency comes from the relay's limits, never the CPU count.
        self._pool = ThreadPoolExecutor(max_workers=self.connections, thread_name_prefix=f"smtp-{self.name}")

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            try:
                connection.quit()
            except (OSError, smtplib.SMTPException):
                connection.close()
        if self._pool:
            self._pool.shutdown(wait=False)
            self._pool = None

    # -- sending ----------------------------------------------------------------------------------
    def message(self, post: Post, recipient: Recipient, key: str) -> EmailMessage:
        """The email: both parts, a Message-ID from the delivery key, marked as automatic."""
        from email.message import EmailMessage
        from email.utils import formataddr, formatdate

        email = self.email_of(post).extra
        message = EmailMessage()
        name = self.settings.get("from_name")
        message["From"] = formataddr((str(name), self.sender)) if name else self.sender
        message["To"] = recipient.contact
        message["Subject"] = email["subject"]
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{key}@{self.sender.rpartition('@')[2]}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a warning
        message.set_content(email["text"], cte="quoted-printable")
        message.add_alternative(email["html"], subtype="html", cte="quoted-printable")
        message["Content-Language"] = post.language  # after the parts: set_content clears Content-* headers
        return message

    def _connection(self) -> smtplib.SMTP:
        """A kept-open connection still alive (relays drop idle ones), or a new one."""
        while self._idle:
            connection, used = self._idle.pop()
            if time.monotonic() - used < IDLE_CHECK:
                return connection
            try:
                connection.noop()
                return connection
            except (OSError, smtplib.SMTPException):
                connection.close()
        return self._connect()

    def _send(self, message: EmailMessage) -> None:
        connection = self._connection()
        try:
            connection.send_message(message)
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code != 421:  # 421: the relay is closing this session
                self._idle.append((connection, time.monotonic()))  # only this message was refused
            raise _refused(self.name, exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPRecipientsRefused as exc:
            self._idle.append((connection, time.monotonic()))
            code, why = next(iter(exc.recipients.values()))
            raise _refused(self.name, code, why) from None
        except (OSError, smtplib.SMTPException) as exc:
            connection.close()
            raise ChannelError(f"{self.name}: the connection broke while sending ({type(exc).__name__})",
                               transient=True, unknown_outcome=True) from None
        self._idle.append((connection, time.monotonic()))

    async def deliver(self, post: Post, recipient: Recipient, client: httpx.AsyncClient, key: str) -> Receipt:
        message = self.message(post, recipient, key)
        await asyncio.get_running_loop().run_in_executor(self._pool, self._send, message)
        return Receipt(remote_id=str(message["Message-ID"]))

    async def check(self, client: httpx.AsyncClient) -> str:
        connection = await asyncio.to_thread(self._connect)
        try:
            await asyncio.to_thread(connection.noop)
        finally:
            await asyncio.to_thread(connection.quit)
        who = f" as {self.secret('username')}" if self.config.secrets.get("username") else ""
        return f"relay {self.host}:{self.port} ({self.security}){who}, from {self.sender}"


def _refused(channel: str, code: int, why: bytes | str) -> ChannelError:
    text = why.decode("utf-8", "replace") if isinstance(why, bytes) else str(why)
    transient = 400 <= code < 500
    return ChannelError(f"{channel}: the relay answered {code} {text}", transient=transient, status=code,
                        hint="a retry may help" if transient else "a retry will not help: check the address")
