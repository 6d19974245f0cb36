"""LinkMap: what the vault's links teach, as a map on the base model's note embeddings (saves and loads itself).

A note's learned embedding is normalize(W x + α · mean of W x_j over the notes j it is linked with), x the base
model's embeddings, W (dim × dim) starting at the identity and α ≥ 0 (0 at the start): a map the links fit, and
a propagation over the links whose strength they choose. The base model is never changed, so a learned phase
re-maps stored embeddings instead of re-encoding any text.
Saved as ``config.json`` + ``model.safetensors`` in a folder, as sentence-transformers' ``models.Dense`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from vaultlearn.atomic import atomic_write_bytes, atomic_write_text


class LinkMap(nn.Module):
    """A float32 linear map on L2-normalised note embeddings, then propagation over the links, renormalised."""

    config_keys = ["dim", "alpha"]

    def __init__(self, dim: int, alpha: float = 0.0):
        super().__init__()
        self.dim, self.alpha = dim, alpha
        self.weight = nn.Parameter(torch.eye(dim), requires_grad=False)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The map alone (no propagation): differentiable in ``weight``."""
        return map_embeddings(embeddings, self.weight)

    @torch.no_grad()
    def apply(self, embeddings: np.ndarray, adjacency: list[set[int]] | None = None,
              alpha: float | None = None) -> np.ndarray:
        """The learned embeddings of float32 (n, dim) base embeddings; ``adjacency`` (links per row, both
        directions) adds the propagation, at strength ``alpha`` (default: the learned one)."""
        mapped = self(torch.as_tensor(embeddings)).numpy()
        alpha = self.alpha if alpha is None else alpha
        if adjacency is None or alpha == 0:
            return mapped
        return propagate(mapped, adjacency, alpha)

    def get_config_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.config_keys}

    def save(self, folder: Path) -> None:
        """``folder/config.json`` and ``folder/model.safetensors`` (each written atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": self.weight.detach().cpu().contiguous()}
        atomic_write_bytes(folder / "model.safetensors", save_safetensors(tensors))
        atomic_write_text(folder / "config.json", json.dumps(self.get_config_dict()))

    @classmethod
    def load(cls, folder: Path) -> "LinkMap":
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        link_map = cls(**{key: config[key] for key in cls.config_keys})
        link_map.load_state_dict(load_safetensors((folder / "model.safetensors").read_bytes()))
        return link_map


def map_embeddings(embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """normalize(W x) for each row x of ``embeddings``: the map under any candidate ``weight``."""
    return F.normalize(embeddings.float() @ weight.T, p=2, dim=-1)


def propagate(embeddings: np.ndarray, adjacency: list[set[int]], alpha: float) -> np.ndarray:
    """normalize(e_i + α · mean of e_j over i's linked notes j); notes without links keep their embedding."""
    out = embeddings.copy()
    for i, linked in enumerate(adjacency):
        if linked:
            out[i] += alpha * embeddings[sorted(linked)].mean(0)
    return out / np.linalg.norm(out, axis=1, keepdims=True)
