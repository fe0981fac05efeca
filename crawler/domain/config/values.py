"""Configuration values: limits, ConfigError, and the validated value types
(durations, time zones, cron, addresses, URLs, subject templates, selectors) that
the schema's fields are made of."""

from __future__ import annotations

import functools
import re
import string
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from crawler.domain.addresses import transport_address
from crawler.domain.urls import compile_url_pattern

if TYPE_CHECKING:
    from collections.abc import Sequence

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
_DURATION_EXPECTED = (
    f"expected a positive duration such as 30s, 15m, 2h, 7d or 2y, up to {MAX_DURATION_TEXT}"
)
# IANA names: Europe/Paris, America/Argentina/Buenos_Aires, Etc/GMT+5, EST5EDT.
_TIMEZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
# C0 and C1 control characters other than tab and line breaks, and DEL: never in a
# configuration value (a NUL cannot even be stored in PostgreSQL text).
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile("[\r\n\t\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem found."""


class KeyedValueError(ValueError):
    """A problem a check of a whole section finds at a key below it (a rule naming an
    unknown channel, found where the channels are known): the message names ``loc``,
    relative to the section checked, and its line, not the section's."""

    def __init__(self, message: str, loc: tuple[int | str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


class KeyedValueErrors(ValueError):
    """Several `KeyedValueError`s one check found: each is reported on its own line,
    so that a user fixes them all in one go."""

    def __init__(self, errors: Sequence[KeyedValueError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = tuple(errors)


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
        raise ValueError(
            f"{_shown(value)} is too long; expected a duration up to {MAX_DURATION_TEXT}"
        )
    if seconds <= 0:
        raise ValueError(_DURATION_EXPECTED)
    return timedelta(seconds=seconds)


def _duration_text(duration: timedelta) -> str:
    """``duration`` as the config writes it (``90s``, ``10m``, ``365d``): the largest
    of seconds, minutes, hours and days that divides it."""
    seconds = int(duration.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _DURATION_SECONDS[unit] == 0:
            return f"{seconds // _DURATION_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def duration_within(
    high: timedelta, low: timedelta = timedelta(seconds=1), what: str = "a duration"
) -> AfterValidator:
    """The check that a ``Duration`` lies from ``low`` to ``high``, for a bounded
    duration type: ``Annotated[Duration, duration_within(timedelta(minutes=10))]``.
    Its message names the bounds as the file writes them ("expected a lease of at most
    365d", "expected a duration from 3s to 10m"); the loader adds the file, key path
    and line."""
    if low > timedelta(seconds=1):
        expected = f"expected {what} from {_duration_text(low)} to {_duration_text(high)}"
    else:  # parse_duration already refuses anything under a second
        expected = f"expected {what} of at most {_duration_text(high)}"

    def check(duration: timedelta) -> timedelta:
        if not low <= duration <= high:
            raise ValueError(f"{expected}, got {_duration_text(duration)}")
        return duration

    return AfterValidator(check)


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
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=zone,
        )
    return CronTrigger.from_crontab(expression, timezone=zone)


def _check_cron(expression: str) -> str:
    if len(expression) > MAX_CRON_CHARS:
        raise ValueError(
            f"a cron expression has at most {MAX_CRON_CHARS} characters "
            f"(this one has {len(expression):,})"
        )
    if not (expression.isascii() and expression.replace("\t", " ").isprintable()):
        raise ValueError(
            f"invalid cron expression {_shown(expression)}: expected fields of "
            "ASCII digits, names and * , - / such as 0 7 * * *"
        )
    try:
        trigger = cron_trigger(expression)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise ValueError(
            f"invalid cron expression {_shown(expression)}: {_one_line(str(error), 120)}"
        ) from error
    # APScheduler accepts expressions no date satisfies (31 February) and would walk
    # every year up to 9999 looking for one: look a hundred years ahead only.
    now = datetime.now(UTC)
    trigger.end_date = now.replace(year=now.year + CRON_HORIZON_YEARS, month=1, day=1)
    if trigger.get_next_fire_time(None, now) is None:
        raise ValueError(
            f"the cron expression {_shown(expression)} never fires: no date "
            f"in the next {CRON_HORIZON_YEARS} years matches it"
        )
    return expression


def _check_email(address: str) -> str:
    if len(address) > MAX_EMAIL_CHARS or not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
        raise ValueError(f"expected an email address, got {_shown(address)}")
    # A non-ASCII local part is fine (sent with SMTPUTF8); a domain must have an IDNA form.
    transport_address(address)
    return address


def _check_web_url(url: str) -> str:
    if len(url) > MAX_URL_CHARS:
        raise ValueError(
            f"a URL has at most {MAX_URL_CHARS:,} characters (this one has {len(url):,})"
        )
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"expected an http(s) URL, got {_shown(url)}")
    if re.search(r"\s", url):
        raise ValueError(f"a URL cannot hold spaces or line breaks (write %20), got {_shown(url)}")
    return url


def _check_line(text: str) -> str:
    """A one-line setting (a name, a host, an address) has no line break or tab."""
    if _LINE_BREAK.search(text):
        raise ValueError(f"expected text on one line, got {_shown(text)}")
    return text


def _check_host(host: str) -> str:
    if len(host) > MAX_HOST_CHARS or not re.fullmatch(r"[^\s/@]+", host):
        raise ValueError(
            f"expected a host name or address such as mail.example.com, got {_shown(host)}"
        )
    return host


def _check_variable(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", name):
        raise ValueError(
            f"expected the name of an environment variable such as "
            f"NEWSWATCH_SMTP_PASSWORD (letters, digits, _), got {_shown(name)}"
        )
    return name


def _check_path(path: Path) -> Path:
    if len(str(path)) > MAX_PATH_CHARS or any(len(part) > 255 for part in path.parts):
        raise ValueError(
            f"expected a folder path of at most {MAX_PATH_CHARS:,} characters, 255 per part"
        )
    return path


def _check_unsubscribe(url: str) -> str:
    if len(url) > MAX_URL_CHARS or not re.fullmatch(r"(?:https?://[^/\s<>]+|mailto:)[^\s<>]*", url):
        raise ValueError(f"expected an https: or mailto: URL without spaces, got {_shown(url)}")
    return url


def _one_line(text: str, limit: int) -> str:
    """`text` on one line (line breaks and control characters shown as spaces), cut to
    about `limit` characters: each problem in a ConfigError is one line."""
    text = " ".join(_CONTROL_CHARACTER.sub(" ", _LINE_BREAK.sub(" ", text)).split())
    if not text.isprintable():  # bidi controls, zero-width and unassigned characters
        text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


SUBJECT_FIELDS = ("count", "new_articles", "rules")
# Python's format spec: [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_FORMAT_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>[0-9]*)[,_]?(?:\.(?P<precision>[0-9]*))?"
    r"[bcdeEfFgGnosxX%]?",
    re.DOTALL,
)
_SUBJECT_SAMPLES: dict[str, object] = {
    "count": 12,
    "new_articles": "12 new articles",
    "rules": "syria, energy",
}


def subject_placeholder_problem(field: str, spec: str, conversion: str | None) -> str | None:
    """What is wrong with the placeholder ``{field!conversion:spec}`` of a subject
    template, or None when it is one that `alerts.render.format_subject` fills in:
    ``{count}``, ``{new_articles}`` or ``{rules}``, with a format spec whose width
    and precision are at most MAX_SUBJECT_WIDTH. Cheap and never raising, whatever
    the placeholder."""
    expected = "expected {count}, {new_articles} or {rules}"
    if field not in SUBJECT_FIELDS:
        if field.split(".", 1)[0].split("[", 1)[0] in SUBJECT_FIELDS:
            return (
                f"{{{_one_line(field, 40)}}}: attribute and index access is not allowed; "
                + expected
            )
        return f"unknown placeholder {{{_one_line(field, 40)}}}; {expected}"
    if conversion is not None:
        return f"{{{field}!{_one_line(conversion, 5)}}}: conversions are not allowed; {expected}"
    found = _FORMAT_SPEC.fullmatch(spec)
    if found is None or "{" in spec or "}" in spec:
        return f"{{{field}:{_one_line(spec, 40)}}}: invalid format spec"
    for part in ("width", "precision"):
        digits = (found[part] or "").lstrip("0")
        if len(digits) > 3 or int(digits or "0") > MAX_SUBJECT_WIDTH:
            return (
                f"{{{field}:{_one_line(spec, 40)}}}: the {part} is over "
                f"{MAX_SUBJECT_WIDTH}; a subject line is short"
            )
    try:
        format(_SUBJECT_SAMPLES[field], spec)
    except (ValueError, TypeError, OverflowError) as error:
        return f"{{{field}:{_one_line(spec, 40)}}}: invalid format spec: {error}"
    return None


def check_subject_template(template: str) -> str:
    """Raise ValueError unless every placeholder of `template` is one that
    `alerts.render.format_subject` fills in (see `subject_placeholder_problem`)."""
    if len(template) > MAX_SUBJECT_TEMPLATE_CHARS:
        raise ValueError(
            f"a subject has at most {MAX_SUBJECT_TEMPLATE_CHARS} characters "
            f"(this one has {len(template):,})"
        )
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


def bare_type(annotation: object, member: object = None) -> object:
    """``annotation`` without ``Annotated`` and ``None``: the type a value there has.
    Of a union of several types, the one named ``member`` (pydantic names the member
    of a union of models in an error's location), else the union itself."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            named = [each for each in members if getattr(each, "__name__", None) == member]
            if len(members) != 1 and not named:
                return annotation
            annotation = (named or members)[0]
        else:
            return annotation


@functools.cache
def _text_list_keys(model: type[BaseModel]) -> frozenset[str]:
    """The keys of ``model`` that hold a list of texts (names, words, patterns)."""
    keys = set()
    for key, field in model.model_fields.items():
        annotation = bare_type(field.annotation)
        if get_origin(annotation) is not list:
            continue
        item = bare_type(get_args(annotation)[0])
        if item is str or (
            get_origin(item) is Literal and all(isinstance(a, str) for a in get_args(item))
        ):
            keys.add(key)
    return frozenset(keys)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    @model_validator(mode="before")
    @classmethod
    def _one_text_as_a_list(cls, data: object) -> object:
        """``keywords: dam`` is ``keywords: [dam]``: one text where a list of texts is
        meant can only mean that list of one (what a reader writes for one keyword)."""
        if not isinstance(data, dict):
            return data
        keys = _text_list_keys(cls)
        return {
            key: [value] if key in keys and isinstance(value, str) else value
            for key, value in data.items()
        }


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
        raise ValueError(
            f"{article} {kind} has at most {MAX_TEXT_CHARS:,} characters "
            f"(this one has {len(selector):,})"
        )
    probe = Selector(text="<html></html>")
    try:
        probe.xpath(selector) if is_xpath(selector) else probe.css(selector)
    except Exception as error:  # parsel raises several kinds for a bad expression
        raise ValueError(
            f"invalid {kind} {_shown(selector)}: {_one_line(str(error), 120)}"
        ) from error
    return selector


def is_xpath(selector: str) -> bool:
    """Selectors starting with ``/`` or ``(`` are XPath; anything else is CSS."""
    return selector.lstrip().startswith(("/", "("))


UrlPattern = Annotated[str, AfterValidator(_check_pattern)]
ResendChoice = Literal["headline", "any", "never"]
LinkSelector = Annotated[str, Field(min_length=1), AfterValidator(_check_selector)]
