"""Rule matching at scale: articles/s of `RuleMatcher` against a naive regex loop.

The articles are the corpus in tests/fixtures/extraction: bodies and URLs from
ground-truth.json, titles from the pages' <title>, languages from py3langid.
Rules are written before the articles they catch arrive, so they are generated
from the words of one half of the corpus (the even-numbered pages, "yesterday's
news") and matched against the other half ("today's"); `--same-articles`
matches them against the pages they were drawn from instead, a stress test in
which every rule word occurs in the stream.

The generator (seeded) writes what watch rules hold: names (words always
capitalised) and rarer words (in at most `MAX_DOCUMENT_FREQUENCY` pages), real
phrases of two or three words, a few prefixes; keyword rules (any of 1-4, some
with excluded words) and queries (AND, OR, NOT, implicit AND, phrases,
prefixes, NEAR/n, title:, body:, lang:, and a few NOT-and-lang: rules that
every article has to be checked against). Even so, each rule word occurs in
about 1 % of the articles: 10,000 such rules give an article about 180
matches, far more than a real rule set would, and reporting them is most of
the cost that 10,000 rules add.

The naive loop is what one would write without an index: one compiled regex
per rule (lookaheads for AND, OR, NOT, NEAR and the fields), each run over every
article's normalised text. Both run on the same articles with the same rules in
the same run, newswatch's time including tokenising each article. newswatch's
figure is its best pass over the articles (the machine is shared); the naive
loop runs over as many articles as fit in `NAIVE_SECONDS`. Both must give the
same matches on the articles both ran ("same matches: yes", asserted).

The table: articles/s of both, newswatch's speed-up over the naive loop, and
"vs 100 rules", newswatch's time per article relative to its time with 100.

Promise: with 10,000 rules, at least 20x the naive loop's articles/s, and at
most 3x newswatch's own time per article with 100 rules.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import random
import re
import time
from pathlib import Path

import py3langid

from alerts.rules import KeywordRule, MatchDocument, QueryRule, RuleMatcher
from crawler.domain.query import (
    And,
    Lang,
    Near,
    Node,
    Not,
    Or,
    Term,
    keyword_query,
    normalise_text,
    parse_query,
)

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "extraction"
SEED = 20240611
RULE_COUNTS = (100, 1_000, 10_000)
MAX_DOCUMENT_FREQUENCY = 3
NEWSWATCH_SECONDS = 8.0  # passes over the articles for this long; each count's best counts
NAIVE_SECONDS = 8.0  # the naive loop stops after the article that crosses this
MIN_NAIVE_ARTICLES = 3

_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_WORD_RE = re.compile(r"\w+")


# --- corpus -------------------------------------------------------------------------


def load_articles() -> list[MatchDocument]:
    truth = json.loads((CORPUS / "ground-truth.json").read_text(encoding="utf-8"))
    articles = []
    for page_id, page in sorted(truth.items()):
        raw = gzip.decompress((CORPUS / f"{page_id}.html.gz").read_bytes())
        found = _TITLE_RE.search(raw.decode("utf-8", "replace"))
        title = html.unescape(found.group(1)).strip() if found else ""
        body = page["articleBody"]
        language = py3langid.classify(body)[0]
        articles.append(MatchDocument(title, body, url=page["url"], language=language))
    return articles


def vocabulary(articles: list[MatchDocument]) -> tuple[list[str], list[str], list[list[str]]]:
    """Names and rarer words (as first written), and each article's words in order."""
    frequency: dict[str, int] = {}
    surface: dict[str, str] = {}
    capitalised: dict[str, bool] = {}
    texts = []
    for article in articles:
        words = _WORD_RE.findall(article.body)
        texts.append(words)
        for word in words:
            if word.isalpha() and len(word) >= 4:
                key = normalise_text(word)
                capitalised[key] = capitalised.get(key, True) and word[0].isupper()
                surface.setdefault(key, word)
        for key in {normalise_text(w) for w in words if w.isalpha() and len(w) >= 4}:
            frequency[key] = frequency.get(key, 0) + 1
    names = sorted(surface[key] for key in surface if capitalised[key])
    rare = sorted(
        surface[key]
        for key, count in frequency.items()
        if count <= MAX_DOCUMENT_FREQUENCY and not capitalised[key]
    )
    return names, rare, texts


