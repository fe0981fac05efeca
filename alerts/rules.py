"""Watch rules: which rules an article matches, and where their terms occur.

A rule is a `KeywordRule` (any keyword, no excluded term) or a `QueryRule` (a
query in the language of crawler/domain/query/: AND/OR/NOT, phrases, prefixes, NEAR,
fields, lang:). Both are matched the same way, on the same normalised words:
case- and accent-insensitive, whole words only ("ISIS" hits "anti-ISIS" and
"ISIS," but not "crisis"), a phrase being its words in a row whatever separates
them. A keyword with spaces or hyphens is a phrase; a `*` ending a keyword's
word makes it a prefix (``refug*``). See crawler/domain/query/ for the details.

Matching scales with the text, not with rules × text. An article is tokenised
once. Every term the rules use is looked for once: the single words by one
intersection of the article's words with all of them (a set operation in C),
the phrases and prefixes by one scan of the article's words with an
Aho-Corasick automaton holding all of them. Rules of the form "any of these
terms and none of those" (keyword rules, ``a OR "b c" OR d*``) are then decided
by set operations on the terms found; the others are evaluated only when one
of the terms they need was found (or always, for the few that need none, such
as ``NOT football`` or ``lang:en``), looking up their terms in what was found.
"""

from __future__ import annotations

import collections
import itertools
import operator
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import ahocorasick

