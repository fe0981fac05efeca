from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import threading
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from smtpserver import RecordingSmtpServer, free_port

from alerts.delivery import Delivery, DeliveryError, OutboxDelivery, SmtpDelivery
from alerts.render import RenderedDigest, build_message

if TYPE_CHECKING:
    from collections.abc import Iterator
    from email.message import EmailMessage
    from pathlib import Path

USERNAME = "digest-bot"
PASSWORD = "s3cret-Pa55word"


def _message(
    recipient: str = "analyst@example.org", message_id: str = "<m1@newswatch>"
) -> EmailMessage:
    digest = RenderedDigest(
        subject="newswatch: 1 new article",
        html="<p>ISIS left <mark>Palmyra</mark> – Zürich</p>",
        text="ISIS left *Palmyra* – Zürich",
    )
    return build_message(
        digest,
        sender="newswatch@example.org",
        recipient=recipient,
        message_id=message_id,
        date=dt.datetime(2016, 3, 30, 2, 0, tzinfo=dt.UTC),
    )


@pytest.fixture
def smtp_server() -> Iterator[RecordingSmtpServer]:
    with RecordingSmtpServer() as server:
        yield server


@pytest.fixture
def auth_smtp_server() -> Iterator[RecordingSmtpServer]:
    with RecordingSmtpServer(username=USERNAME, password=PASSWORD) as server:
        yield server


def _assert_same_digest(received: EmailMessage, sent: EmailMessage) -> None:
    assert received["Message-ID"] == sent["Message-ID"]
    assert received["Subject"] == sent["Subject"]
    assert received.get_content_type() == "multipart/alternative"
    parts = list(received.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    # SMTP carries CRLF line ends; the text is what counts.
    assert parts[0].get_content().splitlines() == ["ISIS left *Palmyra* – Zürich"]
    assert parts[1].get_content().splitlines() == ["<p>ISIS left <mark>Palmyra</mark> – Zürich</p>"]


def test_smtp_delivery_message_arrives_intact(smtp_server: RecordingSmtpServer) -> None:
    message = _message()
    delivery: Delivery = SmtpDelivery(smtp_server.host, smtp_server.port, timeout=5)
    delivery.send(message)

    [received] = smtp_server.messages
    assert received.envelope_from == "newswatch@example.org"
    assert received.envelope_to == ("analyst@example.org",)
    _assert_same_digest(received.message, message)


def test_smtp_login_succeeds_with_right_password(auth_smtp_server: RecordingSmtpServer) -> None:
    delivery = SmtpDelivery(
        auth_smtp_server.host,
        auth_smtp_server.port,
        username=USERNAME,
        password=PASSWORD,
        timeout=5,
    )
    delivery.send(_message())
    assert [m.message["Message-ID"] for m in auth_smtp_server.messages] == ["<m1@newswatch>"]


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param(USERNAME, "wrong-password", id="wrong-password"),
        pytest.param("someone-else", PASSWORD, id="wrong-user"),
        pytest.param(None, None, id="no-login"),
    ],
)
def test_smtp_login_refused_raises_and_hides_password(
    auth_smtp_server: RecordingSmtpServer, username: str | None, password: str | None
) -> None:
    delivery = SmtpDelivery(
        auth_smtp_server.host,
        auth_smtp_server.port,
        username=username,
        password=password,
        timeout=5,
    )
    with pytest.raises(DeliveryError) as caught:
        delivery.send(_message())

    assert caught.value.temporary is False
    assert f"{auth_smtp_server.host}:{auth_smtp_server.port}" in str(caught.value)
    assert "53" in str(caught.value)  # 530 auth required / 535 auth failed
    for secret in (PASSWORD, "wrong-password"):
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)
    assert auth_smtp_server.messages == []


def test_repr_hides_password() -> None:
    delivery = SmtpDelivery(
        "mail.example.org", 587, starttls=True, username=USERNAME, password=PASSWORD
    )
    assert PASSWORD not in repr(delivery)
    assert PASSWORD not in str(delivery)
    assert "password='***'" in repr(delivery)
    assert USERNAME in repr(delivery)


def test_server_down_raises_temporary_error() -> None:
    port = free_port()  # nothing listens here: the connection is refused
    delivery = SmtpDelivery("127.0.0.1", port, username=USERNAME, password=PASSWORD, timeout=5)
    with pytest.raises(DeliveryError, match=f"127.0.0.1:{port}") as caught:
        delivery.send(_message())
    assert caught.value.temporary is True
    assert "ConnectionRefusedError" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_451_then_success_on_retry(smtp_server: RecordingSmtpServer) -> None:
    smtp_server.fail_next(1)
    delivery = SmtpDelivery(smtp_server.host, smtp_server.port, timeout=5)
    message = _message()

    with pytest.raises(DeliveryError, match="451") as caught:
        delivery.send(message)
    assert caught.value.temporary is True
    assert smtp_server.messages == []

    delivery.send(message)
    [received] = smtp_server.messages
    _assert_same_digest(received.message, message)


