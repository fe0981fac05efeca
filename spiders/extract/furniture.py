"""Page furniture inside an extracted body, told apart by its words: links to other
stories under a label ("Read also", "Leggi anche", "Also on …"), share and
subscribe prompts, and the residue of WordPress shortcodes. Pure text functions
over one paragraph, in the languages of the article-extraction corpus and their
neighbours."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

# A label that introduces a link to another story, alone or before its headline.
# Each is the whole label, so "More than 40 people ..." or "Related to the case,
# ..." are not labels: they need the label's own punctuation or its line to
# themselves (see is_related_link_line).
RELATED_LABELS = (
    # English
    "read also|also read|read more|more|related|related stories|related articles|"
    "related content|related coverage|see also|see more|watch|watch more|listen|"
    "recommended|recommended for you|you may also like|you might also like|"
    "don't miss|more on this story|more from|also on|also from|more stories|"
    "click here to read|trending|top stories|editor's picks|latest|"
    # Italian, French, German, Spanish, Portuguese, Dutch
    "leggi anche|leggi pure|vedi anche|potrebbe interessarti|"
    "lire aussi|à lire aussi|voir aussi|lire également|à voir aussi|"
    "lesen sie auch|auch interessant|mehr zum thema|siehe auch|das könnte sie auch interessieren|"
    "lee también|leer más|ver también|te puede interesar|también te puede interesar|"
    "leia também|leia mais|veja também|saiba mais|"
    "lees ook|zie ook|meer over|"
    # Scandinavian, Polish, Czech, Russian, Ukrainian, Turkish
    "läs också|läs mer|les også|læs også|"
    "czytaj też|czytaj także|czytaj więcej|zobacz też|zobacz także|"
    "čtěte také|přečtěte si také|"
    "читайте также|читать также|смотрите также|по теме|"
    "читайте також|дивіться також|"
    "ayrıca okuyun|ilginizi çekebilir"
)
# Labels that name the site or section the link goes to ("Also on NBC News:").
NAMED_LABELS = "also on|also from|more from|more on|more at|read more on|more stories from"
# "Read also: <headline>", "Also on NBC News: <headline>", "READ MORE | <headline>",
# "» Related: <headline>": the label, then ':', '|', '»' or '>' and the rest.
RELATED_LINE = re.compile(
    rf"^\W{{0,3}}(?:(?:{RELATED_LABELS})|(?:{NAMED_LABELS})(?:\s+[\w.'’&-]+){{1,4}}?)"
    r"\s*[:|»>]\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
# The label on a line of its own ("Read also", "RELATED STORIES:", "More Great
# WIRED Stories").
RELATED_LABEL_ALONE = re.compile(
    rf"^\W{{0,3}}(?:{RELATED_LABELS}"
    r"|(?:more|other|latest|top|related|recommended|popular)\b.{0,30}"
    r"\b(?:stories|articles|news|posts|reads|videos))\W{0,3}$",
    re.IGNORECASE,
)
# A headline after a label is a line, not paragraphs of article: one sentence at most.
MAX_RELATED_WORDS = 30

# Share and subscribe prompts: short lines asking the reader to act on the page,
# not to read it. Anchored to the whole line (with at most MAX_PROMPT_WORDS words),
# so a sentence that reports that someone shared or subscribed stays.
PROMPTS = re.compile(
    r"^\W*(?:"
    # English
    r"(?:like|enjoy(?:ed)?|love)(?:d)? this (?:story|article|post)\b.*|"
    r"share (?:this|the) (?:story|article|post|page)\b.*|share on \w+.*|share this\W*|"
    r"(?:click|tap) here to (?:subscribe|share|sign up|download|get more|read more)\b.*|"
    r"(?:sign up|subscribe) (?:for|to) (?:our|the|my) "
    r".*?(?:newsletter|updates|channel|alerts|podcast).*|"
    r"subscribe (?:now|today|here|to)\b.*|follow us on \w+.*|"
    r"(?:get|receive) (?:our|the) (?:latest )?(?:news|stories|headlines|newsletter|updates)\b"
    r".*(?:inbox|email|free).*|"
    r"(?:don't|never) miss (?:a|an|the) (?:story|update|thing)\b.*|"
    r"have a (?:news )?tip\?.*|got a (?:news )?tip\?.*|"
    r"(?:leave|post|add) a comment(?: below| here)?\W*|tell us what you think\b.*|"
    r"(?:.{0,80}[.!?]\s+)?sign up (?:for|to)\b.{0,80}(?:newsletter|inbox|email|updates)\b.*|"
    r"(?:start|end) your day with\b.*\b(?:newsletter|briefing|news|headlines|inbox)\b.*|"
    r"get (?!the best\b)[\w' ]{1,40} delivered\b.*|"
    r"get access to\b.*\bsubscription\b.*|"
    r"follow (?:\w+'s|our) (?:full |live )?coverage of\b.*|"
    r"(?:email|contact) [\w .'-]{1,40} at \S+@\S+.*|"
    r"(?:estimated )?(?:reading|read) time:?\s*\d+\s*(?:min|minutes?)\b.*|"
    r"tempo de leitura:?.*|temps de lecture:?.*|tiempo de lectura:?.*|lesezeit:?.*|"
    r"tags|comments?|advertisement|advertising|anzeige|publicité|pubblicità|publicidad|"
    r"share|print|e-?mail|subscribe|sign up|log in|"
    # Italian, French, German, Spanish, Portuguese, Dutch
    r"condividi (?:questo|l'|su)\b.*|iscriviti (?:alla|al|a) .*|seguici su \w+.*|"
    r"partager? (?:cet (?:article|contenu)|l'article|sur)\b.*|"
    r"abonnez-vous\b.*|suivez-nous sur \w+.*|"
    r"(?:artikel |beitrag )?teilen(?: sie (?:diesen|den) (?:artikel|beitrag))?"
    r"(?: (?:auf|per|via) \w+)?\W*|"
    r"jetzt (?:abonnieren|teilen)\b.*|folgen sie uns\b.*|"
    r"(?:abonnieren sie|melden sie sich) .*newsletter.*|"
    r"comparte (?:esta|este|en)\b.*|compartir en \w+.*|suscríbete\b.*|síguenos en \w+.*|"
    r"compartilhe(?: (?:esta|este|no|na)\b.*)?\W*|assine (?:a nossa|nossa) newsletter\b.*|"
    r"siga-nos\b.*|"
    r"deel dit\b.*|volg ons\b.*|schrijf je in\b.*"
    r")$",
    re.IGNORECASE,
)
MAX_PROMPT_WORDS = 20
# A line that says who said it reports a request ("Sign up for email alerts, the
# council said"): article prose, never a prompt to the reader.
REPORTED_SPEECH = re.compile(
    r"\b(?:said|says|told|urged|advised|advise|asked|added|warned|chanted|according to"
    r"|ha detto|ha dichiarato|a déclaré|a dit|sagte|erklärte|dijo|afirmó|disse|pediu|afirmou"
    r"|zei)\b",
    re.IGNORECASE,
)

# WordPress shortcodes left in the text by a site that did not render them:
# "[button link="…"]", "[/button]", "[caption id="…" align="…"]", "[embed]".
# A bracket counts as a shortcode when it closes one ("[/name]"), carries
# attributes (name="…"), or is a known shortcode name; "[sic]", "[1]" and
# "[Reuters]" are text.
KNOWN_SHORTCODES = (
    "caption|embed|gallery|video|audio|playlist|button|ad|ads|adsense|toc|"
    r"(?:su|vc|et_pb|fusion|av|mk|ux|tie|td|penci|jnews)_\w+|"
    "contact-form(?:-7)?|tweet|twitter|youtube|instagram|facebook|related|shortcode"
)
SHORTCODE = re.compile(
    r"\[/[a-z][\w-]*\]"
    r"|\[[a-z][\w-]*(?:\s+[\w-]+\s*=\s*(?:\"[^\"\]]*\"|'[^'\]]*'|[^\s\]]+))+\s*/?\]"
    # known names in lower case only: "[Facebook]" or "[Video]" is an editor's word
    rf"|\[(?-i:{KNOWN_SHORTCODES})(?:\s[^\]]*)?/?\]",
    re.IGNORECASE,
)


def is_related_link_line(paragraph: str, is_link: Callable[[str], bool]) -> bool:
    """True when the paragraph introduces another story: a label alone ("Read
    also"), or a label and a headline ("Leggi anche: <headline>", "Also on NBC
    News: <headline>") whose headline is a link on the page or is short enough to
    be one headline."""
    if RELATED_LABEL_ALONE.match(paragraph):
        return True
    if (labelled := RELATED_LINE.match(paragraph)) is None:
        return False
    rest = labelled["rest"].strip()
    return (
        not rest
        or is_link(rest)
        or (
            len(rest.split()) <= MAX_RELATED_WORDS
            and not _is_sentence_run(rest)
            and not rest.endswith(".")  # a headline has no full stop; a sentence does
        )
    )


def _is_sentence_run(text: str) -> bool:
    """True when the text holds more than one sentence: article prose, not a headline."""
    return len(re.findall(r"[.!?。](?:\s|$)", text.rstrip(".!?。 "))) >= 1


def is_prompt(paragraph: str) -> bool:
    """True when the paragraph is a share or subscribe prompt."""
    return (
        len(paragraph.split()) <= MAX_PROMPT_WORDS
        and PROMPTS.match(paragraph) is not None
        and not REPORTED_SPEECH.search(paragraph)
    )


def strip_shortcodes(paragraph: str) -> str:
    """The paragraph without shortcode residue (the text between an opening and
    a closing shortcode stays: it is the button's or caption's words)."""
    if "[" not in paragraph:
        return paragraph
    return " ".join(SHORTCODE.sub(" ", paragraph).split())
