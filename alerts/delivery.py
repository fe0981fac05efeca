"""Delivery: hand a built digest message to an SMTP server or write it to a folder."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import re
import smtplib
import tempfile
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path
from ssl import SSLContext, create_default_context
from typing import TYPE_CHECKING, Protocol

from crawler.domain.addresses import needs_smtputf8

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = [
    "Delivery",
    "DeliveryError",
    "MessageTooLarge",
    "NeedsSmtpUtf8",
    "OutboxDelivery",
    "SmtpDelivery",
    "message_size",
]

logger = logging.getLogger(__name__)

_REDACTED = "***"
# A hidden temporary file older than this is left over from a process killed while
# writing it (a write takes milliseconds); the outbox removes it.
ABANDONED_TEMPORARY_SECONDS = 3600
_UNSAFE_FILENAME_RE = re.compile(r"[^a-z0-9._@+-]+")
# The headers smtplib's send_message takes the envelope's addresses from.
_ADDRESS_FIELDS = ("From", "Sender", "To", "Cc", "Bcc", "Resent-From", "Resent-To")


class DeliveryError(Exception):
    """Sending a message failed; the message says why and never holds a password.

    `temporary` is True when trying again later may succeed (a 4xx reply, a
    network error), False when the server refused for good (5xx, bad login).
    """

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


class MessageTooLarge(DeliveryError):
    """The server takes no message this large: its advertised ``SIZE`` (`limit`, in
    bytes) is smaller, or it refused the message with 552 (`limit` None: unknown).
    A smaller message may go through."""

    def __init__(self, message: str, *, size: int, limit: int | None) -> None:
        super().__init__(message, temporary=False)
        self.size = size
        self.limit = limit


class NeedsSmtpUtf8(DeliveryError):
    """An address's local part is not ASCII and the server does not offer SMTPUTF8
    (RFC 6531): no encoding makes such an address deliverable there."""

    def __init__(self, message: str) -> None:
        super().__init__(message, temporary=False)


class Delivery(Protocol):
    # The largest message the receiving end takes, once known (bytes), or None.
    size_limit: int | None

    def send(self, message: EmailMessage) -> None:
        """Deliver `message`; return only once it is delivered, else raise DeliveryError."""


def message_size(message: EmailMessage) -> int:
    """The size of `message` on the wire, lines ended by CRLF, as SMTP's SIZE counts it."""
    return len(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))


