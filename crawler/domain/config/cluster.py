"""The scale-out settings: the shared Redis queue and the workers (docs/scaling.md)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field

from crawler.domain.config.values import (
    MAX_URL_CHARS,
    Duration,
    _shown,
    _Strict,
    duration_within,
)


def _check_redis_url(url: str) -> str:
    if len(url) > MAX_URL_CHARS or not re.match(r"^(redis|rediss|unix)://\S+$", url):
        raise ValueError(
            f"expected a Redis URL such as redis://127.0.0.1:6379/0, got {_shown(url)}"
        )
    return url


RedisUrl = Annotated[str, AfterValidator(_check_redis_url)]
FailoverBound = Annotated[
    Duration, duration_within(timedelta(minutes=10), low=timedelta(seconds=3))
]


class ClusterConfig(_Strict):
    """Scale-out (``newswatch run --role scheduler`` and ``newswatch worker``):
    crawler/storage/cluster.py and docs/scaling.md."""

    failover: FailoverBound = Field(
        default=timedelta(seconds=30),
        description="A standby scheduler takes over at most this long after the active one died.",
    )
    queue_prefix: str = Field(
        default="newswatch",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis key, so that several installs share one Redis.",
    )
    concurrent_requests: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Requests in flight per worker, all sites.",
    )
