"""`suggest` latency at 1k, 10k and 100k notes: in-process p50/p95 and as a CLI process.

Synthetic vaults (bench/synth_vault.py). Embeddings are seeded random unit vectors written through the
service's own commit path, because `suggest` never runs the model for an indexed note: what is measured is
FAISS + graph + sqlite + the note file read, exactly the suggest path. Baseline, in the same run: a bare
FAISS search of the same query in the same index (the floor any ranking adds to), printed as a ratio.

    python bench/bench_suggest.py [--sizes 1000 10000 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_vault import write_vault  # noqa: E402

from vaultlearn.service import VaultService  # noqa: E402


class _RandomEncoder:
    """Stands in for the model when filling a synthetic index: seeded unit vectors of the model's size."""

    dim = 384
    memory = None  # nothing learned: no memory-slot postings

    def encode(self, texts, show_progress=False):
        rng = np.random.default_rng(len(texts))
        x = rng.normal(size=(len(texts), self.dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def bench(size: int, queries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vault = write_vault(Path(tmp) / "vault", size)
        service = VaultService(vault)
        service._encoder = _RandomEncoder()
        started = time.perf_counter()
        report = service.index()
        index_seconds = time.perf_counter() - started
        fit_seconds, fit_cpu = report["rank_fit"]["seconds"], report["rank_fit"]["cpu_seconds"]
        paths = [row.path for row in service.store.notes()]
        rng = np.random.default_rng(1)
        picks = [paths[i] for i in rng.choice(len(paths), size=min(queries, len(paths)), replace=False)]
        service = VaultService(vault)  # fresh process state: index loaded from its file
        service.suggest(picks[0])
        suggest_times, suggest_cpu, floor_times = [], [], []
        vectors = service.vectors()
        for path in picks:
            t, c = time.perf_counter(), time.thread_time()
            service.suggest(path, 10)
            suggest_times.append(time.perf_counter() - t)
            suggest_cpu.append(time.thread_time() - c)
            query = service.store.embedding(service.store.note_by_path(path).id)
            t = time.perf_counter()
            vectors.search(query, 10)
            floor_times.append(time.perf_counter() - t)
        cli_times = []
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        for path in picks[:10]:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "vaultlearn.cli", "suggest", path, "--vault", str(vault), "--json"],
                           check=True, capture_output=True, env=env)
            cli_times.append(time.perf_counter() - t)
        p50, p95 = _percentiles(suggest_times)
        cpu50, _ = _percentiles(suggest_cpu)
        f50, _ = _percentiles(floor_times)
        c50, c95 = _percentiles(cli_times)
        print(f"{size:>7} notes (synthetic) | index {index_seconds:6.1f}s (random vectors; reranker fit "
              f"{fit_seconds:.1f}s, {fit_cpu:.1f}s CPU) | suggest in-process "
              f"p50 {p50 * 1e3:6.2f} ms p95 {p95 * 1e3:6.2f} ms (CPU p50 {cpu50 * 1e3:5.2f} ms) | bare FAISS top-10 "
              f"p50 {f50 * 1e3:5.2f} ms "
              f"(suggest/bare = {p50 / f50:4.1f}x) | CLI process p50 {c50:5.2f} s p95 {c95:5.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    for size in args.sizes:
        bench(size, args.queries)


if __name__ == "__main__":
    main()
