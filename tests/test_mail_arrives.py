"""Mail that arrives: internationalised addresses (IDNA domains, SMTPUTF8 when the
server offers it, one clear error when it does not), the unsubscribe link in the
footer whatever its scheme, and the "view in browser" link."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from email import message_from_string, policy
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from conftest import write_config
from smtpserver import RecordingSmtpServer, free_port
from test_web import running_service

from alerts.delivery import OutboxDelivery, SmtpDelivery
from alerts.digest import send_pending_digests
from alerts.rules import RuleMatch
from crawler.domain.addresses import AddressError, needs_smtputf8, transport_address
from crawler.domain.config import Config, ConfigError, load_config
from crawler.domain.items import ArticleItem, ExtractedArticle
from crawler.orchestration.ingest import ingest_article
from crawler.orchestration.retention import purge_old_articles
from crawler.storage.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NOW = datetime(2024, 2, 14, 9, 0, tzinfo=UTC)
ZOE = "zoë@exämple.com"
ZOE_ON_THE_WIRE = "zoë@xn--exmple-cua.com"
ANA = "ana@exämple.com"  # an ASCII local part: any server takes it once the domain is IDNA


def _config(*recipients: str, **digest: object) -> Config:
    return Config.model_validate(
        {
            "sources": [{"name": "wire", "feed": "https://wire.example/rss"}],
            "rules": [{"name": "syria", "keywords": ["Palmyra"]}],
            "digest": {"sender": "news@example.org", **digest},
            "recipients": [{"email": email, "rules": ["syria"]} for email in recipients],
        }
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.from_url(database_url)
    store.upgrade()
    store.sync_sources(_config().sources)
    article = ExtractedArticle(
        url="https://wire.example/1",
        title="Palmyra retaken",
        text="Troops retook Palmyra on Sunday. " * 5,
        published=NOW,
    )
    ingest_article(
        store,
        ArticleItem("wire", article.url, article),
        [RuleMatch("syria", ("Palmyra",))],
        stories=None,
    )
    yield store
    store.close()


@pytest.mark.parametrize(
    ("address", "on_the_wire", "smtputf8"),
    [
        (ZOE, ZOE_ON_THE_WIRE, True),
        (ANA, "ana@xn--exmple-cua.com", False),
        ("ana@example.com", "ana@example.com", False),
        ("ana@[192.0.2.1]", "ana@[192.0.2.1]", False),
        ("иван@пример.рф", "иван@xn--e1afmkfd.xn--p1ai", True),
    ],
    ids=["non-ascii-local-part", "idn-domain-only", "ascii", "address-literal", "cyrillic"],
)
def test_addresses_go_out_with_an_idna_domain(
    address: str, on_the_wire: str, smtputf8: bool
) -> None:
    assert transport_address(address) == on_the_wire
    assert needs_smtputf8(transport_address(address)) is smtputf8


def test_a_domain_without_an_idna_form_is_refused_at_config_load(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("digest:\n  recipients: ['zoë@exämple.com', 'x@a..b.ü']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = str(caught.value)
    assert "digest.recipients[1]" in problems
    assert "is no valid domain name" in problems
    assert "recipients[0]" not in problems  # a non-ASCII local part is fine
    with pytest.raises(AddressError):
        transport_address("x@a..b.ü")


def test_a_digest_to_an_international_address_through_a_server_with_smtputf8(
    store: Store,
) -> None:
    with RecordingSmtpServer(smtputf8=True) as server:
        report = send_pending_digests(
            store, _config(ZOE), SmtpDelivery(server.host, server.port, timeout=10), NOW
        )
        [received] = server.messages
    assert report.sent == {ZOE: 1}
    assert "SMTPUTF8" in received.mail_options
    assert received.envelope_to == (ZOE_ON_THE_WIRE,)
    assert received.message["To"] == ZOE_ON_THE_WIRE
    # The header is UTF-8 (RFC 6532), never RFC 2047 encoded-words inside an address.
    assert f"To: {ZOE_ON_THE_WIRE}\r\n".encode() in received.raw
    assert b"=?utf-8?" not in received.raw.split(b"\r\n\r\n", 1)[0].lower()


def test_without_smtputf8_the_international_reader_fails_clearly_and_others_get_theirs(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with RecordingSmtpServer(smtputf8=False) as server:
        report = send_pending_digests(
            store, _config(ZOE, ANA), SmtpDelivery(server.host, server.port, timeout=10), NOW
        )
        [received] = server.messages
    # The other reader, whose domain only is international, gets theirs over plain SMTP.
    assert report.sent == {ANA: 1}
    assert received.envelope_to == ("ana@xn--exmple-cua.com",)
    assert "SMTPUTF8" not in received.mail_options
    assert received.raw.isascii()
    error = report.failed[ZOE]
    assert "zoë@xn--exmple-cua.com has a non-ASCII local part" in error
    assert "does not offer it" in error
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "unsubscribe",
    ["mailto:unsubscribe@example.org?subject=stop", "https://news.example.org/stop"],
    ids=["mailto", "https"],
)
def test_the_footer_shows_the_unsubscribe_link_whatever_its_scheme(
    store: Store, tmp_path: Path, unsubscribe: str
) -> None:
    send_pending_digests(
        store, _config("ana@example.com", unsubscribe=unsubscribe), OutboxDelivery(tmp_path), NOW
    )
    [path] = tmp_path.glob("*.eml")
    message = path.read_text(encoding="utf-8")
    assert f"List-Unsubscribe: <{unsubscribe}>" in message
    parsed = message_from_string(message, policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f"Unsubscribe: {unsubscribe}" in text
    assert f'<a href="{unsubscribe}"' in html


def _view_link(body: str) -> str:
    found = re.search(r'<a href="([^"]+/view/[^"]+)"[^>]*>View in browser</a>', body)
    assert found, body
    return html.unescape(found.group(1))


@pytest.mark.slow
def test_view_in_browser_opens_the_message_as_it_was_sent(tmp_path: Path) -> None:
    port = free_port()
    host = f"localhost:{port}"
    settings: dict[str, Any] = {
        "database": f"sqlite:///{tmp_path / 'newswatch.db'}",
        "user_agent_contact": "https://example.org/newswatch-tests",
        "workers": 0,
        "sources": [{"name": "wire", "feed": "https://wire.example/rss", "enabled": False}],
        "rules": [{"name": "syria", "keywords": ["Palmyra"]}],
        "digest": {"sender": "news@example.org", "recipients": ["ana@example.com"]},
        "delivery": {"outbox": str(tmp_path / "outbox")},
        "web": {"port": port, "public_url": f"http://{host}/"},
    }
    config_path = write_config(tmp_path, **settings)
    config = Config.model_validate(settings)
    store = Store.from_url(settings["database"])
    store.upgrade()
    store.sync_sources(config.sources)
    article = ExtractedArticle(
        url="https://wire.example/1", title="Palmyra retaken", text="Palmyra. " * 20
    )
    matches = [RuleMatch("syria", ("Palmyra",))]
    ingest_article(store, ArticleItem("wire", article.url, article), matches, stories=None)
    send_pending_digests(store, config, OutboxDelivery(tmp_path / "outbox"), NOW)
    [eml] = (tmp_path / "outbox").glob("*.eml")
    sent = message_from_string(eml.read_text(encoding="utf-8"), policy=policy.default)
    sent_html = sent.get_body(("html",)).get_content()  # type: ignore[union-attr]
    sent_text = sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = _view_link(sent_html)
    assert link.startswith(f"http://{host}/view/")
    assert f"View in your browser: {link}" in sent_text
    path = urlsplit(link).path
    try:
        with running_service(config_path) as web:
            page = web.get(path, Host=host)
            assert page.status == 200
            assert page.body == sent_html  # as it was sent, its links and all
            assert "form-action 'none'" in page.headers["content-security-policy"]
            text = web.get(f"{path}?format=text", Host=host)
            assert (text.status, text.body) == (200, sent_text)
            assert web.get(path, Host=f"127.0.0.1:{port}").status == 421  # not the public host
            assert web.get(path[:-4] + "AAAA", Host=host).status == 403  # tampered with

            # The operator opens it from the delivery history.
            history = web.get("/digests")
            [opened] = re.findall(r'<a href="(/digests/\d+)">', history.body)
            assert web.get(opened).body == sent_html

            # Past retention.bodies the copy is gone, and the link says so.
            purge_old_articles(store, config, NOW + timedelta(days=400))
            assert web.get(path, Host=host).status == 404
            assert web.get(opened).status == 404
    finally:
        store.close()
