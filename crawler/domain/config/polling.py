"""How often sources are polled: adaptive polling's bounds and daily budget
(``crawler.domain.scheduling``; README, "Adaptive polling")."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from crawler.domain.config.values import Duration, _Strict


class PollingConfig(_Strict):
    """Adaptive polling, on by default: each source's ``every`` is its share of the
    daily requests, spent when its learned rhythm expects new articles."""

    adaptive: bool = Field(
        default=True,
        description="Poll each source by its learned rhythm, within min_interval and "
        "max_interval; false polls every source at its every.",
    )
    min_interval: Duration = Field(
        default=timedelta(minutes=5),
        description="An adaptive source is never polled more often (a source's every, "
        "when shorter, wins).",
    )
    max_interval: Duration = Field(
        default=timedelta(hours=6),
        description="An adaptive source is polled at least this often (a source's every, "
        "when longer, wins); server hints are honoured up to it.",
    )
    requests_per_day: int | None = Field(
        default=None,
        ge=1,
        le=100_000_000,
        description="Polls a day shared by all sources; default: what fixed intervals "
        "of their every would make.",
    )

    @model_validator(mode="after")
    def _bounds_ordered(self) -> PollingConfig:
        if self.min_interval > self.max_interval:
            raise ValueError("polling.min_interval is longer than polling.max_interval")
        return self
