"""Indexing throughput (notes/s) against plain ``SentenceTransformer.encode()`` of the same texts, same run.

Three figures on the same notes: (1) plain ``encode()`` of the note texts (the baseline), (2) vaultlearn's
``NoteEncoder.encode()``, (3) end-to-end ``vaultlearn index`` from an empty state (scan, parse, sqlite,
embed, FAISS). Ratios are against (1). Uses CUDA when present.

    python bench/bench_index.py [--vault PATH] [--repeat N]   (default: sample_vault repeated to ~2k notes)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from vaultlearn.config import Config
from vaultlearn.model.encoder import NoteEncoder
from vaultlearn.service import VaultService
from vaultlearn.vault.parse import parse_note
from vaultlearn.vault.scan import read_note_bytes, scan_vault

ROOT = Path(__file__).resolve().parents[1]


def _copy_vault(source: Path, target: Path, repeat: int) -> None:
    for n in range(repeat):
        shutil.copytree(source, target / f"copy{n}", ignore=shutil.ignore_patterns(".vaultlearn", ".obsidian"))
    (target / ".obsidian").mkdir()


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vault", type=Path, default=ROOT / "sample_vault")
    parser.add_argument("--repeat", type=int, default=None, help="copies of the vault (default: up to ~2k notes)")
    args = parser.parse_args()
    config = Config()
    with tempfile.TemporaryDirectory() as tmp:
        vault = Path(tmp) / "vault"
        count = len(scan_vault(args.vault).notes)
        repeat = args.repeat or max(1, 2000 // max(count, 1))
        _copy_vault(args.vault, vault, repeat)
        files = scan_vault(vault).notes
        texts = [parse_note(f.path, read_note_bytes(vault, f.path, config.max_note_bytes),
                            config.max_embed_chars).text for f in files]
        encoder = NoteEncoder(config)
        device = str(encoder.device) if hasattr(encoder, "device") else "auto"
        plain = SentenceTransformer(os.environ.get("VAULTLEARN_MODEL") or str(encoder.model_path), device=device)
        plain.max_seq_length = config.max_seq_length
        plain.encode(texts[:64])
        encoder.encode(texts[:64])
        t = time.perf_counter()
        plain.encode(texts, batch_size=config.batch_size, normalize_embeddings=True)
        plain_rate = _rate(len(texts), time.perf_counter() - t)
        t = time.perf_counter()
        encoder.encode(texts)
        ours_rate = _rate(len(texts), time.perf_counter() - t)
        service = VaultService(vault, config)
        service._encoder = encoder
        t = time.perf_counter()
        service.index()
        e2e_rate = _rate(len(texts), time.perf_counter() - t)
        t = time.perf_counter()
        service.index()
        unchanged = time.perf_counter() - t
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__}, device {device}; "
          f"{len(texts)} notes ({repeat} copies of {args.vault.name})")
    print(f"plain SentenceTransformer.encode : {plain_rate:8.1f} notes/s  (baseline)")
    print(f"NoteEncoder.encode               : {ours_rate:8.1f} notes/s  ratio {ours_rate / plain_rate:5.2f}x")
    print(f"vaultlearn index end to end      : {e2e_rate:8.1f} notes/s  ratio {e2e_rate / plain_rate:5.2f}x")
    print(f"re-index, nothing changed        : {unchanged:8.2f} s")


if __name__ == "__main__":
    sys.exit(main())
