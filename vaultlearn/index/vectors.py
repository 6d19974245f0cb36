"""VectorIndex: a FAISS inner-product index over note embeddings, keyed by note id.

The index is an ``IndexIDMap2`` over a float16 scalar-quantized flat index. Measured on this project's 2-core
CPU at 100k × 384 (bench/RESULTS.md): plain ``IndexFlatIP`` answers one query in ~19 ms p50, the fp16 index
in ~7 ms, with cosine errors around 1e-3 and exact recall otherwise (it is still exhaustive). Unlike HNSW it
supports removal (the daemon deletes and moves notes) and builds in a fraction of a second (HNSW: ~8 s per 20k
notes here). The sqlite store keeps the exact float32 vectors; the index file is a derived cache written
atomically under a name that carries the store's generation, so a stale or half-written one is never used.

Above ``approximate_above`` notes the index becomes an inverted-file index (IVF, fp16 lists, √n lists, a
``probe_share`` of them searched per query): at 100k notes one query scans ~12% of the vectors instead of all
of them, with Recall@10 against the exact index ≥ 0.99 (measured in bench/bench_suggest.py). It supports the
same incremental add/remove (a hash-table direct map keeps ids and ``vectors``); it is retrained when the note
count has grown 4× since training and turned back into the exact index below half the threshold.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from ..atomic import atomic_write_bytes
from ..paths import vector_index_file, vector_index_files
from .index_kind import becomes_approximate, stays_approximate

FEW_QUERIES = 16  # up to this many queries search on one thread: OpenMP fan-out for one query cost 16 ms
# against 0.7 ms single-threaded (10k notes, 2 busy cores)


APPROXIMATE_ABOVE = 50_000  # notes; below this the exact index answers one query in < 4 ms on 2 cores
PROBE_SHARE = 0.125  # share of the IVF lists searched per query
TRAIN_PER_LIST = 40  # training vectors per IVF list (k-means on a sample: ~2 s at 100k notes on 2 cores)


def _exact_index(dim: int) -> faiss.IndexIDMap2:
    base = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexIDMap2(base)


def _ivf_index(vectors: np.ndarray) -> faiss.IndexIVFScalarQuantizer:
    """An empty IVF index trained on (a seeded sample of) ``vectors``: √n lists, fp16 codes, ids by hash table."""
    n, dim = vectors.shape
    nlist = max(1, int(math.sqrt(n)))
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT)
    index.by_residual = False
    index.cp.niter = 10
    index.cp.min_points_per_centroid = 1  # sampling below faiss' 39 per list is deliberate: no warning
    index.cp.seed = 0
    sample = np.random.default_rng(0).permutation(n)[: TRAIN_PER_LIST * nlist]
    index.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def _contents(index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, fp16-rounded vectors) of everything in ``index`` (either kind)."""
    if isinstance(index, faiss.IndexIDMap2):
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        return ids, index.index.reconstruct_n(0, index.ntotal) if len(ids) else np.zeros((0, index.d), np.float32)
    lists = index.invlists
    ids = np.concatenate([np.zeros(0, np.int64)] + [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                                                    for i in range(index.nlist) if lists.list_size(i)])
    return ids, index.reconstruct_batch(ids) if len(ids) else np.zeros((0, index.d), np.float32)


class VectorIndex:
    """Note embeddings searchable by inner product (= cosine: vectors are L2-normalised)."""

    def __init__(self, index, approximate_above: int = APPROXIMATE_ABOVE, probe_share: float = PROBE_SHARE):
        self._index = index
        self.approximate_above = approximate_above
        self.probe_share = probe_share

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, approximate_above: int = APPROXIMATE_ABOVE,
              probe_share: float = PROBE_SHARE) -> "VectorIndex":
        """An index holding ``vectors`` under ``ids`` (approximate when there are more than ``approximate_above``)."""
        dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 1
        index = cls(_exact_index(dim), approximate_above, probe_share)
        if len(ids):
            index.upsert(ids, vectors)
        return index

    @property
    def approximate(self) -> bool:
        """Whether searches go through the IVF lists rather than every vector."""
        return isinstance(self._index, faiss.IndexIVF)

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
        self._reshape()

    def remove(self, ids: np.ndarray) -> None:
        """Drop ``ids`` (missing ones are ignored)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) and self._index.ntotal:
            self._index.remove_ids(ids)
            self._reshape()

    def _reshape(self) -> None:
        """Switch between the exact and the IVF index, or retrain the IVF one, when the size calls for it."""
        n = self._index.ntotal
        if self.approximate:
            grown = n > 4 * self._index.nlist ** 2
            if stays_approximate(n, self.approximate_above) and not grown:
                return
        elif not becomes_approximate(n, self.approximate_above):
            return
        ids, vectors = _contents(self._index)
        index = _ivf_index(vectors) if stays_approximate(n, self.approximate_above) else _exact_index(self._index.d)
        index.add_with_ids(vectors, ids)
        self._index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the ``k`` nearest notes per query row; missing hits have id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, max(1, self._index.ntotal)))
        if self.approximate:
            self._index.nprobe = max(1, math.ceil(self.probe_share * self._index.nlist))
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
        """Write the index atomically as the file of ``generation`` in ``folder`` and drop older generations."""
        path = vector_index_file(folder, generation)
        atomic_write_bytes(path, faiss.serialize_index(self._index).tobytes())
        for old in vector_index_files(folder):
            if old != path:
                old.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, folder: Path, generation: int, approximate_above: int = APPROXIMATE_ABOVE,
             probe_share: float = PROBE_SHARE) -> "VectorIndex | None":
        """The index of exactly this generation, or None when it is missing or unreadable."""
        path = vector_index_file(folder, generation)
        try:  # read from a Python file (any path on any system), not copied into one buffer first: 0.02 s at 100k
            with open(path, "rb") as file:
                index = faiss.read_index(faiss.PyCallbackIOReader(file.read, 1 << 24))
            return cls(index, approximate_above, probe_share)
        except (OSError, RuntimeError):
            return None
