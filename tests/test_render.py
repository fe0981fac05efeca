from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING

import lxml.html
import pytest

from alerts.render import (
    DigestEntry,
    DigestSection,
    RenderedDigest,
    build_message,
    format_subject,
    get_environment,
    make_snippet,
    render_digest,
)

if TYPE_CHECKING:
    from email.message import EmailMessage
    from pathlib import Path

GENERATED = datetime(2016, 3, 30, 2, 0, tzinfo=UTC)


def _entry(
    title: str = "ISIS driven out of Palmyra",
    url: str = "https://news.example/palmyra",
    *,
    published: datetime | None = datetime(2016, 3, 30, 1, 46, tzinfo=UTC),
    snippet: str = "Syrian troops say ISIS fighters have left the ancient city.",
    terms: tuple[str, ...] = ("ISIS",),
) -> DigestEntry:
    return DigestEntry(
        title=title,
        url=url,
        source="Example News",
        published=published,
        snippet_text=snippet,
        terms=terms,
    )


def _render(
    sections: list[DigestSection],
    *,
    subject_template: str = "newswatch: {count} new articles",
    template_dirs: tuple[Path, ...] = (),
) -> RenderedDigest:
    return render_digest(
        sections,
        timezone="Asia/Kolkata",
        subject_template=subject_template,
        generated_at=GENERATED,
        template_dirs=template_dirs,
    )


# --- make_snippet ---------------------------------------------------------------


def test_snippet_short_body_is_whole_body_with_whitespace_collapsed() -> None:
    assert make_snippet("  ISIS\n\n left \t Palmyra ", ["ISIS"]) == "ISIS left Palmyra"


def test_snippet_window_contains_first_hit_with_ellipses_and_whole_words() -> None:
    body = "lorem ipsum " * 50 + "ISIS fighters withdrew from Palmyra. " + "dolor sit " * 50
    snippet = make_snippet(body, ["Palmyra"], width=80)
    assert "Palmyra" in snippet
    assert snippet.startswith("…")
    assert snippet.endswith("…")
    assert len(snippet) <= 82
    words = snippet.strip("…").split(" ")
    assert set(words) <= {
        "lorem",
        "ipsum",
        "ISIS",
        "fighters",
        "withdrew",
        "from",
        "Palmyra.",
        "dolor",
        "sit",
    }


def test_snippet_without_hit_is_start_of_body() -> None:
    body = "First words of the article. " + "filler " * 100
    snippet = make_snippet(body, ["absent"], width=60)
    assert snippet.startswith("First words of the article.")
    assert snippet.endswith("…")
    assert len(snippet) <= 61


def test_snippet_hit_near_end_fills_window_backwards() -> None:
    body = "filler " * 100 + "last word ISIS"
    snippet = make_snippet(body, ["ISIS"], width=60)
    assert snippet.startswith("…")
    assert snippet.endswith("last word ISIS")


# --- render_digest ----------------------------------------------------------------


def test_sections_are_grouped_by_rule_with_counts_in_order() -> None:
    digest = _render(
        [
            DigestSection("syria", (_entry(), _entry("Second story", "https://n.example/2"))),
            DigestSection("empty", ()),
            DigestSection("football", (_entry("Goal!", "https://n.example/3", terms=()),)),
        ]
    )
    assert digest.html.index("syria") < digest.html.index("football")
    assert "empty" not in digest.html
    assert "empty" not in digest.text
    assert "== syria (2) ==" in digest.text
    assert "== football (1) ==" in digest.text
    assert digest.text.index("Second story") < digest.text.index("== football")
    assert "(2)</span>" in digest.html


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("newswatch: {count} new articles", "newswatch: 3 new articles", id="count"),
        pytest.param("{count} for {rules}", "3 for syria, football", id="rules"),
        pytest.param("{count:03d} new", "003 new", id="format-spec"),
        pytest.param("{unknown} {count}", "{unknown} 3", id="unknown-name-left-literal"),
        pytest.param("{count.__class__}", "{count.__class__}", id="attribute-left-literal"),
        pytest.param("{count[0]} {count!r}", "{count[0]} {count!r}", id="index-conversion"),
        pytest.param("{count:xyz}", "{count:xyz}", id="bad-spec-left-literal"),
        pytest.param("{{literal}} {count}", "{literal} 3", id="escaped-braces"),
        pytest.param("broken {count", "broken {count", id="unbalanced-unchanged"),
        pytest.param("{0} {}", "{0} {}", id="positional-left-literal"),
    ],
)
def test_subject_template_is_formatted_safely(template: str, expected: str) -> None:
    sections = [
        DigestSection("syria", (_entry(), _entry("Two", "https://n.example/2"))),
        # The same article under a second rule is still one new article.
        DigestSection("football", (_entry(), _entry("Three", "https://n.example/3"))),
    ]
    assert _render(sections, subject_template=template).subject == expected


def test_publish_time_is_shown_in_digest_timezone() -> None:
    digest = _render([DigestSection("syria", (_entry(),))])
    assert "30 Mar 2016, 07:16 IST" in digest.html
    assert "30 Mar 2016, 07:16 IST" in digest.text


def test_unknown_publish_time() -> None:
    digest = _render([DigestSection("syria", (_entry(published=None),))])
    assert "time unknown" in digest.html
    assert "time unknown" in digest.text


def test_snippet_terms_are_highlighted() -> None:
    entry = _entry(
        snippet="Troops retook Palmyra from the Islamic\nState; anti-ISIS forces cheered.",
        terms=("ISIS", "Islamic State"),
    )
    digest = _render([DigestSection("syria", (entry,))])
    assert ">Islamic State</mark>" in digest.html
    assert ">ISIS</mark>" in digest.html
    assert digest.html.count("<mark") == 2
    assert "*Islamic State*" in digest.text
    assert "anti-*ISIS*" in digest.text