from crawler.domain.config.scopes import resolve_sources
from crawler.domain.items import RuleMatch
from crawler.domain.query import (
    DEFAULT_SCOPE,
    TEXT_FIELDS,
    And,
    CompiledQuery,
    Lang,
    Not,
    Or,
    PreparedDocument,
    Query,
    Term,
    best_word,
    find_word_runs,
    keyword_query,
    normalise_text,
    parse_query,
    prepare_document,
    query_terms,
    stem_word,
    term_key,
    term_pattern,
    word_key,
    word_spans,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from collections.abc import Set as AbstractSet

    from crawler.domain.config import Config
    from crawler.domain.query import Node, Word
    from crawler.storage.records import StoredArticle

__all__ = [
    "KeywordRule",
    "MatchDocument",
    "QueryRule",
    "RuleError",
    "RuleMatch",
    "RuleMatcher",
    "covers_source",
    "find_terms",
    "normalise_text",
    "rule_from_config",
    "rules_from_config",
]


@dataclass(frozen=True)
class MatchDocument:
    """What rules look at in an article. `language` is a tag such as "en" or "pt-BR"."""

    title: str
    body: str
    author: str = ""
    source: str = ""
    url: str = ""
    language: str | None = None

    @classmethod
    def of_stored(cls, article: StoredArticle) -> MatchDocument:
        """What rules look at in an article read back from the store (``rules test``,
        the web UI's search and workbench)."""
        return cls(
            title=article.title,
            body=article.body,
            author=", ".join(article.authors),
            source=article.source,
            url=article.url,
            language=article.language,
        )


@dataclass(frozen=True)
class KeywordRule:
    """A watch rule: it matches when any keyword hits and no exclude term hits.

    `stem`, `language` and `sources` work as for `QueryRule`.
    """

    name: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    stem: bool = False
    language: str | None = None
    sources: frozenset[str] | None = None


@dataclass(frozen=True)
class QueryRule:
    """A watch rule written as a query (see crawler/domain/query/).

    With `stem`, unquoted words match any word with the same Snowball stem, in
    the article's language, or in `language` (a tag such as "en") for articles
    whose language is unknown or has no stemmer.

    With `sources` (source names), only articles from those sources can match;
    None: articles from any source.
    """

    name: str
    query: str
    stem: bool = False
    language: str | None = None
    sources: frozenset[str] | None = None


def covers_source(rule: KeywordRule | QueryRule, source: str) -> bool:
    """Whether articles from the source named `source` are in `rule`'s scope."""
    return rule.sources is None or source in rule.sources


def rules_from_config(config: Config) -> list[KeywordRule | QueryRule]:
    """Every rule of the configuration, in order, as matched everywhere (crawls,
    `rules test`): each limited to the sources its `sources` names, its
    ``tag:NAME`` entries resolved against the sources' tags of this configuration
    (so a reload that tags a source brings it into scope)."""
    return [
        rule_from_config(rule, sources=resolve_sources(rule.sources, config.sources))
        for rule in config.rules
    ]


def rule_from_config(
    rule_config: Any, sources: frozenset[str] | None = None
) -> KeywordRule | QueryRule:
    """The rule for one `rules[]` entry of the configuration, limited to the source
    names `sources` (resolved by `rules_from_config`; None: every source).

    A `query` makes a QueryRule; otherwise `keywords` and `exclude` make a
    KeywordRule. `stem` and `language` apply to both.
    """
    name = rule_config.name
    stem = bool(getattr(rule_config, "stem", False))
    language = getattr(rule_config, "language", None)
    query = getattr(rule_config, "query", None)
    if query is not None:
        return QueryRule(name, query, stem=stem, language=language, sources=sources)
    keywords = tuple(getattr(rule_config, "keywords", None) or ())
    exclude = tuple(getattr(rule_config, "exclude", None) or ())
    return KeywordRule(name, keywords, exclude, stem=stem, language=language, sources=sources)


@dataclass(frozen=True)
class _CompiledRule:
    name: str
    query: CompiledQuery
    # Terms (or lang: filters) one of which holds in every article the rule
    # matches; None: any article.
    triggers: tuple[Term | Lang, ...] | None
    # For a rule that is "any of these terms, and none of those" over simple terms:
    # the first ones as written with their (scope, key), the others' (scope, key).
    any_of: tuple[str, ...] | None = None
    any_keys: tuple[tuple[str, str], ...] = ()
    none_of: tuple[tuple[str, str], ...] = ()
    sources: frozenset[str] | None = None  # the source names in its scope; None: all


class RuleError(ValueError):
    """A rule that cannot be compiled; `error` is the cause (a QuerySyntaxError for a
    query that does not parse, with its column)."""

    def __init__(self, rule: str, error: ValueError) -> None:
        super().__init__(f"rule {rule!r}: {error}")
        self.rule = rule
        self.error = error


def _compile_rule(rule: KeywordRule | QueryRule) -> _CompiledRule:
    try:
        if isinstance(rule, QueryRule):
            query: Query = parse_query(rule.query)
        else:
            query = keyword_query(rule.keywords, rule.exclude)
        compiled = CompiledQuery(query, stem=rule.stem, language=rule.language)
    except ValueError as error:
        raise RuleError(rule.name, error) from error
    shape = _any_none_shape(query.root, compiled.stem)
    if shape is None:
        return _CompiledRule(rule.name, compiled, query.triggers(), sources=rule.sources)
    any_of, none_of = shape
    texts = tuple(text for text, _, _ in any_of)
    keys = tuple((scope, key) for _, scope, key in any_of)
    return _CompiledRule(
        rule.name, compiled, query.triggers(), texts, keys, tuple(none_of), rule.sources
    )


def _simple_terms(node: Node, stem: bool) -> list[tuple[str, str, str]] | None:
    """(text, scope, key) of each term of a term or an OR of terms, if all are
    simple (they have a `term_key`); else None. The scope is the term's field,
    or DEFAULT_SCOPE (the title or the body)."""
    terms = node.children if isinstance(node, Or) else (node,)
    found: list[tuple[str, str, str]] = []
    for term in terms:
        if not isinstance(term, Term):
            return None
        key = term_key(term, stem=stem)
        if key is None:
            return None
        found.append((term.text, term.field or DEFAULT_SCOPE, key))
    return found


def _any_none_shape(
    root: Node, stem: bool
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]] | None:
    """Keyword rules and queries such as ``a OR "b c" OR title:d*`` or
    ``(a OR b) AND NOT title:c``: matched by set operations on the keys found,
    without evaluating the rule. Returns (text, scope, key) of the terms any of
    which must hit, and (scope, key) of those none of which may."""
    positive: Node = root
    negative: list[tuple[str, str, str]] = []
    if isinstance(root, And) and len(root.children) == 2:
        first, second = root.children
        if isinstance(first, Not):
            first, second = second, first
        if not isinstance(second, Not) or isinstance(first, Not):
            return None
        excluded = _simple_terms(second.child, stem)
        if excluded is None:
            return None
        positive, negative = first, excluded
    included = _simple_terms(positive, stem)
    if included is None:
        return None
    # A term written twice reports once, in order.
    return list(dict.fromkeys(included)), list(dict.fromkeys((s, k) for _, s, k in negative))


