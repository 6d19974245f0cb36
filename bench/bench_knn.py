"""The all-notes neighbour graph (k nearest of every note): one batched exact search against one search per note.

Seeded topical unit vectors (384 dims, the model's size). Baseline in the same run: the per-note loop over
the VectorIndex that drift probes used before (a sample of the notes, scaled to all). On a machine whose faiss
sees a GPU the batched search runs there, and its result is compared with the CPU's.

    python bench/bench_knn.py [--notes 20000] [--k 10]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from vaultlearn.index.knn import gpu_available, nearest
from vaultlearn.index.vectors import VectorIndex


def _topical(rows: int, dim: int = 384, topics: int = 200) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(topics, dim)).astype(np.float32)
    x = centres[rng.integers(topics, size=rows)] + 1.2 * rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=20_000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    x = _topical(args.notes)
    ids = np.arange(args.notes, dtype=np.int64)
    index = VectorIndex.build(ids, x, approximate_above=args.notes + 1)
    sample = min(args.notes, 2000)
    t = time.perf_counter()
    for i in range(sample):
        index.search(x[i], args.k + 1)
    loop = (time.perf_counter() - t) * args.notes / sample
    t = time.perf_counter()
    _, cpu = nearest(x, args.k, use_gpu=False)
    batched = time.perf_counter() - t
    print(f"machine: {os.cpu_count()} CPUs; {args.notes} notes x {args.k} neighbours")
    print(f"per-note loop over the index (baseline, {sample} timed) : {loop:8.2f} s")
    print(f"batched exact search, CPU                       : {batched:8.2f} s  ratio {loop / batched:5.1f}x")
    if gpu_available():
        t = time.perf_counter()
        _, gpu = nearest(x, args.k, use_gpu=True)
        on_gpu = time.perf_counter() - t
        print(f"batched exact search, GPU                       : {on_gpu:8.2f} s  ratio {loop / on_gpu:5.1f}x; "
              f"same neighbours as the CPU {np.mean(gpu == cpu):.4f}")
    else:
        print("GPU: faiss sees none (not measured)")


if __name__ == "__main__":
    main()
