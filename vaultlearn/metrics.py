"""Ranking metrics over search results, as small free functions (faiss contrib/evaluation.py style).

- rank of each held-out link's target among candidate notes (filtered: the source's other targets and the source
  itself are not candidates), afresh or from the ranks before some notes moved; Recall@k and MRR of those ranks;
- drift: how far a change moved notes (mean cosine distance) and the share of notes whose top-k set changed.

A NaN or infinite embedding or score is an error (:class:`NonFiniteError`), never a rank: a NaN compares false,
so it would otherwise rank first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vaultlearn.errors import require_finite
from vaultlearn.threads import one_blas_thread

TOP_K = 10
SCORE_BLOCK = 1 << 24  # similarity scores held at once (64 MiB of float32)


def targets_by_source(edges: Sequence[tuple[int, int]]) -> dict[int, set[int]]:
    """Outgoing targets per source note."""
    out: dict[int, set[int]] = {}
    for a, b in edges:
        out.setdefault(a, set()).add(b)
    return out


def candidate_columns(n: int, candidates: np.ndarray) -> np.ndarray:
    """For each of ``n`` notes, its column among ``candidates`` (-1: not a candidate)."""
    column = np.full(n, -1, dtype=np.int64)
    column[candidates] = np.arange(len(candidates))
    return column


def columns_of(column: np.ndarray, notes) -> np.ndarray:
    """The columns (:func:`candidate_columns`) of those of ``notes`` that are candidates."""
    found = column[list(notes)]
    return found[found >= 0]


def filtered_notes(targets_of: dict[int, set[int]], source: int, target: int) -> set[int]:
    """The notes a filtered ranking of ``source`` → ``target`` does not count: the source and its other targets."""
    return (targets_of.get(source, set()) - {target}) | {source}


def score_blocks(emb: np.ndarray, sources: np.ndarray, candidate_emb: np.ndarray):
    """``(begin, scores)`` for consecutive blocks of ``sources`` (note positions): the block's similarity with
    every candidate row, SCORE_BLOCK scores at a time, each block one matrix product (BLAS on one thread)."""
    block = max(1, SCORE_BLOCK // max(1, len(candidate_emb)))
    for begin in range(0, len(sources), block):
        with one_blas_thread():
            scores = emb[sources[begin:begin + block]] @ candidate_emb.T
        yield begin, scores


def rank_of_targets(
    emb: np.ndarray, links: Sequence[tuple[int, int]], candidates: np.ndarray, targets_of: dict[int, set[int]]
) -> np.ndarray:
    """1-based rank of each held-out target among ``candidates`` for its source (cosine; filtered ranking: the
    source and its other targets are not counted). Sources are scored in blocks (:func:`score_blocks`)."""
    links = np.asarray(links, dtype=np.int64).reshape(-1, 2)
    cand = np.asarray(candidates, dtype=np.int64)
    cand_emb = emb[cand]
    require_finite(cand_emb, "embeddings of the candidate notes")
    column = candidate_columns(len(emb), cand)
    target_column = column[links[:, 1]]
    if np.any(target_column < 0):
        raise ValueError(f"held-out target {int(links[np.argmax(target_column < 0), 1])} is not among the candidates")
    ranks = np.zeros(len(links), dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore"):  # a non-finite score is reported below, as an error
        for begin, scores in score_blocks(emb, links[:, 0], cand_emb):
            part = links[begin:begin + len(scores)]
            bad = ~np.isfinite(scores).all(axis=1)
            if bad.any():
                row = int(np.argmax(bad))
                require_finite(scores[row], f"similarity scores of note {int(part[row, 0])}")
            target = scores[np.arange(len(part)), target_column[begin:begin + len(part)]]
            above = np.count_nonzero(scores > target[:, None], axis=1)
            for row, (a, b) in enumerate(part.tolist()):  # the filtered notes that scored above the target
                dropped = columns_of(column, filtered_notes(targets_of, a, b))
                above[row] -= np.count_nonzero(scores[row, dropped] > target[row])
            ranks[begin:begin + len(part)] = 1 + above
    return ranks


def moved_ranks(
    before: np.ndarray, ranks: np.ndarray, after: np.ndarray, links: Sequence[tuple[int, int]],
    targets_of: dict[int, set[int]],
) -> np.ndarray:
    """:func:`rank_of_targets` of ``links`` among every note under ``after``, from their ``ranks`` under
    ``before``, when ``after`` differs from ``before`` in some rows (a learned phase moves its own notes): a
    link whose source or target moved is ranked afresh; for the others only the moved notes are scored again,
    before and after, against the target's score. The same ranks up to float rounding (a moved note within the
    last bits of a target's score may count differently); with half the notes or more moved, ranked afresh."""
    links = np.asarray(links, dtype=np.int64).reshape(-1, 2)
    rows = np.flatnonzero(np.any(after != before, axis=1))
    every = np.arange(len(after))
    if 2 * len(rows) >= len(after):
        return rank_of_targets(after, links, every, targets_of)
    out = np.array(ranks, dtype=np.int64)
    if len(rows) == 0 or len(links) == 0:
        return out
    moved = np.zeros(len(after), dtype=bool)
    moved[rows] = True
    fresh = moved[links[:, 0]] | moved[links[:, 1]]
    if fresh.any():
        out[fresh] = rank_of_targets(after, links[fresh], every, targets_of)
    rest = np.flatnonzero(~fresh)
    require_finite(after[rows], "embeddings of the notes that moved")
    column = candidate_columns(len(after), rows)
    with np.errstate(invalid="ignore", over="ignore"):
        for begin, scores in score_blocks(before, links[rest, 0], np.vstack([before[rows], after[rows]])):
            part = links[rest[begin:begin + len(scores)]]
            require_finite(scores, "similarity scores with the notes that moved")
            target = np.einsum("ij,ij->i", before[part[:, 0]], before[part[:, 1]])[:, None]
            was, now = scores[:, : len(rows)] > target, scores[:, len(rows):] > target
            for row, (a, b) in enumerate(part.tolist()):  # the filtered notes among the moved ones
                dropped = columns_of(column, filtered_notes(targets_of, a, b))
                was[row, dropped] = now[row, dropped] = False
            out[rest[begin:begin + len(part)]] += np.count_nonzero(now, axis=1) - np.count_nonzero(was, axis=1)
    return out


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
