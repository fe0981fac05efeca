"""The schema of the rest of config.yaml (alerts, digest, delivery, retention, web,
fetch policy, cluster, domains) and `Config`, the whole validated configuration."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from crawler.domain.config.access import SiteAccessConfig
from crawler.domain.config.browser import BrowserConfig
from crawler.domain.config.channels import ChannelConfig
from crawler.domain.config.cluster import ClusterConfig, RedisUrl
from crawler.domain.config.polling import PollingConfig
from crawler.domain.config.references import reference_problems
from crawler.domain.config.values import (
    MAX_DOWNLOAD_MAXSIZE,
    MAX_PATH_CHARS,
    CronExpression,
    Duration,
    EmailAddress,
    FolderPath,
    Host,
    KeyedValueErrors,
    Line,
    Name,
    ResendChoice,
    SubjectTemplate,
    TimeZoneName,
    UnsubscribeUrl,
    VariableName,
    WebUrl,
    _check_line,
    _shown,
    _Strict,
)
from crawler.domain.config.watch import RecipientConfig, RuleConfig, SourceConfig
from crawler.domain.config.websub import WebSubConfig
from crawler.domain.items import EMAIL_CHANNEL

# The ledger's recipient for a rule's own channel (`rules[].channels`): the channel
# itself, so that a story two such rules match reaches the room once.
CHANNEL_RECIPIENT_PREFIX = "channel:"


class AlertsConfig(_Strict):
    """Immediate alerts: batched per recipient and channel over a short window,
    throttled (email here, other channels by their own ``max_per_*``)."""

    window: Duration = Field(default=timedelta(seconds=60), description="Batching window.")
    max_per_hour: int = Field(
        default=6, ge=1, le=60, description="Alert emails per recipient per hour."
    )
    subject: SubjectTemplate = Field(default="newswatch alert: {new_articles}")


class DeliveryRetryConfig(_Strict):
    """How a failed send is retried before it waits for the next scheduled run."""

    attempts: int = Field(default=6, ge=1, le=50, description="Automatic retries.")
    first_delay: Duration = Field(default=timedelta(minutes=1))
    max_delay: Duration = Field(default=timedelta(hours=1))


@dataclass(frozen=True)
class Recipient:
    """A recipient with every default resolved: what the digest code works with.

    ``email`` is the ledger's recipient: an address, or ``channel:<name>`` for a
    channel a rule names (``Config.channel_recipients``)."""

    email: str
    rules: tuple[str, ...]
    schedule: str
    timezone: str
    quiet_days: frozenset[str]
    alerts: bool
    channels: tuple[str, ...] = ("email",)  # "email" and/or `channels[].name`s
    max_stories: int | None = None  # stories shown per section; None: digest's
    repeat_stories: bool = False  # a story under every rule it matches, not once
    sources_in_trouble: bool = True  # the digest ends with the sources in a bad state


class DigestConfig(_Strict):
    """When and to whom the digest goes."""

    schedule: CronExpression = Field(default="0 7 * * *", description="Cron, in `timezone`.")
    timezone: TimeZoneName = Field(default="UTC", description="IANA zone for schedule and times.")
    recipients: list[EmailAddress] = Field(default_factory=list, description="Who gets the digest.")
    subject: SubjectTemplate = Field(
        default="newswatch: {new_articles}", description="`{new_articles}` is filled in."
    )
    sender: EmailAddress = Field(default="newswatch@localhost", description="The From address.")
    templates: FolderPath | None = Field(default=None, description="Templates overriding ours.")
    unsubscribe: UnsubscribeUrl | None = Field(
        default=None, description="mailto: or https: URL for the List-Unsubscribe header."
    )
    max_stories: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Stories shown per rule section; the rest are one line, N more.",
    )
    max_bytes: int = Field(
        default=5_000_000,
        ge=100_000,
        le=50_000_000,
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
        default=None, description="Variable holding the password."
    )
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
        default=Path("outbox"), description="Folder for .eml files without SMTP."
    )


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
        default=None,
        description="Where readers reach the web UI: digests link there.",
    )
    allowed_hosts: list[Host] = Field(
        default_factory=list,
        description="Host names the web UI answers to, besides "
        "localhost, IP addresses and the bind address (a guard against DNS rebinding).",
    )
    secret_env: VariableName | None = Field(
        default=None,
        description="Variable holding the key that signs readers' links (default: a key "
        "the service keeps in its database).",
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

    def secret(self) -> str | None:
        return os.environ.get(self.secret_env) or None if self.secret_env else None


class FeedbackConfig(_Strict):
    """The links in a digest that answer it (docs/feedback.md)."""

    link_ttl: Duration = Field(
        default=timedelta(days=30), description="How long a digest's links work."
    )
    rate_limit: int = Field(
        default=30,
        ge=1,
        le=10_000,
        description=(
            "Requests a minute one client (an IPv4 address, an IPv6 /64) may make to "
            "the link pages."
        ),
    )
    learn_after: int = Field(
        default=5,
        ge=1,
        le=1_000,
        description=(
            "Votes (more like this / not relevant) a reader casts on a rule before "
            "what they taught reorders that rule's section for them."
        ),
    )


class OperatorsConfig(_Strict):
    """Who is told when a source goes bad or recovers (README, "Source health")."""

    recipients: list[EmailAddress] = Field(
        default_factory=list, description="Email addresses told of sources in trouble."
    )
    channels: list[Name] = Field(
        default_factory=list, description="Channels (webhook, apprise) told of them too."
    )
    min_gap: Duration = Field(
        default=timedelta(hours=1),
        description="At most one message per source this often; a source that changes "
        "state faster is summed up in the next.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.recipients or self.channels)


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
        raise ValueError(
            f"expected an IP address or CIDR network such as 10.0.0.0/8 "
            f"or fd00::/8, got {_shown(network)}"
        ) from error
    return network


Network = Annotated[str, AfterValidator(_check_network)]


class FetchPolicyConfig(_Strict):
    """Which addresses crawls may connect to (spiders/addresses.py). Off by default:
    on a one-person install, a source on the local network is a feature."""

    deny_private_addresses: bool = Field(
        default=False,
        description="Refuse loopback, private, link-local and reserved "
        "addresses, and the service's own web port (for configs from less trusted people).",
    )
    deny_networks: list[Network] = Field(
        default_factory=list,
        description="Also refuse these addresses/CIDR networks.",
    )


class DomainConfig(SiteAccessConfig):
    """Politeness for one host, e.g. ``domains: {www.example.com: {concurrency: 1}}``,
    and how the sources on it are reached (headers, cookies, user agent, proxy)."""

    concurrency: int | None = Field(default=None, ge=1, le=32)
    delay: Duration | None = Field(default=None, description="Minimum delay between requests.")


class Config(_Strict):
    """The whole, validated configuration."""

    database: Annotated[
        str, Field(min_length=1, max_length=MAX_PATH_CHARS), AfterValidator(_check_line)
    ] = Field(default="sqlite:///newswatch.db", description="SQLAlchemy URL.")
    redis: RedisUrl | None = Field(
        default=None,
        description="Redis URL of the shared crawl queue (scale-out only).",
    )
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    user_agent_contact: Line = Field(
        default="https://github.com/newswatch/newswatch",
        description="URL or email sent in the User-Agent so site owners can reach you.",
    )
    sources: list[SourceConfig] = Field(default_factory=list)
    polling: PollingConfig = Field(default_factory=PollingConfig)
    rules: list[RuleConfig] = Field(default_factory=list)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    recipients: list[RecipientConfig] = Field(default_factory=list)
    channels: list[ChannelConfig] = Field(default_factory=list)
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
        default=10 * 1024 * 1024, ge=1024, le=MAX_DOWNLOAD_MAXSIZE, description="Bytes/response."
    )
    concurrent_requests_per_domain: int = Field(default=2, ge=1, le=32)
    domains: dict[Host, DomainConfig] = Field(
        default_factory=dict,
        description="Per-host concurrency and delay, and how its sources are reached.",
    )
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    story_window: Duration = Field(
        default=timedelta(days=7),
        description="How long a story takes new copies (the story index's time window).",
    )
    web: WebConfig = Field(default_factory=WebConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    websub: WebSubConfig = Field(default_factory=WebSubConfig)
    operators: OperatorsConfig = Field(default_factory=OperatorsConfig)
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
    browser: BrowserConfig = Field(default_factory=BrowserConfig)
    workers: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Extraction worker processes; default one per core, 0 parses in-process.",
    )
    workers_idle_close: Duration | None = Field(
        default=timedelta(minutes=2),
        description="Idle time after which the extraction workers stop; null keeps them.",
    )

    @model_validator(mode="after")
    def _references_hold(self) -> Config:
        if problems := reference_problems(self):
            raise KeyedValueErrors(problems)
        return self

    def all_recipients(self) -> list[Recipient]:
        """Every recipient (``recipients:`` and ``digest.recipients``), defaults resolved."""
        configured = [*self.recipients, *(RecipientConfig(email=e) for e in self.digest.recipients)]
        return [self._resolve(recipient) for recipient in configured]

    def channel_recipients(self) -> list[Recipient]:
        """The channels ``rules[].channels`` name, each as the recipient of those rules'
        immediate alerts (``channel:<name>``, on that channel alone). Not in
        ``all_recipients``: they get no digest and have no schedule of their own."""
        rules_of: dict[str, list[str]] = {}
        for rule in self.rules:
            for name in rule.channels:
                rules_of.setdefault(name, []).append(rule.name)
        return [
            Recipient(
                email=f"{CHANNEL_RECIPIENT_PREFIX}{name}",
                rules=tuple(rules),
                schedule=self.digest.schedule,
                timezone=self.digest.timezone,
                quiet_days=frozenset(),
                alerts=True,
                channels=(name,),
            )
            for name, rules in rules_of.items()
        ]

    def _resolve(self, recipient: RecipientConfig) -> Recipient:
        names = [rule.name for rule in self.rules]
        if recipient.rules is not None or recipient.tags:
            chosen = set(recipient.rules or []) | {
                rule.name for rule in self.rules if set(rule.tags) & set(recipient.tags)
            }
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
            channels=tuple(dict.fromkeys(recipient.channels or [EMAIL_CHANNEL])),
            max_stories=recipient.max_stories or self.digest.max_stories,
            repeat_stories=recipient.repeat_stories,
            sources_in_trouble=recipient.sources_in_trouble,
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
        """The source called ``name``; KeyError when there is none. From an index, not
        a scan: the service looks one up at every poll (11 a second for 10,000 sources);
        kept with its list, which a ``model_copy`` may replace."""
        kept = self.__dict__.get("_sources_by_name")
        if kept is None or kept[0] is not self.sources:
            kept = (self.sources, {source.name: source for source in self.sources})
            self.__dict__["_sources_by_name"] = kept
        try:
            return kept[1][name]
        except KeyError:
            raise KeyError(name) from None
