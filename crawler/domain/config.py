"""Configuration: read ``config.yaml`` once, validate everything, hand out typed objects.

Every problem is reported together, each with the file, the key path
(``rules[2].keywords``), the line and what was expected, so a user fixes the whole
file in one go. Nothing else in newswatch reads raw YAML.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from crawler.domain.query import QuerySyntaxError, parse_query, stem_language, term_pattern
from crawler.domain.urls import compile_url_pattern, redact_url, source_url_problem, split_userinfo

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

DEFAULT_CONFIG_PATH = Path("config.yaml")
# Limits on what a configuration file may be: larger is a mistake or an attack.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_YAML_NODES = 100_000
CONFIG_ENV_VAR = "NEWSWATCH_CONFIG"
# libyaml's safe loader when PyYAML has it (its wheels do): a file of a thousand rules
# loads in a tenth of the time of the pure-Python one.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Bounds on single values: each is far above any sensible setting and far below
# what breaks the code that uses it (timedelta, the file system, the database's
# column widths, a mail header).
MAX_DURATION = timedelta(days=3650)
MAX_DURATION_TEXT = "10y"
MAX_NAME_CHARS = 200  # sources.name, rules.name: String(200) columns
MAX_URL_CHARS = 2048  # sources.url, articles.url: String(2048) columns
MAX_EMAIL_CHARS = 254  # RFC 5321
MAX_HOST_CHARS = 253
MAX_TEXT_CHARS = 1000  # a keyword, a tag, a selector, a language, a User-Agent contact
MAX_PATH_CHARS = 4096
MAX_CRON_CHARS = 200
# A schedule must fire within this horizon: a cron such as "0 7 31 2 *" (31 February)
# is accepted by APScheduler but never fires, and finding that out without a
# horizon walks every year up to 9999.
CRON_HORIZON_YEARS = 100
MAX_TIMEZONE_CHARS = 64
MAX_SUBJECT_CHARS = 200  # the rendered subject line
MAX_SUBJECT_TEMPLATE_CHARS = 500
MAX_SUBJECT_WIDTH = 100  # width and precision of a {count:…} / {rules:…} format spec
MAX_YAML_DEPTH = 20  # a configuration nests five levels at most
MAX_DOWNLOAD_MAXSIZE = 1024 * 1024 * 1024

_DURATION = re.compile(r"^\s*([0-9]+)\s*([smhdwy])\s*$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION_EXPECTED = (f"expected a positive duration such as 30s, 15m, 2h, 7d or 2y, "
                      f"up to {MAX_DURATION_TEXT}")
# IANA names: Europe/Paris, America/Argentina/Buenos_Aires, Etc/GMT+5, EST5EDT.
_TIMEZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
# C0 and C1 control characters other than tab and line breaks, and DEL: never in a
# configuration value (a NUL cannot even be stored in PostgreSQL text).
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile("[\r\n\t\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem found."""


def parse_duration(value: object) -> timedelta:
    """Parse ``30s``, ``15m``, ``2h``, ``7d``, ``2w`` or ``2y`` (a bare number: seconds),
    from one second up to ``MAX_DURATION`` (10y); raise ValueError for anything else."""
    if isinstance(value, timedelta):
        return value
    seconds = 0
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str) and (found := _DURATION.match(value)):
        amount, unit = found.groups()
        # More digits than any duration up to the maximum has is too long without
        # converting them (int() refuses thousands of digits, timedelta overflows).
        digits = amount.lstrip("0")
        seconds = int(digits or "0") * _DURATION_SECONDS[unit] if len(digits) <= 12 else -1
    if seconds == -1 or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{_shown(value)} is too long; expected a duration up to "
                         f"{MAX_DURATION_TEXT}")
    if seconds <= 0:
        raise ValueError(_DURATION_EXPECTED)
    return timedelta(seconds=seconds)


def _shown(value: object, limit: int = 60) -> str:
    """`value` as an error message quotes it: its repr, cut to about `limit` characters."""
    if isinstance(value, int) and value.bit_length() > 200:  # repr() refuses 4,300 digits
        return f"a number of {value.bit_length():,} bits"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[: limit - 3]) + f"… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_timezone(name: str) -> str:
    unknown = f"unknown time zone {_shown(name)}; expected an IANA name such as Europe/Paris"
    # The name becomes a file name under the time zone folders: only an IANA-shaped
    # name is looked up, so no name can be a path, too long a name or a NUL.
    if len(name) > MAX_TIMEZONE_CHARS or not _TIMEZONE_NAME.fullmatch(name):
        raise ValueError(unknown)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # OSError: a folder
        raise ValueError(unknown) from error
    return name


