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
from dataclasses import dataclass
from datetime import timedelta
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

from alerts.query import QuerySyntaxError, parse_query, stem_language

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

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem found."""


def parse_duration(value: object) -> timedelta:
    """Parse ``30s``, ``15m``, ``2h``, ``7d``, ``2w`` or ``2y`` (a bare number: seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    if isinstance(value, str) and (found := _DURATION.match(value)):
        amount, unit = found.groups()
        if int(amount) > 0:
            return timedelta(seconds=int(amount) * _DURATION_SECONDS[unit])
    raise ValueError("expected a positive duration such as 30s, 15m, 2h, 7d or 2y")


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(
            f"unknown time zone {name!r}; expected an IANA name such as Europe/Paris"
        ) from error
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
    try:
        cron_trigger(expression)
    except ValueError as error:
        raise ValueError(f"invalid cron expression {expression!r}: {error}") from error
    return expression


def _check_email(address: str) -> str:
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
        raise ValueError(f"expected an email address, got {address!r}")
    return address


def _check_web_url(url: str) -> str:
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    return url


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
CronExpression = Annotated[str, AfterValidator(_check_cron)]
EmailAddress = Annotated[str, AfterValidator(_check_email)]
WebUrl = Annotated[str, AfterValidator(_check_web_url)]
Term = Annotated[str, Field(min_length=1), AfterValidator(str.strip)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


SOURCE_KINDS = ("feed", "site", "sitemap", "listing")


def _check_pattern(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid regular expression {pattern!r}: {error}") from error
    return pattern


def _check_selector(selector: str) -> str:
    from parsel import Selector

    probe = Selector(text="<html></html>")
    try:
        probe.xpath(selector) if is_xpath(selector) else probe.css(selector)
    except Exception as error:  # parsel raises several kinds for a bad expression
        kind = "XPath" if is_xpath(selector) else "CSS selector"
        raise ValueError(f"invalid {kind} {selector!r}: {error}") from error
    return selector


def is_xpath(selector: str) -> bool:
    """Selectors starting with ``/`` or ``(`` are XPath; anything else is CSS."""
    return selector.lstrip().startswith(("/", "("))


UrlPattern = Annotated[str, AfterValidator(_check_pattern)]
ResendChoice = Literal["headline", "any", "never"]
LinkSelector = Annotated[str, Field(min_length=1), AfterValidator(_check_selector)]


class SourceConfig(_Strict):
    """One news source polled on its own interval; exactly one of the kinds is given."""

    name: str = Field(min_length=1, description="Unique name, shown in digests and logs.")
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

    @property
    def url(self) -> str:
        """The URL polled first: the feed, homepage, sitemap or listing page."""
        return str(getattr(self, self.kind))


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class RuleConfig(_Strict):
    """A watch rule: keyword lists (any keyword, no excluded term) or a query."""

    name: str = Field(min_length=1, description="Unique name, the heading in the digest.")
    keywords: list[Term] | None = Field(
        default=None, min_length=1, description="Any of these; a space makes a phrase."
    )
    exclude: list[Term] = Field(default_factory=list, description="None of these may occur.")
    query: str | None = Field(default=None, description="A boolean query instead of keywords.")
    stem: bool = Field(default=False, description="Match word forms (snowball stemming).")
    language: str | None = Field(default=None, description="Stemming language if not detected.")
    tags: list[str] = Field(default_factory=list, description="Recipients may subscribe by tag.")
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
            raise ValueError(f"no stemmer for language {language!r}; use a code such as en, "
                             "fr, de, es, ru or ar")
        return language

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
    rules: list[str] | None = Field(default=None, description="Rule names; default: all.")
    tags: list[str] = Field(default_factory=list, description="Also rules with these tags.")
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
    subject: str = Field(default="newswatch alert: {count} new articles")


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
    subject: str = Field(
        default="newswatch: {count} new articles", description="`{count}` is filled in."
    )
    sender: EmailAddress = Field(default="newswatch@localhost", description="The From address.")
    templates: Path | None = Field(default=None, description="Templates overriding ours.")
    unsubscribe: str | None = Field(
        default=None, description="mailto: or https: URL for the List-Unsubscribe header."
    )


class SmtpConfig(_Strict):
    """An SMTP relay. The password is only ever read from an environment variable."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: str | None = Field(default=None, description="Variable holding the password.")
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
    outbox: Path = Field(default=Path("outbox"), description="Folder for .eml files without SMTP.")


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
    host: str = Field(default="127.0.0.1", description="Bind address; loopback by default.")
    port: int = Field(default=8787, ge=0, le=65535, description="0 picks a free port.")
    token_env: str | None = Field(
        default=None, description="Variable holding the access token (required off loopback)."
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
                         f"or fd00::/8, got {network!r}") from error
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
    if not re.match(r"^(redis|rediss|unix)://\S+$", url):
        raise ValueError(f"expected a Redis URL such as redis://127.0.0.1:6379/0, got {url!r}")
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
    crawler/cluster.py and docs/scaling.md."""

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

    database: str = Field(default="sqlite:///newswatch.db", description="SQLAlchemy URL.")
    redis: RedisUrl | None = Field(
        default=None, description="Redis URL of the shared crawl queue (scale-out only).",
    )
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    user_agent_contact: str = Field(
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
    download_maxsize: int = Field(default=10 * 1024 * 1024, ge=1024, description="Bytes/response.")
    concurrent_requests_per_domain: int = Field(default=2, ge=1, le=32)
    domains: dict[str, DomainConfig] = Field(
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
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the configuration: {error}") from error
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate YAML ``text`` that came from ``path`` (used in messages)."""
    try:
        node = yaml.compose(text, Loader=SAFE_LOADER)
        expanded = _expanded_size(node, {}) if node is not None else 0
        if expanded > MAX_YAML_NODES:
            raise ConfigError(f"{path}: with its YAML aliases (*name) expanded the file holds "
                              f"{expanded:,} values; at most {MAX_YAML_NODES:,} are allowed, "
                              "so that a small file cannot expand into an enormous one")
        data = yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise ConfigError(_yaml_error_message(path, error)) from error
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


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the document holds once aliases are expanded (computed without
    expanding them: an alias is the same node object, sized once)."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a (malformed) cycle counts once
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(key, sizes) + _expanded_size(value, sizes)
                    for key, value in node.value)
    sizes[id(node)] = size
    return size


def _yaml_error_message(path: Path, error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
    problem = getattr(error, "problem", None) or str(error)
    return f"{path}: {where}: invalid YAML: {problem}"


def _validation_message(path: Path, node: yaml.Node | None, error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        loc = tuple(problem["loc"])
        lines.append(
            f"{path}: {_format_loc(loc)} (line {_line_of(node, loc)}): {_describe(problem)}"
        )
    return "\n".join(lines)


def _describe(problem: Any) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against the configuration reference"
    if kind == "missing":
        return "required key is missing"
    message = str(problem["msg"]).removeprefix("Value error, ")
    return f"{message} (got {problem['input']!r})" if kind.endswith("_type") else message


def _format_loc(loc: tuple[int | str, ...]) -> str:
    """``('rules', 2, 'keywords')`` → ``rules[2].keywords``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
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
                if key.value == part:
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
