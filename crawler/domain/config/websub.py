"""The WebSub settings (README, "WebSub push"): subscribing to the hubs feeds advertise,
when the web UI has a ``web.public_url`` hubs can reach."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field

from crawler.domain.config.values import Duration, _Strict, duration_within

MAX_LEASE = timedelta(days=365)
Lease = Annotated[Duration, duration_within(MAX_LEASE, what="a lease")]


class WebSubConfig(_Strict):
    """Push from WebSub hubs (crawler/orchestration/websub.py)."""

    enabled: bool = Field(
        default=True,
        description="Subscribe to the hub a feed advertises; takes effect only with "
        "web.public_url set (hubs call back there).",
    )
    lease: Lease = Field(
        default=timedelta(days=10),
        description="Subscription lease asked of hubs (a hub may grant another); "
        "renewed when 80% of it has passed.",
    )
    safety_interval: Duration = Field(
        default=timedelta(hours=1),
        description="A source with an active subscription is still polled, at the "
        "longer of its every and this, in case a push is lost.",
    )
    min_lease: Lease = Field(
        default=timedelta(minutes=10),
        description="A shorter lease granted by a hub is planned as this long "
        "(renewals never come round faster).",
    )
    push_gap: Duration = Field(
        default=timedelta(seconds=60),
        description="Polls asked for by pushes are at least this far apart per source; "
        "a push within it polls at its end.",
    )
    rate_limit: int = Field(
        default=600,
        ge=1,
        le=100_000,
        description="Requests a minute to one subscription's WebSub callback.",
    )