def cron_trigger(expression: str, timezone: str = "UTC") -> CronTrigger:
    """A trigger for a 5-field cron expression, or 6 fields with seconds first."""
    # APScheduler and parsel (below) are imported when a configuration uses them:
    # a `newswatch crawl` with neither starts ~0.1 s sooner.
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    zone = ZoneInfo(timezone)
    if len(fields) == 6:
        second, minute, hour, day, month, day_of_week = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=day_of_week, timezone=zone)
    return CronTrigger.from_crontab(expression, timezone=zone)


def _check_cron(expression: str) -> str:
    if len(expression) > MAX_CRON_CHARS:
        raise ValueError(f"a cron expression has at most {MAX_CRON_CHARS} characters "
                         f"(this one has {len(expression):,})")
    if not (expression.isascii() and expression.replace("\t", " ").isprintable()):
        raise ValueError(f"invalid cron expression {_shown(expression)}: expected fields of "
                         "ASCII digits, names and * , - / such as 0 7 * * *")
    try:
        trigger = cron_trigger(expression)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise ValueError(f"invalid cron expression {_shown(expression)}: "
                         f"{_one_line(str(error), 120)}") from error
    # APScheduler accepts expressions no date satisfies (31 February) and would walk
    # every year up to 9999 looking for one: look a hundred years ahead only.
    now = datetime.now(UTC)
    trigger.end_date = now.replace(year=now.year + CRON_HORIZON_YEARS, month=1, day=1)
    if trigger.get_next_fire_time(None, now) is None:
        raise ValueError(f"the cron expression {_shown(expression)} never fires: no date "
                         f"in the next {CRON_HORIZON_YEARS} years matches it")
    return expression


def _check_email(address: str) -> str:
    if len(address) > MAX_EMAIL_CHARS or not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
        raise ValueError(f"expected an email address, got {_shown(address)}")
    return address


def _check_web_url(url: str) -> str:
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"a URL has at most {MAX_URL_CHARS:,} characters "
                         f"(this one has {len(url):,})")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"expected an http(s) URL, got {_shown(url)}")
    if re.search(r"\s", url):
        raise ValueError(f"a URL cannot hold spaces or line breaks (write %20), got "
                         f"{_shown(url)}")
    return url


def _check_line(text: str) -> str:
    """A one-line setting (a name, a host, an address) has no line break or tab."""
    if _LINE_BREAK.search(text):
        raise ValueError(f"expected text on one line, got {_shown(text)}")
    return text


def _check_host(host: str) -> str:
    if len(host) > MAX_HOST_CHARS or not re.fullmatch(r"[^\s/@]+", host):
        raise ValueError(f"expected a host name or address such as mail.example.com, got "
                         f"{_shown(host)}")
    return host


def _check_variable(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", name):
        raise ValueError(f"expected the name of an environment variable such as "
                         f"NEWSWATCH_SMTP_PASSWORD (letters, digits, _), got {_shown(name)}")
    return name


def _check_path(path: Path) -> Path:
    if len(str(path)) > MAX_PATH_CHARS or any(len(part) > 255 for part in path.parts):
        raise ValueError(f"expected a folder path of at most {MAX_PATH_CHARS:,} characters, "
                         "255 per part")
    return path


def _check_unsubscribe(url: str) -> str:
    if len(url) > MAX_URL_CHARS or not re.fullmatch(r"(?:https?://[^/\s<>]+|mailto:)[^\s<>]*",
                                                    url):
        raise ValueError(f"expected an https: or mailto: URL without spaces, got {_shown(url)}")
    return url


def _one_line(text: str, limit: int) -> str:
    """`text` on one line (line breaks and control characters shown as spaces), cut to
    about `limit` characters: each problem in a ConfigError is one line."""
    text = " ".join(_CONTROL_CHARACTER.sub(" ", _LINE_BREAK.sub(" ", text)).split())
    if not text.isprintable():  # bidi controls, zero-width and unassigned characters
        text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


SUBJECT_FIELDS = ("count", "rules")
# Python's format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_FORMAT_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>[0-9]*)[,_]?(?:\.(?P<precision>[0-9]*))?"
    r"[bcdeEfFgGnosxX%]?", re.DOTALL,
)
_SUBJECT_SAMPLES: dict[str, object] = {"count": 12, "rules": "syria, energy"}