def test_permanent_rejection_is_not_temporary(smtp_server: RecordingSmtpServer) -> None:
    smtp_server.fail_next(1, "554 5.7.1 Message rejected as spam")
    delivery = SmtpDelivery(smtp_server.host, smtp_server.port, timeout=5)
    with pytest.raises(DeliveryError, match=r"554 5\.7\.1 Message rejected as spam") as caught:
        delivery.send(_message())
    assert caught.value.temporary is False


def test_starttls_and_ssl_are_exclusive() -> None:
    with pytest.raises(ValueError, match="starttls or ssl"):
        SmtpDelivery("mail.example.org", 465, starttls=True, ssl=True)


# --- TLS --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed cert for 127.0.0.1, and a client context trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newswatch test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path = folder / "cert.pem"
    key_path = folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    return server_context, client_context


def test_starttls_with_login(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls_contexts
    with RecordingSmtpServer(
        username=USERNAME, password=PASSWORD, tls_context=server_context
    ) as server:
        delivery = SmtpDelivery(
            server.host,
            server.port,
            starttls=True,
            username=USERNAME,
            password=PASSWORD,
            ssl_context=client_context,
            timeout=5,
        )
        delivery.send(_message())
        assert len(server.messages) == 1


def test_implicit_ssl(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls_contexts
    with RecordingSmtpServer(ssl_context=server_context) as server:
        delivery = SmtpDelivery(
            server.host, server.port, ssl=True, ssl_context=client_context, timeout=5
        )
        delivery.send(_message())
        assert len(server.messages) == 1


def test_untrusted_certificate_fails(tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, _ = tls_contexts
    with RecordingSmtpServer(ssl_context=server_context) as server:
        # The default context trusts only the system CAs, not our self-signed cert.
        delivery = SmtpDelivery(server.host, server.port, ssl=True, timeout=5)
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            delivery.send(_message())
        assert server.messages == []


# --- Outbox -------------------------------------------------------------------------


def test_outbox_writes_parseable_eml(tmp_path: Path) -> None:
    folder = tmp_path / "outbox" / "nested"
    message = _message(recipient="Analyst <Analyst@Example.org>")
    delivery: Delivery = OutboxDelivery(folder)
    delivery.send(message)

    files = list(folder.iterdir())
    assert [path.suffix for path in files] == [".eml"]
    assert "-analyst_analyst@example.org-" in files[0].name
    parsed = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    _assert_same_digest(parsed, message)


def test_outbox_names_are_distinct_and_safe(tmp_path: Path) -> None:
    delivery = OutboxDelivery(tmp_path)
    delivery.send(_message(recipient="a@example.org", message_id="<one@newswatch>"))
    delivery.send(_message(recipient="../../etc/passwd", message_id="<two@newswatch>"))

    names = sorted(path.name for path in tmp_path.iterdir())
    assert len(names) == 2
    assert all(name.endswith(".eml") and "/" not in name for name in names)
    assert not any(path.suffix == ".tmp" for path in tmp_path.iterdir())
    assert not (tmp_path.parent / "etc").exists()


def test_outbox_removes_what_an_interrupted_write_left(tmp_path: Path) -> None:
    # A process killed mid-write leaves its hidden temporary file; the next send
    # removes it once it is old enough not to be another process's write in progress.
    abandoned = tmp_path / ".abandoned.tmp"
    abandoned.write_bytes(b"From: half a message")
    an_hour_ago = dt.datetime.now(dt.UTC).timestamp() - 3601
    os.utime(abandoned, (an_hour_ago, an_hour_ago))
    in_progress = tmp_path / ".in-progress.tmp"
    in_progress.write_bytes(b"From: being written")

    OutboxDelivery(tmp_path).send(_message())

    assert not abandoned.exists()
    assert in_progress.exists()
    assert len(list(tmp_path.glob("*.eml"))) == 1


def test_outbox_unwritable_folder_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the outbox folder should be", encoding="utf-8")
    with pytest.raises(DeliveryError, match="could not write"):
        OutboxDelivery(blocker / "outbox").send(_message())


def test_server_closing_mid_message_is_a_temporary_failure() -> None:
    """A server that hangs up during DATA: the send fails, nothing counts as sent."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def half_a_conversation() -> None:
        connection, _ = listener.accept()
        reader = connection.makefile("rb")
        connection.sendall(b"220 flaky.example ESMTP\r\n")
        for line in reader:
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                connection.sendall(b"250 flaky.example\r\n")
            elif command.startswith((b"MAIL", b"RCPT")):
                connection.sendall(b"250 OK\r\n")
            elif command == b"DATA":
                connection.sendall(b"354 go ahead\r\n")
                reader.readline()  # the first line of the message, then hang up
                break
        connection.close()
        listener.close()

    server = threading.Thread(target=half_a_conversation, daemon=True)
    server.start()
    with pytest.raises(DeliveryError) as caught:
        SmtpDelivery("127.0.0.1", port, timeout=5).send(_message())
    assert caught.value.temporary
    server.join(timeout=5)
