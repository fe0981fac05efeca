"""``/healthz`` and ``/readyz``: is the service up, and does it see the news.

``/healthz`` is liveness, what the container's HEALTHCHECK calls: 200 while the
scheduler runs and the database answers, else 503. Its body says more, and so
does ``/readyz``, which answers 503 also when the service is up but blind: no
enabled source has succeeded for three times the longest ``every``, at least an
hour (``crawler.orchestration.health.assess_readiness``; README, "Health checks").
Both are open (no token, no ``Host`` check): load balancers call them by address.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crawler.domain.urls import redact_text
from crawler.faces.web.common import HEALTH_TIMEOUT, JSON, Reply, one_line
from crawler.faces.web.site import Route
from crawler.orchestration.health import Readiness, assess_readiness

if TYPE_CHECKING:
    from twisted.web.server import Request

    from crawler.faces.web.site import WebUI

logger = logging.getLogger(__name__)


class HealthChecks:
    """The two health endpoints over the site's store and configuration."""

    def __init__(self, site: WebUI) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, access="open"),
            Route("/readyz", self.readyz, access="open"),
        ]

    async def healthz(self, request: Request) -> Reply:
        """200 when the scheduler runs and the database answers, else 503; the body
        also says whether the sources are seen (``"sources"``)."""
        body, up, _ready = await self._check()
        return Reply(200 if up else 503, json.dumps(body).encode() + b"\n", JSON)

    async def readyz(self, request: Request) -> Reply:
        """As ``/healthz``, but 503 too when no source has succeeded for too long."""
        body, up, ready = await self._check()
        return Reply(200 if up and ready else 503, json.dumps(body).encode() + b"\n", JSON)

    async def _check(self) -> tuple[dict[str, Any], bool, bool]:
        """The body, whether the service is up, and whether it sees the news."""
        scheduler = bool(self.site.scheduler_running())
        config = self.site.config
        enabled = [source.name for source in config.sources if source.enabled]
        readiness: Readiness | None = None
        try:
            last_success = await self.site.blocking(
                self.site.store.last_source_success, enabled, timeout=HEALTH_TIMEOUT
            )
            now = datetime.now(UTC)
            readiness = assess_readiness(config, last_success, self.site.started, now)
        except Exception as error:
            logger.warning(
                "healthz: the database did not answer: %s", one_line(redact_text(str(error)), 300)
            )
        database = readiness is not None
        up = scheduler and database
        body: dict[str, Any] = {
            "status": "ok" if up else "fail",
            "scheduler": scheduler,
            "database": database,
        }
        reasons = [
            reason
            for ok, reason in (
                (scheduler, "the scheduler is not running"),
                (database, "the database does not answer"),
            )
            if not ok
        ]
        if readiness is not None:
            body["sources"] = {
                "state": readiness.state,
                "last_success": (
                    readiness.last_success.isoformat() if readiness.last_success else None
                ),
                "blind_after_seconds": int(readiness.window.total_seconds()),
            }
            if not readiness.ready:
                if up:
                    body["status"] = "blind"
                reasons.append(readiness.reason)
        if reasons:
            body["reason"] = "; ".join(reasons)
        return body, up, readiness is not None and readiness.ready
