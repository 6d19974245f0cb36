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

CPU_LOOKUP_CHUNK = 1024  # token states per lookup pass on a CPU: about a fifth faster than one pass over a batch


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
        # the sub-key pairs that can be among the k best sums, as columns into the two halves' top-k side by side:
        # with each half best first, the pair of ranks (i, j) (from 1) is beaten by the i·j − 1 pairs of no worse
        # rank in both, so only i·j ≤ k are needed (k·H(k) pairs, 119 of 1,024 at k = 32; the same top k, ties aside)
        first, second = zip(*[(i, j) for i in range(topk) for j in range(topk) if (i + 1) * (j + 1) <= topk])
        self.register_buffer("pair_first", torch.tensor(first), persistent=False)
        self.register_buffer("pair_second", torch.tensor(second) + topk, persistent=False)
        self._written_cache: tuple[int, torch.Tensor, int] | None = None

    # ----- reading -----
    def queries(self, hidden: torch.Tensor) -> torch.Tensor:
        """Half-queries, shape (..., heads, 2, key_dim/2), from the LayerNorm'd hidden states."""
        q = F.layer_norm(hidden.float(), (self.dim,)) @ self.query_proj
        return q.view(*hidden.shape[:-1], self.heads, 2, self.key_dim // 2)

    def lookup(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slot ids and softmax weights, each (..., heads*topk), for every token state in ``hidden``.

        Always float32 (autocast off), so a note reads the same slots in encoding and in training. On a CPU the
        tokens go through in chunks of ``CPU_LOOKUP_CHUNK``, whose sub-key scores stay in cache (the same slots)."""
        flat = hidden.reshape(-1, self.dim)
        chunk = CPU_LOOKUP_CHUNK if hidden.device.type == "cpu" else max(len(flat), 1)
        with torch.autocast(hidden.device.type, enabled=False):
            bias = 0.5 * (self.keys**2).sum(-1)
            parts = [self._lookup(part, bias) for part in flat.split(chunk)]
        idx, weights = (torch.cat(p) if len(parts) > 1 else p[0] for p in zip(*parts))
        shape = (*hidden.shape[:-1], self.heads * self.topk)
        return idx.view(shape), weights.view(shape)

    def _lookup(self, hidden: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`lookup` for token states (tokens, dim), with ``bias`` = ½|key|² of each sub-key."""
        q = self.queries(hidden)
        # score = -1/2 |q - key|^2 up to a per-query constant, so each half ranks sub-keys by distance
        sub = torch.einsum("thsd,hsnd->thsn", q, self.keys) - bias
        s_top, i_top = sub.topk(self.topk, dim=-1)  # (tokens, heads, 2, k), each half best first
        s_top, i_top = s_top.reshape(-1, 2 * self.topk), i_top.reshape(-1, 2 * self.topk)
        first, second = self.pair_first, self.pair_second
        pair = s_top.index_select(1, first) + s_top.index_select(1, second)  # the sums that can be among the k best
        best, chosen = pair.topk(self.topk, dim=-1)
        idx = torch.gather(i_top, 1, first[chosen]) * self.n_sub + torch.gather(i_top, 1, second[chosen])
        return idx, torch.softmax(best, dim=-1)

    def read(self, idx: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Weighted sum of the value rows ``idx`` (..., m) with ``weights`` (..., m) → (..., dim).

        Without gradients, and with fewer than half the rows written, only the written rows are summed (the others
        are zero): the same readout, up to rounding, for a fraction of the rows read."""
        shape, m = idx.shape[:-1], idx.shape[-1]
        idx, weights = idx.reshape(-1, m), weights.reshape(-1, m).to(self.values.dtype)
        reading_only = not (torch.is_grad_enabled() and self.values.requires_grad)
        written, count = self._written() if reading_only else (None, self.n_slots)  # training reads every row
        if 2 * count < self.n_slots:
            kept = written[idx]
            counts = kept.sum(1)
            offsets = torch.cumsum(counts, 0) - counts
            out = F.embedding_bag(idx[kept], self.values, offsets, per_sample_weights=weights[kept], mode="sum")
        else:
            out = F.embedding_bag(idx, self.values, per_sample_weights=weights, mode="sum")
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
        return self.written_count > 0

    @property
    def written_count(self) -> int:
        """How many value rows have a non-zero entry."""
        return self._written()[1]

    def _written(self) -> tuple[torch.Tensor, int]:
        """(n_slots,) bool of the value rows with a non-zero entry, and their count (kept until the values change)."""
        version = self.values._version
        if self._written_cache is None or self._written_cache[0] != version:
            rows = self.values.detach().ne(0).any(1)
            self._written_cache = (version, rows, int(rows.sum()))
        return self._written_cache[1:]

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
