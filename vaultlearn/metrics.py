"""Ranking metrics over search results, as small free functions (faiss contrib/evaluation.py style).

- rank of each held-out link's target among candidate notes (filtered: the source's other targets and the source
  itself are not candidates); Recall@k and MRR of those ranks;
- drift: how far a change moved notes (mean cosine distance) and the share of notes whose top-k set changed.

A NaN or infinite embedding or score is an error (:class:`NonFiniteError`), never a rank: a NaN compares false,
so it would otherwise rank first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vaultlearn.errors import require_finite

TOP_K = 10


def targets_by_source(edges: Sequence[tuple[int, int]]) -> dict[int, set[int]]:
    """Outgoing targets per source note."""
    out: dict[int, set[int]] = {}
    for a, b in edges:
        out.setdefault(a, set()).add(b)
    return out


def rank_of_targets(
    emb: np.ndarray, links: Sequence[tuple[int, int]], candidates: np.ndarray, targets_of: dict[int, set[int]]
) -> np.ndarray:
    """1-based rank of each held-out target among ``candidates`` for its source (cosine; filtered ranking)."""
    ranks = np.zeros(len(links), dtype=np.int64)
    cand = np.asarray(candidates)
    cand_emb = emb[cand]
    require_finite(cand_emb, "embeddings of the candidate notes")
    for row, (a, b) in enumerate(links):
        with np.errstate(invalid="ignore", over="ignore"):  # reported just below, as an error
            scores = cand_emb @ emb[a]
        require_finite(scores, f"similarity scores of note {a}")
        drop = np.isin(cand, list((targets_of.get(a, set()) - {b}) | {a}))
        target = scores[cand == b]
        if target.size == 0:
            raise ValueError(f"held-out target {b} is not among the candidates")
        ranks[row] = 1 + int(np.sum(scores[~drop] > target[0]))
    return ranks


def recall_mrr(ranks: np.ndarray, k: int = TOP_K) -> tuple[float, float]:
    """Recall@k and mean reciprocal rank of 1-based ranks (NaN for no links)."""
    if len(ranks) == 0:
        return float("nan"), float("nan")
    return float(np.mean(ranks <= k)), float(np.mean(1.0 / ranks))


def neighbour_sets(vectors: np.ndarray, rows: np.ndarray | None = None, k: int = TOP_K) -> list[frozenset[int]]:
    """Each row's ``k`` nearest rows of ``vectors`` (itself excluded), as sets of row positions; ``rows`` None:
    every row. Exact inner-product search (:func:`index.knn.nearest`, on a GPU when FAISS has one)."""
    from vaultlearn.index.knn import nearest

    if rows is None:
        _, hits = nearest(vectors, k)
        return [frozenset(int(h) for h in hit if h >= 0) for hit in hits]
    _, hits = nearest(vectors, k + 1, vectors[rows])
    return [frozenset([int(h) for h in hit if h >= 0 and h != r][:k]) for r, hit in zip(rows, hits)]


def changed_share(before: Sequence[frozenset[int]], after: Sequence[frozenset[int]]) -> float:
    """Share of notes whose neighbour set differs between ``before`` and ``after`` (0 for no notes)."""
    return float(np.mean([b != a for b, a in zip(before, after)])) if len(before) else 0.0


def cosine_shift(before: np.ndarray, after: np.ndarray) -> float:
    """Mean cosine distance between matching rows of two L2-normalised arrays (0 for no rows)."""
    return float(np.mean(1.0 - np.sum(before * after, axis=1))) if len(before) else 0.0
