"""Which base model embeds the notes: ``$VAULTLEARN_MODEL`` over the configured name, and the key under which
the store records it (a different key means every note is embedded again). Imports no model library."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .config import Config

MODEL_ENV = "VAULTLEARN_MODEL"


def model_override() -> str | None:
    """The model folder or name ``$VAULTLEARN_MODEL`` names; None when it is unset or empty."""
    return os.environ.get(MODEL_ENV) or None


BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}  # x86 instructions that compute bf16 dot products natively


def model_key(config: Config) -> str:
    """Identifies the base model and how notes are cut and computed for it, without loading it."""
    key = f"{model_override() or config.model}|{config.max_seq_length}"
    return key + ("|cpu-bfloat16" if cpu_precision(config) == "bfloat16" else "")


def cpu_precision(config: Config) -> str:
    """The precision of the CPU forward pass: ``config.cpu_precision``, where "auto" is bfloat16 on a CPU with
    native bf16 dot products (measured on one: 2.5× float32 ``encode()``, cosine to it ≥ 0.99997,
    bench/RESULTS.md) and float32 elsewhere (emulated bf16 is slower; other CPUs are not measured)."""
    if config.cpu_precision != "auto":
        return config.cpu_precision
    return "bfloat16" if native_bf16_cpu() else "float32"


@functools.cache
def native_bf16_cpu() -> bool:
    """Whether this CPU has x86 bf16 dot-product instructions (read from Linux's /proc/cpuinfo; False where it
    cannot be read)."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    flags = next((line.partition(":")[2].split() for line in lines if line.startswith("flags")), [])
    return bool(BF16_CPU_FLAGS & set(flags))