class RuleFactory:
    """Random but realistic rules from the corpus words, reproducible by seed."""

    def __init__(
        self, names: list[str], rare: list[str], texts: list[list[str]], seed: int
    ) -> None:
        self.random = random.Random(seed)
        self.names = names
        self.rare = rare
        self.texts = [t for t in texts if len(t) > 20]
        self.specific = {normalise_text(word) for word in names + rare}

    def word(self) -> str:
        return self.random.choice(self.names if self.random.random() < 0.5 else self.rare)

    def phrase(self) -> str:
        """Two or three words that follow each other somewhere in the corpus."""
        for _ in range(100):
            text = self.random.choice(self.texts)
            start = self.random.randrange(len(text) - 3)
            words = text[start : start + self.random.choice((2, 2, 3))]
            if all(w.isalpha() for w in words) and any(
                normalise_text(w) in self.specific for w in words
            ):
                return " ".join(words)
        return self.word()

    def prefix(self) -> str:
        word = self.random.choice(self.rare)
        return word[: max(5, len(word) - 3)] + "*"

    def near_pair(self) -> tuple[str, str, int]:
        """Two words a few words apart in some article, and a distance around theirs."""
        for _ in range(100):
            text = self.random.choice(self.texts)
            start = self.random.randrange(len(text) - 12)
            gap = self.random.randint(1, 10)
            first, second = text[start], text[start + gap]
            if first.isalpha() and second.isalpha() and normalise_text(first) in self.specific:
                return first, second, max(1, gap + self.random.randint(-3, 3))
        return self.word(), self.word(), 5

    def keyword(self) -> str:
        roll = self.random.random()
        if roll < 0.25:
            return self.phrase()
        if roll < 0.3:
            return self.prefix()
        return self.word()

    def term(self) -> str:
        roll = self.random.random()
        if roll < 0.25:
            return f'"{self.phrase()}"'
        if roll < 0.3:
            return self.prefix()
        return self.word()

    def query(self) -> str:
        t = self.term
        choice = self.random.randrange(10)
        if choice == 0:
            return f"{t()} OR {t()}"
        if choice == 1:
            return f"{t()} AND ({t()} OR {t()})"
        if choice == 2:
            return f"{t()} {t()}"
        if choice == 3:
            return f"({t()} OR {t()}) AND NOT {t()}"
        if choice == 4:
            first, second, distance = self.near_pair()
            return f'"{first}" NEAR/{distance} ("{second}" OR {t()})'
        if choice == 5:
            return f"title:{t()} OR title:({t()} OR {t()})"
        if choice == 6:
            return f"{t()} AND lang:{self.random.choice(('en', 'pt', 'de'))}"
        if choice == 7:
            return f"({t()} OR {t()} OR {t()}) AND NOT title:{t()}"
        if choice == 8:
            return f"{t()} OR ({t()} AND NOT body:{t()})"
        if self.random.random() < 0.3:  # the rare rules every article is checked against
            return f"lang:{self.random.choice(('ja', 'ko', 'ru'))} AND NOT {t()}"
        return f"{t()} OR {t()} OR {t()} OR {t()}"

    def rules(self, count: int) -> list[KeywordRule | QueryRule]:
        rules: list[KeywordRule | QueryRule] = []
        for index in range(count):
            name = f"rule-{index}"
            if self.random.random() < 0.6:
                keywords = tuple(self.keyword() for _ in range(self.random.randint(1, 4)))
                exclude = tuple(self.word() for _ in range(self.random.choice((0, 0, 1, 2))))
                rules.append(KeywordRule(name, keywords, exclude))
            else:
                rules.append(QueryRule(name, self.query()))
        return rules


# --- the naive loop ---------------------------------------------------------------

# Normalised text: title, body and language in one string, each after its marker.
_TITLE, _BODY, _LANG = "\x01", "\x02", "\x03"
_GAP = r"[^\w\x01\x02\x03]+"  # what separates two words of one field


def _term_regex(term: Term) -> str:
    words = [
        r"(?<!\w)" + re.escape(word.text) + (r"\w*" if word.prefix else "") + r"(?!\w)"
        for word in term.words
    ]
    return _GAP.join(words)


def _scoped(pattern: str, field: str | None) -> str:
    if field == "title":
        return rf"(?=\x01[^\x02]*?{pattern})"
    if field == "body":
        return rf"(?=[^\x02]*\x02[^\x03]*?{pattern})"
    return rf"(?=[^\x03]*?{pattern})"  # the title or the body


def _node_regex(node: Node) -> str:
    if isinstance(node, Term):
        return _scoped(_term_regex(node), node.field)
    if isinstance(node, Lang):
        codes = "|".join(re.escape(code) for code in node.codes)
        return rf"(?=[^\x03]*\x03(?:{codes})(?:-[^\x03]*)?\Z)"
    if isinstance(node, Not):
        return f"(?!{_node_regex(node.child)})"
    if isinstance(node, And):
        return "".join(_node_regex(child) for child in node.children)
    if isinstance(node, Or):
        return "(?:" + "|".join(_node_regex(child) for child in node.children) + ")"
    if isinstance(node, Near):
        left = "(?:" + "|".join(_term_regex(term) for term in node.left) + ")"
        right = "(?:" + "|".join(_term_regex(term) for term in node.right) + ")"
        between = rf"(?:{_GAP}\w+){{0,{node.distance - 1}}}{_GAP}"
        return _scoped(f"(?:{left}{between}{right}|{right}{between}{left})", node.left[0].field)
    raise TypeError(node)