class _StemTriggers:
    """The stemmable trigger words of stemming rules, searched in stemmed text.

    A rule's stems depend on its stemmer: the article's language's, or for an
    article without one, the rule's own `language`. One automaton per stemmer
    language is built the first time an article needs it.
    """

    def __init__(self) -> None:
        self.words: list[str] = []  # folded forms, by id
        self._ids: dict[str, int] = {}
        self.fixed: list[dict[str, list[int]]] = []  # id -> rule language -> rules
        self.free: list[list[int]] = []  # id -> rules without a language
        self.languages: set[str] = set()  # the rules' languages
        self._automata: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, word: Word, rule: int, language: str | None) -> None:
        index = self._ids.get(word.folded)
        if index is None:
            index = self._ids[word.folded] = len(self.words)
            self.words.append(word.folded)
            self.fixed.append({})
            self.free.append([])
        if language is None:
            self.free[index].append(rule)
        else:
            self.fixed[index].setdefault(language, []).append(rule)
            self.languages.add(language)

    def automaton(self, language: str) -> Any:
        with self._lock:
            automaton = self._automata.get(language)
            if automaton is None:
                stems: dict[str, list[int]] = {}
                for index, word in enumerate(self.words):
                    stems.setdefault(f" {stem_word(language, word)} ", []).append(index)
                automaton = self._automata[language] = _build_automaton(
                    {key: tuple(ids) for key, ids in stems.items()}
                )
            return automaton

    def candidates(self, document: PreparedDocument) -> set[int]:
        """The stemming rules one of whose trigger stems occurs in `document`."""
        found: set[int] = set()
        if not self.words:
            return found
        article = document.stem_language
        if article is not None:  # every stemming rule stems in the article's language
            for _end, indexes in self.automaton(article).iter(document.stems_text(article)):
                for index in indexes:
                    found.update(self.free[index])
                    for rules in self.fixed[index].values():
                        found.update(rules)
            return found
        for language in self.languages:  # else each rule in its own, if it has one
            for _end, indexes in self.automaton(language).iter(document.stems_text(language)):
                for index in indexes:
                    found.update(self.fixed[index].get(language, ()))
        return found


def _build_automaton(values: dict[str, Any]) -> Any:
    """An Aho-Corasick automaton finding each key of `values`, reporting its value."""
    automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
    for key, value in values.items():
        automaton.add_word(key, value)
    if values:
        automaton.make_automaton()
    return automaton


