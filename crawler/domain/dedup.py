"""Near-duplicate articles: the keys of a body (its exact-copy fingerprint and its MinHash
signature). The story index that groups wire copies by those signatures is in
crawler/domain/stories.py.

Pure logic, no I/O. Two keys, two questions:

* ``content_fingerprint(body)`` answers "is this the same text under another URL?":
  the SHA-256 of the body normalised so that spacing, soft hyphens, quote styles,
  accents, case and digit grouping do not count.
* ``StoryIndex.assign(candidate)`` answers "is this another outlet's copy of a story
  already indexed?". Each body becomes a MinHash signature of its word shingles
  (``minhash_values``: datasketch's MinHash, computed with numpy); a band index
  (locality-sensitive hashing) finds the indexed articles likely to share many
  shingles with it; ``MatchRule`` then decides on the estimated
  Jaccard similarity, the estimated containment (a copy with its ending cut, or
  padded with another outlet's lines, lies mostly inside the other text), the
  headlines and the publish times.

The signature (``StoryIndex.signature``: a small header with the shingle count, then
the MinHash values) carries everything the decision needs from the body, so an index
rebuilt from stored signatures, headlines, publish times and sources
(``add_existing``) decides exactly as the live one did, without the texts.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import unicodedata
from dataclasses import dataclass

import numpy as np

# Soft hyphens, zero-width characters, bidi marks. (A regular expression: str.translate
# with a table of them takes ten times as long on a whole body.)
_INVISIBLE = re.compile(
    "[{}]".format(
        "".join(
            re.escape(chr(code))
            for code in [
                0x00AD,
                0x034F,
                0x061C,
                0x180E,
                0xFEFF,
                *range(0x200B, 0x2010),
                *range(0x202A, 0x202F),
                *range(0x2060, 0x2070),
                *range(0xFFF9, 0xFFFC),
            ]
        )
    )
)
# Digit grouping ("270,000", "2,70,000", "270 000" with a thin space) written without
# separators, so that another desk's number style is not another text.
_DIGIT_GROUP = re.compile(r"(?<=\d)[,.'’\u00a0\u2009\u202f](?=\d)")
# Print hyphenation left at a line break: "strate-\ngic" (joined when a lower-case
# letter follows; "Franco-\nGerman" keeps its hyphen). It starts with the hyphen, not
# the look-behind, so the search jumps from hyphen to hyphen.
_LINE_BREAK_HYPHEN = re.compile(r"-(?<=[^\W\d_]-)[ \t]*\r?\n\s*(?=[^\W\d_])")
_NOT_WORD = re.compile(r"[\W_]+")
# Accents: the combining diacritical marks that NFKD splits off Latin, Greek and
# Cyrillic letters ("é" -> "e"); other scripts' marks (Hangul, kana voicing) stay.
_ACCENT = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Scripts written without spaces between words: each character is a word.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_UNSPACED}]|[^\s{_UNSPACED}]+")
_HAS_UNSPACED = re.compile(f"[{_UNSPACED}]")

# Bodies shorter than this (normalised) say too little to be told apart by their
# text alone: they get no content fingerprint.
MIN_FINGERPRINT_CHARS = 200

SIGNATURE_VERSION = 1
# version, shingle size, number of MinHash values, shingle count; then the values.
SIGNATURE_HEADER = struct.Struct("<BBHI")
_MINHASH_SEED = 1


def normalise_for_fingerprint(text: str) -> str:
    """The text as a comparison sees it: NFKC, invisible characters (soft hyphens,
    zero-width, bidi marks) dropped, print hyphenation at line breaks joined,
    case-folded, accents stripped, digit groups joined, each run of punctuation and
    whitespace one space."""
    text = _DIGIT_GROUP.sub("", _INVISIBLE.sub("", text))
    text = unicodedata.normalize("NFKC", text)
    text = _LINE_BREAK_HYPHEN.sub(_join_hyphenated, text)
    text = text.casefold()
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        if decomposed != text:
            text = unicodedata.normalize("NFC", _ACCENT.sub("", decomposed))
    return _NOT_WORD.sub(" ", text).strip()


def _join_hyphenated(match: re.Match[str]) -> str:
    return "" if match.string[match.end()].islower() else match.group(0)


def content_fingerprint(text: str) -> str:
    """SHA-256 (hex) of the normalised text: the same for the same body under another
    URL, whatever its spacing, soft hyphens, quotes or case. Every empty body has the
    same fingerprint; callers should not treat those as copies of each other."""
    return hashlib.sha256(normalise_for_fingerprint(text).encode("utf-8")).hexdigest()


def tokenize(normalised: str) -> list[str]:
    """The words of a normalised text; each CJK character counts as a word."""
    if normalised.isascii() or not _HAS_UNSPACED.search(normalised):
        return normalised.split()  # the same words, a few times faster
    return _TOKEN.findall(normalised)


def word_shingles(text: str, size: int) -> set[bytes]:
    """The set of ``size``-word shingles of the normalised text, UTF-8 encoded; a text
    shorter than ``size`` words is one shingle, an empty one none."""
    return _shingles(normalise_for_fingerprint(text), size)


def _shingles(normalised: str, size: int) -> set[bytes]:
    tokens = tokenize(normalised)
    if not tokens:
        return set()
    count = max(1, len(tokens) - size + 1)
    return {" ".join(tokens[i : i + size]).encode("utf-8") for i in range(count)}


@dataclass(frozen=True, slots=True)
class SignatureParams:
    """How story signatures are made: shingle size and number of MinHash values."""

    shingle: int = 4
    num_perm: int = 128


@dataclass(frozen=True, slots=True)
class BodyKeys:
    """Everything dedup needs from a body, computed from one normalisation (in a CPU
    worker, next to extraction): the exact-copy fingerprint (None for a body too
    short to be telling) and the story signature (None when stories are off)."""

    fingerprint: str | None
    signature: bytes | None


def body_keys(text: str, params: SignatureParams | None) -> BodyKeys:
    """The fingerprint and (with ``params``) the story signature of ``text``."""
    normalised = normalise_for_fingerprint(text)
    fingerprint = (
        hashlib.sha256(normalised.encode("utf-8")).hexdigest()
        if len(normalised) >= MIN_FINGERPRINT_CHARS
        else None
    )
    signature = signature_of(normalised, params) if params is not None else None
    return BodyKeys(fingerprint, signature)


@functools.cache
def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's "affine32" permutations for _MINHASH_SEED (its
    ``MinHash._init_permutations``): odd multipliers and offsets drawn from a seeded
    generator, the same in every process; made once per process."""
    generator = np.random.RandomState(_MINHASH_SEED)
    multipliers = generator.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2)
    offsets = generator.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return multipliers + np.uint32(1), offsets


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch pre-mixes every shingle hash."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def minhash_values(shingles: set[bytes], num_perm: int) -> np.ndarray:
    """The MinHash of a set of shingles: exactly datasketch 2.x's ``MinHash(num_perm,
    seed=1, scheme="affine32")`` after ``update_batch(shingles)`` (each shingle's
    SHA-1, its first 4 bytes little-endian, mixed, then ``a * h + b`` modulo 2**32 for
    each permutation, and the minimum per permutation), tested against datasketch.

    Computed here rather than by datasketch: importing datasketch imports SciPy,
    which cost every extraction process ~0.5 s to start and ~49 MB.
    """
    multipliers, offsets = _permutations(num_perm)
    if not shingles:
        return np.full(num_perm, 0xFFFFFFFF, dtype=np.uint32)
    prefixes = b"".join(
        [hashlib.sha1(shingle, usedforsecurity=False).digest()[:4] for shingle in shingles]
    )
    hashes = _fmix32(np.frombuffer(prefixes, dtype="<u4").astype(np.uint32))
    with np.errstate(over="ignore"):  # the products wrap modulo 2**32, on purpose
        return (hashes[:, np.newaxis] * multipliers + offsets).min(axis=0)


def signature_of(normalised: str, params: SignatureParams) -> bytes:
    """The MinHash signature of a normalised body, with its shingle count and
    parameters in a header (see ``StoryIndex._parse``)."""
    shingles = _shingles(normalised, params.shingle)
    values = minhash_values(shingles, params.num_perm).astype("<u4")
    header = SIGNATURE_HEADER.pack(
        SIGNATURE_VERSION, params.shingle, params.num_perm, len(shingles)
    )
    return header + values.tobytes()
