"""What every link learner trains on: a phase's data, the seeded batch plan with graph-aware hard negatives,
the weighted InfoNCE loss (a batch's repeated notes are no negatives), and the one-example loss closures the
per-example Fisher needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vaultlearn.config import Config
from vaultlearn.metrics import candidate_columns, columns_of, score_blocks

LOSS_SCALE = 20.0  # cosine → logit scale of MultipleNegativesRankingLoss
HARD_NEGATIVE_POOL = 10  # nearest non-linked notes an anchor's hard negative is drawn from


@dataclass
class PhaseData:
    """What one phase's learning sees. Indices refer to ``texts`` (all notes known now)."""

    texts: list[str]
    phase_notes: np.ndarray  # this phase's notes
    pairs: list[tuple[int, int]]  # (anchor, positive): the phase's links
    background: np.ndarray  # notes of the phases already learned (before the first phase: the vault's others)
    adjacency: list[set[int]]  # undirected links per note (every link the learner may see)
    weights: np.ndarray | None = None  # per pair; None: graph edge weights (config.edge_weighting)


def info_nce(
    anchor: torch.Tensor, candidates: torch.Tensor, weights: torch.Tensor, scale: float = LOSS_SCALE,
    ignored: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted InfoNCE: anchor i's positive is candidates[i]; every other candidate row is a negative, but where
    ``ignored`` (anchors × candidates, bool) is True."""
    logits = scale * anchor @ candidates.T
    if ignored is not None:
        logits = logits.masked_fill(ignored, float("-inf"))
    per_pair = F.cross_entropy(logits, torch.arange(len(anchor), device=anchor.device), reduction="none")
    return (weights * per_pair).sum() / weights.sum()


def repeated_notes(anchors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(anchors, candidates) bool: the candidate columns that are no negative of an anchor, because they are the
    same note as its positive (``candidates[i]`` is anchor i's) or as the anchor itself. A batch's links share
    targets (a vault's hubs), and a note that two links reach would otherwise be pushed away from the anchor as
    hard as it is pulled towards it: the duplicates sentence-transformers keeps out of in-batch-negative batches
    with its no-duplicates batch sampler."""
    n = len(anchors)
    repeated = (candidates[None, :] == candidates[:n, None]) | (candidates[None, :] == anchors[:, None])
    repeated[np.arange(n), np.arange(n)] = False
    return repeated


def batch_loss(
    embed: Callable[[np.ndarray], torch.Tensor],
    pairs: np.ndarray,
    batch: np.ndarray,
    negatives: np.ndarray,
    weights: torch.Tensor,
) -> torch.Tensor:
    """:func:`info_nce` of one planned batch: its anchors against its positives and hard negatives (``-1``: none)
    but their :func:`repeated_notes`, each note embedded once by ``embed`` (note indices → differentiable
    embeddings); ``weights`` per pair."""
    anchors, candidates = pairs[batch, 0], np.concatenate([pairs[batch, 1], negatives[negatives >= 0]])
    notes, where = np.unique(np.concatenate([anchors, candidates]), return_inverse=True)
    emb = embed(notes)
    n = len(batch)
    where = torch.as_tensor(where, device=emb.device)
    ignored = torch.as_tensor(repeated_notes(anchors, candidates), device=emb.device)
    return info_nce(emb[where[:n]], emb[where[n:]], weights[batch].to(emb.device), ignored=ignored)


def pair_batches(n_pairs: int, batch: int, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``steps`` batches of pair indices: seeded epochs without replacement, reshuffled each epoch."""
    batch = min(batch, n_pairs)
    out, pool = [], np.zeros(0, dtype=np.int64)
    for _ in range(steps):
        if len(pool) < batch:
            pool = np.concatenate([pool, rng.permutation(n_pairs)])
        out.append(pool[:batch])
        pool = pool[batch:]
    return out


def hard_negative_pool(
    emb: np.ndarray, anchors: Sequence[int], exclude: Mapping[int, set[int]] | Sequence[set[int]],
    candidates: np.ndarray, size: int
) -> dict[int, np.ndarray]:
    """Per anchor, its ``size`` nearest candidates (cosine, ties in candidate order) that are neither itself nor
    in ``exclude[anchor]``. Anchors are scored in blocks (:func:`metrics.score_blocks`)."""
    pool: dict[int, np.ndarray] = {}
    cand = np.asarray(candidates, dtype=np.int64)
    anchors = np.array(sorted(set(int(a) for a in anchors)), dtype=np.int64)
    if not len(cand) or not len(anchors):
        return {int(a): np.zeros(0, dtype=np.int64) for a in anchors}
    column, keep = candidate_columns(len(emb), cand), min(size, len(cand))
    for begin, scores in score_blocks(emb, anchors, emb[cand]):
        part = anchors[begin:begin + len(scores)]
        for row, a in enumerate(part.tolist()):
            scores[row, columns_of(column, exclude[a] | {a})] = -np.inf
        kth = -np.partition(-scores, keep - 1, axis=1)[:, keep - 1]  # the keep-th best score of each anchor
        for row, a in enumerate(part.tolist()):
            near = np.flatnonzero((scores[row] >= kth[row]) & (scores[row] > -np.inf))
            order = near[np.argsort(-scores[row, near], kind="stable")[:size]]
            pool[a] = cand[order]
    return pool


def plan_phase(
    data: PhaseData, emb: np.ndarray, config: Config, phase_index: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The phase's training batches (pair indices) and one hard negative per anchor (-1: none), seeded.

    Hard negatives are drawn from each anchor's nearest notes under ``emb`` (the current model's embeddings of
    ``data.texts``) that are more than two links away: a near note that shares a neighbour with the anchor is
    too often a link not written yet (or one held out) to be pushed away."""
    rng = np.random.default_rng([config.seed, phase_index])
    pairs = np.asarray(data.pairs, dtype=np.int64)
    near = [set(n) for n in data.adjacency]
    for a, b in data.pairs:
        near[a].add(b)
        near[b].add(a)
    batches = pair_batches(len(pairs), config.learn_batch_size, config.learn_steps, rng)
    anchors = np.unique(pairs[np.concatenate([np.zeros(0, np.int64), *batches]), 0])  # the steps' anchors only
    exclude = {a: set().union(near[a], *(near[b] for b in near[a])) for a in anchors.tolist()}
    pool = hard_negative_pool(emb, anchors, exclude, np.arange(len(data.texts)), HARD_NEGATIVE_POOL)
    negatives = [
        np.array([rng.choice(pool[a]) if len(pool[a]) else -1 for a in pairs[b, 0]], dtype=np.int64)
        for b in batches
    ]
    return batches, negatives


def example_loss(
    embed: Callable[[Sequence[int]], torch.Tensor],
    pairs: np.ndarray,
    i: int,
    batches: Sequence[np.ndarray],
    negatives: Sequence[np.ndarray],
    fixed: np.ndarray,
    rng: np.random.Generator,
) -> Callable[[], tuple[torch.Tensor, torch.Tensor]]:
    """Closure: pair ``i``'s InfoNCE against fixed (no-grad) negatives from a random training batch, with the
    anchor's embedding (for the Fisher of the output dimensions). ``embed`` maps note indices to differentiable
    embeddings; ``fixed`` holds the current embeddings of every note."""

    def loss():
        a, p = pairs[i]
        k = int(rng.integers(len(batches)))
        others = [j for j in np.concatenate([pairs[batches[k], 1], negatives[k]]) if j >= 0 and j not in (a, p)]
        emb = embed([int(a), int(p)])
        anchor = emb[0:1]
        candidates = torch.cat([emb[1:2], torch.as_tensor(fixed[others], device=emb.device)])
        return info_nce(anchor, candidates, torch.ones(1, device=emb.device)), anchor

    return loss
