"""RankContext: everything the ranking reads about the vault, as arrays indexed by note position.

Built once per committed generation from the store (embeddings, links, names, folders, tags, phases) and
kept in memory, so that answering a suggestion is a few vectorised products and no model is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from vaultlearn.index.adapter import fit_adapter
from vaultlearn.index.learned import PhaseReading
from vaultlearn.index.mentions import MentionMatcher, folded_names, learned_names, unlinked_matrix
from vaultlearn.vault.graph import VaultGraph


class NoteInfo(NamedTuple):
    """What the ranking needs of one note besides its embedding and links (a tuple: 100k are made per context)."""

    path: str
    title: str
    aliases: Sequence[str] = ()
    tags: Sequence[str] = ()
    phase: str | None = None
    created: float | None = None  # the creation date the note states, in days since the epoch


@dataclass(frozen=True)
class RankContext:
    ids: np.ndarray  # note id per position
    vectors: np.ndarray  # (n, d) L2-normalised embeddings
    graph: VaultGraph
    folder: np.ndarray  # folder code per position
    phase: np.ndarray  # phase code per position, -1 without a phase
    created: np.ndarray  # stated creation date per position, days since the epoch; NaN where a note states none
    tags: sp.csr_matrix  # (n, tags) binary, case-insensitive
    notes: Sequence[NoteInfo]
    mentions: MentionMatcher
    shown_links: np.ndarray  # (m, 2) positions of the links written with a display text
    shown_texts: Sequence[str]  # their display texts
    learned: PhaseReading | None = None  # the learned similarity (the link maps'), None before any learning
    unlinked: sp.csr_matrix | None = None  # (n, n) 1 where a note names another in its own words, unlinked
    fitted_adapter: np.ndarray | None = None  # (d, d) the adapter fitted with the reranker; None: fit on first use
    by_dimension: np.ndarray | None = None  # (d, n) ``vectors`` transposed, contiguous (with_vectors_by_dimension)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, edges: Iterable[tuple[int, int]],
              notes: Sequence[NoteInfo], link_texts: Iterable[tuple[int, int, str]] = (),
              maps: dict[str, np.ndarray] | None = None, mentions: Iterable[tuple[int, int]] = (),
              adapter: np.ndarray | None = None, previous: "RankContext | None" = None) -> "RankContext":
        """The context over ``ids`` (with ``vectors`` and ``notes`` in the same order), resolved ``edges``,
        ``link_texts`` ``(src id, dst id, display text)``, whose texts become learned names of their targets, and
        ``mentions`` ``(src id, dst id)``: a note naming another in its own words (the pairs it also links are
        dropped); ``maps``: each learned phase's link map (the learned similarity, :class:`PhaseReading`; None
        before any learning); ``adapter``: the link adapter as fitted with the reranker (a (d, d) map; anything
        else is ignored and the adapter fitted on this graph when first used); ``previous``: the context of an
        earlier state, whose name matcher is reused when every note's names and the visible links' display texts
        are the same (a saved note's body changed: most of a rebuild's time at 100k notes is the matcher), and
        whose notes' norms under the same maps are reused where a note's embedding is the same."""
        graph = VaultGraph.from_ids(ids, edges)
        position = {int(i): p for p, i in enumerate(np.asarray(ids).tolist())}
        shown = [(position[a], position[b], text) for a, b, text in link_texts if a in position and b in position]
        shown_links = np.array([(a, b) for a, b, _ in shown], dtype=np.int64).reshape(-1, 2)
        shown_texts = tuple(text for _, _, text in shown)
        folders = [n.path.rpartition("/")[0] for n in notes]
        tag_codes: dict[str, int] = {}
        rows, cols = [], []
        for pos, note in enumerate(notes):
            for tag in {t.lower() for t in note.tags}:
                rows.append(pos)
                cols.append(tag_codes.setdefault(tag, len(tag_codes)))
        tags = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                             shape=(len(notes), max(1, len(tag_codes))))
        names_key = None if previous is None else _names_key(notes, graph, shown_links, shown_texts)
        ctx = cls(
            ids=np.asarray(ids, dtype=np.int64),
            vectors=np.ascontiguousarray(vectors, dtype=np.float32),
            graph=graph,
            folder=_codes(folders),
            phase=np.array([-1 if n.phase is None else c for n, c in zip(notes, _codes([n.phase for n in notes]))]),
            created=np.array([np.nan if n.created is None else n.created for n in notes], dtype=np.float64),
            tags=tags,
            notes=notes,
            mentions=(previous.mentions if names_key is not None and previous.names_key == names_key
                      else _matcher(notes, graph, shown_links, shown_texts)),
            shown_links=shown_links,
            shown_texts=shown_texts,
            learned=None if maps is None else PhaseReading.of(vectors, [n.phase for n in notes], maps,
                                                              _same_vectors(previous, ids, vectors)),
            unlinked=unlinked_matrix(_positions(position, mentions), graph.out),
            fitted_adapter=adapter if adapter is not None and adapter.shape == (vectors.shape[1],) * 2 else None,
        )
        if names_key is not None:  # computed for the comparison: the next rebuild reads it, not recomputes it
            ctx.__dict__["names_key"] = names_key  # (where functools.cached_property keeps it)
        return ctx

    @cached_property
    def adapter(self) -> np.ndarray:
        """The linear map of embeddings towards linked notes (adapter.py): the one fitted with the reranker, else
        fitted on this graph's links."""
        return fit_adapter(self.vectors, self.graph) if self.fitted_adapter is None else self.fitted_adapter

    def with_fresh_adapter(self) -> "RankContext":
        """The same context with its adapter fitted on its own graph's links now (the reranker's fit)."""
        return replace(self, fitted_adapter=fit_adapter(self.vectors, self.graph))

    @cached_property
    def names_key(self) -> tuple:
        """What the name matcher is made from (:func:`_names_key`)."""
        return _names_key(self.notes, self.graph, self.shown_links, self.shown_texts)

    @cached_property
    def named_unlinked(self) -> np.ndarray:
        """Per note, how many notes name it in their own words without linking it (``unlinked``'s column sums)."""
        if self.unlinked is None:
            return np.zeros(len(self.ids))
        return np.asarray(self.unlinked.sum(axis=0)).ravel()

    @cached_property
    def namers(self) -> sp.csr_matrix:
        """``(n, n)``: row q marks the notes that name note q in their own words without linking it (``unlinked``
        transposed)."""
        if self.unlinked is None:
            return sp.csr_matrix((len(self.ids), len(self.ids)), dtype=np.float32)
        return self.unlinked.T.tocsr()

    @cached_property
    def position(self) -> dict[int, int]:
        return {int(i): p for p, i in enumerate(self.ids)}

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """The position of each note id (any shape), -1 for an id not in the context."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.array([self.position.get(i, -1) for i in ids.ravel().tolist()], dtype=np.int64).reshape(ids.shape)

    def with_vectors_by_dimension(self) -> "RankContext":
        """The same context keeping its vectors also transposed: one query's cosine with every note is a matrix-
        vector product three times faster over that layout (0.32 vs 1.10 ms at 10k notes, 2-core CPU), for a
        one-off copy (14 ms at 10k) and memory, which a long-lived service spends and a one-suggestion process
        does not."""
        return replace(self, by_dimension=np.ascontiguousarray(self.vectors.T))

    def with_mentions(self, mentions: Iterable[tuple[int, int]]) -> "RankContext":
        """The same context with another set of ``(src id, dst id)`` mentions (see :meth:`build`)."""
        return replace(self, unlinked=unlinked_matrix(_positions(self.position, mentions), self.graph.out))

    def with_graph(self, graph: VaultGraph) -> "RankContext":
        """The same notes over another link graph (some links hidden: neither their display texts nor the adapter
        fitted with them are used)."""
        return replace(self, graph=graph, mentions=_matcher(self.notes, graph, self.shown_links, self.shown_texts),
                       fitted_adapter=None)


def _matcher(notes: Sequence[NoteInfo], graph: VaultGraph, links: np.ndarray, texts: Sequence[str]) -> MentionMatcher:
    """Names of every note, with the display texts of the links ``graph`` still has as learned names."""
    names = [[n.title, *n.aliases] for n in notes]
    folded = folded_names(names)
    visible = _visible(graph, links)
    return MentionMatcher(names, learned_names(folded, links[visible], [t for t, v in zip(texts, visible) if v]),
                          folded)


def _names_key(notes: Sequence[NoteInfo], graph: VaultGraph, links: np.ndarray, texts: Sequence[str]) -> tuple:
    """Everything :func:`_matcher` reads: each note's title and aliases by position, and the visible display
    texts with their links."""
    visible = _visible(graph, links)
    return ([(n.title, list(n.aliases)) for n in notes], links[visible].tolist(),
            [t for t, v in zip(texts, visible) if v])


def _visible(graph: VaultGraph, links: np.ndarray) -> np.ndarray:
    """Which of the ``(m, 2)`` ``links`` ``graph`` has."""
    return np.asarray(graph.out[links[:, 0], links[:, 1]]).ravel() > 0 if len(links) else np.zeros(0, bool)


def _same_vectors(previous: RankContext | None, ids: np.ndarray, vectors: np.ndarray
                  ) -> tuple[PhaseReading, np.ndarray] | None:
    """``previous``'s learned reading and, per note of ``ids``, its position there when its vector is the same
    (-1: not there or changed); None without a previous reading."""
    if previous is None or previous.learned is None:
        return None
    rows = previous.positions(ids)
    there = np.flatnonzero(rows >= 0)
    changed = np.any(previous.vectors[rows[there]] != vectors[there], axis=1)
    rows[there[changed]] = -1
    return previous.learned, rows


def _positions(position: dict[int, int], pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(position[a], position[b]) for a, b in pairs if a in position and b in position]


def _codes(values: Sequence) -> np.ndarray:
    seen: dict = {}
    return np.array([seen.setdefault(v, len(seen)) for v in values], dtype=np.int64)

