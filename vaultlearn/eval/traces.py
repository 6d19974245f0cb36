"""Remove every trace of a link A→B from A's markdown, so that hiding the link hides its words too.

A trace is: a ``[[B]]`` / ``[[B|alias]]`` / ``[[B#Heading]]`` / ``![[B]]`` link, a markdown link
``[text](B.md)``, the display text of such a link wherever it stands, and B's names (title, aliases) as
plain words (case-insensitive, word-bounded). Links to other notes are kept as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import unquote

from vaultlearn.vault.body import ANY_LINK_RE, MARKDOWN_LINK, WIKILINK
from vaultlearn.vault.names import links_to, lookup_key, strip_note_suffix

# a [[wikilink]] or a [text](dest) markdown link as the body parser reads them, with an optional leading "!"
# (led by a lookahead for the first character: the engine then skips to a "!" or "[")
WIKILINK_RE = re.compile(r"(?=[!\[])!?" + WIKILINK)
MARKDOWN_LINK_RE = re.compile(r"(?=[!\[])!?" + MARKDOWN_LINK)
_SPACE_RUNS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


def remove_traces(markdown: str, target_names: Sequence[str]) -> str:
    """``markdown`` without any link to, or mention of, the note named by ``target_names``.

    ``target_names`` are the target's names: its vault path and/or title (with or without ``.md``) and its
    aliases. The result is markdown again (other links intact), ready for ``parse_note`` to embed.
    """
    names = [strip_note_suffix(name.strip()) for name in target_names if name and name.strip()]
    if not names:
        raise ValueError("remove_traces needs at least one non-empty target name")
    keys = {lookup_key(name) for name in names}
    shown: list[str] = []

    def drop_wikilink(match: re.Match) -> str:
        ref, bar, display = match.group("inner").partition("|")
        if not links_to(ref.rstrip("\\").partition("#")[0], keys):
            return match.group(0)
        if bar and display.strip():
            shown.append(display.strip())
        return ""

    def drop_markdown_link(match: re.Match) -> str:
        dest = match.group("mdest")
        dest = dest[1:-1] if dest.startswith("<") else dest
        if not links_to(unquote(dest.partition("#")[0]), keys):
            return match.group(0)
        if match.group("mtext").strip():
            shown.append(match.group("mtext").strip())
        return ""

    text = WIKILINK_RE.sub(drop_wikilink, markdown)
    text = MARKDOWN_LINK_RE.sub(drop_markdown_link, text)
    mentions = mention_pattern([n.rsplit("/", 1)[-1] for n in names] + shown)

    def drop_words(match: re.Match) -> str:
        """Other links keep their targets; only their shown text loses the words."""
        if match.re is mentions:
            return ""
        if match.group("inner") is not None:
            ref, bar, display = match.group("inner").partition("|")
            bang = "!" if match.group(0).startswith("!") else ""
            return f"{bang}[[{ref}{bar}{mentions.sub('', display)}]]"
        head = match.group(0)[: match.group(0).index("](")]
        return mentions.sub("", head) + match.group(0)[len(head) :]

    return _SPACE_RUNS.sub(" ", links_or_words_sub(mentions, drop_words, text))


def links_or_words_sub(words: re.Pattern, replace: Callable[[re.Match], str], text: str) -> str:
    """``text`` with each match of "a link, else one of ``words``" replaced: what ``re.sub`` of the alternation
    ``LINK|words`` gives (the leftmost match of either; a link where both start), without compiling that
    alternation anew for every target's words (milliseconds each: the link patterns are long)."""
    out, pos = [], 0
    link, word = ANY_LINK_RE.search(text), words.search(text)
    while link or word:
        match = link if link and (not word or link.start() <= word.start()) else word
        out += [text[pos:match.start()], replace(match)]
        pos = match.end()
        if link and link.start() < pos:
            link = ANY_LINK_RE.search(text, pos)
        if word and word.start() < pos:
            word = words.search(text, pos)
    out.append(text[pos:])
    return "".join(out)


def mention_pattern(words: Sequence[str]) -> re.Pattern:
    """One case-insensitive, word-bounded pattern matching any of ``words`` (longest first)."""
    ordered = sorted({w.strip() for w in words if w.strip()}, key=len, reverse=True)
    alternatives = "|".join(re.escape(word) for word in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
