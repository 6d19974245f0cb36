"""VaultGraph: the resolved link graph as sparse matrices, with the link-prediction scores the ranking uses.

Notes are positions ``0..n-1`` (the caller keeps the mapping to note ids). ``out`` is the directed link
matrix (A links to B), ``adj`` its undirected, unweighted version without self loops. Every score is
computed for many queries at once: a query is a row of a dense ``(queries, n)`` matrix, and one sparse
product scores every note.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from vaultlearn.vault.sparse_rows import dense_rows, row_ranges, select_rows

LOCAL_WALK_SHARE = 0.25  # below this share of notes reached, a PageRank step reads only the reached notes' links


class VaultGraph:
    """Adjacency, neighbours, propagation, common-neighbour indices and personalised PageRank."""

    def __init__(self, n: int, links: np.ndarray):
        links = np.asarray(links, dtype=np.int64).reshape(-1, 2)
        links = links[links[:, 0] != links[:, 1]]
        ones = np.ones(len(links), dtype=np.float32)
        out = sp.csr_matrix((ones, (links[:, 0], links[:, 1])), shape=(n, n))
        out.data[:] = 1.0  # duplicates were summed
        self._derive(out)

    @classmethod
    def from_matrix(cls, out: sp.csr_matrix) -> "VaultGraph":
        """The graph whose directed link matrix is ``out`` (0/1, no self loops: another graph's ``out``)."""
        graph = cls.__new__(cls)
        graph._derive(out)
        return graph

    def _derive(self, out: sp.csr_matrix) -> None:
        """Everything else from the directed link matrix."""
        self.n = out.shape[0]
        self.out = out
        self.into = out.tocsc()  # column access: who links to a note
        adj = (out + out.T).tocsr()
        adj.data[:] = 1.0
        self.adj = adj
        self.degree = np.asarray(adj.sum(axis=1)).ravel()
        self.in_degree = np.asarray(out.sum(axis=0)).ravel()
        with np.errstate(divide="ignore"):
            # a common neighbour has degree >= 2, so log(degree) > 0 wherever it matters
            self._aa_weight = np.where(self.degree > 1, 1.0 / np.log(np.maximum(self.degree, 2)), 0.0)
            self._ra_weight = np.where(self.degree > 0, 1.0 / np.maximum(self.degree, 1), 0.0)

    @classmethod
    def from_ids(cls, ids: np.ndarray, edges: Iterable[tuple[int, int]]) -> "VaultGraph":
        """The graph over notes ``ids`` (position = index in ``ids``); edges to unknown ids are dropped."""
        ids = np.asarray(ids, dtype=np.int64)
        pairs = np.array(list(edges), dtype=np.int64).reshape(-1, 2)
        order = np.argsort(ids)
        found = np.searchsorted(ids[order], pairs).clip(0, max(0, len(ids) - 1))
        known = (ids[order][found] == pairs).all(axis=1) if len(ids) else np.zeros(len(pairs), dtype=bool)
        return cls(len(ids), order[found[known]])

    def links(self) -> np.ndarray:
        """Every directed link as ``(source, target)`` positions, sorted."""
        coo = self.out.tocoo()
        order = np.lexsort((coo.col, coo.row))
        return np.stack([coo.row[order], coo.col[order]], axis=1).astype(np.int64)

    def without(self, links: np.ndarray) -> "VaultGraph":
        """A copy without the directed ``links`` (an edge stays undirected-visible if its reverse exists)."""
        hidden = np.asarray(links, dtype=np.int64).reshape(-1, 2)
        mask = sp.csr_matrix((np.ones(len(hidden), dtype=np.float32), (hidden[:, 0], hidden[:, 1])),
                             shape=(self.n, self.n))
        kept = (self.out - self.out.multiply(mask > 0)).tocoo()
        kept.eliminate_zeros()
        return VaultGraph(self.n, np.stack([kept.row, kept.col], axis=1))

    def neighbours(self, node: int) -> np.ndarray:
        """Positions linked with ``node`` in either direction."""
        return self.adj.indices[self.adj.indptr[node]:self.adj.indptr[node + 1]]

    def outgoing(self, node: int) -> np.ndarray:
        return self.out.indices[self.out.indptr[node]:self.out.indptr[node + 1]]

    def incoming(self, node: int) -> np.ndarray:
        return self.into.indices[self.into.indptr[node]:self.into.indptr[node + 1]]

    def indicator(self, queries: np.ndarray) -> np.ndarray:
        """Dense ``(len(queries), n)`` matrix: row q has 1 at the neighbours of ``queries[q]``."""
        return dense_rows(self.adj, queries).astype(np.float32)

    def outgoing_mask(self, queries: np.ndarray) -> np.ndarray:
        """Dense ``(len(queries), n)`` booleans: row q is True at the notes ``queries[q]`` links to."""
        return dense_rows(self.out, queries)

    def incoming_mask(self, queries: np.ndarray) -> np.ndarray:
        """Dense ``(len(queries), n)`` booleans: row q is True at the notes that link to ``queries[q]`` (the
        column-major ``into`` read as rows)."""
        return dense_rows(self.into, queries)

    def neighbour_scores(self, queries: np.ndarray) -> "NeighbourScores":
        """Common neighbours, Adamic–Adar (Σ over common neighbours z of 1/log deg z) and resource allocation
        (Σ 1/deg z) of each query with every note, each ``(len(queries), n)``.

        One sparse product for the three: the queries' neighbour rows, weighted three ways, times the
        adjacency. It touches only the queries' neighbours' links, not every note."""
        first = select_rows(self.adj, queries)
        q = first.shape[0]
        weights = [np.ones(len(first.indices), dtype=np.float32), self._aa_weight[first.indices].astype(np.float32),
                   self._ra_weight[first.indices].astype(np.float32)]
        indptr = np.concatenate([first.indptr[:-1] + k * first.indptr[-1] for k in range(3)] + [[3 * first.indptr[-1]]])
        stacked = sp.csr_matrix((np.concatenate(weights), np.tile(first.indices, 3), indptr), shape=(3 * q, self.n))
        scores = (stacked @ self.adj).toarray()
        return NeighbourScores(scores[:q], scores[q:2 * q], scores[2 * q:])

    def linked_from(self, voters: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row of ``voters`` ``(q, k)`` (note positions) with their ``weights``: for every note, the summed
        weight of the row's voters that link to it, and how many of its voters with a positive weight do; each
        ``(q, n)``. Summed from the voters' link rows, with no sparse matrix made per query."""
        q, k = voters.shape
        counts, at = row_ranges(self.out, voters.reshape(-1))
        cells = np.repeat(np.repeat(np.arange(q) * self.n, k), counts) + self.out.indices[at]
        weight = np.repeat(np.asarray(weights, dtype=np.float64).reshape(-1), counts)
        summed = np.bincount(cells, weights=weight, minlength=q * self.n).reshape(q, self.n)
        voted = np.bincount(cells, weights=weight > 0, minlength=q * self.n).reshape(q, self.n)
        return summed, voted

    def personalised_pagerank(self, seeds: np.ndarray, alpha: float = 0.3, steps: int = 8) -> np.ndarray:
        """Personalised PageRank on the undirected graph, restarting at each row's ``seeds`` ``(q, n)``.

        ``alpha`` is the restart probability; a row without seeds stays zero. Power iteration, ``steps`` rounds.
        While the walk has reached few notes (the first steps, or a graph of separate clusters), a step reads only
        the links of the notes it has reached: the same sums, without a pass over every link of a large vault.
        """
        seeds = np.asarray(seeds, dtype=np.float32)
        total = seeds.sum(axis=1, keepdims=True)
        restart = np.divide(seeds, total, out=np.zeros_like(seeds), where=total > 0)
        inv_degree = np.divide(1.0, self.degree, out=np.zeros(self.n, dtype=np.float32), where=self.degree > 0)
        rank = restart.T.copy()  # (n, q): the walk multiplies columns
        restart = alpha * restart.T
        for _ in range(steps):
            spread = rank * inv_degree[:, None]
            reached = np.flatnonzero(spread.any(axis=1))
            if len(reached) < self.n * LOCAL_WALK_SHARE:
                step = self._spread_from(reached, spread)
            else:
                step = self.adj @ spread
            rank = restart + (1 - alpha) * step
        return rank.T

    def _spread_from(self, reached: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """``adj @ spread`` where only the ``reached`` rows of ``spread`` ``(n, q)`` are non-zero: the reached
        notes' links alone (adj is symmetric: adj @ x = adj[reached].T @ x[reached])."""
        if spread.shape[1] != 1:
            return select_rows(self.adj, reached).T @ spread[reached]
        counts, at = row_ranges(self.adj, reached)
        weights = np.repeat(spread[reached, 0], counts)
        return np.bincount(self.adj.indices[at], weights=weights, minlength=self.n)[:, None].astype(np.float32)

    def propagate(self, vectors: np.ndarray, nodes: np.ndarray | None = None, outgoing: bool = False) -> np.ndarray:
        """The L2-normalised mean of the neighbours' vectors of ``nodes`` (default: every note), or of the notes
        they link to with ``outgoing``; a note without any gets zeros."""
        matrix = self.out if outgoing else self.adj
        rows = matrix if nodes is None else select_rows(matrix, nodes)
        return normalise(np.asarray(rows @ np.asarray(vectors, dtype=np.float32)))


class NeighbourScores(NamedTuple):
    """:meth:`VaultGraph.neighbour_scores`: per query row and note."""

    common: np.ndarray
    adamic_adar: np.ndarray
    resource_allocation: np.ndarray


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
