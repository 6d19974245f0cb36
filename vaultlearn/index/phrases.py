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
from functools import cached_property
from itertools import chain, compress, repeat

import numpy as np

Phrase = tuple[str, ...]
Entry = tuple[int, bool]  # (note position, learned name)
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: a window's key is a polynomial of its word codes mod 2^64
_MASK = (1 << 64) - 1


class PhraseIndex:
    """Phrases in memory: phrase → entries, and the phrase lengths that begin with each first word."""

    def __init__(self, entries: Iterable[tuple[Phrase, int, bool]]):
        self._by_phrase: dict[Phrase, list[Entry]] = {}
        sizes: dict[str, set[int]] = {}
        for phrase, position, learned in entries:
            self._by_phrase.setdefault(phrase, []).append((position, learned))
            sizes.setdefault(phrase[0], set()).add(len(phrase))
        self._sizes = {first: sorted(n) for first, n in sizes.items()}

    def starts(self, words: Sequence[str]) -> list[tuple[int, Sequence[int]]]:
        """``(index, lengths)`` of each word that begins a phrase: the lengths of the phrases it begins."""
        return _starts(list(map(self._sizes.get, words)))

    def lookup(self, phrases: Sequence[Phrase]) -> list[Sequence[Entry]]:
        """Per phrase, the notes that bear it."""
        return [self._by_phrase.get(phrase, ()) for phrase in phrases]

    def named_in_texts(self, texts: Sequence[Sequence[str]], chunk_words: int = 1 << 20) -> list[set[int]]:
        """Per text (its folded words), the positions of the notes whose phrases occur in it: every text at once,
        as arrays of word codes (a vault-wide scan in a few array operations per phrase length, where a probe per
        word took seconds at 10k notes). Windows whose code key matches a phrase's are checked word by word."""
        found: list[set[int]] = [set() for _ in texts]
        begin = 0
        while begin < len(texts):
            end, size = begin, 0
            while end < len(texts) and (size == 0 or size + len(texts[end]) <= chunk_words):
                size += len(texts[end])
                end += 1
            self._scan(texts[begin:end], found[begin:end])
            begin = end
        return found

    def _scan(self, texts: Sequence[Sequence[str]], found: list[set[int]]) -> None:
        codes, keys = self._codes
        words = list(chain.from_iterable(texts))
        coded = np.fromiter(map(codes.get, words, repeat(-1)), dtype=np.int64, count=len(words))
        text_of = np.repeat(np.arange(len(texts)), [len(t) for t in texts])
        for length in sorted({len(phrase) for phrase in self._by_phrase}):
            count = len(words) - length + 1
            if count <= 0:
                continue
            usable = text_of[:count] == text_of[length - 1:]
            window = np.zeros(count, dtype=np.uint64)
            for j in range(length):
                part = coded[j:j + count]
                usable &= part >= 0
                window = window * _MULTIPLIER + (part + 1).astype(np.uint64)
            starts = np.flatnonzero(usable)
            hits = starts[np.isin(window[starts] ^ np.uint64(length), keys)]
            for start in hits.tolist():
                for position, _ in self._by_phrase.get(tuple(words[start:start + length]), ()):
                    found[int(text_of[start])].add(position)

    @cached_property
    def _codes(self) -> tuple[dict[str, int], np.ndarray]:
        """A code per word of any phrase, and each phrase's key: its codes folded like :meth:`_scan`'s windows."""
        codes: dict[str, int] = {}
        keys = []
        for phrase in self._by_phrase:
            key = 0
            for word in phrase:
                key = (key * int(_MULTIPLIER) + codes.setdefault(word, len(codes)) + 1) & _MASK
            keys.append(key ^ len(phrase))
        return codes, np.unique(np.array(keys, dtype=np.uint64))

    def entries(self) -> Iterable[tuple[Phrase, int, bool]]:
        for phrase, found in self._by_phrase.items():
            for position, learned in found:
                yield phrase, position, learned


class HashedPhrases:
    """The same lookups over arrays: entries sorted by phrase hash, and each first word's phrase lengths."""

    FIELDS = ("hashes", "positions", "learned", "first_hashes", "first_bounds", "first_lengths")

    MAX_KNOWN_WORDS = 1 << 20  # the word cache is emptied past this many words

    def __init__(self, hashes: np.ndarray, positions: np.ndarray, learned: np.ndarray, first_hashes: np.ndarray,
                 first_bounds: np.ndarray, first_lengths: np.ndarray):
        self.hashes, self.positions, self.learned = hashes, positions, learned
        self.first_hashes, self.first_bounds, self.first_lengths = first_hashes, first_bounds, first_lengths
        self._known: dict[str, tuple[int, ...]] = {}  # word → lengths of the phrases it begins: a vault's texts
        # repeat their words, so each is hashed once per process

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

    def starts(self, words: Sequence[str]) -> list[tuple[int, Sequence[int]]]:
        known = self._known
        new = [word for word in set(words) if word not in known]
        if len(known) + len(new) > self.MAX_KNOWN_WORDS:
            known.clear()
            new = list(set(words))
        if new:
            found, at = self._find(self.first_hashes, _hashes([(word,) for word in new]))
            known.update((word, tuple(self.first_lengths[self.first_bounds[i]:self.first_bounds[i + 1]].tolist())
                          if ok else ()) for word, ok, i in zip(new, found.tolist(), at.tolist()))
        return _starts(list(map(known.__getitem__, words)))

    def lookup(self, phrases: Sequence[Phrase]) -> list[Sequence[Entry]]:
        wanted = _hashes(phrases)
        left = np.searchsorted(self.hashes, wanted, side="left")
        right = np.searchsorted(self.hashes, wanted, side="right")
        return [list(zip(self.positions[a:b].tolist(), self.learned[a:b].tolist())) if b > a else ()
                for a, b in zip(left.tolist(), right.tolist())]

    def named_in_texts(self, texts: Sequence[Sequence[str]]) -> list[set[int]]:
        """Per text (its folded words), the positions of the notes whose phrases occur in it."""
        return [{position for _, _, entries in phrases_in(self, words) for position, _ in entries} for words in texts]

    @staticmethod
    def _find(sorted_hashes: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each wanted hash is in ``sorted_hashes`` (unique), and where."""
        at = np.searchsorted(sorted_hashes, wanted).clip(0, max(0, len(sorted_hashes) - 1))
        found = sorted_hashes[at] == wanted if len(sorted_hashes) else np.zeros(len(wanted), dtype=bool)
        return found, at


def phrases_in(index: PhraseIndex | HashedPhrases, words: Sequence[str]) -> list[tuple[int, Phrase, Sequence[Entry]]]:
    """``(start, phrase, entries)`` of each phrase of ``index`` that occurs among the folded ``words``."""
    probes = [(start, tuple(words[start:start + size])) for start, sizes in index.starts(words) for size in sizes
              if start + size <= len(words)]
    return [(start, phrase, entries) for (start, phrase), entries in
            zip(probes, index.lookup([phrase for _, phrase in probes])) if entries]


def _starts(lengths: list) -> list[tuple[int, Sequence[int]]]:
    """The ``(index, lengths)`` of the words whose ``lengths`` (per word, falsy for none) are not empty."""
    return [(i, lengths[i]) for i in compress(range(len(lengths)), lengths)]


def _hashes(phrases: Sequence[Phrase]) -> np.ndarray:
    """The 64-bit BLAKE2 hash of each phrase's words joined by spaces (a folded word has no space)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(" ".join(p).encode(), digest_size=8).digest(), "little")
                        for p in phrases), dtype=np.uint64, count=len(phrases))
