"""Indexing throughput (notes/s) against plain ``SentenceTransformer.encode()`` of the same texts, same run.

Figures on the same notes: (1) plain ``encode()`` of the note texts (the baseline), (2) vaultlearn's
``NoteEncoder.encode()``, (3) ``vaultlearn index`` end to end from an empty state (scan, parse, sqlite, embed,
FAISS), the rank-weight fit timed on its own (it is not an indexing cost: it runs when the links moved),
(4) the same end to end with a stand-in encoder that costs nothing (seeded random vectors): everything but
the forward pass, per note, which bounds what a faster (GPU) forward pass can give, (5) re-index with nothing
changed, in-process (the service's ``seconds``) and as a CLI process. Ratios are against (1). Uses CUDA when
present. ``--no-model`` runs only (4) and (5), for sizes the CPU cannot embed in a session (100k notes).

    python bench/bench_index.py [--vault PATH] [--repeat N] [--synthetic N] [--no-model] [--cpu-precision P]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_vault import write_vault  # noqa: E402

from vaultlearn.config import Config  # noqa: E402
from vaultlearn.model_identity import cpu_precision  # noqa: E402
from vaultlearn.paths import StatePaths  # noqa: E402
from vaultlearn.service import VaultService  # noqa: E402
from vaultlearn.vault.read import read_note_text  # noqa: E402
from vaultlearn.vault.scan import scan_vault  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class FreeEncoder:
    """Stands in for the model at no cost: seeded random unit vectors of its size."""

    dim = 384
    memory = None

    def encode(self, texts, show_progress=False):
        x = np.random.default_rng(len(texts)).normal(size=(len(texts), self.dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def _copy_vault(source: Path, target: Path, repeat: int) -> None:
    for n in range(repeat):
        shutil.copytree(source, target / f"copy{n}", ignore=shutil.ignore_patterns(".vaultlearn", ".obsidian"))
    (target / ".obsidian").mkdir()


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _index_without_fit(vault: Path, config: Config, encoder) -> tuple[VaultService, dict, float, float]:
    """A fresh state indexed end to end, the rank-weight fit left out (timed separately by the caller); wall and
    CPU seconds (the process's, all threads: on a shared machine the steadier figure)."""
    shutil.rmtree(StatePaths(vault).root, ignore_errors=True)
    StatePaths(vault).root.mkdir()
    StatePaths(vault).config.write_text(f'cpu_precision = "{config.cpu_precision}"\n')  # for the CLI
    service = VaultService(vault, config)
    service._encoder = encoder
    fit = service.ranking.refit_due
    service.ranking.refit_due = lambda: False
    t, cpu = time.perf_counter(), time.process_time()
    report = service.index(progress=sys.stderr.isatty())
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    service.ranking.refit_due = fit
    return service, report, seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, default=ROOT / "sample_vault")
    parser.add_argument("--repeat", type=int, default=None, help="copies of the vault (default: up to ~2k notes)")
    parser.add_argument("--synthetic", type=int, default=None, help="a synthetic vault of N notes instead")
    parser.add_argument("--no-model", action="store_true", help="only the stand-in encoder and re-index figures")
    parser.add_argument("--cpu-precision", choices=["auto", "float32", "bfloat16"], default=Config().cpu_precision,
                        help="vaultlearn's CPU forward pass (the baseline is always float32 encode())")
    args = parser.parse_args()
    config = dataclasses.replace(Config(), cpu_precision=args.cpu_precision)
    precision = cpu_precision(config)
    with tempfile.TemporaryDirectory() as tmp:
        vault = Path(tmp) / "vault"
        if args.synthetic:
            write_vault(vault, args.synthetic)
            source = f"synthetic, bench/synth_vault.py, {args.synthetic} notes"
        else:
            count = len(scan_vault(args.vault).notes)
            repeat = args.repeat or max(1, 2000 // max(count, 1))
            _copy_vault(args.vault, vault, repeat)
            source = f"{repeat} copies of {args.vault.name}"
        files = scan_vault(vault).notes
        n = len(files)
        print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; {n} notes ({source}); CPU precision "
              f"{precision} ({args.cpu_precision})", flush=True)
        if not args.no_model:
            import torch
            from sentence_transformers import SentenceTransformer

            from vaultlearn.model.encoder import NoteEncoder

            texts = [read_note_text(vault, f.path, config) for f in files]
            encoder = NoteEncoder(config)
            plain = SentenceTransformer(str(encoder.model_path),
                                        device=str(encoder.device))
            plain.max_seq_length = config.max_seq_length
            plain.encode(texts[:64])
            encoder.encode(texts[:64])
            t = time.perf_counter()
            plain.encode(texts, batch_size=config.batch_size, normalize_embeddings=True)
            plain_rate = _rate(n, time.perf_counter() - t)
            t = time.perf_counter()
            ours = encoder.encode(texts)
            ours_rate = _rate(n, time.perf_counter() - t)
            if encoder.bf16:
                encoder.bf16 = False
                t = time.perf_counter()
                exact = encoder.encode(texts)
                exact_rate = _rate(n, time.perf_counter() - t)
                encoder.bf16 = True
                cosine = np.sum(ours * exact, axis=1)
            service, _, seconds, _ = _index_without_fit(vault, config, encoder)
            e2e_rate = _rate(n, seconds)
            t = time.perf_counter()
            service.fit_ranker()
            fit_seconds = time.perf_counter() - t
            print(f"torch {torch.__version__}, device {encoder.device}")
            print(f"plain SentenceTransformer.encode : {plain_rate:8.1f} notes/s  (baseline)")
            if encoder.bf16:
                print(f"NoteEncoder.encode, float32      : {exact_rate:8.1f} notes/s  ratio {exact_rate / plain_rate:5.2f}x")
            print(f"NoteEncoder.encode, {precision:<13}: {ours_rate:8.1f} notes/s  ratio "
                  f"{ours_rate / plain_rate:5.2f}x" + (f"  cosine to float32 min {cosine.min():.5f} mean "
                                                       f"{cosine.mean():.5f}" if encoder.bf16 else ""))
            print(f"vaultlearn index end to end      : {e2e_rate:8.1f} notes/s  ratio {e2e_rate / plain_rate:5.2f}x"
                  f"  (reranker fit, not included: {fit_seconds:.1f} s)")
            service.close()
        service, report, seconds, cpu = _index_without_fit(vault, config, FreeEncoder())
        service.fit_ranker()  # stored, so the re-index below does not refit
        print(f"end to end, stand-in encoder     : {_rate(n, seconds):8.1f} notes/s  = {seconds / n * 1e3:.3f} ms per "
              f"note ({cpu / n * 1e3:.3f} ms CPU) for everything but the forward pass; peak memory "
              f"{report.peak_memory_mb} MiB")
        service.close()
        service = VaultService(vault, config)
        report = service.index()
        assert report.rank_fit is None and report.embedded == 0, report
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "vaultlearn.cli", "index", str(vault), "--json", "-q"],
                             check=True, capture_output=True, text=True)
        cli = time.perf_counter() - t
        assert json.loads(out.stdout)["embedded"] == 0
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"re-index, nothing changed        : {report.seconds:8.3f} s in-process (service seconds); "
              f"{cli:.2f} s wall as a CLI process, {child.ru_utime + child.ru_stime:.2f} s CPU "
              f"(peak {child.ru_maxrss // 1024} MiB)")


if __name__ == "__main__":
    sys.exit(main())