class RuleMatcher:
    """Matches articles against a fixed set of rules, compiled once in the constructor.

    Raises RuleError for a rule that cannot be compiled (a query that does not
    parse, a stemmer language that does not exist); configuration validation
    is expected to have caught it already (`parse_query`, `stem_language`).
    """

    def __init__(self, rules: Sequence[KeywordRule | QueryRule]) -> None:
        self._rules = tuple(_compile_rule(rule) for rule in rules)
        self._evaluators = tuple(rule.query.matches for rule in self._rules)
        # Rules limited to sources, and by source name the ones of those it may
        # match: an article's out-of-scope rules are one set difference.
        self._scoped = frozenset(
            i for i, rule in enumerate(self._rules) if rule.sources is not None
        )
        in_scope: dict[str, set[int]] = {}
        for index in self._scoped:
            for source in self._rules[index].sources or ():
                in_scope.setdefault(source, set()).add(index)
        self._in_scope = {source: frozenset(rules) for source, rules in in_scope.items()}
        # Rules evaluated on every article: they can match without any term.
        self._always: list[int] = []
        # key -> the any/none-shaped rules it makes match, each with its match when
        # that key is the only one found, and the rules it blocks (found in the
        # title or the body); the other rules it makes worth evaluating.
        any_of: dict[str, dict[str, list[tuple[int, RuleMatch]]]] = {}  # by scope, key
        none_of: dict[str, dict[str, list[int]]] = {}
        triggered: dict[str, list[int]] = {}
        by_language: dict[str, list[int]] = {}
        self._stems = _StemTriggers()
        keys: set[str] = set()
        for index, rule in enumerate(self._rules):
            # Every simple term of every rule is searched for, so that evaluation
            # finds it (or not) in `found` instead of looking at the words again.
            keys.update(
                key for term in query_terms(rule.query.query.root)
                if (key := term_key(term, stem=rule.query.stem)) is not None
            )  # fmt: skip
            if rule.any_of is not None:
                for text, (scope, key) in zip(rule.any_of, rule.any_keys, strict=True):
                    match = RuleMatch(rule.name, (text,))
                    any_of.setdefault(scope, {}).setdefault(key, []).append((index, match))
                for scope, key in rule.none_of:
                    none_of.setdefault(scope, {}).setdefault(key, []).append(index)
            elif rule.triggers is None:
                self._always.append(index)
            else:
                for key in dict.fromkeys(self._trigger_keys(rule, index)):
                    triggered.setdefault(key, []).append(index)
                for trigger in rule.triggers:
                    if isinstance(trigger, Lang):
                        for code in trigger.codes:
                            by_language.setdefault(code, []).append(index)
        keys.update(triggered)
        self._any_of = {
            scope: {key: tuple(matches) for key, matches in keys.items()}
            for scope, keys in any_of.items()
        }
        self._none_of = {
            scope: {key: tuple(rules) for key, rules in keys.items()}
            for scope, keys in none_of.items()
        }
        self._triggered = {key: tuple(rules) for key, rules in triggered.items()}
        # language tag ("en", "pt-br") -> the rules a lang: filter of theirs triggers.
        self._by_language = {code: tuple(rules) for code, rules in by_language.items()}
        # A single word is found by intersecting the article's words with these
        # (a set operation in C); phrases and prefixes need the automaton.
        self._words = frozenset(key for key in keys if _is_word_key(key))
        self._automaton = _build_automaton({key: key for key in keys if not _is_word_key(key)})

    def _trigger_keys(self, rule: _CompiledRule, index: int) -> Iterator[str]:
        for term in rule.triggers or ():
            if isinstance(term, Lang):
                continue  # indexed by language
            key = term_key(term, stem=rule.query.stem)
            if key is not None:
                yield key
                continue
            # A stemmed word or a prefix inside a phrase: its rarest word as a
            # word (or prefix), and as a stem for stemming rules.
            word = best_word(term)
            yield word_key(word)
            if rule.query.stem and word.stemmable:
                self._stems.add(word, index, rule.query.language)

    def match(
        self,
        document: MatchDocument | PreparedDocument,
        *,
        prefilter: bool = True,
        any_source: bool = False,
    ) -> list[RuleMatch]:
        """Return every rule `document` matches, in rule order, with the terms that hit.

        A rule limited to sources matches only documents whose `source` is one of
        them; with `any_source`, it matches as if the document came from one (what
        `rules test --explain` uses to show what a rule's sources left out).

        The document is tokenised (unless it comes prepared) and scanned once.
        With `prefilter` (the default) only the rules that can match it are
        evaluated; without, every rule is evaluated on its own: the result is
        the same, only slower.
        """
        prepared = prepare_document(document)
        outside: AbstractSet[int] = (
            frozenset()
            if any_source or not self._scoped
            else self._scoped - self._in_scope.get(prepared.source, frozenset())
        )
        if not prefilter:
            return [
                RuleMatch(rule.name, result.terms)
                for index, rule in enumerate(self._rules)
                if index not in outside and (result := rule.query.evaluate(prepared))
            ]
        if len(outside) == len(self._rules):
            return []
        found = self._found(prepared)
        default = found[DEFAULT_SCOPE]

        # Dictionary lookups and set updates in C (map, filter, chain): an article
        # can hold hundreds of keys, and hundreds of rules can match it.
        hits = [
            hit for scope, keys in self._any_of.items() for hit in _rules_of(keys, found[scope])
        ]
        results: dict[int, RuleMatch] = dict(hits)
        if len(results) < len(hits):  # rules with more than one term found
            for index, count in collections.Counter(index for index, _ in hits).items():
                if count > 1:
                    rule = self._rules[index]
                    present = (key in found[scope] for scope, key in rule.any_keys)
                    terms = tuple(itertools.compress(rule.any_of or (), present))
                    results[index] = RuleMatch(rule.name, tuple(dict.fromkeys(terms)))
        for scope, keys in self._none_of.items():
            for index in _rules_of(keys, found[scope]):
                results.pop(index, None)
        candidates = set(self._always)
        candidates.update(_rules_of(self._triggered, default))
        candidates.update(_rules_of(self._by_language, prepared.language_tags))
        for name in _OTHER_FIELDS:  # the title's and body's keys are all in `default`
            if found[name]:
                candidates.update(_rules_of(self._triggered, found[name]))
        candidates |= self._stems.candidates(prepared)
        if outside:
            candidates -= outside
            for index in outside:
                results.pop(index, None)

        evaluators = self._evaluators
        for index in candidates:
            if evaluators[index](prepared, found):
                rule = self._rules[index]
                results[index] = RuleMatch(rule.name, rule.query.hit_terms(prepared, found))
        return [results[index] for index in sorted(results)]

    def _found(self, document: PreparedDocument) -> dict[str, AbstractSet[str]]:
        """The keys present in each field, and in the title or the body."""
        automaton = self._automaton if len(self._automaton) else None
        found: dict[str, AbstractSet[str]] = {}
        for name in TEXT_FIELDS:
            field = document.fields[name]
            if not field.words:
                found[name] = frozenset()
                continue
            keys: AbstractSet[str] = self._words.intersection(field.words)
            if automaton is not None:
                keys |= set(map(_VALUE, automaton.iter(field.text())))
            found[name] = keys
        found[DEFAULT_SCOPE] = found["title"] | found["body"]
        return found


