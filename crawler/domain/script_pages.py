"""Pages that scripts build in the browser (pure, no I/O): what the server sends is
an empty shell, a script bundle and perhaps the data as JSON, so a selector finds
no links in it and a search for feeds finds nothing. ``looks_script_built`` says
so, and why, for the messages that would otherwise only say "nothing found".

Only a shell counts: a page with little visible text and few links. A page the
server renders in full (Next.js, Nuxt) also carries a data island and bundles, and
has its text and links all the same.
"""

from __future__ import annotations

import re

__all__ = ["looks_script_built"]

# A shell has at most this much visible text (characters) and this many links; a
# section page worth polling has headlines, menus and more.
SHELL_MAX_TEXT = 600
SHELL_MAX_LINKS = 8
# Scripts make up at least this share of the page's bytes on a bundle-only page.
SCRIPT_SHARE = 0.5
# Read of a page: shells are small, or large only because of inlined scripts.
SCAN_CHARS = 2_000_000

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(
    r"<(style|template|noscript|svg)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<head\b.*?</head\s*>",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]*>")
_LINK = re.compile(r"<a\b[^>]*\bhref\s*=", re.IGNORECASE)
_MOUNT = re.compile(
    r"<div\b[^>]*\bid\s*=\s*[\"']?(root|app|__next|__nuxt|svelte|main-app|application)"
    r"[\"']?[^>]*>\s*</div\s*>",
    re.IGNORECASE,
)
_NOSCRIPT = re.compile(r"<noscript\b[^>]*>(.*?)</noscript\s*>", re.IGNORECASE | re.DOTALL)
_ASKS_FOR_SCRIPTS = re.compile(
    r"(enable|turn on|activate|requires?|need)\W+(\w+\W+){0,4}?javascript"
    r"|javascript\W+(\w+\W+){0,3}?(required|disabled|enabled)",
    re.IGNORECASE,
)
_DATA_ISLANDS = (
    ("__NEXT_DATA__", re.compile(r"id\s*=\s*[\"']__NEXT_DATA__")),
    ("window.__NUXT__", re.compile(r"window\.__NUXT__\s*=")),
    ("__INITIAL_STATE__", re.compile(r"__(INITIAL|PRELOADED)_STATE__\s*=")),
    ("__APOLLO_STATE__", re.compile(r"__APOLLO_STATE__\s*=")),
)
_JSON_SCRIPT = re.compile(r"type\s*=\s*[\"']application/json", re.IGNORECASE)


def looks_script_built(html: str) -> str | None:
    """Why the page looks built by scripts in the browser ("an empty <div
    id="root">, <noscript> asks for JavaScript"), or None when it does not: a page
    with text and links of its own, or one without any script."""
    page = html[:SCAN_CHARS]
    scripts = _SCRIPT.findall(page)
    if not scripts:
        return None
    without_scripts = _SCRIPT.sub(" ", page)
    text = " ".join(_TAG.sub(" ", _HIDDEN.sub(" ", without_scripts)).split())
    links = len(_LINK.findall(without_scripts))
    if len(text) > SHELL_MAX_TEXT or links > SHELL_MAX_LINKS:
        return None
    reasons = []
    if mount := _MOUNT.search(without_scripts):
        reasons.append(f'an empty <div id="{mount.group(1)}">')
    if any(_ASKS_FOR_SCRIPTS.search(_TAG.sub(" ", inner)) for inner in _NOSCRIPT.findall(page)):
        reasons.append("<noscript> asks for JavaScript")
    for name, pattern in _DATA_ISLANDS:
        if pattern.search(page):
            reasons.append(f"its data is a script's JSON ({name})")
            break
    else:
        islands = [body for attributes, body in scripts if _JSON_SCRIPT.search(attributes)]
        if sum(len(body) for body in islands) > 2 * max(len(text), 1):
            reasons.append("its data is JSON in <script> elements")
    script_bytes = sum(len(body) for _, body in scripts)
    share = script_bytes / max(len(page), 1)
    if share >= SCRIPT_SHARE:
        reasons.append(f"{share:.0%} of it is script")
    if not reasons and not text:
        reasons.append("no text without its scripts")
    return ", ".join(reasons) or None
