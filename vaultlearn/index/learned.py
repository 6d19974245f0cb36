"""The learned vectors: each learned phase's link map applied to its own notes' stored base embeddings, without
torch.

The learned state (``VAULT/.vaultlearn/model/``) is committed by its manifest. A link-map manifest names the
folder its :class:`~vaultlearn.model.linkmap.LinkMap` saved itself to (the learner's current map) and the file
of phase maps: for each learned phase, the map as it stood when that phase was learned. A note is read by its
phase's map; a note in no learned phase keeps its base embedding, so learning a phase moves only that phase's
notes. Before any learning, or with the token-level memory (which changes the embeddings themselves), the
stored embeddings are the learned vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_numpy

from vaultlearn.errors import require_finite
from vaultlearn.model.manifest import read_manifest

MAP_CONFIG = "config.json"
MAP_WEIGHTS = "model.safetensors"
LINKMAP_KIND = "linkmap"


def map_vectors(vectors: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """normalize(W x) for each row x of ``vectors`` (float32)."""
    out = np.asarray(vectors, dtype=np.float32) @ weight.T.astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out = out / np.where(norms > 0, norms, 1.0)
    require_finite(out, "learned note vectors")
    return out


def map_by_phase(vectors: np.ndarray, phases: Sequence[str | None], maps: dict[str, np.ndarray]) -> np.ndarray:
    """``vectors`` (float32, one row per note) with each row whose phase (``phases``, per row) has a map in
    ``maps`` mapped by it (:func:`map_vectors`); the other rows as they are."""
    if len(phases) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(phases)} phases")
    out = np.array(vectors, dtype=np.float32)
    rows_of: dict[str, list[int]] = {}
    for row, phase in enumerate(phases):
        if phase in maps:
            rows_of.setdefault(phase, []).append(row)
    for phase, rows in rows_of.items():
        out[rows] = map_vectors(out[rows], maps[phase])
    return out


def committed_phase_maps(state_dir: Path) -> dict[str, np.ndarray] | None:
    """Each learned phase's map (None: no link map is committed)."""
    manifest = read_manifest(state_dir)
    if manifest is None or manifest.get("kind") != LINKMAP_KIND:
        return None
    if "phase_maps" not in manifest:  # saved before phase maps: each learned phase is read by the one map
        weight = load_numpy((Path(state_dir) / manifest["map"] / MAP_WEIGHTS).read_bytes())["weight"]
        return {phase: weight for phase in manifest["learned_phases"]}
    return load_numpy((Path(state_dir) / manifest["phase_maps"]).read_bytes())