def subject_placeholder_problem(field: str, spec: str, conversion: str | None) -> str | None:
    """What is wrong with the placeholder ``{field!conversion:spec}`` of a subject
    template, or None when it is one that `alerts.render.format_subject` fills in:
    ``{count}`` or ``{rules}``, with a format spec whose width and precision are at
    most MAX_SUBJECT_WIDTH. Cheap and never raising, whatever the placeholder."""
    expected = "expected {count} or {rules}"
    if field not in SUBJECT_FIELDS:
        if field.split(".", 1)[0].split("[", 1)[0] in SUBJECT_FIELDS:
            return f"{{{_one_line(field, 40)}}}: attribute and index access is not allowed; " \
                + expected
        return f"unknown placeholder {{{_one_line(field, 40)}}}; {expected}"
    if conversion is not None:
        return f"{{{field}!{_one_line(conversion, 5)}}}: conversions are not allowed; {expected}"
    found = _FORMAT_SPEC.fullmatch(spec)
    if found is None or "{" in spec or "}" in spec:
        return f"{{{field}:{_one_line(spec, 40)}}}: invalid format spec"
    for part in ("width", "precision"):
        digits = (found[part] or "").lstrip("0")
        if len(digits) > 3 or int(digits or "0") > MAX_SUBJECT_WIDTH:
            return (f"{{{field}:{_one_line(spec, 40)}}}: the {part} is over "
                    f"{MAX_SUBJECT_WIDTH}; a subject line is short")
    try:
        format(_SUBJECT_SAMPLES[field], spec)
    except (ValueError, TypeError, OverflowError) as error:
        return f"{{{field}:{_one_line(spec, 40)}}}: invalid format spec: {error}"
    return None


