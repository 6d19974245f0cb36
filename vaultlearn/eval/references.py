"""Reference strategies without a memory, run through the protocol on the same split: the bar a learner must clear.

propagate: no training; each known note's frozen embedding plus ``PROPAGATE_ALPHA`` × the mean frozen embedding
of the notes it is linked with (visible links, both directions), renormalised.
adapter: a linear map W (dim × dim, identity at the start, float32) on the frozen embeddings, trained phase after
phase on the phase's links with the learners' InfoNCE, batches and hard negatives, for ``ADAPTER_STEPS`` steps
(it costs about a second, so it is not cut to the run's step budget); every known note is mapped again.
Adam at ``ADAPTER_LR`` = 1e-4: on mathwiki (3 seeds, both protocols) 1e-3 lost 0.10 / 0.07 R@10 to drift
(the top-10 of 73% of old notes changed per phase), 1e-4 gained +0.023 / +0.031, and +0.049 / +0.061 once a
batch's repeated notes were no negatives (docs/RESULTS.md).
(joint, full finetuning on all phases' training links at once, is a dense strategy: see strategies.py.)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from vaultlearn.config import Config
from vaultlearn.errors import require_finite
from vaultlearn.model.linkmap import map_embeddings
from vaultlearn.model.pairs import PhaseData, batch_loss, plan_phase

REFERENCES = ("propagate", "adapter", "joint")  # joint: a dense strategy (eval/learners.py)
PROPAGATE_ALPHA = 0.5
ADAPTER_STEPS = 200
ADAPTER_LR = 1e-4


def propagate(embeddings: np.ndarray, adjacency: list[set[int]], alpha: float) -> np.ndarray:
    """normalize(e_i + α · mean of e_j over i's linked notes j); notes without links keep their embedding."""
    out = embeddings.copy()
    for i, linked in enumerate(adjacency):
        if linked:
            out[i] += alpha * embeddings[sorted(linked)].mean(0)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class Propagate:
    """Frozen embeddings smoothed over the visible links; recomputed from the frozen ones at every phase."""

    def __init__(self, frozen: np.ndarray):
        self.frozen = frozen

    def refresh(self, known: np.ndarray, emb: np.ndarray) -> None:
        """New notes keep their frozen embedding until the next phase smooths them."""

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        out = propagate(self.frozen[known], data.adjacency, PROPAGATE_ALPHA)
        changed = np.any(out != emb[known], axis=1)
        emb[known] = out
        return int(changed.sum())


class Adapter:
    """A float32 linear map on the frozen embeddings, trained on each phase's links in turn."""

    def __init__(self, frozen: np.ndarray, config: Config):
        self.frozen = frozen
        self.config = replace(config, learn_steps=ADAPTER_STEPS)
        dim = frozen.shape[1]
        self.weight = torch.nn.Parameter(torch.eye(dim))
        self.optimizer = torch.optim.Adam([self.weight], lr=ADAPTER_LR)

    def _map(self, rows: np.ndarray) -> torch.Tensor:
        return map_embeddings(torch.as_tensor(self.frozen[rows]), self.weight)

    def refresh(self, known: np.ndarray, emb: np.ndarray) -> None:
        """Notes that just became known are mapped with the current W."""
        with torch.no_grad():
            emb[known] = self._map(known).numpy()

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        if not data.pairs:
            return 0
        pairs = np.asarray(data.pairs, dtype=np.int64)
        weights = torch.as_tensor(data.weights, dtype=torch.float32)
        batches, negatives = plan_phase(data, emb[known], self.config, k)
        for step, (batch, neg) in enumerate(zip(batches, negatives)):
            loss = batch_loss(lambda notes: self._map(known[notes]), pairs, batch, neg, weights)
            require_finite(loss, f"adapter training loss of phase {phase!r} at step {step + 1}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.refresh(known, emb)
        return len(known)
