"""LinkMap: what the vault's links teach, as a linear map on the base model's note embeddings (saves and loads
itself).

A note's learned embedding is normalize(W x), x the base model's embedding and W (dim × dim) starting at the
identity. The base model is never changed: the store keeps base embeddings, and the map is applied where
vectors are searched (:mod:`vaultlearn.index.learned`), so a learned phase re-maps vectors instead of
re-encoding any text. Saved as ``config.json`` + ``model.safetensors`` in a folder, as sentence-transformers'
``models.Dense`` does.
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
from vaultlearn.index.learned import MAP_CONFIG, MAP_WEIGHTS, map_vectors


class LinkMap(nn.Module):
    """A float32 linear map on L2-normalised note embeddings, renormalised."""

    config_keys = ["dim"]

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.eye(dim), requires_grad=False)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Differentiable in ``weight``."""
        return map_embeddings(embeddings, self.weight)

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        """The learned embeddings of float32 (n, dim) base embeddings."""
        return map_vectors(embeddings, self.weight.detach().cpu().numpy())

    def get_config_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.config_keys}

    def save(self, folder: Path) -> None:
        """``folder/config.json`` and ``folder/model.safetensors`` (each written atomically)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": self.weight.detach().cpu().contiguous()}
        atomic_write_bytes(folder / MAP_WEIGHTS, save_safetensors(tensors))
        atomic_write_text(folder / MAP_CONFIG, json.dumps(self.get_config_dict()))

    @classmethod
    def load(cls, folder: Path) -> "LinkMap":
        folder = Path(folder)
        config = json.loads((folder / MAP_CONFIG).read_text())
        link_map = cls(**{key: config[key] for key in cls.config_keys})
        link_map.load_state_dict(load_safetensors((folder / MAP_WEIGHTS).read_bytes()))
        return link_map


def map_embeddings(embeddings: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """normalize(W x) for each row x of ``embeddings``: the map under any candidate ``weight`` (differentiable;
    :func:`vaultlearn.index.learned.map_vectors` is the same map in numpy, for search)."""
    return F.normalize(embeddings.float() @ weight.T, p=2, dim=-1)