def check_subject_template(template: str) -> str:
    """Raise ValueError unless every placeholder of `template` is one that
    `alerts.render.format_subject` fills in (see `subject_placeholder_problem`)."""
    if len(template) > MAX_SUBJECT_TEMPLATE_CHARS:
        raise ValueError(f"a subject has at most {MAX_SUBJECT_TEMPLATE_CHARS} characters "
                         f"(this one has {len(template):,})")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"invalid subject: {error}; write {{{{ and }}}} for a brace") from None
    for _literal, field, spec, conversion in parsed:
        if field is not None and (
            problem := subject_placeholder_problem(field, spec or "", conversion)
        ):
            raise ValueError(problem)
    return template


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
CronExpression = Annotated[str, AfterValidator(_check_cron)]
EmailAddress = Annotated[str, AfterValidator(_check_email)]
WebUrl = Annotated[str, AfterValidator(_check_web_url)]
Term = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(str.strip)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS), AfterValidator(_check_line)]
Line = Annotated[str, Field(max_length=MAX_TEXT_CHARS), AfterValidator(_check_line)]
Host = Annotated[str, Field(min_length=1), AfterValidator(_check_host)]
VariableName = Annotated[str, AfterValidator(_check_variable)]
FolderPath = Annotated[Path, AfterValidator(_check_path)]
SubjectTemplate = Annotated[str, AfterValidator(check_subject_template)]
UnsubscribeUrl = Annotated[str, AfterValidator(_check_unsubscribe)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


SOURCE_KINDS = ("feed", "site", "sitemap", "listing")


def _check_pattern(pattern: str) -> str:
    """An ``allow``/``deny`` pattern RE2 compiles (linear-time matching; the message
    names what RE2 lacks, such as backreferences or lookaround)."""
    compile_url_pattern(pattern)  # UrlPatternError is a ValueError: pydantic reports it
    return pattern


def _check_selector(selector: str) -> str:
    from parsel import Selector

    kind = "XPath" if is_xpath(selector) else "CSS selector"
    if len(selector) > MAX_TEXT_CHARS:
        article = "an" if kind == "XPath" else "a"
        raise ValueError(f"{article} {kind} has at most {MAX_TEXT_CHARS:,} characters "
                         f"(this one has {len(selector):,})")
    probe = Selector(text="<html></html>")
    try:
        probe.xpath(selector) if is_xpath(selector) else probe.css(selector)
    except Exception as error:  # parsel raises several kinds for a bad expression
        raise ValueError(f"invalid {kind} {_shown(selector)}: "
                         f"{_one_line(str(error), 120)}") from error
    return selector


def is_xpath(selector: str) -> bool:
    """Selectors starting with ``/`` or ``(`` are XPath; anything else is CSS."""
    return selector.lstrip().startswith(("/", "("))


UrlPattern = Annotated[str, AfterValidator(_check_pattern)]
ResendChoice = Literal["headline", "any", "never"]
LinkSelector = Annotated[str, Field(min_length=1), AfterValidator(_check_selector)]


class SourceConfig(_Strict):
    """One news source polled on its own interval; exactly one of the kinds is given."""

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
    every: Duration = Field(default=timedelta(minutes=15), description="Poll interval.")
    enabled: bool = Field(default=True, description="False keeps the source but stops polling it.")
    password_env: VariableName | None = Field(
        default=None, description="Variable holding the password of the URL's user "
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
            raise ValueError(f"the environment variable {variable} is not set; export it "
                             "with the source's password")
        return variable

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
        return self

    @property
    def kind(self) -> str:
        """``feed``, ``site``, ``sitemap`` or ``listing``."""
        return next(kind for kind in SOURCE_KINDS if getattr(self, kind) is not None)

    @model_validator(mode="after")
    def _credentials_complete(self) -> SourceConfig:
        _url, user, password = split_userinfo(str(getattr(self, self.kind)))
        if self.password_env is not None and user is None:
            raise ValueError("password_env needs the user name in the URL: "
                             "https://user@host/feed")
        if self.password_env is not None and password is not None:
            raise ValueError("the URL holds a password and password_env names one: keep "
                             "password_env, so that the password stays out of the file")
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
            raise ValueError(f"no stemmer for language {_shown(language)}; use a code such as "
                             "en, fr, de, es, ru or ar")
        return language

    @field_validator("keywords", "exclude")
    @classmethod
    def _terms_have_words(cls, terms: list[str] | None) -> list[str] | None:
        for term in terms or ():
            if not term_pattern(term):
                raise ValueError(f"the keyword {_shown(term)} has no letter or digit, so it "
                                 "can never match")
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


class AlertsConfig(_Strict):
    """Immediate alerts: batched per recipient over a short window, throttled."""

    window: Duration = Field(default=timedelta(minutes=5), description="Batching window.")
    max_per_hour: int = Field(default=6, ge=1, le=60, description="Alert emails per hour.")
    subject: SubjectTemplate = Field(default="newswatch alert: {count} new articles")


class DeliveryRetryConfig(_Strict):
    """How a failed send is retried before it waits for the next scheduled run."""

    attempts: int = Field(default=6, ge=1, le=50, description="Automatic retries.")
    first_delay: Duration = Field(default=timedelta(minutes=1))
    max_delay: Duration = Field(default=timedelta(hours=1))


@dataclass(frozen=True)
class Recipient:
    """A recipient with every default resolved: what the digest code works with."""

    email: str
    rules: tuple[str, ...]
    schedule: str
    timezone: str
    quiet_days: frozenset[str]
    alerts: bool


class DigestConfig(_Strict):
    """When and to whom the digest goes."""

    schedule: CronExpression = Field(default="0 7 * * *", description="Cron, in `timezone`.")
    timezone: TimeZoneName = Field(default="UTC", description="IANA zone for schedule and times.")
    recipients: list[EmailAddress] = Field(default_factory=list, description="Who gets the digest.")
    subject: SubjectTemplate = Field(
        default="newswatch: {count} new articles", description="`{count}` is filled in."
    )
    sender: EmailAddress = Field(default="newswatch@localhost", description="The From address.")
    templates: FolderPath | None = Field(default=None, description="Templates overriding ours.")
    unsubscribe: UnsubscribeUrl | None = Field(
        default=None, description="mailto: or https: URL for the List-Unsubscribe header."
    )
    max_stories: int = Field(
        default=50, ge=1, le=10_000,
        description="Stories shown per rule section; the rest are one line, N more.",
    )
    max_bytes: int = Field(
        default=5_000_000, ge=100_000, le=50_000_000,
        description="Size budget of one email (and never above the SMTP server's SIZE).",
    )


class SmtpConfig(_Strict):
    """An SMTP relay. The password is only ever read from an environment variable."""

    host: Host
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    username: Line | None = None
    password_env: VariableName | None = Field(
        default=None, description="Variable holding the password.")
    timeout: Duration = Field(default=timedelta(seconds=30))

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpConfig:
        if self.starttls and self.ssl:
            raise ValueError("choose either starttls or ssl, not both")
        return self

    def password(self) -> str | None:
        """The password from the environment (validated to exist at load time)."""
        return os.environ.get(self.password_env) if self.password_env else None


class DeliveryConfig(_Strict):
    """SMTP when ``smtp`` is given, otherwise ``.eml`` files in the outbox folder."""

    smtp: SmtpConfig | None = None
    outbox: FolderPath = Field(
        default=Path("outbox"), description="Folder for .eml files without SMTP.")


class RetentionConfig(_Strict):
    """How long stored text is kept. URL keys and fingerprints outlive the bodies, so
    an old article never comes back as new."""

    bodies: Duration = Field(default=timedelta(days=90), description="Keep article text.")
    fingerprints: Duration = Field(
        default=timedelta(days=730), description="Keep URL keys and fingerprints."
    )

    @model_validator(mode="after")
    def _fingerprints_outlive_bodies(self) -> RetentionConfig:
        if self.fingerprints < self.bodies:
            raise ValueError("fingerprints must be kept at least as long as bodies")
        return self


class WebConfig(_Strict):
    """The status page, /healthz and /metrics, served by the service itself."""

    enabled: bool = True
    host: Host = Field(default="127.0.0.1", description="Bind address; loopback by default.")
    port: int = Field(default=8787, ge=0, le=65535, description="0 picks a free port.")
    token_env: VariableName | None = Field(
        default=None, description="Variable holding the access token (required off loopback)."
    )
    public_url: WebUrl | None = Field(
        default=None, description="Where readers reach the web UI: digests link there.",
    )
    allowed_hosts: list[Host] = Field(
        default_factory=list, description="Host names the web UI answers to, besides "
        "localhost, IP addresses and the bind address (a guard against DNS rebinding).",
    )

    @model_validator(mode="after")
    def _token_off_loopback(self) -> WebConfig:
        if self.enabled and not is_loopback_host(self.host) and not self.token_env:
            raise ValueError(
                f"the web UI on {self.host} is reachable from other machines: set token_env "
                "to an environment variable holding an access token"
            )
        return self

    def token(self) -> str | None:
        return os.environ.get(self.token_env) if self.token_env else None


def is_loopback_host(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_network(network: str) -> str:
    try:
        ipaddress.ip_network(network, strict=False)
    except ValueError as error:
        raise ValueError(f"expected an IP address or CIDR network such as 10.0.0.0/8 "
                         f"or fd00::/8, got {_shown(network)}") from error
    return network


Network = Annotated[str, AfterValidator(_check_network)]


class FetchPolicyConfig(_Strict):
    """Which addresses crawls may connect to (spiders/addresses.py). Off by default:
    on a one-person install, a source on the local network is a feature."""

    deny_private_addresses: bool = Field(
        default=False, description="Refuse loopback, private, link-local and reserved "
        "addresses, and the service's own web port (for configs from less trusted people).",
    )
    deny_networks: list[Network] = Field(
        default_factory=list, description="Also refuse these addresses/CIDR networks.",
    )


def _check_redis_url(url: str) -> str:
    if len(url) > MAX_URL_CHARS or not re.match(r"^(redis|rediss|unix)://\S+$", url):
        raise ValueError(f"expected a Redis URL such as redis://127.0.0.1:6379/0, got "
                         f"{_shown(url)}")
    return url


def _check_failover(bound: timedelta) -> timedelta:
    if not timedelta(seconds=3) <= bound <= timedelta(minutes=10):
        raise ValueError("expected a duration from 3s to 10m")
    return bound


RedisUrl = Annotated[str, AfterValidator(_check_redis_url)]
FailoverBound = Annotated[timedelta, BeforeValidator(parse_duration),
                          AfterValidator(_check_failover)]


class ClusterConfig(_Strict):
    """Scale-out (``newswatch run --role scheduler`` and ``newswatch worker``):
    crawler/storage/cluster.py and docs/scaling.md."""

    failover: FailoverBound = Field(
        default=timedelta(seconds=30),
        description="A standby scheduler takes over at most this long after the active "
        "one died.",
    )
    queue_prefix: str = Field(
        default="newswatch", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis key, so that several installs share one Redis.",
    )
    concurrent_requests: int = Field(
        default=16, ge=1, le=256, description="Requests in flight per worker, all sites.",
    )


class DomainConfig(_Strict):
    """Politeness for one host, e.g. ``domains: {www.example.com: {concurrency: 1}}``."""

    concurrency: int | None = Field(default=None, ge=1, le=32)
    delay: Duration | None = Field(default=None, description="Minimum delay between requests.")


class Config(_Strict):
    """The whole, validated configuration."""

    database: Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS),
                        AfterValidator(_check_line)] = Field(
        default="sqlite:///newswatch.db", description="SQLAlchemy URL.")
    redis: RedisUrl | None = Field(
        default=None, description="Redis URL of the shared crawl queue (scale-out only).",
    )
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    user_agent_contact: Line = Field(
        default="https://github.com/newswatch/newswatch",
        description="URL or email sent in the User-Agent so site owners can reach you.",
    )
    sources: list[SourceConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    recipients: list[RecipientConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    delivery_retry: DeliveryRetryConfig = Field(default_factory=DeliveryRetryConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    download_timeout: Duration = Field(default=timedelta(seconds=30))
    poll_timeout: Duration = Field(
        default=timedelta(minutes=10),
        description="A poll stops asking for pages after this long; the rest wait for the "
        "next poll.",
    )
    download_maxsize: int = Field(
        default=10 * 1024 * 1024, ge=1024, le=MAX_DOWNLOAD_MAXSIZE, description="Bytes/response.")
    concurrent_requests_per_domain: int = Field(default=2, ge=1, le=32)
    domains: dict[Host, DomainConfig] = Field(
        default_factory=dict, description="Per-host concurrency and delay overrides."
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    story_window: Duration = Field(
        default=timedelta(days=7),
        description="How long a story takes new copies (the story index's time window).",
    )
    web: WebConfig = Field(default_factory=WebConfig)
    resend_updates: ResendChoice = Field(
        default="headline",
        description="Resend a changed article readers had: headline, any, never.",
    )
    max_backoff: Duration = Field(
        default=timedelta(hours=6), description="Longest a failing source's poll is put off."
    )
    max_retry_after: Duration = Field(
        default=timedelta(seconds=60), description="Longest Retry-After waited out in a crawl."
    )
    obey_robots_txt: bool = True
    fetch_policy: FetchPolicyConfig = Field(default_factory=FetchPolicyConfig)
    workers: int | None = Field(
        default=None, ge=0, le=64,
        description="Extraction worker processes; default one per core, 0 parses in-process.",
    )

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        _require_unique([s.name for s in sources], "source")
        return sources

    @field_validator("rules")
    @classmethod
    def _unique_rule_names(cls, rules: list[RuleConfig]) -> list[RuleConfig]:
        _require_unique([r.name for r in rules], "rule")
        return rules

    @model_validator(mode="after")
    def _recipients_name_known_rules(self) -> Config:
        names = {rule.name for rule in self.rules}
        tags = {tag for rule in self.rules for tag in rule.tags}
        emails = [r.email.lower() for r in self.recipients] + [
            e.lower() for e in self.digest.recipients]
        _require_unique(emails, "recipient")
        for recipient in self.recipients:
            unknown = [name for name in recipient.rules or [] if name not in names]
            if unknown:
                raise ValueError(
                    f"recipient {recipient.email} names unknown rules: {', '.join(unknown)}")
            unknown = [tag for tag in recipient.tags if tag not in tags]
            if unknown:
                raise ValueError(
                    f"recipient {recipient.email} names tags no rule has: {', '.join(unknown)}")
        return self

    def all_recipients(self) -> list[Recipient]:
        """Every recipient (``recipients:`` and ``digest.recipients``), defaults resolved."""
        configured = [*self.recipients, *(RecipientConfig(email=e) for e in self.digest.recipients)]
        return [self._resolve(recipient) for recipient in configured]

    def _resolve(self, recipient: RecipientConfig) -> Recipient:
        names = [rule.name for rule in self.rules]
        if recipient.rules is not None or recipient.tags:
            chosen = set(recipient.rules or []) | {
                rule.name for rule in self.rules if set(rule.tags) & set(recipient.tags)}
            names = [name for name in names if name in chosen]
        schedule = recipient.schedule or self.digest.schedule
        if recipient.frequency == "weekly":
            *time_fields, _day, _month, _weekday = schedule.split()
            schedule = " ".join([*time_fields, "*", "*", recipient.weekday])
        return Recipient(
            email=recipient.email,
            rules=tuple(names),
            schedule=schedule,
            timezone=recipient.timezone or self.digest.timezone,
            quiet_days=frozenset(recipient.quiet_days),
            alerts=recipient.alerts,
        )

    def rule_names(self, alert: str | None = None) -> list[str]:
        """Rule names in config order; only ``digest`` or ``immediate`` ones if asked."""
        return [rule.name for rule in self.rules if alert is None or rule.alert == alert]

    def recipient(self, email: str) -> Recipient:
        for recipient in self.all_recipients():
            if recipient.email.lower() == email.lower():
                return recipient
        raise KeyError(email)

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``; KeyError when there is none."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)


def _require_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"two {what}s are named {name!r}; names must be unique")
        seen.add(name)


def check_scale_out(config: Config, path: Path, role: str) -> None:
    """Raise ConfigError unless ``config`` can run ``role`` (``scheduler`` or ``worker``)
    of the scale-out mode: a Redis URL and a PostgreSQL database shared by every process."""
    problems = []
    node = None
    with contextlib.suppress(OSError, UnicodeDecodeError, yaml.YAMLError):
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if config.redis is None:
        problems.append(
            f"{path}: redis (line {_line_of(node, ('redis',))}): required by the {role} role: "
            "the URL of the Redis that holds the shared crawl queue, such as "
            "redis://127.0.0.1:6379/0")
    if not config.database.startswith(("postgresql:", "postgresql+")):
        problems.append(
            f"{path}: database (line {_line_of(node, ('database',))}): the {role} role needs a "
            "PostgreSQL database shared by every process, such as "
            f"postgresql+psycopg://newswatch@dbhost/newswatch (got {config.database!r})")
    if problems:
        raise ConfigError("\n".join(problems))


def config_path(explicit: str | Path | None = None) -> Path:
    """The file to read: ``--config``, else ``$NEWSWATCH_CONFIG``, else ``./config.yaml``."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(path: str | Path) -> Config:
    """Read and validate ``path``; raise ConfigError naming file, key path and line."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: the file is {size:,} bytes; a configuration is at "
                              f"most {MAX_CONFIG_BYTES:,} (is it the right file?)")
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration: {error}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"{path}: line {line}: cannot read the configuration: it is not "
                          f"UTF-8 text (byte 0x{data[error.start]:02x})") from error
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate YAML ``text`` that came from ``path`` (used in messages).

    Returns the Config, or raises ConfigError: one line per problem, each starting
    with ``path`` and naming the key path and the line (or, for text that is not
    YAML, the line and column). The work is bounded by the text's size: the YAML
    tree is checked (size with aliases expanded, nesting, keys) before anything is
    built from it, and every value has a bounded size.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # only from a caller: a file is decoded UTF-8
        line = text.count("\n", 0, error.start) + 1
        raise ConfigError(f"{path}: line {line}: U+{ord(text[error.start]):04X} is not a "
                          "character (a lone surrogate)") from None
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        locations: dict[int, tuple[int | str, ...]] = {}
        if node is not None:
            if problems := _structure_problems(node, path, locations):
                raise ConfigError("\n".join(problems))
            data = loader.construct_document(node)
        else:
            data = None
    except _UnreadableValue as error:
        loc = locations.get(id(error.node), ())
        raise ConfigError(f"{path}: {_format_loc(loc)} (line {error.node.start_mark.line + 1}): "
                          f"{error.reason}") from error
    except yaml.YAMLError as error:
        raise ConfigError(_yaml_error_message(path, error, text)) from error
    except RecursionError:  # the pure-Python composer, on very deep nesting
        raise ConfigError(f"{path}: line 1: invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: line 1: expected a mapping of settings at the top level")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_validation_message(path, node, error)) from error
    if problems := _missing_secrets(config, node, path):
        raise ConfigError("\n".join(problems))
    return _resolve_paths(config, path)


_TAG_KINDS = {
    "tag:yaml.org,2002:int": "an integer", "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false", "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date", "tag:yaml.org,2002:binary": "base64 data",
}  # fmt: skip
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _UnreadableValue(yaml.YAMLError):
    """A scalar the safe constructor cannot turn into a value: 2020-99-99, ``!!int abc``,
    a number of 5,000 digits."""

    def __init__(self, node: yaml.Node, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


class _ConfigLoader(SAFE_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader; a value its constructors cannot build is an `_UnreadableValue`
    naming the node, not whatever exception the constructor raised."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        # What SafeConstructor's scalar constructors raise: int("x"), value[0] of
        # "!!int" alone, {...}["maybe"] for a bool, None.groupdict() for "!!timestamp x".
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError) as error:
            kind = _TAG_KINDS.get(node.tag, f"a {node.tag} value")
            value = node.value if isinstance(node, yaml.ScalarNode) else node.tag
            reason = str(error) if not isinstance(error, KeyError) else "not one of its forms"
            raise _UnreadableValue(node, f"cannot read {_shown(value, 40)} as {kind}: "
                                   f"{_one_line(reason, 80)}; quote it if it is text") from error


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _expanded_size(root: yaml.Node) -> tuple[int, yaml.Node | None]:
    """How many values the document holds once aliases are expanded (at most
    MAX_YAML_NODES + 1), and a node that holds itself through an alias, if any.

    Computed without expanding the aliases (an alias is the same node object, sized
    once) and without recursion: an explicit stack, children before their parent.
    """
    sizes: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_sized = stack.pop()
        if children_sized:
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[id(node)] = min(total, MAX_YAML_NODES + 1)
            continue
        if id(node) in sizes:
            continue
        if id(node) in entered:  # reached again from inside itself
            return 0, node
        entered.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)], None


