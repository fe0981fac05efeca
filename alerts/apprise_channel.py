"""Chat and push apps through Apprise: Slack, Telegram, Discord, Matrix, ntfy, Teams,
Pushover, Mattermost, Gotify and some hundred more, each named by one Apprise URL.

A digest is one message (``chat.chat_text``), cut to the service's own length limit
as Apprise knows it. Apprise has no idempotency keys: a message whose send was cut
short by a crash may arrive twice (docs/channels.md says what each kind promises).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from alerts.channel import ChannelError
from alerts.chat import chat_text
from crawler.domain.config.channels import apprise_url_problem

if TYPE_CHECKING:
    from alerts.channel import ChannelMessage

# The body limit used when a service states none (Apprise's own default is 32,768).
DEFAULT_MAX_CHARS = 4000


class AppriseChannel:
    """Sends each message as one notification to the service ``url`` names."""

    def __init__(self, name: str, url: str) -> None:
        # Imported with the first Apprise channel made: ~5 MB that a service without
        # one need not hold (docs/performance.md, "Idle memory").
        import apprise

        service = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if service is None:  # parsed again only to say why
            raise ValueError(f"channel {name}: {apprise_url_problem(url)}")
        self.name = name
        self._apprise = apprise.Apprise()
        self._apprise.add(service)
        self._text_format = apprise.NotifyFormat.TEXT
        limit = service.body_maxlen
        self.max_chars = min(DEFAULT_MAX_CHARS, limit) if limit > 0 else DEFAULT_MAX_CHARS

    def __repr__(self) -> str:  # the URL holds the service's token: never in logs
        return f"AppriseChannel({self.name!r})"

    def send(self, message: ChannelMessage) -> None:
        title, body = chat_text(message, self.max_chars)
        if not self._apprise.notify(title=title, body=body, body_format=self._text_format):
            raise ChannelError(
                f"apprise {self.name}: the service did not accept the message", temporary=True
            )
