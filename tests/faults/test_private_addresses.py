"""``fetch_policy``: sources, articles and redirect targets on private addresses or
denied networks are refused at request time, one log line each; the rest goes on."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from conftest import run_newswatch, site_config, write_config
from newssite import Reply
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from smtpserver import free_port

from crawler.domain.config import ConfigError, load_config
from crawler.storage.store import Store
from spiders.addresses import AddressPolicy, AddressPolicyMiddleware, parse_address

if TYPE_CHECKING:
    from pathlib import Path

    from newssite import NewsSite

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped: read as the IPv4
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata
        ("fe80::1%eth0", "a link-local address"),
        ("100.64.0.1", "a non-public address"),  # carrier-grade NAT
        ("0.0.0.0", "a private address"),  # noqa: S104 - an address to refuse
        ("224.0.0.251", "a multicast address"),
        (PUBLIC, None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_private_addresses_are_refused_public_ones_allowed(address: str, reason: str) -> None:
    policy = AddressPolicy(deny_private=True)
    assert policy.refusal(parse_address(address), 80) == reason
    assert AddressPolicy(deny_private=False).refusal(parse_address(address), 80) is None


def test_denied_networks_and_the_own_web_port() -> None:
    networks = AddressPolicy(deny_private=False, networks=["10.0.0.0/8", "fd00::/8", PUBLIC])
    assert networks.refusal(parse_address("10.9.9.9"), 80) == (
        "in fetch_policy.deny_networks (10.0.0.0/8)"
    )
    assert networks.refusal(parse_address("fd00::5"), 443) is not None
    assert networks.refusal(parse_address(PUBLIC), 443) is not None  # a bare address
    assert networks.refusal(parse_address("192.168.1.1"), 80) is None  # private allowed
    # The web UI bound to a public address: its port there is refused, other ports not.
    own = AddressPolicy(deny_private=True, own_web=[(ipaddress.ip_address(PUBLIC), 8787)])
    assert own.refusal(parse_address(PUBLIC), 8787) == "newswatch's own web UI (port 8787)"
    assert own.refusal(parse_address(PUBLIC), 443) is None


@pytest.mark.parametrize(
    ("fetch_policy", "problem"),
    [
        ({"deny_networks": ["10.0.0.0/33"]}, "fetch_policy.deny_networks[0]"),
        ({"deny_networks": ["intranet"]}, "expected an IP address or CIDR network"),
        ({"deny_private_addresses": "sometimes"}, "fetch_policy.deny_private_addresses"),
        ({"deny": ["10.0.0.0/8"]}, "fetch_policy.deny (line"),
    ],
)
def test_a_bad_fetch_policy_is_a_configuration_error(
    tmp_path: Path, fetch_policy: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("(", r"\(")):
        load_config(write_config(tmp_path, fetch_policy=fetch_policy))


def _refusals(stderr: str) -> list[str]:
    """The lines reporting a refused request (the poll's summary line aside)."""
    return [line for line in stderr.splitlines() if "failed: refused by fetch_policy" in line]


@pytest.mark.slow
def test_with_deny_private_addresses_loopback_sources_are_refused_before_any_request(
    news_site: NewsSite, tmp_path: Path
) -> None:
    web_port = free_port()
    own_web = f"http://127.0.0.1:{web_port}/metrics"
    named = news_site.url("tech/atom.xml").replace("127.0.0.1", "localhost")
    settings = site_config(
        news_site, tmp_path, fetch_policy={"deny_private_addresses": True}, web={"port": web_port}
    )
    settings["sources"] = [
        {"name": "local", "feed": news_site.url("world/rss.xml")},
        {"name": "named", "feed": named},
        {"name": "self", "feed": own_web},
    ]
    result = run_newswatch(write_config(tmp_path, **settings), "crawl")
    assert result.returncode == 1  # the sources failed, the command did not crash
    refused = _refusals(result.stderr)
    assert len(refused) == 3, result.stderr  # one line each, with the URL and why
    [local] = [line for line in refused if "source local:" in line]
    assert news_site.url("world/rss.xml") in local
    assert "127.0.0.1 is a loopback address" in local
    [by_name] = [line for line in refused if "source named:" in line]
    assert named in by_name
    assert "localhost resolves to" in by_name
    assert "a loopback address" in by_name
    [itself] = [line for line in refused if "source self:" in line]
    assert own_web in itself
    assert f"newswatch's own web UI (port {web_port})" in itself
    assert news_site.requests == []  # not even robots.txt was asked for
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_denied_networks_refuse_sources_redirects_and_articles_and_the_rest_is_stored(
    news_site: NewsSite, tmp_path: Path
) -> None:
    denied = news_site.url("tech/atom.xml").replace("127.0.0.1", "127.0.0.2")
    denied_article = news_site.url("articles/memory-crisis.html").replace("127.0.0.1", "127.0.0.2")
    news_site.script("hop/rss.xml", [Reply(302, b"", {"Location": denied})])
    news_site.set_content(
        "mixed/rss.xml",
        f"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Mixed</title><link>{{base}}/</link>
<item><title>Gulf</title><link>{{base}}/articles/gulf-army-closes-in.html</link></item>
<item><title>Denied</title><link>{denied_article}</link></item>
</channel></rss>
""".encode(),
        "application/rss+xml",
    )
    # Private addresses allowed (the default), one network denied.
    settings = site_config(news_site, tmp_path, fetch_policy={"deny_networks": ["127.0.0.2/32"]})
    settings["sources"] = [
        {"name": "world", "feed": news_site.url("world/rss.xml")},
        {"name": "inner", "feed": denied},
        {"name": "hop", "feed": news_site.url("hop/rss.xml")},
        {"name": "mixed", "feed": news_site.url("mixed/rss.xml")},
    ]
    config = write_config(tmp_path, **settings)
    result = run_newswatch(config, "crawl")
    assert result.returncode == 1
    refused = _refusals(result.stderr)
    assert len(refused) == 3, result.stderr
    reason = "127.0.0.2 is in fetch_policy.deny_networks (127.0.0.2/32)"
    [inner] = [line for line in refused if "source inner:" in line]
    assert denied in inner
    assert reason in inner
    [hop] = [line for line in refused if "source hop:" in line]
    assert news_site.url("hop/rss.xml") in hop  # the source's URL…
    assert f"{denied}: {reason}" in hop  # …and the redirect target refused
    [article] = [line for line in refused if "source mixed:" in line]
    assert f"article {denied_article} failed" in article
    assert reason in article

    store = Store.from_url(load_config(config).database)
    pages = sorted(article.url.rsplit("/", 1)[1] for article in store.articles())
    store.close()
    assert pages == [
        "army-pressures-isis.html",
        "cup-final.html",
        "gulf-army-closes-in.html",
        "palmyra-museum.html",
    ]
    assert "Traceback" not in result.stderr


def _check(url: str, **policy: object) -> str | None:
    """What the middleware says about ``url``: the refusal's message, or None."""
    middleware = AddressPolicyMiddleware(**{"deny_private": True, **policy})  # type: ignore[arg-type]
    # In a thread of its own: an earlier in-process test may leave this thread's loop set.
    with ThreadPoolExecutor(1) as thread:
        checked = thread.submit(asyncio.run, middleware.process_request(Request(url)))
    try:
        checked.result()
    except IgnoreRequest as refused:
        return str(refused)
    return None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1.:8787/", "127.0.0.1 is newswatch's own web UI (port 8787)"),
        ("http://127.0.0.1.:8080/", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1../feed", "127.0.0.1 is a loopback address"),
        ("http://[::1]:8080/", "::1 is a loopback address"),
        ("http://localhost.:8080/", "a loopback address"),
        ("http://169.254.169.254./latest/meta-data/", "169.254.169.254 is a link-local address"),
    ],
    ids=[
        "own-web-trailing-dot",
        "trailing-dot",
        "two-dots",
        "ipv6",
        "localhost-dot",
        "metadata-dot",
    ],
)
def test_a_trailing_dot_does_not_hide_an_address(url: str, reason: str) -> None:
    refusal = _check(url, web_address=("127.0.0.1", 8787))
    assert refusal is not None, url
    assert reason in refusal


def test_a_failed_lookup_refuses_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: an address that cannot be checked is not connected to (it used to
    go through, for Scrapy to resolve it again, maybe to a private address)."""
    real = socket.getaddrinfo

    def lookup(host: str, *args: object, **kwargs: object) -> object:
        if str(host).startswith("unresolvable"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    refusal = _check("http://unresolvable.example./feed")
    assert refusal == (
        "refused by fetch_policy: http://unresolvable.example./feed: the "
        "addresses of unresolvable.example could not be looked up to check "
        "them (Name or service not known)"
    )
    # deny_networks alone fails closed too: the network of an unknown address is unknown.
    assert (
        _check("http://unresolvable.example/", deny_private=False, networks=["10.0.0.0/8"])
        is not None
    )
    assert _check(f"http://{PUBLIC}/feed") is None  # a public address goes on


@pytest.mark.slow
def test_trailing_dot_sources_are_refused_before_any_request(
    news_site: NewsSite, tmp_path: Path
) -> None:
    port = news_site.url("").rsplit(":", 1)[1].strip("/")
    settings = site_config(news_site, tmp_path, fetch_policy={"deny_private_addresses": True})
    settings["sources"] = [
        {"name": "dot", "feed": f"http://127.0.0.1.:{port}/world/rss.xml"},
        {"name": "named", "feed": f"http://localhost.:{port}/tech/atom.xml"},
    ]
    result = run_newswatch(write_config(tmp_path, **settings), "crawl")
    assert result.returncode == 1
    refused = _refusals(result.stderr)
    assert len(refused) == 2, result.stderr
    assert any(
        "source dot:" in line and "127.0.0.1 is a loopback address" in line for line in refused
    )
    assert any("source named:" in line and "a loopback address" in line for line in refused)
    assert news_site.requests == []
    assert "Traceback" not in result.stderr
