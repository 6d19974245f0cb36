"""VectorIndex: a FAISS inner-product index over note embeddings, keyed by note id.

The index is an ``IndexIDMap2`` over a float16 scalar-quantized flat index. Measured on this project's 2-core
CPU at 100k × 384 (bench/RESULTS.md): plain ``IndexFlatIP`` answers one query in ~19 ms p50, the fp16 index
in ~7 ms, with cosine errors around 1e-3 and exact recall otherwise (it is still exhaustive). Unlike HNSW it
supports removal (the daemon deletes and moves notes) and builds in a fraction of a second (HNSW: ~8 s per 20k
notes here). The sqlite store keeps the exact float32 vectors; the index file is a derived cache written
atomically under a name that carries the store's generation, so a stale or half-written one is never used.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from ..atomic import atomic_write_bytes

INDEX_PREFIX = "index-"
INDEX_SUFFIX = ".faiss"
FEW_QUERIES = 16  # up to this many queries search on one thread: OpenMP fan-out for one query cost 16 ms
# against 0.7 ms single-threaded (10k notes, 2 busy cores)


def _new_index(dim: int) -> faiss.IndexIDMap2:
    base = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexIDMap2(base)


class VectorIndex:
    """Note embeddings searchable by inner product (= cosine: vectors are L2-normalised)."""

    def __init__(self, index: faiss.IndexIDMap2):
        self._index = index

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray) -> "VectorIndex":
        """An index holding ``vectors`` under ``ids``."""
        dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 1
        index = cls(_new_index(dim))
        if len(ids):
            index.upsert(ids, vectors)
        return index

    @property
    def dim(self) -> int:
        return self._index.d

    def __len__(self) -> int:
        return self._index.ntotal

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace the vectors of ``ids``."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.remove(ids)
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray) -> None:
        """Drop ``ids`` (missing ones are ignored)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) and self._index.ntotal:
            self._index.remove_ids(ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the ``k`` nearest notes per query row; missing hits have id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, max(1, self._index.ntotal)))
        if len(queries) > FEW_QUERIES:
            return self._index.search(queries, k)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._index.search(queries, k)
        finally:
            faiss.omp_set_num_threads(threads)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored (fp16-rounded) vectors of ``ids``; every id must be present."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._index.reconstruct(int(i)) for i in ids])

    def save(self, folder: Path, generation: int) -> Path:
        """Write the index atomically as ``index-<generation>.faiss`` and drop older generations."""
        path = Path(folder) / f"{INDEX_PREFIX}{generation}{INDEX_SUFFIX}"
        atomic_write_bytes(path, faiss.serialize_index(self._index).tobytes())
        for old in Path(folder).glob(f"{INDEX_PREFIX}*{INDEX_SUFFIX}"):
            if old != path:
                old.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, folder: Path, generation: int) -> "VectorIndex | None":
        """The index of exactly this generation, or None when it is missing or unreadable."""
        path = Path(folder) / f"{INDEX_PREFIX}{generation}{INDEX_SUFFIX}"
        try:
            data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
            return cls(faiss.deserialize_index(data))
        except (OSError, RuntimeError):
            return None
