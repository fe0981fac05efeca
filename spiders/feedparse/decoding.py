"""Decoding a feed's bytes: byte order mark, UTF-8, the declared charsets, detection."""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass

import charset_normalizer
from w3lib.encoding import http_content_type_encoding, read_bom, resolve_encoding

# '<?' in UTF-16/32 without a byte order mark (XML 1.0 appendix F).
_UTF16_32_MARKERS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_XML_DECLARED_ENCODING = re.compile(  # also after a comment, where XML forbids it
    rb"""\A(?:\s|<!--.*?-->)*<\?xml\s[^>]*?\bencoding\s*=\s*["']\s*([A-Za-z][\w.:+-]*)\s*["']""",
    re.DOTALL,
)
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_HIGH_BYTES = bytes(range(0x80, 0x100))
_DETECTION_MIN_BYTES = 32
# The legacy encodings of the WHATWG Encoding Standard, by their Python names.
_WEB_CHARSETS = (
    "cp1252",
    "cp1250",
    "cp1251",
    "cp1253",
    "cp1254",
    "cp1255",
    "cp1256",
    "cp1257",
    "cp1258",
    "iso8859_2",
    "iso8859_3",
    "iso8859_4",
    "iso8859_5",
    "iso8859_6",
    "iso8859_7",
    "iso8859_8",
    "iso8859_10",
    "iso8859_13",
    "iso8859_14",
    "iso8859_15",
    "iso8859_16",
    "koi8_r",
    "koi8_u",
    "cp866",
    "cp874",
    "mac_roman",
    "mac_cyrillic",
    "gb18030",
    "big5",
    "cp932",
    "euc_jp",
    "cp949",
)
_SEVEN_BIT_ENCODINGS = frozenset(
    {
        "iso2022_jp",
        "iso2022_jp_1",
        "iso2022_jp_2",
        "iso2022_jp_3",
        "iso2022_jp_ext",
        "iso2022_kr",
        "hz",
    }
)


