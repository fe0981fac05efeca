"""robots.txt rules for one site, read with bounded work whatever the file holds.

Scrapy's robots.txt parser (Protego) gives every user agent named in a group its own
copy of the group's rules, so its work grows with agents × rules: a 214 KiB file
naming 6,000 agents over 6,000 rules took 3.5 minutes and 2.6 GB of memory, on the
reactor thread. Only the rules of the agent that applies to newswatch matter, so the
file is read for that agent: the other agents' names are all replaced by one
placeholder before Protego sees the file, which keeps the groups as they are (a name
still starts or continues a group) and makes the work linear in the file's size.
Only the first ROBOTS_TXT_MAX_BYTES are read (RFC 9309 2.5 asks for at least 500 KiB).

What Protego decides is unchanged: the agent it would have chosen (the longest name
that matches the User-Agent, else ``*``) keeps its name and all its rules.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from protego import Protego
from protego._protego import _USER_AGENT_DIRECTIVE, _extract_directive
from scrapy.robotstxt import RobotParser, decode_robotstxt
from scrapy.utils.python import to_unicode

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

# RFC 9309 2.5: crawlers must parse at least the first 500 kibibytes.
ROBOTS_TXT_MAX_BYTES = 500 * 1024
# Stands for every agent that does not apply to newswatch: matches no User-Agent
# (a header value holds no control characters).
_OTHER_AGENTS = "\x01other-agents"


class RobotsTxtRules(RobotParser):
    """A site's robots.txt, read once per user agent that asks (see the module)."""

    def __init__(self, body: bytes, spider: Spider | None = None, url: str = "") -> None:
        self.url = url  # for the log lines; the middleware sets it once it is known
        self._body = body
        self._spider = spider
        self._text: str | None = None
        self._parsed: dict[str, Protego | None] = {}

    @property
    def text(self) -> str:
        """The decoded file, at most its first ROBOTS_TXT_MAX_BYTES (whole lines)."""
        if self._text is None:
            body = self._body
            if len(body) > ROBOTS_TXT_MAX_BYTES:
                cut = body.rfind(b"\n", 0, ROBOTS_TXT_MAX_BYTES)
                body = body[: cut if cut > 0 else ROBOTS_TXT_MAX_BYTES]
                logger.info(
                    "robots.txt %s is larger than %d bytes; only those are read",
                    self.url or "(cached)",
                    ROBOTS_TXT_MAX_BYTES,
                )
            self._text = decode_robotstxt(body, self._spider)
            self._body = b""
        return self._text

    @classmethod
    def from_crawler(cls, crawler: Crawler, robotstxt_body: bytes) -> RobotsTxtRules:
        return cls(robotstxt_body, crawler.spider if crawler else None)

    def allowed(self, url: str | bytes, user_agent: str | bytes) -> bool:
        rules = self._rules_for(to_unicode(user_agent))
        if rules is None:
            return True
        try:
            return bool(rules.can_fetch(to_unicode(url), to_unicode(user_agent)))
        except ValueError:  # a URL Protego cannot split; the request fails on its own
            return True

    def crawl_delay(self, user_agent: str | bytes) -> float | None:
        """The agent's ``Crawl-delay`` in seconds: finite and not negative, or None."""
        rules = self._rules_for(to_unicode(user_agent))
        delay = rules.crawl_delay(to_unicode(user_agent)) if rules is not None else None
        if delay is None or not math.isfinite(delay) or delay < 0:
            return None
        return float(delay)

    def _rules_for(self, user_agent: str) -> Protego | None:
        if user_agent not in self._parsed:
            try:
                self._parsed[user_agent] = Protego.parse(rules_for_agent(self.text, user_agent))
            except Exception as error:  # Protego on a file it cannot read: allow all
                logger.warning(
                    "robots.txt %s unreadable, everything allowed: %s: %s",
                    self.url or "(cached)",
                    type(error).__name__,
                    error,
                )
                self._parsed[user_agent] = None
        return self._parsed[user_agent]


def rules_for_agent(text: str, user_agent: str) -> str:
    """``text`` with every user-agent name that Protego would not choose for
    ``user_agent`` replaced by one placeholder name (see the module docstring)."""
    lines = text.splitlines()
    robot = user_agent.strip().lower()
    best, kept = 0, set()
    for line in lines:
        for name in _agent_names(line):
            score = _score(name, robot)
            if score > best:
                best, kept = score, {name}
            elif score == best and score > 1:
                kept.add(name)
    kept.add("*")

    def rewrite(line: str) -> str:
        names = _agent_names(line)
        if not names or kept.intersection(names):
            return line
        return f"User-agent: {_OTHER_AGENTS}"

    return "\n".join(map(rewrite, lines))


def _agent_names(line: str) -> tuple[str, ...]:
    """The rule set names a user-agent line gives in Protego: the value, and the
    value without its wildcards when it has some; () for any other line."""
    line = line.partition("#")[0].strip()
    # Protego's own reading of the line (a private function: the differential fuzz
    # test, tests/fuzz/test_fuzz_robots.py, checks that it still reads the same).
    directive = _extract_directive(line) if line else None
    if directive is None or directive[0] not in _USER_AGENT_DIRECTIVE:
        return ()
    name = directive[1].strip().lower()
    if not name:
        return ()
    if name != "*" and "*" in name:
        return (name, name.replace("*", "")) if name.replace("*", "") else (name,)
    return (name,)


def _score(name: str, robot: str) -> int:
    """Protego's match score of the rule set ``name`` for the agent ``robot``
    (lower-cased): 1 for ``*``, the name's length when it occurs in the agent at a
    token boundary, else 0."""
    if name == "*":
        return 1
    index = robot.find(name)
    while index != -1:
        if index == 0 or not (robot[index - 1].isalnum() or robot[index - 1] in "-_"):
            return len(name)
        index = robot.find(name, index + 1)
    return 0
