"""Phrase indexes: which notes bear a name, looked up by its folded words.

A phrase is a tuple of folded words (mentions.fold); an entry says that the note at ``position`` bears it, as
a title or alias or as a learned display text. Two forms answer the same lookups: :class:`PhraseIndex` holds
the phrases in dictionaries (built with the rank context), :class:`HashedPhrases` holds 64-bit hashes of them
in sorted arrays that can be saved and memory-mapped (snapshot.py), so a fresh process finds the notes a text
names without reading or folding every note's names. Two distinct phrases of one vault sharing a 64-bit
BLAKE2 hash is vanishingly unlikely (about n²/2⁶⁵ for n phrases).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

Phrase = tuple[str, ...]
Entry = tuple[int, bool]  # (note position, learned name)


class PhraseIndex:
    """Phrases in memory: phrase → entries, and the phrase lengths that begin with each first word."""

    def __init__(self, entries: Iterable[tuple[Phrase, int, bool]]):
        self._by_phrase: dict[Phrase, list[Entry]] = {}
        sizes: dict[str, set[int]] = {}
        for phrase, position, learned in entries:
            self._by_phrase.setdefault(phrase, []).append((position, learned))
            sizes.setdefault(phrase[0], set()).add(len(phrase))
        self._sizes = {first: sorted(n) for first, n in sizes.items()}

    def lengths(self, words: Sequence[str]) -> list[Sequence[int]]:
        """Per word, the lengths of the phrases that begin with it."""
        sizes = self._sizes
        return [sizes.get(word, ()) for word in words]

    def lookup(self, phrases: Sequence[Phrase]) -> list[Sequence[Entry]]:
        """Per phrase, the notes that bear it."""
        return [self._by_phrase.get(phrase, ()) for phrase in phrases]

    def entries(self) -> Iterable[tuple[Phrase, int, bool]]:
        for phrase, found in self._by_phrase.items():
            for position, learned in found:
                yield phrase, position, learned


class HashedPhrases:
    """The same lookups over arrays: entries sorted by phrase hash, and each first word's phrase lengths."""

    FIELDS = ("hashes", "positions", "learned", "first_hashes", "first_bounds", "first_lengths")

    def __init__(self, hashes: np.ndarray, positions: np.ndarray, learned: np.ndarray, first_hashes: np.ndarray,
                 first_bounds: np.ndarray, first_lengths: np.ndarray):
        self.hashes, self.positions, self.learned = hashes, positions, learned
        self.first_hashes, self.first_bounds, self.first_lengths = first_hashes, first_bounds, first_lengths

    @classmethod
    def of(cls, index: PhraseIndex) -> "HashedPhrases":
        """The hashed form of ``index``'s entries."""
        entries = list(index.entries())
        hashes = _hashes([phrase for phrase, _, _ in entries])
        order = np.argsort(hashes, kind="stable")
        firsts = sorted({(int(h), len(phrase)) for h, (phrase, _, _) in
                         zip(_hashes([phrase[:1] for phrase, _, _ in entries]), entries)})
        first_hashes, starts = np.unique(np.array([h for h, _ in firsts], dtype=np.uint64), return_index=True)
        return cls(hashes[order], np.array([p for _, p, _ in entries], dtype=np.int64)[order],
                   np.array([l for _, _, l in entries], dtype=bool)[order], first_hashes,
                   np.append(starts, len(firsts)).astype(np.int64), np.array([n for _, n in firsts], dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def lengths(self, words: Sequence[str]) -> list[Sequence[int]]:
        found, at = self._find(self.first_hashes, _hashes([(word,) for word in words]))
        return [self.first_lengths[self.first_bounds[i]:self.first_bounds[i + 1]].tolist() if ok else ()
                for ok, i in zip(found.tolist(), at.tolist())]

    def lookup(self, phrases: Sequence[Phrase]) -> list[Sequence[Entry]]:
        wanted = _hashes(phrases)
        left = np.searchsorted(self.hashes, wanted, side="left")
        right = np.searchsorted(self.hashes, wanted, side="right")
        return [list(zip(self.positions[a:b].tolist(), self.learned[a:b].tolist())) if b > a else ()
                for a, b in zip(left.tolist(), right.tolist())]

    @staticmethod
    def _find(sorted_hashes: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each wanted hash is in ``sorted_hashes`` (unique), and where."""
        at = np.searchsorted(sorted_hashes, wanted).clip(0, max(0, len(sorted_hashes) - 1))
        found = sorted_hashes[at] == wanted if len(sorted_hashes) else np.zeros(len(wanted), dtype=bool)
        return found, at


def _hashes(phrases: Sequence[Phrase]) -> np.ndarray:
    """The 64-bit BLAKE2 hash of each phrase's words joined by spaces (a folded word has no space)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(" ".join(p).encode(), digest_size=8).digest(), "little")
                        for p in phrases), dtype=np.uint64, count=len(phrases))