def _structure_problems(
    root: yaml.Node, path: Path, locations: dict[int, tuple[int | str, ...]]
) -> list[str]:
    """What makes the YAML tree unusable before any value is read: too many values
    with aliases expanded, an alias inside itself, nesting deeper than
    MAX_YAML_DEPTH, keys that are not text or given twice, control characters.
    Fills `locations` with the key path of each node (the first, for an alias)."""
    size, cycle = _expanded_size(root)
    if cycle is not None:
        return [f"{path}: line {cycle.start_mark.line + 1}: invalid YAML: an alias (*name) "
                "refers to a value it is part of"]
    if size > MAX_YAML_NODES:
        return [f"{path}: line 1: with its YAML aliases (*name) expanded the file holds more "
                f"than {MAX_YAML_NODES:,} values; at most {MAX_YAML_NODES:,} are allowed, so "
                "that a small file cannot expand into an enormous one"]
    problems: list[str] = []
    # Depth first, in document order; each path once (at most MAX_YAML_NODES).
    stack: list[tuple[yaml.Node, tuple[int | str, ...]]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        locations.setdefault(id(node), loc)
        where = f"{path}: {_format_loc(loc)} (line {node.start_mark.line + 1})"
        if len(loc) > MAX_YAML_DEPTH:
            problems.append(f"{where}: nested more than {MAX_YAML_DEPTH} levels deep; no "
                            "setting is more than five levels down")
            continue
        if isinstance(node, yaml.ScalarNode):
            if found := _CONTROL_CHARACTER.search(node.value):
                problems.append(f"{where}: the value holds the control character "
                                f"U+{ord(found[0]):04X}; remove it")
            continue
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, (*loc, index)) for index, child in reversed(
                list(enumerate(node.value))))
            continue
        children: list[tuple[yaml.Node, tuple[int | str, ...]]] = []
        first_lines: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.tag == _MERGE_TAG:  # <<: *defaults merges that mapping into this one
                children.append((value, loc))
                continue
            if not (isinstance(key, yaml.ScalarNode) and key.tag == _STR_TAG):
                if isinstance(key, yaml.ScalarNode):
                    kind = _TAG_KINDS.get(key.tag, f"a {_shown(key.tag, 40)} value")
                    problem = f"the key {_shown(key.value, 40)} is read as {kind}; quote it"
                else:
                    kind = "a list" if isinstance(key, yaml.SequenceNode) else "a mapping"
                    problem = f"a key must be text, not {kind}"
                problems.append(f"{path}: {_format_loc(loc)} (line {line}): {problem}")
                continue
            key_loc = (*loc, key.value)
            if found := _CONTROL_CHARACTER.search(key.value):
                problems.append(f"{path}: {_format_loc(key_loc)} (line {line}): the key holds "
                                f"the control character U+{ord(found[0]):04X}; remove it")
            elif key.value in first_lines:
                problems.append(f"{path}: {_format_loc(key_loc)} (line {line}): the key is "
                                f"given twice (first on line {first_lines[key.value]}); "
                                "keep one")
            else:
                first_lines[key.value] = line
            children.append((value, key_loc))
        stack.extend(reversed(children))
    return problems


