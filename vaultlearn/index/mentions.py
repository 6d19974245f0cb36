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

import math
import re
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import NamedTuple
from urllib.parse import unquote

import numpy as np
import scipy.sparse as sp

from vaultlearn.index.phrases import HashedPhrases, PhraseIndex, phrases_in
from vaultlearn.vault.body import ANY_LINK_RE
from vaultlearn.vault.names import links_to, lookup_key, strip_note_suffix
from vaultlearn.vault.parse import readable_body

_NON_WORD = re.compile(r"[\W_]+")
# an "s" ending a word of four or more characters, not after another "s" (written to begin with the literal,
# which the regex engine searches for: ten times faster than the same rule led by its lookbehind)
_PLURAL = re.compile(r"s\b(?<=\w\w\ws)(?<!ss)")
_UPPER_WORD = re.compile(r"\b[A-Z]{3,}\b")
MIN_PHRASE = 3  # shorter names ("AI", "Go") are too ambiguous to count as mentions
MIN_WORD = 4  # title words shorter than this are not counted by ``title_words``
KEPT_READINGS = 256  # texts whose reading is kept (a batch of hide-and-rank queries is 128) ...
KEPT_WORDS = 1 << 19  # ... while they hold no more words than this in all (some 30 MB of strings at most)
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

    unlinked = ANY_LINK_RE.sub(replace, markdown) if keys else ANY_LINK_RE.sub(" ", markdown)
    return readable_body(unlinked.encode("utf-8"))


def folded_names(names: Sequence[Sequence[str]]) -> list[list[str]]:
    """Each note's names (title first, then aliases) folded, without the padding."""
    return [[fold(n).strip() for n in note_names] for note_names in names]


def learned_names(folded: Sequence[Sequence[str]], links: np.ndarray, texts: Sequence[str]) -> list[list[str]]:
    """Per note position, the folded display texts of the ``links`` ``(m, 2)`` to it (``texts`` in the same
    order) that name it alone: used for no other note and not a note's title or alias (``folded``: the notes'
    :func:`folded_names`)."""
    taken = {n for note_names in folded for n in note_names}
    targets: dict[str, set[int]] = {}
    for (_, target), text in zip(np.asarray(links).reshape(-1, 2).tolist(), texts):
        phrase = fold(text).strip()
        if len(phrase) >= MIN_PHRASE and phrase not in taken:
            targets.setdefault(phrase, set()).add(target)
    out: list[list[str]] = [[] for _ in folded]
    for phrase, notes in sorted(targets.items()):
        if len(notes) == 1:
            out[notes.pop()].append(phrase)
    return out