def _legacy_byte(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler: read undecodable bytes as windows-1252 (Latin-1 for its holes).

    Used for UTF-8 text with a few bytes from a legacy charset in it, and for
    windows-1252 itself, whose five unassigned bytes the WHATWG decoder maps to C1.
    """
    if not isinstance(error, UnicodeDecodeError):
        raise error
    chunk = error.object[error.start : error.end]
    return chunk.decode("cp1252", errors="ignore") if len(chunk) == 1 and chunk[0] not in (
        0x81,
        0x8D,
        0x8F,
        0x90,
        0x9D,
    ) else chunk.decode("latin-1"), error.end


codecs.register_error("newswatch_legacy_byte", _legacy_byte)


@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    encoding: str
    problem: str | None = None  # the bytes were not valid in any declared charset


def _decode(body: bytes, content_type: str) -> _Text:
    """Return the text of an XML body and the charset it was read in."""
    bom_encoding, bom = read_bom(body)
    if bom_encoding and bom:
        data = body[len(bom) :]
        if bom_encoding == "utf-8":
            return _decode_mostly_utf8(data, offset=len(bom))
        return _decode_or_replace(data, bom_encoding)
    for marker, encoding in _UTF16_32_MARKERS:
        if body.startswith(marker):
            return _decode_or_replace(body, encoding)
    labels = []
    for label in (http_content_type_encoding(content_type), _xml_declared_encoding(body)):
        # A UTF-16/32 label on bytes that are not UTF-16/32 (checked above) is wrong.
        if (
            label
            and label not in labels
            and not label.startswith(("utf-16", "utf-32"))
            and (_reads_ascii(label))
        ):
            labels.append(label)
    for label in labels:
        if label in _SEVEN_BIT_ENCODINGS:
            return _decode_or_replace(body, label)
    if body.isascii():
        return _Text(body.decode("ascii"), "ascii")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        # Text in a single-byte charset is practically never valid UTF-8 once it
        # has non-ASCII letters, so valid UTF-8 wins over such a label. A
        # multi-byte charset can be valid UTF-8 by chance, so its label is kept
        # when the bytes decode in it.
        for label in labels:
            if label != "utf-8" and not _is_single_byte(label):
                try:
                    return _Text(body.decode(label), label)
                except UnicodeDecodeError:
                    continue
        return _Text(text, "utf-8")
    legacy = [label for label in labels if label != "utf-8"]
    if (len(legacy) < len(labels) or not legacy) and _mostly_utf8(body):
        return _decode_mostly_utf8(body)
    if len(legacy) == 2 and legacy[0] == "cp1252":
        # ISO-8859-1 is the default charset of many web servers, so a specific
        # charset in the document itself is more likely to be the true one.
        legacy.reverse()
    for label in legacy:
        try:
            return _Text(body.decode(label), label)
        except UnicodeDecodeError:
            continue
    if legacy:
        return _decode_or_replace(body, legacy[0])
    label = _detect_legacy_charset(body)
    decoded = _decode_or_replace(body, label or "cp1252")
    return _Text(
        decoded.text,
        decoded.encoding,
        decoded.problem
        or (
            f"no charset declared and the bytes are not UTF-8; read as {decoded.encoding}"
            + (" (detected)" if label else "")
        ),
    )


def _detect_legacy_charset(body: bytes) -> str | None:
    """Guess the charset of an undeclared, non-UTF-8 body; None means windows-1252.

    Detection is unreliable on a few words (it reads short Russian as Big5 and
    short French as windows-1250), so it is only asked when there is enough
    non-ASCII text, only among the charsets of the web, and windows-1252, the
    web's default, wins whenever it reads the bytes the same.
    """
    if len(body) - len(body.translate(None, _HIGH_BYTES)) < _DETECTION_MIN_BYTES:
        return None
    best = charset_normalizer.from_bytes(body, cp_isolation=list(_WEB_CHARSETS)).best()
    if best is None or "cp1252" in best.could_be_from_charset:
        return None
    return resolve_encoding(best.encoding)


def _decode_or_replace(data: bytes, encoding: str) -> _Text:
    try:
        return _Text(data.decode(encoding), encoding)
    except UnicodeDecodeError as error:
        errors = "newswatch_legacy_byte" if encoding == "cp1252" else "replace"
        problem = (
            None
            if encoding == "cp1252"
            else (
                f"bytes that are not valid {encoding} (first at byte {error.start}) were replaced"
            )
        )
        return _Text(data.decode(encoding, errors=errors), encoding, problem)


def _decode_mostly_utf8(data: bytes, offset: int = 0) -> _Text:
    try:
        return _Text(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as error:
        return _Text(
            data.decode("utf-8", errors="newswatch_legacy_byte"),
            "utf-8",
            f"bytes that are not valid UTF-8 (first at byte {offset + error.start}) "
            "were read as windows-1252",
        )


_ASCII_MARKUP = b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'


@functools.cache
def _reads_ascii(label: str) -> bool:
    """Whether ``label`` names a charset that reads ASCII markup as ASCII.

    Labels are found by reading the bytes as ASCII, so only such a charset can be
    the right one; this also turns away codecs that are no document charset at all
    (``rot13``, ``base64``, ``idna``, ``undefined``), which fail or refuse bytes.
    """
    try:
        return _ASCII_MARKUP.decode(label, "replace") == _ASCII_MARKUP.decode("ascii")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return False


def _xml_declared_encoding(body: bytes) -> str | None:
    match = _XML_DECLARED_ENCODING.match(body[:1024])
    return resolve_encoding(match.group(1).decode("ascii")) if match else None


def _is_single_byte(encoding: str) -> bool:
    try:
        return len(bytes(range(0x80, 0x100)).decode(encoding, errors="replace")) == 0x80
    except LookupError:
        return False


def _mostly_utf8(body: bytes) -> bool:
    """True when the non-ASCII text is mostly valid UTF-8 with a few stray bytes."""
    sequences = _UTF8_SEQUENCE.findall(body)
    high_bytes = len(body) - len(body.translate(None, _HIGH_BYTES))
    stray = high_bytes - sum(len(sequence) for sequence in sequences)
    return len(sequences) >= stray