def _resolve_paths(config: Config, path: Path) -> Config:
    """Relative folders in the file are relative to the file, not the working directory."""
    base = path.resolve().parent
    delivery = config.delivery.model_copy(update={"outbox": base / config.delivery.outbox})
    update: dict[str, Any] = {"delivery": delivery}
    if config.digest.templates is not None:
        digest = config.digest.model_copy(update={"templates": base / config.digest.templates})
        update["digest"] = digest
    if config.database.startswith("sqlite:///") and not config.database.startswith("sqlite:////"):
        relative = config.database.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            update["database"] = f"sqlite:///{base / relative}"
    return config.model_copy(update=update)


def _missing_secrets(config: Config, node: yaml.Node | None, path: Path) -> list[str]:
    wanted = []
    smtp = config.delivery.smtp
    if smtp is not None and smtp.password_env is not None:
        wanted.append((("delivery", "smtp", "password_env"), smtp.password_env, "SMTP password"))
    if config.web.enabled and config.web.token_env is not None:
        wanted.append((("web", "token_env"), config.web.token_env, "web access token"))
    return [
        f"{path}: {_format_loc(loc)} (line {_line_of(node, loc)}): the environment variable "
        f"{variable} is not set; export it with the {what}"
        for loc, variable, what in wanted
        if not os.environ.get(variable)
    ]


