"""RankContext: everything the ranking reads about the vault, as arrays indexed by note position.

Built once per committed generation from the store (embeddings, links, names, folders, tags, phases) and
kept in memory, so that answering a suggestion is a few vectorised products and no model is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from vaultlearn.index.mentions import MentionMatcher
from vaultlearn.vault.graph import VaultGraph


@dataclass(frozen=True)
class NoteInfo:
    """What the ranking needs of one note besides its embedding and links."""

    path: str
    title: str
    aliases: Sequence[str] = ()
    tags: Sequence[str] = ()
    phase: str | None = None


@dataclass(frozen=True)
class RankContext:
    ids: np.ndarray  # note id per position
    vectors: np.ndarray  # (n, d) L2-normalised embeddings
    graph: VaultGraph
    folder: np.ndarray  # folder code per position
    phase: np.ndarray  # phase code per position, -1 without a phase
    tags: sp.csr_matrix  # (n, tags) binary, case-insensitive
    notes: Sequence[NoteInfo]
    mentions: MentionMatcher

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, edges: Iterable[tuple[int, int]],
              notes: Sequence[NoteInfo]) -> "RankContext":
        """The context over ``ids`` (with ``vectors`` and ``notes`` in the same order) and resolved ``edges``."""
        graph = VaultGraph.from_ids(ids, edges)
        folders = [n.path.rpartition("/")[0] for n in notes]
        tag_codes: dict[str, int] = {}
        rows, cols = [], []
        for pos, note in enumerate(notes):
            for tag in {t.lower() for t in note.tags}:
                rows.append(pos)
                cols.append(tag_codes.setdefault(tag, len(tag_codes)))
        tags = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                             shape=(len(notes), max(1, len(tag_codes))))
        return cls(
            ids=np.asarray(ids, dtype=np.int64),
            vectors=np.ascontiguousarray(vectors, dtype=np.float32),
            graph=graph,
            folder=_codes(folders),
            phase=np.array([-1 if n.phase is None else c for n, c in zip(notes, _codes([n.phase for n in notes]))]),
            tags=tags,
            notes=notes,
            mentions=MentionMatcher([[n.title, *n.aliases] for n in notes]),
        )

    @cached_property
    def position(self) -> dict[int, int]:
        return {int(i): p for p, i in enumerate(self.ids)}

    def with_graph(self, graph: VaultGraph) -> "RankContext":
        """The same notes over another link graph (some links hidden)."""
        return replace(self, graph=graph)


def _codes(values: Sequence) -> np.ndarray:
    seen: dict = {}
    return np.array([seen.setdefault(v, len(seen)) for v in values], dtype=np.int64)

