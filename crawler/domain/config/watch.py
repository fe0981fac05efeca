"""The schema of what is watched and who reads it: sources, rules and recipients."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from crawler.domain.config.access import SITE_ACCESS_KEYS, SiteAccessConfig
from crawler.domain.config.scopes import SourceEntry
from crawler.domain.config.values import (
    SOURCE_KINDS,
    CronExpression,
    Duration,
    EmailAddress,
    KeyedValueError,
    Line,
    LinkSelector,
    Name,
    Term,
    TimeZoneName,
    UrlPattern,
    VariableName,
    WebUrl,
    _shown,
    _Strict,
)
from crawler.domain.query import QuerySyntaxError, parse_query, stem_language, term_pattern
from crawler.domain.urls import redact_url, source_url_problem, split_userinfo


class SourceConfig(SiteAccessConfig):
    """One news source polled on its own interval; exactly one of the kinds is given.
    How its site is reached (headers, cookies, user agent, proxy) are the keys it
    shares with ``domains.<host>`` (SiteAccessConfig, crawler/domain/config/access.py)."""

    name: Name = Field(description="Unique name, shown in digests and logs.")
    feed: WebUrl | None = Field(default=None, description="RSS, Atom or JSON Feed URL.")
    site: WebUrl | None = Field(default=None, description="Homepage whose feed is discovered.")
    sitemap: WebUrl | None = Field(default=None, description="Sitemap or sitemap index URL.")
    listing: WebUrl | None = Field(default=None, description="HTML section page URL.")
    links: LinkSelector | None = Field(default=None, description="CSS/XPath of article links.")
    next: LinkSelector | None = Field(default=None, description="CSS/XPath of the next-page link.")
    pages: int = Field(default=1, ge=1, le=50, description="Listing pages to follow.")
    max_age: Duration = Field(default=timedelta(days=2), description="Sitemap lookback.")
    max_articles: int = Field(default=200, ge=1, le=10_000, description="New pages per poll.")
    allow: list[UrlPattern] = Field(default_factory=list, description="Follow only matching URLs.")
    deny: list[UrlPattern] = Field(default_factory=list, description="Never follow these URLs.")
    every: Duration = Field(
        default=timedelta(minutes=15),
        description="Poll interval; with adaptive polling, the mean interval: the "
        "source's share of the daily requests.",
    )
    adaptive: bool | None = Field(
        default=None,
        description="false: poll at every, whatever the rhythm; default: polling.adaptive.",
    )
    min_interval: Duration | None = Field(
        default=None, description="Never poll more often; default: polling.min_interval."
    )
    max_interval: Duration | None = Field(
        default=None, description="Poll at least this often; default: polling.max_interval."
    )
    enabled: bool = Field(default=True, description="False keeps the source but stops polling it.")
    tags: list[Name] = Field(
        default_factory=list, description="Labels, e.g. the folders of an OPML import."
    )
    render: Literal["http", "browser"] = Field(
        default="http",
        description="browser: render the listing pages in headless Chromium, for "
        "section pages that build their links in JavaScript.",
    )
    render_articles: bool = Field(
        default=False, description="Render the article pages in headless Chromium too."
    )
    quiet_after: Duration | None = Field(
        default=None,
        description="Quiet after this long without a new article, instead of the "
        "rhythm learned from the source's history.",
    )
    tell_operators: bool = Field(
        default=True,
        description="False: its health is still shown, but operators are not told and "
        "digests do not list it in Sources in trouble.",
    )
    password_env: VariableName | None = Field(
        default=None,
        description="Variable holding the password of the URL's user "
        "(https://user@host/feed), sent as HTTP basic authentication.",
    )

    @field_validator("feed", "site", "sitemap", "listing", mode="before")
    @classmethod
    def _pollable_url(cls, url: object) -> object:
        # Before the other URL checks, so that no message shows a password in the URL.
        if isinstance(url, str) and (problem := source_url_problem(url)):
            raise ValueError(f"{problem}, got {_shown(redact_url(url))}")
        return url

    @field_validator("password_env")
    @classmethod
    def _password_is_set(cls, variable: str | None) -> str | None:
        if variable is not None and not os.environ.get(variable):
            raise ValueError(
                f"the environment variable {variable} is not set; export it "
                "with the source's password"
            )
        return variable

    @model_validator(mode="after")
    def _interval_bounds_ordered(self) -> SourceConfig:
        if (
            self.min_interval is not None
            and self.max_interval is not None
            and self.min_interval > self.max_interval
        ):
            raise ValueError("min_interval is longer than max_interval")
        return self

    @model_validator(mode="after")
    def _one_kind(self) -> SourceConfig:
        given = [kind for kind in SOURCE_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of feed, site, sitemap or listing"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.listing is not None and self.links is None:
            raise ValueError("a listing source needs `links`: the CSS or XPath of article links")
        if self.listing is None and (self.links or self.next or self.pages != 1):
            raise ValueError("links, next and pages apply to listing sources only")
        if self.render == "browser" and self.listing is None:
            raise ValueError(
                "render: browser applies to listing sources (feeds and sitemaps are "
                "data, not pages); to render the article pages, set render_articles: true"
            )
        return self

    @property
    def uses_browser(self) -> bool:
        """True when any of its pages are rendered in headless Chromium."""
        return self.render == "browser" or self.render_articles

    @property
    def kind(self) -> str:
        """``feed``, ``site``, ``sitemap`` or ``listing``."""
        return next(kind for kind in SOURCE_KINDS if getattr(self, kind) is not None)

    @model_validator(mode="after")
    def _credentials_complete(self) -> SourceConfig:
        _url, user, password = split_userinfo(str(getattr(self, self.kind)))
        if self.password_env is not None and user is None:
            raise ValueError("password_env needs the user name in the URL: https://user@host/feed")
        if self.password_env is not None and password is not None:
            raise ValueError(
                "the URL holds a password and password_env names one: keep "
                "password_env, so that the password stays out of the file"
            )
        return self

    @property
    def url(self) -> str:
        """The URL polled first (the feed, homepage, sitemap or listing page) without
        its userinfo: what is requested, stored, logged and shown. The user name and
        password are ``credentials()``."""
        return split_userinfo(str(getattr(self, self.kind)))[0]

    def credentials(self) -> tuple[str, str] | None:
        """(user, password) for HTTP basic authentication on the source's own host:
        from the URL's userinfo, the password from ``password_env`` if given."""
        _url, user, password = split_userinfo(str(getattr(self, self.kind)))
        if user is None:
            return None
        if self.password_env is not None:
            password = os.environ.get(self.password_env)
        return user, password or ""

    def __repr_args__(self) -> Any:
        # A repr (in a traceback, a debug line) shows the URLs without their userinfo.
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in SOURCE_KINDS and value else value

    @model_validator(mode="after")
    def _one_authorization(self) -> SourceConfig:
        if self.password_env is not None or split_userinfo(str(getattr(self, self.kind)))[1]:
            for name in self.headers_env:
                if name.lower() == "authorization":
                    raise KeyedValueError(
                        "the source sends HTTP basic authentication (a user in its URL): "
                        "it cannot send another Authorization header",
                        ("headers_env", name),
                    )
        return self

    def site_access(self) -> SiteAccessConfig:
        """Its headers, cookies, user agent and proxy settings, as given, without the
        rest of the source (the host's ``domains`` entry is merged in by
        ``site_access_for``)."""
        given = self.model_fields_set & set(SITE_ACCESS_KEYS)
        return SiteAccessConfig.model_construct(
            _fields_set=given, **{key: getattr(self, key) for key in SITE_ACCESS_KEYS}
        )


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class RuleConfig(_Strict):
    """A watch rule: keyword lists (any keyword, no excluded term) or a query."""

    name: Name = Field(description="Unique name, the heading in the digest.")
    keywords: list[Term] | None = Field(
        default=None, min_length=1, description="Any of these; a space makes a phrase."
    )
    exclude: list[Term] = Field(default_factory=list, description="None of these may occur.")
    query: str | None = Field(default=None, description="A boolean query instead of keywords.")
    stem: bool = Field(default=False, description="Match word forms (snowball stemming).")
    language: Line | None = Field(default=None, description="Stemming language if not detected.")
    tags: list[Name] = Field(default_factory=list, description="Recipients may subscribe by tag.")
    alert: Literal["digest", "immediate"] = Field(
        default="digest", description="immediate: alert within minutes, not in the digest."
    )
    channels: list[Name] = Field(
        default_factory=list,
        description="immediate rules: channels that get its alerts, besides recipients.",
    )
    sources: list[SourceEntry] | None = Field(
        default=None,
        description="Only articles from these sources: source names and/or tag:NAME "
        "(the sources with that tag); default: every source.",
    )

    @field_validator("sources")
    @classmethod
    def _sources_not_empty(cls, entries: list[str] | None) -> list[str] | None:
        if entries is not None and not entries:
            raise ValueError(
                "an empty list would limit the rule to no source; name sources or "
                "tag:NAME, or leave sources out for every source"
            )
        return entries

    @field_validator("query")
    @classmethod
    def _query_parses(cls, query: str | None) -> str | None:
        if query is not None:
            try:
                parse_query(query)
            except QuerySyntaxError as error:
                raise ValueError(str(error)) from None
        return query

    @field_validator("language")
    @classmethod
    def _stemmer_exists(cls, language: str | None) -> str | None:
        if language is not None and stem_language(language) is None:
            raise ValueError(
                f"no stemmer for language {_shown(language)}; use a code such as "
                "en, fr, de, es, ru or ar"
            )
        return language

    @field_validator("keywords", "exclude")
    @classmethod
    def _terms_have_words(cls, terms: list[str] | None) -> list[str] | None:
        for term in terms or ():
            if not term_pattern(term):
                raise ValueError(
                    f"the keyword {_shown(term)} has no letter or digit, so it can never match"
                )
        return terms

    @model_validator(mode="after")
    def _keywords_or_query(self) -> RuleConfig:
        if (self.keywords is None) == (self.query is None):
            raise ValueError("give either keywords or query")
        if self.query is not None and self.exclude:
            raise ValueError("exclude goes with keywords; in a query write AND NOT …")
        return self


class RecipientConfig(_Strict):
    """One reader: which rules, when, and in which time zone."""

    email: EmailAddress
    rules: list[Name] | None = Field(default=None, description="Rule names; default: all.")
    tags: list[Name] = Field(default_factory=list, description="Also rules with these tags.")
    schedule: CronExpression | None = Field(default=None, description="Default: digest's.")
    timezone: TimeZoneName | None = Field(default=None, description="Default: digest's.")
    frequency: Literal["daily", "weekly"] = Field(default="daily")
    weekday: Weekday = Field(default="mon", description="The day of a weekly digest.")
    quiet_days: list[Weekday] = Field(default_factory=list, description="No digest these days.")
    alerts: bool = Field(default=True, description="Receive immediate alerts.")
    channels: list[Name] | None = Field(
        default=None, description="Where digests and alerts go: email and/or channel names."
    )
    max_stories: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Stories shown per rule section; default: digest's.",
    )
    repeat_stories: bool = Field(
        default=False, description="Show a story under every rule it matches."
    )
    sources_in_trouble: bool = Field(
        default=True,
        description="End each digest with the sources newswatch cannot trust right now.",
    )