def _yaml_error_message(path: Path, error: yaml.YAMLError, text: str) -> str:
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
    elif isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow
        where = f"line {text.count(chr(10), 0, error.position) + 1}"
    else:
        where = "line 1"
    problem = getattr(error, "problem", None) or getattr(error, "reason", None) or str(error)
    return f"{path}: {where}: invalid YAML: {_one_line(str(problem), 200)}"


def _validation_message(path: Path, node: yaml.Node | None, error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        loc = tuple(problem["loc"])
        lines.append(f"{path}: {_format_loc(loc)} (line {_line_of(node, loc)}): "
                     f"{_one_line(_describe(problem), 300)}")
    return "\n".join(lines)


def _describe(problem: Any) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against the configuration reference"
    if kind == "missing":
        return "required key is missing"
    message = str(problem["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type"):
        return f"{message} (got {_shown(problem['input'])})"
    return message


def _format_loc(loc: tuple[int | str, ...]) -> str:
    """``('rules', 2, 'keywords')`` → ``rules[2].keywords``; a key that is not a plain
    word is quoted, cut and kept on one line."""
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
            continue
        name = part if isinstance(part, str) else repr(part)
        if not re.fullmatch(r"[\w.:<>\[\]-]{1,80}", name, flags=re.ASCII):
            name = _shown(name, 40)
        text += f".{name}" if text else name
    return text or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    line = 1
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    line = key.start_mark.line + 1
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        node = child
    return line
