"""Unlinked mentions: a candidate's title or alias written in the query note's own words, not as a link.

The words that count are the note's readable body without its title line (a note does not mention the notes
that share its title) and without the text of its links (``[[Overview]]`` is a link, not a mention).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote

import numpy as np

from vaultlearn.eval.traces import MARKDOWN_LINK_RE, WIKILINK_RE, links_to
from vaultlearn.vault.names import lookup_key, strip_note_suffix
from vaultlearn.vault.parse import parse_note

_NON_WORD = re.compile(r"[\W_]+")
MIN_PHRASE = 3  # shorter names ("AI", "Go") are too ambiguous to count as mentions


def fold(text: str) -> str:
    """Case-folded words separated by single spaces, padded with a space on each side."""
    return " " + _NON_WORD.sub(" ", text.casefold()).strip() + " "


def plain_text(path: str, markdown: str, max_chars: int, shown: Sequence[str] = ()) -> str:
    """What the note says in its own words: readable body without the title line or link text.

    Links to a note named in ``shown`` keep their words (a link read as if it were plain text).
    """
    keys = {lookup_key(strip_note_suffix(name)) for name in shown if name}

    def replace(match: re.Match) -> str:
        if match.group("inner") is not None:
            ref, bar, display = match.group("inner").partition("|")
            target = ref.rstrip("\\").partition("#")[0]
            words = display if bar else strip_note_suffix(target.rsplit("/", 1)[-1])
        else:
            dest = match.group("dest")
            target = unquote((dest[1:-1] if dest.startswith("<") else dest).partition("#")[0])
            words = match.group("text")
        return f" {words} " if keys and links_to(target, keys) else " "

    links = re.compile(f"{WIKILINK_RE.pattern}|{MARKDOWN_LINK_RE.pattern}")
    text = parse_note(path, links.sub(replace, markdown).encode("utf-8"), max_chars).text
    return text.partition("\n")[2]


class MentionMatcher:
    """The folded names (title and aliases) of every note, by position, matched against a query's words."""

    def __init__(self, names: Sequence[Sequence[str]]):
        self._phrases = [[p for p in (fold(n).strip() for n in note_names) if len(p) >= MIN_PHRASE]
                         for note_names in names]

    def mentioned(self, text: str, positions: np.ndarray) -> np.ndarray:
        """Boolean per position: one of that note's names occurs in ``text`` as a whole phrase."""
        folded = fold(text)
        return np.fromiter((any(f" {p} " in folded for p in self._phrases[int(i)]) for i in positions),
                           dtype=bool, count=len(positions))
