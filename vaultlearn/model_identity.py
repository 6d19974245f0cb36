"""Which base model embeds the notes: ``$VAULTLEARN_MODEL`` over the configured name, and the key under which
the store records it (a different key means every note is embedded again). Imports no model library."""

from __future__ import annotations

import os

from .config import Config

MODEL_ENV = "VAULTLEARN_MODEL"


def model_override() -> str | None:
    """The model folder or name ``$VAULTLEARN_MODEL`` names; None when it is unset or empty."""
    return os.environ.get(MODEL_ENV) or None


def model_key(config: Config) -> str:
    """Identifies the base model and how notes are cut and computed for it, without loading it."""
    key = f"{model_override() or config.model}|{config.max_seq_length}"
    return key + ("|cpu-bfloat16" if config.cpu_precision == "bfloat16" else "")
