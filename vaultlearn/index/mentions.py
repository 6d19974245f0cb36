"""Unlinked mentions: a candidate's name written in the query note's own words, not as a link.

The words that count are the note's readable body without its title line (a note does not mention the notes
that share its title) and without the text of its links (``[[Overview]]`` is a link, not a mention). Words are
compared case-folded with a plural ``s`` dropped ("gluon" mentions "Gluons"). Three kinds of evidence:

- ``mentioned``: the candidate's title or an alias as a whole phrase;
- ``title_words``: the share of its title's words (four letters or more) that occur in the text;
- ``initials``: the initials of its title (three words or more, "DSI" for Display Serial Interface) written as
  an upper-case word;
- ``learned_alias``: a display text that links to the candidate use (``[[Life|living]]``), learned from the
  vault's visible links, as a whole phrase; a text that links use for several notes, or that is a note's
  name, is not learned;
- ``mention_count``: log1p of how often any of its names occurs; ``mention_first``: how early the first one
  does (1 at the first word, towards 0 at the last: writers link a note where they first name it);
  ``mention_share``: one over the number of notes the text names (one named note among two is more likely
  the link than one among twenty).

Which notes name which without linking them, vault-wide (``unlinked_matrix``), gives each candidate its link
rate (features.py): a note that most notes naming it also link ("Gluon") against one named everywhere and
seldom linked ("System", "Time").
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from urllib.parse import unquote

import numpy as np
import scipy.sparse as sp

from vaultlearn.vault.body import MARKDOWN_LINK, WIKILINK
from vaultlearn.vault.names import links_to, lookup_key, strip_note_suffix
from vaultlearn.vault.parse import readable_body

_NON_WORD = re.compile(r"[\W_]+")
_PLURAL = re.compile(r"(?<=\w\w\w)(?<!s)s\b")
_UPPER_WORD = re.compile(r"\b[A-Z]{3,}\b")
_LINKS = re.compile(f"!?{WIKILINK}|!?{MARKDOWN_LINK}")
MIN_PHRASE = 3  # shorter names ("AI", "Go") are too ambiguous to count as mentions
MIN_WORD = 4  # title words shorter than this are not counted by ``title_words``
EVIDENCE = ("mentioned", "title_words", "initials", "learned_alias", "mention_count", "mention_first",
            "mention_share")


def fold(text: str) -> str:
    """Case-folded words without a plural ``s``, separated by single spaces, padded with a space each side."""
    return " " + _PLURAL.sub("", _NON_WORD.sub(" ", text.casefold())).strip() + " "


def plain_text(markdown: str, shown: Sequence[str] = ()) -> str:
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
            dest = match.group("mdest")
            target = unquote((dest[1:-1] if dest.startswith("<") else dest).partition("#")[0])
            words = match.group("mtext")
        return f" {words} " if keys and links_to(target, keys) else " "

    unlinked = _LINKS.sub(replace, markdown)
    return readable_body(unlinked.encode("utf-8"))


def learned_names(names: Sequence[Sequence[str]], links: np.ndarray, texts: Sequence[str]) -> list[list[str]]:
    """Per note position, the folded display texts of the ``links`` ``(m, 2)`` to it (``texts`` in the same
    order) that name it alone: used for no other note and not a note's title or alias."""
    taken = {fold(n).strip() for note_names in names for n in note_names}
    targets: dict[str, set[int]] = {}
    for (_, target), text in zip(np.asarray(links).reshape(-1, 2).tolist(), texts):
        phrase = fold(text).strip()
        if len(phrase) >= MIN_PHRASE and phrase not in taken:
            targets.setdefault(phrase, set()).add(target)
    out: list[list[str]] = [[] for _ in names]
    for phrase, notes in sorted(targets.items()):
        if len(notes) == 1:
            out[notes.pop()].append(phrase)
    return out


