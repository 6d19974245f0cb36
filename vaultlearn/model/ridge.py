"""Closed-form starting maps for a link-map phase: ridge regression of each link's one end on the other.

Over the fitting links in both directions (x → y and y → x, each with its TWP weight w), a map W minimises
Σ w·‖W x − y‖² + Σ_ij c_ij (W_ij − P_ij)², P the previous phase's map. With c = μ (``STRENGTHS``, in units of
the mean eigenvalue of Σ w x xᵀ) every output row shares one solve; held by the online-EWC importance F̂ (over
its largest entry), c_ij = μ + ν F̂_ij (``HELD_STRENGTHS`` × ``FISHER_STRENGTHS``), each output row i solves
(Σ w x xᵀ + diag c_i) W_i = Σ w x y_i + c_i ⊙ P_i (all rows at once, by conjugate gradients) — the EWC penalty
in closed form, so entries the earlier phases rely on stay near where those phases left them. The learner
checks every map like an Adam step and starts its steps from the best one.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix

STRENGTHS = (0.3, 1.0, 3.0, 10.0)  # μ of the plain ridge maps
HELD_STRENGTHS = (0.3, 1.0)  # μ of the Fisher-held maps
FISHER_STRENGTHS = (10.0, 100.0, 1000.0)  # ν: how hard the importance holds an entry
CG_TOLERANCE = 1e-8  # each row's residual relative to its right-hand side
TINY = 1e-300  # keeps a converged row's conjugate-gradient step finite


def ridge_maps(embeddings: np.ndarray, pairs: np.ndarray, weights: np.ndarray, previous: torch.Tensor,
               importance: torch.Tensor | None = None) -> list[torch.Tensor]:
    """float32 (dim, dim) maps: one per μ of ``STRENGTHS``, then, if ``importance`` (dim, dim) has a positive
    entry, one per (μ, ν) of ``HELD_STRENGTHS`` × ``FISHER_STRENGTHS``. ``pairs`` (n, 2) index ``embeddings``."""
    xx, xy = (torch.from_numpy(m) for m in _link_moments(embeddings, pairs, weights))
    prev = previous.detach().double().cpu()
    dim = len(xx)
    unit = float(torch.trace(xx)) / dim
    eye = torch.eye(dim, dtype=torch.float64)
    plain = {mu: torch.linalg.solve(xx + mu * unit * eye, xy + mu * unit * prev.T).T for mu in STRENGTHS}
    maps = list(plain.values())
    if importance is not None and float(importance.max()) > 0:
        held = importance.detach().double().cpu() / float(importance.max())
        for mu in HELD_STRENGTHS:
            for nu in FISHER_STRENGTHS:
                maps.append(_held_map(xx, xy, prev, unit * (mu + nu * held), start=plain.get(mu, prev)))
    return [m.float().contiguous() for m in maps]


def _link_moments(embeddings: np.ndarray, pairs: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ w x xᵀ and Σ w x yᵀ (float64) over the links in both directions, summed per note rather than per link:
    Xᵀ diag(d) X and Xᵀ (S + Sᵀ) X over the linked notes X, d their weighted degrees and S the weighted links (at
    100k notes and 160k links, three times fewer products and none of the per-link copies)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    notes, ends = np.unique(pairs, return_inverse=True)
    ends = ends.reshape(-1, 2)
    x = np.asarray(embeddings, dtype=np.float64)[notes]
    w = np.asarray(weights, dtype=np.float64)
    degree = np.bincount(ends.reshape(-1), weights=np.repeat(w, 2), minlength=len(notes))
    links = coo_matrix((w, (ends[:, 0], ends[:, 1])), shape=(len(notes), len(notes))).tocsr()
    return (x * degree[:, None]).T @ x, x.T @ ((links + links.T) @ x)


def _held_map(xx: torch.Tensor, xy: torch.Tensor, prev: torch.Tensor, strength: torch.Tensor,
              start: torch.Tensor) -> torch.Tensor:
    """argmin Σ w‖W x − y‖² + Σ_ij strength_ij (W_ij − prev_ij)², every row's system (xx + diag strength_i) W_i =
    xy_i + strength_i ⊙ prev_i solved at once by Jacobi-preconditioned conjugate gradients from ``start``.

    By hand rather than with scipy's ``cg`` (one system per call) or a batched direct solve (one factorisation per
    row: 4.5 s per map at dim 384 on one core, against 0.2 s here for the same map to 1e-8)."""
    rhs = xy.T + strength * prev
    diagonal = torch.diagonal(xx) + strength
    w = start.clone()
    residual = rhs - (w @ xx + strength * w)
    z = residual / diagonal
    direction = z.clone()
    rz = (residual * z).sum(1, keepdim=True)
    goal = CG_TOLERANCE * rhs.norm(dim=1)
    for _ in range(len(xx)):  # exact in dim steps without rounding
        if (residual.norm(dim=1) <= goal).all():
            break
        pushed = direction @ xx + strength * direction
        step = rz / (direction * pushed).sum(1, keepdim=True).clamp_min(TINY)
        w += step * direction
        residual -= step * pushed
        z = residual / diagonal
        rz_next = (residual * z).sum(1, keepdim=True)
        direction = z + rz_next / rz.clamp_min(TINY) * direction
        rz = rz_next
    return w