def test_untrusted_title_snippet_and_source_are_escaped() -> None:
    entry = DigestEntry(
        title='<script>alert(1)</script> "onerror=alert(2) <img src=x onerror=alert(3)>',
        url='https://news.example/a"onmouseover="alert(4)',
        source="<b>Evil</b>",
        published=None,
        snippet_text="<iframe src=javascript:alert(5)> ISIS </iframe>",
        terms=("ISIS",),
    )
    html = _render([DigestSection("<rule>", (entry,))]).html
    assert "<script>" not in html
    assert "<img" not in html
    assert "<iframe" not in html
    assert "<b>Evil" not in html
    assert "<rule>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '"onmouseover' not in html
    link = lxml.html.fromstring(html).xpath("//a[contains(@href, 'news.example')]")[0]
    assert link.get("href") == 'https://news.example/a"onmouseover="alert(4)'
    assert link.get("onmouseover") is None
    assert ">ISIS</mark>" in html


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("  JavaScript:alert(1)", id="javascript-mixed-case-padded"),
        pytest.param("java\tscript:alert(1)", id="javascript-with-tab"),
        pytest.param("data:text/html,<script>alert(1)</script>", id="data"),
        pytest.param("vbscript:msgbox(1)", id="vbscript"),
        pytest.param("/relative/path", id="relative"),
        pytest.param("https://", id="no-host"),
        pytest.param("", id="empty"),
    ],
)
def test_only_http_urls_become_links(url: str) -> None:
    digest = _render([DigestSection("syria", (_entry("Dangerous link", url),))])
    assert "<a " not in digest.html
    assert "Dangerous link" in digest.html
    assert "script:" not in digest.html.lower()
    assert "script:" not in digest.text.lower()


def test_http_url_is_a_link_and_on_its_own_line_in_text() -> None:
    digest = _render([DigestSection("syria", (_entry(url="http://news.example/p?a=1&b=2"),))])
    assert '<a href="http://news.example/p?a=1&amp;b=2"' in digest.html
    assert "\n  http://news.example/p?a=1&b=2\n" in digest.text


def test_user_template_dir_overrides_packaged_template(tmp_path: Path) -> None:
    (tmp_path / "digest.html.j2").write_text(
        "CUSTOM {{ count }}{% for s in sections %} {{ s.rule }}"
        "{% for e in s.entries %} {{ e.title }}{% endfor %}{% endfor %}",
        encoding="utf-8",
    )
    entry = _entry(title="<b>bold</b>")
    digest = _render([DigestSection("syria", (entry,))], template_dirs=(tmp_path,))
    assert digest.html == "CUSTOM 1 syria &lt;b&gt;bold&lt;/b&gt;"
    # The text template was not overridden, so the packaged one is used.
    assert "== syria (1) ==" in digest.text


# --- build_message ------------------------------------------------------------------


def _message_for(digest: RenderedDigest) -> EmailMessage:
    return build_message(
        digest,
        sender="newswatch <newswatch@example.org>",
        recipient="analyst@example.org",
        message_id="<abc123@newswatch>",
        date=datetime(2016, 3, 30, 2, 0, tzinfo=UTC),
    )


def test_message_is_multipart_alternative_text_then_html() -> None:
    digest = _render([DigestSection("Zürich", (_entry(snippet="Ürümqi … ISIS"),))])
    raw = _message_for(digest).as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parts)
    assert parts[0].get_content() == digest.text
    assert parts[1].get_content() == digest.html
    assert parsed["Message-ID"] == "<abc123@newswatch>"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["From"].addresses[0].addr_spec == "newswatch@example.org"
    assert parsed["To"] == "analyst@example.org"
    assert parsed["Subject"] == "newswatch: 1 new articles"
    assert parsed["Date"].datetime == datetime(2016, 3, 30, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param("Hello\r\nBcc: victim@example.org", id="crlf"),
        pytest.param("Hello\nBcc: victim@example.org", id="lf"),
        pytest.param("Hello\rBcc: victim@example.org", id="cr"),
        pytest.param("Hello\x00\x1b\u2028Bcc: victim@example.org", id="controls"),
    ],
)
def test_header_injection_is_removed(subject: str) -> None:
    digest = RenderedDigest(subject=subject, html="<p>x</p>", text="x")
    message = _message_for(digest)
    raw = message.as_bytes()
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hello Bcc: victim@example.org"
    assert b"\nBcc:" not in raw


@pytest.mark.parametrize(
    ("count", "shown"), [(0, "0 new articles"), (1, "1 new article"), (2, "2 new articles")]
)
def test_templates_word_counts_with_the_counted_filter(count: int, shown: str) -> None:
    template = get_environment().from_string('{{ count|counted("new article") }}')
    assert template.render(count=count) == shown


@pytest.mark.parametrize(
    ("template", "count", "subject"),
    [
        ("newswatch: {new_articles}", 1, "newswatch: 1 new article"),
        ("newswatch: {new_articles}", 3, "newswatch: 3 new articles"),
        ("newswatch: {new_articles}", 0, "newswatch: 0 new articles"),
        ("{count} new articles ({rules})", 1, "1 new articles (syria)"),  # as written
    ],
)
def test_a_subject_says_new_articles_in_the_form_its_count_takes(
    template: str, count: int, subject: str
) -> None:
    assert format_subject(template, count=count, rules=["syria"]) == subject
