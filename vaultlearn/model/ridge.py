"""Closed-form starting maps for a link-map phase: ridge regression of each link's one end on the other.

Over the fitting links in both directions (x → y and y → x, each with its TWP weight w), a map W minimises
Σ w·‖W x − y‖² + Σ_ij c_ij (W_ij − P_ij)², P the previous phase's map. With c = μ (``STRENGTHS``, in units of
the mean eigenvalue of Σ w x xᵀ) every output row shares one solve; held by the online-EWC importance F̂ (over
its largest entry), c_ij = μ + ν F̂_ij (``HELD_STRENGTHS`` × ``FISHER_STRENGTHS``), each output row i solves
(Σ w x xᵀ + diag c_i) W_i = Σ w x y_i + c_i ⊙ P_i — the EWC penalty in closed form, so entries the earlier
phases rely on stay near where those phases left them. The learner checks every map like an Adam step and
starts its steps from the best one.
"""

from __future__ import annotations

import numpy as np
import torch

STRENGTHS = (0.3, 1.0, 3.0, 10.0)  # μ of the plain ridge maps
HELD_STRENGTHS = (0.3, 1.0)  # μ of the Fisher-held maps
FISHER_STRENGTHS = (10.0, 100.0, 1000.0)  # ν: how hard the importance holds an entry
ROWS_PER_SOLVE = 64  # output rows solved together (64 × dim² float64: 75 MB at dim 384)


def ridge_maps(embeddings: np.ndarray, pairs: np.ndarray, weights: np.ndarray, previous: torch.Tensor,
               importance: torch.Tensor | None = None) -> list[torch.Tensor]:
    """float32 (dim, dim) maps: one per μ of ``STRENGTHS``, then, if ``importance`` (dim, dim) has a positive
    entry, one per (μ, ν) of ``HELD_STRENGTHS`` × ``FISHER_STRENGTHS``. ``pairs`` (n, 2) index ``embeddings``."""
    x = np.asarray(embeddings, dtype=np.float64)[pairs.reshape(-1)].reshape(len(pairs), 2, -1)
    source = np.concatenate([x[:, 0], x[:, 1]])
    target = np.concatenate([x[:, 1], x[:, 0]])
    w = np.concatenate([weights, weights]).astype(np.float64)[:, None]
    xx = torch.from_numpy((source * w).T @ source)
    xy = torch.from_numpy((source * w).T @ target)
    prev = previous.detach().double().cpu()
    dim = len(xx)
    unit = float(torch.trace(xx)) / dim
    eye = torch.eye(dim, dtype=torch.float64)
    maps = [torch.linalg.solve(xx + mu * unit * eye, xy + mu * unit * prev.T).T for mu in STRENGTHS]
    if importance is not None and float(importance.max()) > 0:
        held = (importance.detach().double().cpu() / float(importance.max()))
        for mu in HELD_STRENGTHS:
            for nu in FISHER_STRENGTHS:
                maps.append(_held_map(xx, xy, prev, unit * (mu + nu * held)))
    return [m.float().contiguous() for m in maps]


def _held_map(xx: torch.Tensor, xy: torch.Tensor, prev: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Rows i of argmin Σ w‖W x − y‖² + Σ_ij strength_ij (W_ij − prev_ij)²: one (dim, dim) solve per row."""
    rows = []
    for lo in range(0, len(prev), ROWS_PER_SOLVE):
        c = strength[lo: lo + ROWS_PER_SOLVE]
        lhs = xx.unsqueeze(0) + torch.diag_embed(c)
        rhs = xy[:, lo: lo + ROWS_PER_SOLVE].T + c * prev[lo: lo + ROWS_PER_SOLVE]
        rows.append(torch.linalg.solve(lhs, rhs.unsqueeze(-1)).squeeze(-1))
    return torch.cat(rows)