class MentionMatcher:
    """The names of every note, by position, matched against a query note's own words; ``learned``: extra
    folded phrases per position (``learned_names``), reported apart."""

    def __init__(self, names: Sequence[Sequence[str]], learned: Sequence[Sequence[str]] | None = None):
        folded = [[fold(n).strip() for n in note_names] for note_names in names]
        self._phrases = [[p for p in note_phrases if len(p) >= MIN_PHRASE] for note_phrases in folded]
        self._learned = [list(p) for p in learned] if learned is not None else [[] for _ in names]
        self._words = [{w for w in note_phrases[0].split() if len(w) >= MIN_WORD} if note_phrases else set()
                       for note_phrases in folded]
        self._initials = [_initials(note_names[0]) if note_names else "" for note_names in names]
        self._by_phrase: dict[tuple[str, ...], list[int]] = {}
        for position, phrases in enumerate(self._phrases):
            for phrase in [*phrases, *self._learned[position]]:
                self._by_phrase.setdefault(tuple(phrase.split()), []).append(position)
        sizes: dict[str, set[int]] = {}
        for words in self._by_phrase:
            sizes.setdefault(words[0], set()).add(len(words))
        self._sizes = {first: sorted(n) for first, n in sizes.items()}  # phrase lengths by their first word

    def named_in(self, text: str) -> np.ndarray:
        """Positions of every note whose title, alias or learned name occurs in ``text`` as a whole phrase."""
        found = self._occurrences(fold(text).split())
        return np.fromiter(sorted(found), dtype=np.int64, count=len(found))

    def _occurrences(self, words: list[str], own: Collection[str] = ()) -> dict[int, list[int]]:
        """Per named note position, the word indices where one of its names (not one in ``own``) starts."""
        skip = {tuple(p.split()) for p in own}
        found: dict[int, list[int]] = {}
        sizes = self._sizes
        for start in [i for i, word in enumerate(words) if word in sizes]:
            for size in sizes[words[start]]:
                phrase = tuple(words[start:start + size])
                if phrase not in skip:
                    for p in self._by_phrase.get(phrase, ()):
                        found.setdefault(p, []).append(start)
        return found

    def evidence(self, text: str, positions: np.ndarray, query: int | None = None) -> np.ndarray:
        """``(len(positions), len(EVIDENCE))``: the :data:`EVIDENCE` columns for each candidate position.

        A name the ``query`` note itself bears does not count (its words are its own title, not a mention).
        """
        folded = fold(text)
        words = folded.split()
        word_set = set(words)
        upper = set(_UPPER_WORD.findall(text))
        own = set(self._phrases[query]) if query is not None else set()
        found = self._occurrences(words, own)
        out = np.zeros((len(positions), len(EVIDENCE)))
        for row, i in enumerate(int(p) for p in positions):
            out[row, 0] = any(f" {p} " in folded for p in self._phrases[i] if p not in own)
            if self._words[i] and not out[row, 0]:
                out[row, 1] = len(self._words[i] & word_set) / len(self._words[i])
            out[row, 2] = bool(self._initials[i]) and self._initials[i] in upper
            out[row, 3] = any(f" {p} " in folded for p in self._learned[i] if p not in own)
            if i in found:
                out[row, 4] = np.log1p(len(found[i]))
                out[row, 5] = 1.0 - found[i][0] / len(words)
                out[row, 6] = 1.0 / len(found)
        return out


def _initials(title: str) -> str:
    words = [w for w in _NON_WORD.split(title) if w]
    return "".join(w[0] for w in words).upper() if len(words) >= 3 and all(w[0].isalpha() for w in words) else ""


def unlinked_matrix(pairs: Iterable[tuple[int, int]], out: sp.csr_matrix) -> sp.csr_matrix:
    """``(n, n)``: 1 where note ``a`` names note ``b`` in its own words (``pairs`` of positions) and does not
    link to it in the graph whose outgoing links are ``out``."""
    a, b = np.array(sorted(set(pairs)), dtype=np.int64).reshape(-1, 2).T
    named = sp.csr_matrix((np.ones(len(a), dtype=np.float32), (a, b)), shape=out.shape)
    unlinked = (named - named.multiply(out > 0)).tocsr()
    unlinked.eliminate_zeros()
    return unlinked
