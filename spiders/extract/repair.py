"""Text repair: mojibake from a mislabelled charset, and print hyphenation."""

from __future__ import annotations

import functools
import logging
import re

import ftfy
import wordfreq

logger = logging.getLogger(__name__)

# Mojibake: UTF-8 decoded as windows-1252/Latin-1 always shows a lead byte as one of
# Â..ô, and decoded as windows-1251 as Р, С, Т or У, followed by a continuation byte
# (0x80-0xBF) as that charset shows it (or "Ã " once a no-break space is collapsed);
# text without such a pair is left alone without asking ftfy. (A lead letter alone
# is not enough: every "é" or "ç" would call ftfy, which takes milliseconds.) ftfy
# fixes only the encoding: quotes, ligatures, widths, line breaks and HTML entities
# stay as the page has them.
_CONTINUATIONS = "".join(
    sorted(
        {
            bytes([byte]).decode(codec, errors="ignore")
            for codec in ("latin-1", "cp1252", "cp1251")
            for byte in range(0x80, 0xC0)
        }
        - {""}
    )
)
MOJIBAKE_HINT = re.compile(f"[\u00c2-\u00f4\u0420-\u0423][{re.escape(_CONTINUATIONS)}]|\u00c3 ")
MOJIBAKE_FIXES = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

# Print hyphenation: a word split at a line end in the print edition ("str-ategic"),
# two runs of letters joined by one hyphen, not part of a longer hyphenated chain.
HYPHENATED_WORD = re.compile(r"(?<![\w-])([^\W\d_]+)-([^\W\d_]+)(?![\w-])")
# Languages whose word list has been checked against real hyphenated compounds.
HYPHENATION_LANGUAGES: frozenset[str] = frozenset({"en"})
# A word of three letters or more is "known" from this wordfreq frequency
# (occurrences per word of running text; Zipf 2, which "razing" and "easterly" pass
# and the fragments "doz", "forc" and "nister" do not).
KNOWN_WORD_FREQUENCY = 1e-7
# Shorter parts count as words only when they are English words, prefixes or
# abbreviations that stand beside a hyphen ("co-operate", "e-mail", "en-suite",
# "sci-fi", "op-ed"): word lists rank fragments such as "ra", "mi" and "es" as
# frequent too, so frequency cannot tell them apart.
SHORT_WORDS: frozenset[str] = frozenset(
    {
        "a",
        "b",
        "c",
        "d",
        "e",
        "f",
        "g",
        "h",
        "i",
        "j",
        "k",
        "l",
        "m",
        "n",
        "o",
        "p",
        "q",
        "r",
        "s",
        "t",
        "u",
        "v",
        "w",
        "x",
        "y",
        "z",
        "ad",
        "al",
        "am",
        "an",
        "as",
        "at",
        "be",
        "bi",
        "by",
        "co",
        "de",
        "do",
        "ed",
        "el",
        "en",
        "ex",
        "fi",
        "go",
        "he",
        "hi",
        "if",
        "in",
        "is",
        "it",
        "la",
        "lo",
        "me",
        "my",
        "no",
        "of",
        "oh",
        "ok",
        "on",
        "op",
        "or",
        "ox",
        "re",
        "so",
        "to",
        "tv",
        "un",
        "up",
        "us",
        "we",
    }
)


def repair_mojibake(text: str) -> str:
    """Undo mojibake from a mislabelled charset ("cafÃ©" -> "café", "itâ€™s" ->
    "it’s") with ftfy, changing nothing else in the text."""
    if not MOJIBAKE_HINT.search(text):
        return text
    return ftfy.fix_text(text, MOJIBAKE_FIXES)


@functools.cache
def known_words(language: str) -> frozenset[str]:
    """The lower-case words of ``language`` that wordfreq's large list gives at least
    KNOWN_WORD_FREQUENCY (loaded once per process, about 0.1 s for English); empty
    when the list cannot be read, which leaves hyphenation alone rather than costing
    the article.

    Only these ~96,000 English words (of 321,000) are kept, as a set: the whole
    frequency table took ~29 MB in every process that repairs hyphenation, the set
    ~11 MB. wordfreq's own cache of the list is emptied once the set is made.
    """
    try:
        # Buckets of words, most frequent first; bucket i holds the words of
        # frequency 10^(-i/100) (wordfreq's centibels). The frequent words come
        # first in memory too, so dropping the rest leaves no holes behind.
        buckets = wordfreq.get_frequency_list(language, wordlist="large")
    except Exception:  # a broken or missing data file; the text just stays as it is
        logger.warning("no word list for %r; hyphenation not repaired", language, exc_info=True)
        return frozenset()
    known = frozenset(
        word
        for index, bucket in enumerate(buckets)
        if wordfreq.cB_to_freq(-index) >= KNOWN_WORD_FREQUENCY
        for word in bucket
    )
    wordfreq.get_frequency_list.cache_clear()
    return known


def repair_hyphenation(text: str, language: str | None) -> str:
    """Join words split by print hyphenation ("str-ategic" -> "strategic") and keep
    real hyphenated compounds ("pro-government", "south-west", "Al-Qaryatain").

    ``a-b`` becomes ``ab`` when ``b`` is lower-case, ``a`` is lower-case or
    capitalised, the joined word is known (in the language's word list, or written
    unhyphenated elsewhere in ``text``), and ``a`` and ``b`` are not both words on
    their own (which makes it a compound: "co-operate", "south-easterly"). Only for
    HYPHENATION_LANGUAGES; other text is returned as is.
    """
    if language not in HYPHENATION_LANGUAGES or "-" not in text:
        return text
    known = known_words(language)
    vocabulary: set[str] = set()

    def is_word(part: str) -> bool:
        if len(part) <= 2:
            return part in SHORT_WORDS
        return part in known

    def join(match: re.Match[str]) -> str:
        first, second = match[1], match[2]
        if not second.islower() or not (first.islower() or first.istitle()):
            return match[0]
        if is_word(first.lower()) and is_word(second):
            return match[0]
        joined = (first + second).lower()
        if joined in known:
            return first + second
        if not vocabulary:
            vocabulary.update(word.lower() for word in re.findall(r"[^\W\d_]+", text))
        return first + second if joined in vocabulary else match[0]

    return HYPHENATED_WORD.sub(join, text)