def _describe_smtp_error(error: smtplib.SMTPException | OSError) -> tuple[str, bool]:
    """A one-line reason for `error` and whether it is temporary."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = [
            f"{recipient}: {code} {_decode(reply)}"
            for recipient, (code, reply) in error.recipients.items()
        ]
        temporary = all(400 <= code < 500 for code, _ in error.recipients.values())
        return "all recipients refused (" + "; ".join(replies) + ")", temporary
    if isinstance(error, smtplib.SMTPResponseException):
        code = error.smtp_code
        reason = f"server replied {code} {_decode(error.smtp_error)}"
        if isinstance(error, smtplib.SMTPAuthenticationError):
            reason = "login refused: " + reason
        return reason, 400 <= code < 500
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return f"server does not support a required extension: {error}", False
    # Network trouble and disconnects: the server may well be back later.
    return f"{type(error).__name__}: {error}", True


def _decode(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return reply


class SmtpDelivery:
    """Sends messages through one SMTP server, one connection per message.

    `ssl` connects with implicit TLS (usually port 465); `starttls` upgrades a
    plain connection (usually port 587). Both verify the server's certificate
    with the system's default context unless `ssl_context` is given. With a
    `username`, the client logs in before sending.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool = False,
        ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        ssl_context: SSLContext | None = None,
    ) -> None:
        if starttls and ssl:
            raise ValueError("choose either starttls or ssl, not both")
        self.host = host
        self.port = port
        self.starttls = starttls
        self.ssl = ssl
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context
        # The server's advertised SIZE, learnt at the first connection (RFC 1870).
        self.size_limit: int | None = None

    def __repr__(self) -> str:
        password = _REDACTED if self._password else None
        return (
            f"{type(self).__name__}(host={self.host!r}, port={self.port!r}, "
            f"starttls={self.starttls!r}, ssl={self.ssl!r}, username={self.username!r}, "
            f"password={password!r}, timeout={self.timeout!r})"
        )

    def _context(self) -> SSLContext:
        return self._ssl_context if self._ssl_context is not None else create_default_context()

    def _connect(self) -> smtplib.SMTP:
        if self.ssl:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context()
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _redact(self, text: str) -> str:
        return text.replace(self._password, _REDACTED) if self._password else text

    def send(self, message: EmailMessage) -> None:
        """Send `message` to its To/Cc/Bcc recipients.

        Returns only after the server accepted the message for every recipient.
        Raises DeliveryError on any SMTP or network failure, including a
        partial refusal, since a digest missing a recipient is not delivered.
        """
        try:
            refused = self._send(message)
        except (MessageTooLarge, NeedsSmtpUtf8):
            raise
        except (smtplib.SMTPException, OSError) as error:
            if getattr(error, "smtp_code", None) == 552:  # "exceeded storage allocation"
                size = message_size(message)
                raise MessageTooLarge(
                    self._redact(
                        f"SMTP delivery via {self.host}:{self.port} failed: the "
                        f"server refused a message of {size:,} bytes as too large "
                        f"({_describe_smtp_error(error)[0]})"
                    ),
                    size=size,
                    limit=self.size_limit,
                ) from None
            reason, temporary = _describe_smtp_error(error)
            raise DeliveryError(
                self._redact(f"SMTP delivery via {self.host}:{self.port} failed: {reason}"),
                temporary=temporary,
            ) from None  # the chained exception could carry the credentials
        if refused:
            replies = "; ".join(
                f"{recipient}: {code} {_decode(reply)}"
                for recipient, (code, reply) in refused.items()
            )
            raise DeliveryError(
                f"SMTP delivery via {self.host}:{self.port} failed: recipients refused ({replies})",
                temporary=all(400 <= code < 500 for code, _ in refused.values()),
            )

    def _send(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        client = self._connect()
        try:
            if self.starttls:
                client.starttls(context=self._context())
            if self.username is not None:
                client.login(self.username, self._password or "")
            client.ehlo_or_helo_if_needed()
            self.size_limit = _advertised_size(client)
            size = message_size(message)
            if self.size_limit is not None and size > self.size_limit:
                raise MessageTooLarge(
                    f"SMTP delivery via {self.host}:{self.port} not tried: the message is "
                    f"{size:,} bytes and the server takes at most {self.size_limit:,} (SIZE)",
                    size=size,
                    limit=self.size_limit,
                )
            return self._send_message(client, message)
        finally:
            _close_quietly(client)

    def _send_message(
        self, client: smtplib.SMTP, message: EmailMessage
    ) -> dict[str, tuple[int, bytes]]:
        """Hand over ``message``, with SMTPUTF8 when an address needs it (smtplib's
        ``send_message`` asks for it then); raises NeedsSmtpUtf8 first when the
        server does not offer it, naming the address, rather than sending words
        no server delivers."""
        addresses = [
            address
            for _name, address in getaddresses(
                [str(value) for field in _ADDRESS_FIELDS for value in message.get_all(field, [])]
            )
        ]
        international = [address for address in addresses if needs_smtputf8(address)]
        if international and not client.has_extn("smtputf8"):
            raise NeedsSmtpUtf8(
                f"SMTP delivery via {self.host}:{self.port} not tried: "
                f"{', '.join(international)} has a non-ASCII local part, which only a "
                f"server offering SMTPUTF8 takes, and this one does not offer it "
                f"(ask its operator, or use another address)"
            )
        return client.send_message(message)


def _advertised_size(client: smtplib.SMTP) -> int | None:
    """The server's SIZE limit in bytes; None when it names none (or 0: no limit)."""
    value = client.esmtp_features.get("size", "").strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        return None
    return int(value) or None


def _close_quietly(client: smtplib.SMTP) -> None:
    """QUIT, ignoring errors: once DATA is accepted, a failed QUIT must not fail the send."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def _safe_filename_part(text: str, limit: int = 64) -> str:
    cleaned = _UNSAFE_FILENAME_RE.sub("_", text.strip().lower()).strip("._")
    return cleaned[:limit] or "unknown"


class OutboxDelivery:
    """Writes each message as an .eml file into a folder instead of sending it.

    For trying out rules and templates, and for setups where another program
    picks the files up.
    """

    size_limit: int | None = None  # a file has no size limit but the budget's

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(folder={str(self.folder)!r})"

    def path_for(self, message: EmailMessage, now: datetime) -> Path:
        """`<folder>/<UTC timestamp>-<recipient>-<message-id hash>.eml` for `message`."""
        recipient = _safe_filename_part(str(message.get("To", "")))
        message_id = str(message.get("Message-ID", ""))
        identity = message_id.encode() if message_id else message.as_bytes()
        digest = hashlib.sha256(identity).hexdigest()[:12]
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return self.folder / f"{stamp}-{recipient}-{digest}.eml"

    def send(self, message: EmailMessage) -> None:
        """Write `message` to a new .eml file in the folder, creating the folder.

        The file appears complete or not at all (written to a temporary file,
        then renamed). Raises DeliveryError when the file cannot be written.

        A message whose file is already in the folder (same recipient, same
        Message-ID) is not written again: an earlier attempt wrote it and the
        process died before recording that. So the outbox holds each digest once.
        """
        target = self.path_for(message, datetime.now(UTC))
        if str(message.get("Message-ID", "")) and self._written_before(target):
            logger.info(
                "outbox: %s to %s is already in %s; not written again",
                message["Message-ID"],
                message["To"],
                self.folder,
            )
            return
        self._remove_abandoned_temporaries()
        temporary_path: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            descriptor, temporary_path = tempfile.mkstemp(
                dir=self.folder, prefix=".", suffix=".tmp"
            )
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(message.as_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary_path, target)
        except OSError as error:
            if temporary_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary_path)
            raise DeliveryError(
                f"could not write {target}: {error.strerror or error}", temporary=True
            ) from error

    def _remove_abandoned_temporaries(self) -> None:
        """Delete the hidden ``.*.tmp`` files that a process killed mid-write left
        behind (older than ABANDONED_TEMPORARY_SECONDS: one being written now by
        another process is younger). They were never messages: the message they
        held was not recorded as sent, so it is written again in full."""
        cutoff = datetime.now(UTC).timestamp() - ABANDONED_TEMPORARY_SECONDS
        try:
            leftovers = list(self.folder.glob(".*.tmp"))
        except OSError:
            return
        for path in leftovers:
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    logger.info("outbox: removed %s, left by an interrupted write", path.name)

    def _written_before(self, target: Path) -> bool:
        """True when a file for the same recipient and Message-ID is in the folder
        (names differ only in their timestamp, the part before the first dash)."""
        same_message = target.name.split("-", 1)[1]
        try:
            return any(True for _ in self.folder.glob(f"*-{glob.escape(same_message)}"))
        except OSError:
            return False
