"""`suggest` latency at 1k, 10k and 100k notes: in-process p50/p95 and as a CLI process; Recall@10 of the index.

Synthetic vaults (bench/synth_vault.py). Embeddings come from a stand-in encoder (the mean of seeded random
word vectors: notes on one topic share most words, so they lie near each other, as real notes' embeddings do)
written through the service's own commit path, because `suggest` never runs the model for an indexed note:
what is measured is FAISS + graph + sqlite + the note file read, exactly the suggest path. Baselines, in the
same run: a bare FAISS search of the same query in the same index (the floor any ranking adds to), and the same
suggest comparing the note with every note instead of the approximate index's shortlist (above
``approximate_index_above`` notes), whose top 10 gives the suggestions' Recall@10; the index's own Recall@10 is
that of its top 10 against an exact index of the same vectors. A fresh service (a CLI process) reads the rank
context `index` saved (index/snapshot.py); the in-process figures are those of a long-lived service (the
daemon's), which builds its own; the two must suggest the same.

``--learn``: the same after `learn` has committed every phase's link map (forced; the synthetic vault's four
phases), so each suggestion also computes the learned similarity.

    python bench/bench_suggest.py [--sizes 1000 10000 100000] [--queries 200] [--learn]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_vault import write_vault  # noqa: E402

from vaultlearn.index.vectors import VectorIndex  # noqa: E402
from vaultlearn.service import VaultService  # noqa: E402


class WordEncoder:
    """Stands in for the model when filling a synthetic index: per note, the normalised mean of seeded random
    vectors of its words (a word's vector depends only on the word)."""

    dim = 384
    memory = None  # nothing learned: no memory-slot postings

    def __init__(self):
        self._vocab: dict[str, int] = {}
        self._table = np.zeros((0, self.dim), dtype=np.float32)

    def encode(self, texts, show_progress=False):
        return np.vstack([self._encode(texts[s : s + 256]) for s in range(0, len(texts), 256)])

    def _encode(self, texts) -> np.ndarray:
        rows = [[self._vocab.setdefault(w, len(self._vocab)) for w in t.lower().split()] or [0] for t in texts]
        if len(self._vocab) > len(self._table):
            new = sorted(self._vocab, key=self._vocab.get)[len(self._table):]
            self._table = np.vstack([self._table] + [_word_vector(w, self.dim) for w in new])
        flat = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
        starts = np.cumsum([0] + [len(r) for r in rows[:-1]])
        x = np.add.reduceat(self._table[flat], starts, axis=0)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _word_vector(word: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).normal(size=(1, dim)).astype(np.float32)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def _timed_suggest(service: VaultService, picks: list[str]) -> tuple[list[float], list[float], list[list[str]]]:
    """Wall and CPU (this thread) seconds of each suggest, and its top 10."""
    times, cpu, top = [], [], []
    for path in picks:
        t, c = time.perf_counter(), time.thread_time()
        out = service.suggest(path, 10)
        times.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
        top.append([s.path for s in out])
    return times, cpu, top


def bench(size: int, queries: int, learn: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vault = write_vault(Path(tmp) / "vault", size)
        service = VaultService(vault)
        service._encoder = WordEncoder()
        started = time.perf_counter()
        report = service.index()
        index_seconds = time.perf_counter() - started
        fit_seconds, fit_cpu = report.rank_fit["seconds"], report.rank_fit["cpu_seconds"]
        if learn:  # every phase's link map committed: suggestions weigh the learned similarity
            from vaultlearn.model.linkfit import LinkMapLearner

            service._learner = LinkMapLearner.load(service.paths.model, WordEncoder.dim, service.config)
            started = time.perf_counter()
            learned = service.learn(force=True).learned_phases
            print(f"{size:>7} notes: learned {len(learned)} phases (forced) in {time.perf_counter() - started:.1f} s; "
                  "the suggestions below weigh the learned similarity", flush=True)
        paths = [row.path for row in service.store.notes()]
        rng = np.random.default_rng(1)
        picks = [paths[i] for i in rng.choice(len(paths), size=min(queries, len(paths)), replace=False)]
        fresh = VaultService(vault)  # a fresh process (a CLI): the index and the saved rank context read from disk
        started = time.perf_counter()
        fresh.suggest(picks[0])
        first = time.perf_counter() - started
        fresh_times, _, from_saved = _timed_suggest(fresh, picks)
        fresh.close()
        service = VaultService(vault, long_lived=True)  # the daemon's: builds its rank context once
        started = time.perf_counter()
        service.suggest(picks[0])
        first_built = time.perf_counter() - started
        vectors = service.vectors()
        query_vecs = np.vstack([service.store.embedding(service.store.note_by_path(p).id) for p in picks])
        suggest_times, suggest_cpu, suggested = _timed_suggest(service, picks)
        if from_saved != suggested:
            raise SystemExit("the saved rank context and the built one suggest differently")
        floor_times = []
        for query in query_vecs:
            t = time.perf_counter()
            vectors.search(query, 10)
            floor_times.append(time.perf_counter() - t)
        ids, vecs = service.store.all_embeddings()
        exact = VectorIndex.build(ids, vecs, approximate_above=len(ids) + 1)
        service.ranking.approximate_search = lambda ctx: None  # baseline: the note compared with every note
        exact_times, _, compared = _timed_suggest(service, picks)
        suggest_recall = float(np.mean([len(set(s) & set(c)) / len(c) for s, c in zip(suggested, compared)]))
        _, got = vectors.search(query_vecs, 10)
        _, truth = exact.search(query_vecs, 10)
        recall = float(np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth)]))
        cli_times = []
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        for path in picks[:10]:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "vaultlearn.cli", "suggest", path, "--vault", str(vault), "--json"],
                           check=True, capture_output=True, env=env)
            cli_times.append(time.perf_counter() - t)
        p50, p95 = _percentiles(suggest_times)
        s50, _ = _percentiles(fresh_times)
        e50, _ = _percentiles(exact_times)
        cpu50, _ = _percentiles(suggest_cpu)
        f50, _ = _percentiles(floor_times)
        c50, c95 = _percentiles(cli_times)
        kind = "IVF" if vectors.approximate else "exact"
        print(f"{size:>7} notes (synthetic) | index {index_seconds:6.1f}s (stand-in vectors; reranker fit {fit_seconds:.1f}s, "
              f"{fit_cpu:.1f}s CPU), {kind} | first suggest of a fresh service {first * 1e3:6.0f} ms (saved rank "
              f"context; building it instead {first_built * 1e3:6.0f} ms), then p50 {s50 * 1e3:6.2f} ms | suggest "
              f"in-process (built context, the daemon's) p50 {p50 * 1e3:6.2f} ms p95 "
              f"{p95 * 1e3:6.2f} ms (CPU p50 {cpu50 * 1e3:5.2f} ms) | comparing every note p50 {e50 * 1e3:6.2f} ms "
              f"(that/this = {e50 / p50:4.2f}x), suggestions' Recall@10 vs it {suggest_recall:.4f} | index Recall@10 "
              f"vs exact {recall:.4f} | bare FAISS top-10 p50 {f50 * 1e3:5.2f} ms "
              f"(suggest/bare = {p50 / f50:4.1f}x) | CLI process p50 {c50:5.2f} s p95 {c95:5.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--learn", action="store_true", help="learn every phase's link map before suggesting")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    for size in args.sizes:
        bench(size, args.queries, args.learn)


if __name__ == "__main__":
    main()
