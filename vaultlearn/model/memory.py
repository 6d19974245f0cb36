"""SparseMemory: a product-key memory layer added residually to a transformer's token states.

Lample et al. 2019 product keys, read the way Berges et al. 2024 describe: the query is a fixed projection of the
LayerNorm'd hidden state, split in two halves; each half is scored against its own table of √N sub-keys, the
top-k of each half are combined by Cartesian product, the top-k of the summed scores are softmax-weighted, and
the output is the weighted sum of those value rows (``embedding_bag``, so only the rows read are touched).

This is a retrofit onto a model never pretrained with a memory, so the values start at zero (the model's output
is unchanged until something is learned) and the sub-keys are frozen after a k-means initialisation on the
vault's own hidden states, which spreads slot use evenly. Only ``values`` is a parameter.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SparseMemory(nn.Module):
    """Product-key memory of ``n_slots`` value rows of width ``dim``, read by ``heads`` heads of ``topk`` slots."""

    def __init__(self, dim: int, n_slots: int, topk: int, heads: int, key_dim: int = 64, seed: int = 0):
        super().__init__()
        n_sub = math.isqrt(n_slots)
        if n_sub * n_sub != n_slots:
            raise ValueError(f"memory_slots must be a perfect square, got {n_slots}")
        if key_dim % 2 or topk > n_sub:
            raise ValueError(f"need an even key_dim and topk <= sqrt(slots); got {key_dim}, {topk}")
        self.dim, self.n_slots, self.n_sub = dim, n_slots, n_sub
        self.topk, self.heads, self.key_dim = topk, heads, key_dim
        gen = torch.Generator().manual_seed(seed)
        proj = torch.randn(dim, heads * key_dim, generator=gen) / math.sqrt(dim)
        self.register_buffer("query_proj", proj)
        keys = torch.randn(heads, 2, n_sub, key_dim // 2, generator=gen)
        self.register_buffer("keys", keys)
        self.values = nn.Parameter(torch.zeros(n_slots, dim))
        self._active_cache: tuple[int, bool] | None = None

    # ----- reading -----
    def queries(self, hidden: torch.Tensor) -> torch.Tensor:
        """Half-queries, shape (..., heads, 2, key_dim/2), from the LayerNorm'd hidden states."""
        q = F.layer_norm(hidden.float(), (self.dim,)) @ self.query_proj
        return q.view(*hidden.shape[:-1], self.heads, 2, self.key_dim // 2)

    def lookup(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slot ids and softmax weights, each (..., heads*topk), for every token state in ``hidden``.

        Always float32 (autocast off), so a note reads the same slots in encoding and in training."""
        with torch.autocast(hidden.device.type, enabled=False):
            return self._lookup(hidden)

    def _lookup(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.queries(hidden)
        # score = -1/2 |q - key|^2 up to a per-query constant, so each half ranks sub-keys by distance
        sub = torch.einsum("...hsd,hsnd->...hsn", q, self.keys) - 0.5 * (self.keys**2).sum(-1)
        s_top, i_top = sub.topk(self.topk, dim=-1)  # (..., heads, 2, k)
        pair = s_top[..., 0, :, None] + s_top[..., 1, None, :]  # (..., heads, k, k)
        best, flat = pair.flatten(-2).topk(self.topk, dim=-1)  # (..., heads, k)
        i1 = torch.gather(i_top[..., 0, :], -1, flat // self.topk)
        i2 = torch.gather(i_top[..., 1, :], -1, flat % self.topk)
        idx = i1 * self.n_sub + i2
        weights = torch.softmax(best, dim=-1)
        return idx.flatten(-2), weights.flatten(-2)

    def read(self, idx: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Weighted sum of the value rows ``idx`` (..., m) with ``weights`` (..., m) → (..., dim)."""
        shape = idx.shape[:-1]
        out = F.embedding_bag(
            idx.reshape(-1, idx.shape[-1]),
            self.values,
            per_sample_weights=weights.reshape(-1, idx.shape[-1]).to(self.values.dtype),
            mode="sum",
        )
        return out.view(*shape, self.dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Memory readout for ``hidden`` (..., dim), same dtype; the caller adds it residually."""
        idx, weights = self.lookup(hidden)
        return self.read(idx, weights).to(hidden.dtype)

    @staticmethod
    def token_slots(idx: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """All slot ids read by the non-padding tokens: ``idx`` (batch, seq, m), ``mask`` (batch, seq) → flat ids."""
        return idx[mask.bool()].reshape(-1)

    @property
    def active(self) -> bool:
        """True once any value is non-zero (before that the memory adds exactly nothing and is skipped)."""
        version = self.values._version
        if self._active_cache is None or self._active_cache[0] != version:
            self._active_cache = (version, bool(self.values.detach().ne(0).any()))
        return self._active_cache[1]

    # ----- initialisation -----
    @torch.no_grad()
    def init_keys(self, hidden: torch.Tensor, *, iters: int = 10, seed: int = 0) -> None:
        """Set every head's two sub-key tables to k-means centroids of the half-queries of ``hidden`` (tokens, dim)."""
        q = self.queries(hidden.to(self.query_proj.device))  # (tokens, heads, 2, d/2)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        for h in range(self.heads):
            for s in range(2):
                self.keys[h, s] = kmeans(q[:, h, s], self.n_sub, iters=iters, generator=gen)

    def slot_usage(self, hidden: torch.Tensor) -> torch.Tensor:
        """Access counts per slot (n_slots,) for the token states ``hidden`` (tokens, dim)."""
        idx, _ = self.lookup(hidden)
        return torch.bincount(idx.reshape(-1), minlength=self.n_slots)


def kmeans(points: torch.Tensor, k: int, *, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means from a seeded random pick of points: ``points`` (n, d) → centroids (k, d).

    Empty clusters are re-seeded on the points farthest from their centroid, so every sub-key ends up used."""
    n = points.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least {k} token states, got {n}")
    centroids = points[torch.randperm(n, generator=generator)[:k].to(points.device)].clone()
    for _ in range(iters):
        dist = torch.cdist(points, centroids)
        assign = dist.argmin(1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp(min=1)[:, None])
        if empty.any():
            far = dist.gather(1, assign[:, None]).squeeze(1).topk(int(empty.sum())).indices
            centroids[empty] = points[far]
    return centroids
