"""Exact k nearest neighbours of many notes at once (neighbour graphs, drift probes), on a GPU when FAISS has one.

The VectorIndex answers one note at a time and may be approximate; this answers a whole batch exactly
(float32 inner product = cosine on unit vectors). With ``faiss-gpu`` and a visible GPU the brute-force search
runs there (100k × 100k is minutes on 2 CPU cores); otherwise the same flat search runs on the CPU. Both give
the same neighbours up to float rounding of tied scores.
"""

from __future__ import annotations

import faiss
import numpy as np

QUERY_BATCH = 8192  # query rows per search call: bounds the score block faiss keeps per call


def gpu_available() -> bool:
    """Whether this faiss build sees a GPU (faiss-cpu always says no)."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def nearest(vectors: np.ndarray, k: int, queries: np.ndarray | None = None, *, use_gpu: bool | None = None,
            batch: int = QUERY_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """(scores, positions) of the ``k`` rows of ``vectors`` nearest each query row, best first.

    ``queries`` None: every row of ``vectors`` is a query and a row is never its own neighbour (the neighbour
    graph). Missing neighbours (fewer than ``k`` candidates) have position -1. ``use_gpu`` None: when available.
    """
    base = np.ascontiguousarray(vectors, dtype=np.float32)
    graph = queries is None
    queries = base if graph else np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    n, dim = base.shape
    index = faiss.IndexFlatIP(dim)
    if use_gpu if use_gpu is not None else gpu_available():
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, index)
    index.add(base)
    want = min(n, k + 1 if graph else k)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    positions = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(queries), batch):
        block_scores, block_ids = index.search(queries[start : start + batch], max(1, want))
        if graph:
            block_scores, block_ids = _drop_self(block_scores, block_ids, np.arange(start, start + len(block_ids)))
        kept = min(k, block_ids.shape[1])
        scores[start : start + len(block_ids), :kept] = block_scores[:, :kept]
        positions[start : start + len(block_ids), :kept] = block_ids[:, :kept]
    return scores, positions


def _drop_self(scores: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own position from its hits (or the last hit when it is not among them)."""
    is_self = ids == rows[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), ids.shape[1] - 1)
    keep = np.ones_like(ids, dtype=bool)
    keep[np.arange(len(ids)), drop] = False
    width = ids.shape[1] - 1
    return scores[keep].reshape(len(ids), width), ids[keep].reshape(len(ids), width)
