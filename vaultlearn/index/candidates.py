"""Which notes are ranked for a query: beyond its nearest notes by embedding, the notes the graph points to.

Per query row: the ``pool`` nearest notes by cosine, plus the ``GRAPH_POOL`` best by each graph score that is
positive (notes two links away by Adamic–Adar, the notes its similar notes link to, personalised PageRank
from its links: collaborative filtering and co-citation reach notes whose text is not similar), plus every
note named in the query's own words (features.py adds those). The query itself and the notes it already
links to are never candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GRAPH_POOL = 50  # candidates taken from each graph score


def top_mask(scores: np.ndarray, count: int, positive_only: bool = False) -> np.ndarray:
    """Boolean ``scores.shape``: the ``count`` highest finite entries of each row (only those > 0 if asked)."""
    rows, n = scores.shape
    mask = np.zeros((rows, n), dtype=bool)
    if count <= 0 or n == 0:
        return mask
    eligible = scores > 0 if positive_only else np.isfinite(scores)
    if rows == 1:  # one query (a suggestion): partition only its eligible entries, not every note
        at = np.flatnonzero(eligible[0])
        if len(at) > count:
            at = at[np.argpartition(-scores[0, at], count - 1)[:count]]
        mask[0, at] = True
        return mask
    count = min(count, n)
    best = np.argpartition(-scores, count - 1, axis=1)[:, :count]
    np.put_along_axis(mask, best, True, axis=1)
    return mask & eligible


def candidate_mask(cosine: np.ndarray, graph_scores: Sequence[np.ndarray], excluded: np.ndarray,
                   pool: int) -> np.ndarray:
    """The candidates of each query row; ``excluded`` marks the query and its existing links, and a cosine of
    -inf one that was not computed (a note the approximate search did not return)."""
    mask = top_mask(np.where(excluded, -np.inf, cosine), pool)
    for scores in graph_scores:
        mask |= top_mask(np.where(excluded, 0.0, scores), GRAPH_POOL, positive_only=True)
    return mask & ~excluded