def _rules_of(rules: dict[str, tuple[T, ...]], keys: Iterable[str]) -> Iterator[T]:
    """What `rules` lists under any of `keys`."""
    return itertools.chain.from_iterable(filter(None, map(rules.get, keys)))


def _is_word_key(key: str) -> bool:
    """One whole word (a phrase's or a prefix's key starts with a space)."""
    return not key.startswith(" ")


T = TypeVar("T")
_VALUE = operator.itemgetter(1)  # of an automaton hit: (end offset, value)
_OTHER_FIELDS = tuple(name for name in TEXT_FIELDS if name not in ("title", "body"))


# --- highlighting -------------------------------------------------------------------


def find_terms(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Return the (start, end) spans of the hits of `terms` in `text`.

    `terms` are words, phrases and prefixes (``refug*``), as in
    `RuleMatch.terms`. Spans index the original, un-normalised `text` (for
    highlighting it) and follow the matcher's rules (case- and accent-insensitive,
    whole words, a phrase's words in a row whatever separates them). They are
    sorted and never overlap: overlapping or touching hits are merged into one.
    """
    patterns = [pattern for term in dict.fromkeys(terms) if (pattern := term_pattern(term))]
    if not patterns or not text:
        return []
    words, offsets = word_spans(text)
    spans = sorted(
        (offsets[start][0], offsets[start + len(pattern) - 1][1])
        for pattern in patterns
        for start in find_word_runs(words, pattern)
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
