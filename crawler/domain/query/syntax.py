"""The syntax tree of a parsed query (Word, Term, Lang, Not, And, Or, Near, Query),
the keys its terms are found by, and QuerySyntaxError."""

from __future__ import annotations

from dataclasses import dataclass

from crawler.domain.query.text import _PREFIX_STAR_RE, _folded_words, _match_form

# --- the syntax tree ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a term: its match form, its folded form for the stemmer, how it matches."""

    text: str
    folded: str
    prefix: bool = False
    stemmable: bool = True

    def __str__(self) -> str:
        return self.text + ("*" if self.prefix else "")


@dataclass(frozen=True, slots=True)
class Term:
    """A word, phrase or prefix, looked for in `field` (None: the title or the body).

    `text` is the term as written, without its field and quotes: what
    `RuleMatch.terms` reports and the digest highlights.
    """

    text: str
    words: tuple[Word, ...]
    field: str | None = None
    quoted: bool = False

    def __str__(self) -> str:
        text = f'"{self.text}"' if self.quoted else self.text
        return f"{self.field}:{text}" if self.field else text


@dataclass(frozen=True, slots=True)
class Lang:
    """True when the article's language is one of `codes` (or a variant of one)."""

    codes: tuple[str, ...]

    def __str__(self) -> str:
        if len(self.codes) == 1:
            return f"lang:{self.codes[0]}"
        return "lang:(" + " OR ".join(self.codes) + ")"


@dataclass(frozen=True, slots=True)
class Not:
    child: Node

    def __str__(self) -> str:
        return f"NOT {self.child}"


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + " AND ".join(map(str, self.children)) + ")"


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return "(" + " OR ".join(map(str, self.children)) + ")"


@dataclass(frozen=True, slots=True)
class Near:
    """Some term of `left` and some term of `right` at most `distance` words apart."""

    left: tuple[Term, ...]
    right: tuple[Term, ...]
    distance: int

    def __str__(self) -> str:
        def side(terms: tuple[Term, ...]) -> str:
            return str(terms[0]) if len(terms) == 1 else "(" + " OR ".join(map(str, terms)) + ")"

        return f"({side(self.left)} NEAR/{self.distance} {side(self.right)})"


Node = Term | Lang | Not | And | Or | Near


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: immutable, hashable, and printed fully parenthesised."""

    text: str
    root: Node

    def __str__(self) -> str:
        return str(self.root)

    def triggers(self) -> tuple[Term | Lang, ...] | None:
        """Terms and ``lang:`` filters one of which holds in every article the query
        matches: a prefilter evaluates the query only for such articles.

        A ``lang:`` filter is chosen only where no term would do (``lang:ja AND
        NOT tax``). None when the query can match without any (a NOT-only
        query): a prefilter must always evaluate it.
        """
        cover = _cover(self.root)
        return None if cover is None else tuple(dict.fromkeys(cover))

    def terms(self) -> tuple[str, ...]:
        """The words and prefixes (``refug*``) the query needs, in match form.

        At least one of them occurs in every article the query matches, so an
        article holding none of them can be skipped; empty when there is no such
        set (``NOT football``, ``lang:en``) and the query must always be evaluated.
        """
        triggers = self.triggers() or ()
        if any(isinstance(trigger, Lang) for trigger in triggers):
            return ()
        words = (best_word(trigger) for trigger in triggers if isinstance(trigger, Term))
        return tuple(dict.fromkeys(str(word) for word in words))


def best_word(term: Term) -> Word:
    """The word of `term` that rejects the most articles: every word of a phrase
    must occur, and the longest exact one is the rarest, as a rule."""
    return max(term.words, key=lambda word: (not word.prefix, len(word.text)))


def _cover(node: Node) -> list[Term | Lang] | None:
    """A disjunctive set of terms and lang: filters implied by `node`, or None."""
    if isinstance(node, Term | Lang):
        return [node]
    if isinstance(node, Near):
        sides: list[list[Term | Lang]] = [list(node.left), list(node.right)]
        return min(sides, key=_cover_cost)
    if isinstance(node, Or):
        items: list[Term | Lang] = []
        for child in node.children:
            cover = _cover(child)
            if cover is None:
                return None
            items.extend(cover)
        return items
    if isinstance(node, And):
        covers = [cover for child in node.children if (cover := _cover(child)) is not None]
        return min(covers, key=_cover_cost) if covers else None
    return None  # Not


def _cover_cost(items: list[Term | Lang]) -> tuple[int, int, int, int]:
    # Terms before languages (lang:en holds for most articles), then fewer terms,
    # then no prefix (" thin" starts many words), then longer words.
    words = [best_word(item) for item in items if isinstance(item, Term)]
    languages = len(items) - len(words)
    prefixes = sum(word.prefix for word in words)
    return languages, len(items), prefixes, -min((len(w.text) for w in words), default=0)


def term_key(term: Term, *, stem: bool = False) -> str | None:
    """What marks a hit of `term` in a field: its key.

    A word's key is the word ("isis"): it hits when the field has that word. A
    phrase's key is " two words " and a prefix's " pref": they hit when that
    text occurs in `PreparedDocument.field_text`, where every word stands
    between single spaces. None when a hit needs more than that: a stemmed
    word, or a prefix inside a phrase.
    """
    words = term.words
    if stem and any(word.stemmable for word in words):
        return None
    if len(words) == 1:
        return word_key(words[0])
    if any(word.prefix for word in words):
        return None
    return " " + " ".join(word.text for word in words) + " "


def word_key(word: Word) -> str:
    """The `term_key` of a one-word term: the word, or " pref" for a prefix."""
    return f" {word.text}" if word.prefix else word.text


# --- errors ----------------------------------------------------------------------


class QuerySyntaxError(ValueError):
    """A query that cannot be parsed: what was wrong, and where (1-based column)."""

    def __init__(self, message: str, column: int, hint: str | None = None) -> None:
        self.message = message
        self.column = column
        self.hint = hint
        text = f"{message} at column {column}"
        super().__init__(f"{text}; {hint}" if hint else text)


# --- the words of a term ------------------------------------------------------------
# The parser and highlighting both need these: here, neither imports the other.


def _words_of(text: str, *, quoted: bool, prefix_last: bool) -> list[Word]:
    folded = [word for word in _folded_words(text) if _match_form(word)]
    words = [Word(_match_form(word), word, stemmable=not quoted) for word in folded]
    if prefix_last and words:
        last = words[-1]
        words[-1] = Word(last.text, last.folded, prefix=True, stemmable=False)
    return words


def _split_words(text: str, *, quoted: bool) -> tuple[Word, ...]:
    """The words of `text`, where a `*` right after a word makes that word a prefix."""
    parts = _PREFIX_STAR_RE.split(text) if "*" in text else [text]
    return tuple(
        word
        for index, part in enumerate(parts)
        for word in _words_of(part, quoted=quoted, prefix_last=index < len(parts) - 1)
    )
