"""The learned vectors search uses: the committed link map applied to stored base embeddings, without torch.

The learned state (``VAULT/.vaultlearn/model/``) is committed by its manifest; a link-map manifest names the
folder its :class:`~vaultlearn.model.linkmap.LinkMap` saved itself to. Before any learning, or with the
token-level memory (which changes the embeddings themselves), search uses the stored embeddings as they are.
"""

from __future__ import annotations

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


def committed_map(state_dir: Path) -> np.ndarray | None:
    """The committed link map's weight (None: no link map is committed)."""
    manifest = read_manifest(state_dir)
    if manifest is None or manifest.get("kind") != LINKMAP_KIND:
        return None
    return load_numpy((Path(state_dir) / manifest["map"] / MAP_WEIGHTS).read_bytes())["weight"]
