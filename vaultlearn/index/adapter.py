"""A linear map of the frozen embeddings towards what notes link to, fitted on the visible links in closed form.

W = argmin ||X W − Y||² + λ·||W − I||², with X the embedding of each note that links to others and Y the
normalised mean embedding of the notes it links to; λ = ``RIDGE`` × (linking notes) / dimensions, so W stays
the identity without links and moves towards the vault's "this kind of note links to that kind" as links
accumulate. One (d, d) solve: milliseconds at 10k notes, numpy only.
"""

from __future__ import annotations

import numpy as np

from vaultlearn.vault.graph import VaultGraph

RIDGE = 1.0  # pull towards the identity, relative to the mean eigenvalue of XᵀX


def fit_adapter(vectors: np.ndarray, graph: VaultGraph, ridge: float = RIDGE) -> np.ndarray:
    """The (d, d) map W; ``vectors`` are the notes' L2-normalised embeddings by position."""
    d = vectors.shape[1]
    if d == 0:  # nothing embedded yet
        return np.zeros((0, 0), dtype=np.float32)
    sources = np.flatnonzero(np.diff(graph.out.indptr) > 0)
    x = np.asarray(vectors[sources], dtype=np.float32)
    y = graph.propagate(vectors, sources, outgoing=True)
    penalty = ridge * max(len(sources), 1) / d * np.eye(d)
    # float32 products (the cost, n·d²), a float64 solve
    return np.linalg.solve((x.T @ x) + penalty, (x.T @ y) + penalty).astype(np.float32)
