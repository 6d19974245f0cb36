"""Diagonal Fisher information, online EWC, Fisher-stable output dimensions, and the Fisher overlap.

- The Fisher is the mean of PER-EXAMPLE squared gradients of the link loss (one backward per example), not the
  square of a batch gradient, which underestimates it (E[g]² ≤ E[g²]; Kunstner et al. 2019, van de Ven 2025).
- Online EWC (Schwarz et al. 2018; Huszár 2018): one running importance F ← γF + F_new and one anchor, the
  parameters after the latest phase; penalty λ/2·Σ F_i (θ_i − θ*_i)².
- Fisher-stable dimensions: the Fisher of the output embedding dimensions; later phases' loss gradients reaching
  the embedding are scaled by 1 − ρ·f̂_j (f̂ = that Fisher over its max), so updates move old phases' dimensions less.
- Fisher overlap (Kirkpatrick et al. 2017, SI): unit-trace normalise, d² = ½Σ(√p − √q)², overlap = 1 − d².
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

ExampleLoss = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def per_example_fisher(
    examples: Iterable[ExampleLoss], params: Sequence[torch.Tensor]
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Mean per-example squared gradients of ``params``, and of the output embedding each example returns.

    Each example is a closure returning ``(loss, embedding)`` for ONE example (``embedding`` may be None)."""
    fisher = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    dims: torch.Tensor | None = None
    count = 0
    for example in examples:
        loss, emb = example()
        wrt = [*params, emb] if emb is not None else list(params)
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        for f, g in zip(fisher, grads[: len(params)]):
            if g is not None:
                f.add_(g.detach().float().pow(2))
        if emb is not None and grads[-1] is not None:
            sq = grads[-1].detach().float().pow(2).reshape(-1, grads[-1].shape[-1]).sum(0)
            dims = sq if dims is None else dims + sq
        count += 1
    if count:
        for f in fisher:
            f /= count
        if dims is not None:
            dims /= count
    return fisher, dims


def unit_max(x: torch.Tensor) -> torch.Tensor:
    """``x`` scaled so that its largest entry is 1 (zeros stay zeros)."""
    top = x.abs().max()
    return x / top if top > 0 else x.clone()


class OnlineEWC:
    """One running importance per parameter and one anchor (the parameters after the latest phase)."""

    def __init__(self, gamma: float = 1.0):
        self.gamma = gamma
        self.importance: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def consolidate(self, importance: dict[str, torch.Tensor], params: dict[str, torch.Tensor]) -> None:
        """F ← γF + F_new; anchor ← current parameter values."""
        for name, new in importance.items():
            old = self.importance.get(name)
            self.importance[name] = new.detach().clone() if old is None else self.gamma * old + new.detach()
        self.anchor = {name: p.detach().clone() for name, p in params.items()}

    def penalty(self, params: dict[str, torch.Tensor], lam: float) -> torch.Tensor:
        """λ/2·Σ F (θ − θ*)² over the parameters that have an importance (0 before the first phase)."""
        total = None
        for name, p in params.items():
            if name in self.importance:
                term = (self.importance[name] * (p - self.anchor[name]).pow(2)).sum()
                total = term if total is None else total + term
        if total is None:
            return torch.zeros((), device=next(iter(params.values())).device)
        return 0.5 * lam * total

    def proximal_rows(
        self, name: str, param: torch.Tensor, rows: torch.Tensor, stepped: torch.Tensor, lr: float, lam: float
    ) -> torch.Tensor:
        """Exact minimiser, for the given rows, of ½‖θ − stepped‖²/lr + λ/2·F(θ − θ*)² (stable at any λ·lr)."""
        if name not in self.importance:
            return stepped
        f = self.importance[name][rows]
        anchor = self.anchor[name][rows]
        return (stepped + lr * lam * f * anchor) / (1 + lr * lam * f)

    def state(self) -> dict[str, torch.Tensor]:
        """Flat tensors for saving: ``importance.<name>`` and ``anchor.<name>``."""
        out = {f"importance.{k}": v for k, v in self.importance.items()}
        out.update({f"anchor.{k}": v for k, v in self.anchor.items()})
        return out

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state`."""
        for key, value in tensors.items():
            kind, _, name = key.partition(".")
            if kind == "importance":
                self.importance[name] = value
            elif kind == "anchor":
                self.anchor[name] = value


class StableDims:
    """Fisher of the output embedding dimensions, accumulated across phases, and the gradient damping it implies."""

    def __init__(self, dim: int, damping: float, gamma: float = 1.0):
        self.fisher = torch.zeros(dim)
        self.damping = damping
        self.gamma = gamma

    def consolidate(self, dim_fisher: torch.Tensor) -> None:
        """F_dims ← γF_dims + F_new (both on CPU)."""
        self.fisher = self.gamma * self.fisher + dim_fisher.detach().float().cpu()

    def scale(self) -> torch.Tensor:
        """Per-dimension factor 1 − ρ·f̂ applied to loss gradients at the output embedding (all ones at first)."""
        return 1.0 - self.damping * unit_max(self.fisher)

    def hook(self, emb: torch.Tensor) -> None:
        """Damp the gradient that flows back into ``emb`` (batch, dim) along the Fisher-stable dimensions."""
        if emb.requires_grad and self.fisher.any():
            factor = self.scale().to(emb.device, emb.dtype)
            emb.register_hook(lambda g: g * factor)


def fisher_overlap(fp: torch.Tensor | np.ndarray, fq: torch.Tensor | np.ndarray) -> float:
    """Kirkpatrick et al.'s Fisher overlap of two diagonal Fishers: 1 − ½Σ(√p − √q)² after unit-trace scaling."""
    p = np.asarray(fp.detach().cpu() if isinstance(fp, torch.Tensor) else fp, dtype=np.float64).ravel()
    q = np.asarray(fq.detach().cpu() if isinstance(fq, torch.Tensor) else fq, dtype=np.float64).ravel()
    if p.shape != q.shape:
        raise ValueError(f"Fishers of different shapes: {p.shape} vs {q.shape}")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("Fishers must be non-negative with a positive trace")
    p, q = p / p.sum(), q / q.sum()
    d2 = 0.5 * float(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))
    return 1.0 - d2
