"""The query language of watch rules: parsed once, evaluated on each article.

A watch rule is either a list of keywords (`KeywordRule` in alerts/rules.py) or
a query such as::

    "Palmyra" OR (ISIS NEAR/5 (Syria OR Iraq)) AND NOT title:football AND lang:en

Syntax
------
``ISIS``
    a word, matched whole: ``ISIS`` does not match "crisis". A term with inner
    punctuation is the phrase of its words: ``anti-ISIS`` is ``"anti ISIS"`` and
    ``bbc.co.uk`` is ``"bbc co uk"``.
``"Islamic State"``
    an exact phrase: these words, consecutive, in this order. What separates
    the words in the article (spaces, line breaks, punctuation, hyphens) does
    not matter. A quoted phrase (or quoted word) is never stemmed.
``refug*``
    a prefix: any word starting with "refug". ``*`` may only end a word of at
    least one letter or digit; it works inside phrases too: ``"refug* camp*"``.
``a AND b``, ``a b``
    both. Terms written next to each other are joined by an implicit AND.
``a OR b``
    either.
``NOT a``
    not a. A query may be made of NOT and ``lang:`` alone: ``NOT title:football``.
``a NEAR/n b``
    a and b in the same field, in either order, at two different places at most
    n words apart (neighbouring words are 1 apart; n from 1 to 1000). Sentence
    ends do not count: it is a word distance. Each side is a term, a phrase, a
    prefix or a parenthesised OR of those: ``ISIS NEAR/5 (Syria OR Iraq)``.
    NEAR does not chain; join two NEARs with AND. A side has at most 100
    alternatives.
``( … )``
    grouping.
``title:``, ``body:``, ``author:``, ``source:``, ``url:``
    look only in that field, for the term, phrase or parenthesised group written
    right after the colon, with no space: ``title:(Syria OR Iraq)``. A term
    without a field looks in the title and the body (a phrase never runs from
    the one into the other). Fields do not nest, and NEAR's sides take none:
    scope the whole NEAR instead, ``title:(ISIS NEAR/3 Syria)``.
``lang:en``, ``lang:(en OR fr)``
    the article's language: ``lang:en`` matches "en" and "en-GB", ``lang:pt-BR``
    only "pt-BR". An article whose language is unknown matches no ``lang:``.

Precedence, tightest first: a field prefix, then NEAR/n, then NOT, then AND
(explicit or implicit, which are the same), then OR. So ``a OR b c`` is
``a OR (b AND c)``, ``NOT a b`` is ``(NOT a) AND b``, ``a OR NOT b AND c`` is
``a OR ((NOT b) AND c)`` and ``NOT a NEAR/2 b`` is ``NOT (a NEAR/2 b)``.
Operators are upper case. A lower-case ``and``, ``or``, ``not`` or ``near/5`` is
an error, not a silently searched word (to search for the word, quote it:
``"not"``); so are ``-word`` and ``+word`` (write ``NOT word``, or just ``word``).

Limits: a query nests at most 50 levels deep (each parenthesised group, each
NOT and each field prefix is a level: ``NOT (a OR title:b)`` is three deep)
and has at most 10,000 terms. Past either, parsing stops with a
`QuerySyntaxError` at the column where the limit was passed.

Text
----
Queries and articles are compared in one normalised form: NFKC, case-folded,
accents stripped (``Zurich`` matches "Zürich" and ``Zürich`` matches "Zurich";
also ł→l, ø→o, đ→d, ħ→h, ŧ→t, ı→i), soft hyphens and zero-width characters
removed. A soft hyphen at the end of a word also removes the line break after
it ("Pal\\u00ad⏎myra" is "Palmyra"). Words are runs of letters, digits,
underscores and combining marks; anything else separates words, so hyphens are
word boundaries ("anti-ISIS" holds the word ISIS). One letter followed by ``+``
or ``#`` is a word of its own, so C++, C# and F# are not the word "c" or "f".

Stemming
--------
With the rule option ``stem: true``, unquoted words (not prefixes) match every
word with the same Snowball stem: ``election`` matches "elections". The stemmer
is the article's language's; the rule's ``language:`` stands in for articles
whose language is unknown (or has no Snowball stemmer). With neither, words
match exactly.

Layer 1, domain (part of crawler.domain). May import: crawler.domain only.
"""

from __future__ import annotations

# The package is split by responsibility (each submodule imports only the ones
# below it): text (normalisation, stemming, limits) <- syntax (the tree) <- lexer
# (tokens) <- parser; text <- documents; text, syntax, documents <- matchers (the
# evaluator, one matcher per node kind) <- evaluation (compile_query, evaluate);
# text, syntax <- highlight. The names
# imported "as" themselves are public but outside `__all__`, as they were before the
# split (the tests use MAX_QUERY_DEPTH and Node).
from crawler.domain.query.documents import PreparedDocument, prepare_document
from crawler.domain.query.evaluation import (
    CompiledQuery,
    QueryResult,
    compile_query,
    evaluate,
    query_terms,
)
from crawler.domain.query.highlight import find_word_runs, term_pattern, word_spans
from crawler.domain.query.matchers import DEFAULT_SCOPE, Found
from crawler.domain.query.parser import keyword_query, parse_query
from crawler.domain.query.syntax import (
    And,
    Lang,
    Near,
    Not,
    Or,
    Query,
    QuerySyntaxError,
    Term,
    Word,
    best_word,
    term_key,
    word_key,
)
from crawler.domain.query.syntax import Node as Node
from crawler.domain.query.text import DEFAULT_FIELDS as DEFAULT_FIELDS
from crawler.domain.query.text import (
    FIELDS,
    TEXT_FIELDS,
    normalise_text,
    stem_language,
    stem_word,
    tokenise,
)
from crawler.domain.query.text import MAX_NEAR_ALTERNATIVES as MAX_NEAR_ALTERNATIVES
from crawler.domain.query.text import MAX_NEAR_DISTANCE as MAX_NEAR_DISTANCE
from crawler.domain.query.text import MAX_QUERY_DEPTH as MAX_QUERY_DEPTH
from crawler.domain.query.text import MAX_QUERY_TERMS as MAX_QUERY_TERMS

__all__ = [
    "DEFAULT_SCOPE",
    "FIELDS",
    "TEXT_FIELDS",
    "And",
    "CompiledQuery",
    "Found",
    "Lang",
    "Near",
    "Not",
    "Or",
    "PreparedDocument",
    "Query",
    "QueryResult",
    "QuerySyntaxError",
    "Term",
    "Word",
    "best_word",
    "compile_query",
    "evaluate",
    "find_word_runs",
    "keyword_query",
    "normalise_text",
    "parse_query",
    "prepare_document",
    "query_terms",
    "stem_language",
    "stem_word",
    "term_key",
    "term_pattern",
    "tokenise",
    "word_key",
    "word_spans",
]
