"""`channels:`: where a reader's digests and alerts go besides email.

A channel is named and has a kind: ``webhook`` (a signed HTTP POST), ``apprise``
(a chat or push app, by its Apprise URL) or ``feed`` (a private Atom feed the web
UI serves; nothing is sent). Secrets never stand in the file: a webhook's signing
secret and an Apprise URL (it holds the service's token) are read from environment
variables named by ``*_env`` keys.

A channel may be throttled: at most ``max_per_minute`` and ``max_per_hour`` messages,
counted over every reader it carries (one chat room is one channel). Chat services
ban or mute bots that post faster than a person would (Slack and Discord answer a
burst with 429s, Telegram allows about 20 messages a minute in a group), so an
apprise channel is throttled unless told otherwise; a webhook is a machine's
endpoint and is not, unless configured.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from crawler.domain.config.values import (
    Duration,
    KeyedValueError,
    Name,
    VariableName,
    WebUrl,
    _Strict,
    duration_within,
)
from crawler.domain.items import EMAIL_CHANNEL

# An apprise channel's throttle unless the file says otherwise (``null`` turns one
# off): below what Telegram, Slack and Discord let a bot post to one room.
APPRISE_MAX_PER_MINUTE = 20
APPRISE_MAX_PER_HOUR = 200
MAX_MESSAGES_PER_MINUTE = 1000
MAX_MESSAGES_PER_HOUR = 60_000


class ChannelConfig(_Strict):
    """One named channel of a kind, with the settings that kind needs."""

    name: Name
    kind: Literal["webhook", "apprise", "feed"]
    url: WebUrl | None = Field(default=None, description="webhook: the URL to POST to.")
    url_env: VariableName | None = Field(
        default=None, description="The variable holding the URL (apprise: required)."
    )
    secret_env: VariableName | None = Field(
        default=None, description="webhook: the variable holding the signing secret."
    )
    timeout: Annotated[Duration, duration_within(timedelta(minutes=10))] = Field(
        default=timedelta(seconds=30)
    )
    entries: int = Field(default=100, ge=1, le=1000, description="feed: the most stories it holds.")
    title: str | None = Field(
        default=None, max_length=200, description="feed: its title (default: newswatch: NAME)."
    )
    max_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=MAX_MESSAGES_PER_MINUTE,
        description="Messages per minute on this channel, all readers (apprise: 20).",
    )
    max_per_hour: int | None = Field(
        default=None,
        ge=1,
        le=MAX_MESSAGES_PER_HOUR,
        description="Messages per hour on this channel, all readers (apprise: 200).",
    )

    @model_validator(mode="before")
    @classmethod
    def _chat_is_throttled_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "apprise":
            hour = data.get("max_per_hour")
            minute = APPRISE_MAX_PER_MINUTE
            if isinstance(hour, int) and not isinstance(hour, bool) and hour >= 1:
                minute = min(minute, hour)  # a lower hourly limit alone lowers both
            return {"max_per_minute": minute, "max_per_hour": APPRISE_MAX_PER_HOUR, **data}
        return data

    @model_validator(mode="after")
    def _settings_of_the_kind(self) -> ChannelConfig:
        if self.name.lower() == EMAIL_CHANNEL:
            raise ValueError(f"{EMAIL_CHANNEL!r} is every recipient's email; name it otherwise")
        feed_keys = {"entries", "title"} & self.model_fields_set
        if feed_keys and self.kind != "feed":
            raise ValueError(f"{' and '.join(sorted(feed_keys))}: only a feed channel takes them")
        if self.kind == "feed":
            given = [
                key
                for key in ("url", "url_env", "secret_env", "max_per_minute", "max_per_hour")
                if getattr(self, key) is not None
            ]
            if given:
                raise ValueError(
                    f"a feed channel takes no {', '.join(given)}: the web UI serves it, at a "
                    "private URL per recipient (`newswatch channels feeds` lists them)"
                )
        elif self.kind == "apprise":
            if self.url is not None or self.url_env is None:
                raise ValueError(
                    "an apprise channel takes url_env, the environment variable holding its "
                    "Apprise URL (it carries the service's token, so never in the file)"
                )
            if self.secret_env is not None:
                raise ValueError("secret_env is a webhook's; an apprise channel has none")
        else:
            if (self.url is None) == (self.url_env is None):
                raise ValueError("a webhook channel takes url or url_env (one of them)")
            if self.secret_env is None:
                raise ValueError(
                    "a webhook channel takes secret_env, the environment variable holding "
                    "the secret its requests are signed with"
                )
        minute, hour = self.max_per_minute, self.max_per_hour
        if minute is not None and hour is not None and minute > hour:
            raise KeyedValueError(
                f"max_per_minute ({minute}) is more than max_per_hour ({hour}) allows in "
                "an hour; lower it or raise max_per_hour",
                ("max_per_minute",),
            )
        return self

    def target_url(self) -> str | None:
        """The URL to deliver to (from the file, or from the ``url_env`` variable)."""
        return self.url if self.url is not None else os.environ.get(self.url_env or "")

    def secret(self) -> str | None:
        """A webhook's signing secret, from the ``secret_env`` variable."""
        return os.environ.get(self.secret_env) if self.secret_env else None


def apprise_url_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url`` (None when it can), found by Apprise itself
    without sending anything."""
    import apprise  # only where an apprise channel is configured (~0.1 s)

    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is None:
        # Only a scheme is quoted: without one, the text may be the bare token.
        scheme, found, _ = url.partition("://")
        shown = (
            f"scheme {scheme!r}"
            if found and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,19}", scheme)
            else "no scheme://"
        )
        return (
            f"not an Apprise URL Apprise can use ({shown}); see the Apprise wiki "
            "for the service's form"
        )
    return None