def naive_regex(rule: KeywordRule | QueryRule) -> re.Pattern[str]:
    """One regex for the whole rule, matched at the start of `naive_text`."""
    if isinstance(rule, QueryRule):
        root = parse_query(rule.query).root
    else:
        root = keyword_query(rule.keywords, rule.exclude).root
    return re.compile(r"\A" + _node_regex(root))


def naive_text(article: MatchDocument) -> str:
    language = (article.language or "").lower()
    return (
        f"{_TITLE}{normalise_text(article.title)}{_BODY}{normalise_text(article.body)}"
        f"{_LANG}{language}"
    )


def naive_match(patterns: list[tuple[str, re.Pattern[str]]], article: MatchDocument) -> list[str]:
    text = naive_text(article)
    return [name for name, pattern in patterns if pattern.match(text)]


# --- the run ---------------------------------------------------------------------


def measure_newswatch(
    matchers: dict[int, RuleMatcher], articles: list[MatchDocument]
) -> tuple[dict[int, float], dict[int, list[list[str]]]]:
    """Articles/s of each matcher: its best pass over the articles.

    The passes take turns between the rule counts for `NEWSWATCH_SECONDS`, so
    that a busy moment on the (shared) machine hits all of them alike.
    """
    best = dict.fromkeys(matchers, float("inf"))
    found: dict[int, list[list[str]]] = {}
    started = time.perf_counter()
    while time.perf_counter() - started < NEWSWATCH_SECONDS or min(best.values()) == float("inf"):
        for count, matcher in matchers.items():
            begin = time.perf_counter()
            found[count] = [[m.rule for m in matcher.match(article)] for article in articles]
            best[count] = min(best[count], time.perf_counter() - begin)
    return {count: len(articles) / seconds for count, seconds in best.items()}, found


def measure_naive(
    rules: list[KeywordRule | QueryRule], articles: list[MatchDocument], seed: int
) -> tuple[float, dict[int, list[str]]]:
    """Articles/s of the naive loop over as many articles as fit in `NAIVE_SECONDS`."""
    patterns = [(rule.name, naive_regex(rule)) for rule in rules]
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    found: dict[int, list[str]] = {}
    started = time.perf_counter()
    for index in order:
        found[index] = naive_match(patterns, articles[index])
        elapsed = time.perf_counter() - started
        if elapsed >= NAIVE_SECONDS and len(found) >= MIN_NAIVE_ARTICLES:
            break
    return len(found) / elapsed, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--same-articles",
        action="store_true",
        help="match the rules against the pages their words come from (stress test)",
    )
    options = parser.parse_args()
    pages = load_articles()
    source, stream = pages[::2], (pages[::2] if options.same_articles else pages[1::2])
    names, rare, texts = vocabulary(source)
    print(
        f"rules from the words of {len(source)} pages ({len(names)} names, {len(rare)} "
        f"words in at most {MAX_DOCUMENT_FREQUENCY} pages), seed {SEED}; matched against "
        f"{len(stream)} {'of the same' if options.same_articles else 'other'} pages"
    )
    rules = {count: RuleFactory(names, rare, texts, SEED).rules(count) for count in RULE_COUNTS}
    rates, ours = measure_newswatch(
        {count: RuleMatcher(rules[count]) for count in RULE_COUNTS}, stream
    )
    results: dict[int, dict[str, float]] = {}
    for count in RULE_COUNTS:
        naive_rate, naive = measure_naive(rules[count], stream, SEED + count)
        for index, matched in naive.items():
            assert ours[count][index] == matched, (count, index)
        results[count] = {
            "newswatch": rates[count],
            "naive": naive_rate,
            "checked": len(naive),
            "matches": sum(map(len, ours[count])) / len(stream),
        }
    base = results[RULE_COUNTS[0]]["newswatch"]
    print()
    print("| rules | newswatch art/s | naive art/s | speed-up | vs 100 rules |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for count, result in results.items():
        print(
            f"| {count:,} | {result['newswatch']:,.0f} | {result['naive']:,.1f} "
            f"| {result['newswatch'] / result['naive']:,.0f}x "
            f"| {base / result['newswatch']:.2f}x |"
        )
    print()
    for count, result in results.items():
        print(
            f"{count:,} rules: {result['matches']:.1f} matches per article; "
            f"naive loop checked on {result['checked']} articles"
        )
    print("same matches: yes")
    top = results[RULE_COUNTS[-1]]
    speed_up = top["newswatch"] / top["naive"]
    slowdown = base / top["newswatch"]
    print(
        f"promise (10,000 rules: >= 20x naive, <= 3x slower than 100 rules): "
        f"{'kept' if speed_up >= 20 and slowdown <= 3 else 'BROKEN'} "
        f"({speed_up:.0f}x, {slowdown:.2f}x)"
    )


if __name__ == "__main__":
    main()