class MentionMatcher:
    """The names of every note, by position, matched against a query note's own words; ``learned``: extra
    folded phrases per position (``learned_names``), reported apart; ``folded``: the names'
    :func:`folded_names` when the caller has them; ``phrases``: an index of every note's phrases made before
    (phrases.py), in which case ``names`` is read only for the notes a query scores, and may be lazy
    (``prefetch``: reads a query's candidates' names at once)."""

    def __init__(self, names: Sequence[Sequence[str]], learned: Sequence[Sequence[str]] | None = None,
                 folded: Sequence[Sequence[str]] | None = None, phrases: PhraseIndex | HashedPhrases | None = None,
                 prefetch: Callable[[Sequence[int]], None] | None = None):
        if folded is None and phrases is None:
            folded = folded_names(names)
        self._names, self._folded, self._prefetch = names, folded, prefetch
        self._folded_of: dict[int, list[str]] = {}  # a lazy matcher's folded names, made on first use
        self._title_words: dict[int, set[str]] = {}  # made for candidates only, on first use
        self._title_initials: dict[int, str] = {}
        self._readings: dict[str, Reading] = {}
        self._kept_words = 0
        self._readings_lock = threading.Lock()  # a daemon answers suggestions from several threads
        self.phrases = phrases if phrases is not None else PhraseIndex(
            (tuple(phrase.split()), position, learned_name)
            for position, note_names in enumerate(folded)
            for phrase, learned_name in [*((p, False) for p in note_names if len(p) >= MIN_PHRASE),
                                         *((p, True) for p in (learned[position] if learned is not None else ()))])

    def _folded_names(self, position: int) -> list[str]:
        if self._folded is not None:
            return self._folded[position]
        folded = self._folded_of.get(position)
        if folded is None:
            folded = self._folded_of[position] = folded_names([self._names[position]])[0]
        return folded

    def _words_of_title(self, position: int) -> set[str]:
        """The title's words that ``title_words`` counts."""
        words = self._title_words.get(position)
        if words is None:
            folded = self._folded_names(position)
            title = folded[0] if folded else ""
            words = self._title_words[position] = {w for w in title.split() if len(w) >= MIN_WORD}
        return words

    def _initials_of(self, position: int) -> str:
        """The title's upper-case initials, "" when it has none."""
        initials = self._title_initials.get(position)
        if initials is None:
            names = self._names[position]
            initials = self._title_initials[position] = _initials(names[0]) if names else ""
        return initials

    def named_in(self, text: str) -> np.ndarray:
        """Positions of every note whose title, alias or learned name occurs in ``text`` as a whole phrase."""
        found = self._occurrences(text).starts
        return np.fromiter(sorted(found), dtype=np.int64, count=len(found))

    def named_in_texts(self, texts: Sequence[str]) -> list[np.ndarray]:
        """:meth:`named_in` of each text, all at once (the reranker's vault-wide scan)."""
        found = self.phrases.named_in_texts([fold(text).split() for text in texts])
        return [np.fromiter(sorted(positions), dtype=np.int64, count=len(positions)) for positions in found]

    def _read(self, text: str) -> "Reading":
        """``text``'s folded words and every name found among them. The last texts' readings are kept: a batch
        of queries asks for their candidates (:meth:`named_in`), then for their evidence of the same texts."""
        with self._readings_lock:
            kept = self._readings.get(text)
        if kept is not None:
            return kept
        words = fold(text).split()
        reading = Reading(text, words, phrases_in(self.phrases, words))
        with self._readings_lock:
            if text not in self._readings:
                self._readings[text] = reading
                self._kept_words += len(words)
            while len(self._readings) > KEPT_READINGS or self._kept_words > KEPT_WORDS:
                self._kept_words -= len(self._readings.pop(next(iter(self._readings))).words)  # the oldest
        return reading

    def _occurrences(self, text: str, own: Collection[str] = ()) -> "Occurrences":
        """Where the notes' names (not those in ``own``) occur in ``text``."""
        skip = {tuple(p.split()) for p in own}
        found = Occurrences({}, set(), set())
        for start, phrase, entries in self._read(text).found:
            if phrase in skip:
                continue
            for p, learned_name in entries:
                found.starts.setdefault(p, []).append(start)
                (found.by_learned if learned_name else found.by_name).add(p)
        return found

    def evidence(self, text: str, positions: np.ndarray, query: int | None = None) -> np.ndarray:
        """``(len(positions), len(EVIDENCE))``: the :data:`EVIDENCE` columns for each candidate position.

        A name the ``query`` note itself bears does not count (its words are its own title, not a mention).
        """
        words = self._read(text).words
        word_set = set(words)
        upper = set(_UPPER_WORD.findall(text))
        own = {p for p in self._folded_names(query) if len(p) >= MIN_PHRASE} if query is not None else set()
        found = self._occurrences(text, own)
        candidates = np.asarray(positions, dtype=np.int64).tolist()  # plain ints: ~300 candidates per query
        if self._prefetch is not None:
            self._prefetch(candidates)
        rows = []
        for i in candidates:
            named = i in found.by_name
            title_words = set() if named else self._words_of_title(i)
            starts = found.starts.get(i)
            rows.append((named, len(title_words & word_set) / len(title_words) if title_words else 0.0,
                         bool(upper) and self._initials_of(i) in upper, i in found.by_learned,
                         math.log1p(len(starts)) if starts else 0.0, 1.0 - starts[0] / len(words) if starts else 0.0,
                         1.0 / len(found.starts) if starts else 0.0))
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(EVIDENCE))


class Reading(NamedTuple):
    """A text as the matcher read it: its folded words and ``(start, phrase, entries)`` of each name in them."""

    text: str
    words: list[str]
    found: list[tuple[int, tuple[str, ...], Sequence[tuple[int, bool]]]]


class Occurrences(NamedTuple):
    """Named notes in a text: the word indices where each one's names start, and which were named by a title or
    alias, which by a learned name."""

    starts: dict[int, list[int]]
    by_name: set[int]
    by_learned: set[int]


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
