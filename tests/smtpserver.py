"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, recording what it receives.

Use it directly::

    with RecordingSmtpServer(username="u", password="p") as server:
        ...  # send to server.host, server.port
        assert server.messages[0].message["Subject"] == "..."

or through the `smtp_server` generator, which conftest (or a test module) can
wrap with `pytest.fixture`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator
    from email.message import EmailMessage
    from types import TracebackType

    from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["ReceivedMessage", "RecordingSmtpServer", "free_port", "smtp_server"]

HOST = "127.0.0.1"
TEMPORARY_FAILURE = "451 4.3.0 Temporary failure, try again later"


def free_port(host: str = HOST) -> int:
    """A TCP port on `host` that nothing listens on right now.

    aiosmtpd's Controller connects to its own port to check that it started,
    so it needs the real port up front and cannot be given port 0.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the server accepted, with its SMTP envelope."""

    envelope_from: str
    envelope_to: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    mail_options: tuple[str, ...] = ()  # MAIL FROM's parameters, e.g. SMTPUTF8


class _RecordingHandler:
    """aiosmtpd handler: fails DATA while failures are queued, else records the message."""

    def __init__(self, *, require_auth: bool) -> None:
        self.lock = threading.Lock()
        self.messages: list[ReceivedMessage] = []
        self.failures: list[str] = []
        self.data_delay = 0.0  # seconds to wait before answering DATA (a slow server)
        self.require_auth = require_auth

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # Enforced here rather than with aiosmtpd's auth_required, which warns on
        # every connection when AUTH is allowed without TLS (fine on loopback).
        if self.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self.lock:
            if self.failures:
                return self.failures.pop(0)
        raw = envelope.original_content or b""
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        received = ReceivedMessage(
            envelope_from=envelope.mail_from or "",
            envelope_to=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=raw,
            mail_options=tuple(envelope.mail_options),
        )
        with self.lock:
            self.messages.append(received)
        return "250 2.0.0 Message accepted"


class _Authenticator:
    """Accepts exactly one username/password pair, over any mechanism aiosmtpd offers."""

    def __init__(self, username: str, password: str) -> None:
        self._expected = (username.encode(), password.encode())

    def __call__(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            success = (auth_data.login, auth_data.password) == self._expected
            return AuthResult(success=success, handled=False)
        return AuthResult(success=False, handled=False)


class RecordingSmtpServer:
    """An aiosmtpd server on 127.0.0.1 and a free port that keeps what it receives.

    With `username`/`password` the server requires AUTH (over plain TCP, as
    this is loopback only). `tls_context` offers STARTTLS; `ssl_context` makes
    the whole connection TLS (SMTPS); `size_limit` is the SIZE it advertises and
    enforces (aiosmtpd's own default is 33,554,432 bytes); `smtputf8` offers SMTPUTF8
    (RFC 6531: non-ASCII addresses and UTF-8 headers). `fail_next(n)` makes the next `n`
    messages fail at DATA with a 451 reply.
    """

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        ssl_context: ssl.SSLContext | None = None,
        size_limit: int | None = None,
        smtputf8: bool = False,
    ) -> None:
        self.host = HOST
        self.port = free_port()
        self._handler = _RecordingHandler(require_auth=username is not None)
        options: dict[str, Any] = {}
        if username is not None:
            options.update(
                authenticator=_Authenticator(username, password or ""),
                auth_require_tls=False,
            )
        if tls_context is not None:
            options["tls_context"] = tls_context
        if size_limit is not None:
            # Advertised as SIZE in EHLO; a larger message is refused with 552.
            options["data_size_limit"] = size_limit
        self._controller = Controller(
            self._handler,
            hostname=self.host,
            port=self.port,
            ssl_context=ssl_context,
            enable_SMTPUTF8=smtputf8,
            **options,
        )
        self._running = False

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of the messages accepted so far, oldest first."""
        with self._handler.lock:
            return list(self._handler.messages)

    def delay_data(self, seconds: float) -> None:
        """Wait this long before answering each message's DATA (0 to stop)."""
        self._handler.data_delay = seconds

    def fail_next(self, count: int, reply: str = TEMPORARY_FAILURE) -> None:
        """Answer the next `count` messages with `reply` (a 4xx by default) instead of 250."""
        with self._handler.lock:
            self._handler.failures.extend([reply] * count)

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        if self._running:
            self._controller.stop()
            self._running = False

    def __enter__(self) -> RecordingSmtpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def smtp_server() -> Iterator[RecordingSmtpServer]:
    """Fixture body: a started server without AUTH, stopped afterwards.

    Wrap it where it is needed: ``smtp_server = pytest.fixture(smtpserver.smtp_server)``.
    """
    with RecordingSmtpServer() as server:
        yield server
