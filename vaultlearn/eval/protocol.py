"""The continual link-prediction protocol (DESIGN.md §5): held-out links per phase, ranking metrics, the R matrix.

Choices the design leaves open, fixed here:
- Phase j's links are the resolved links whose source note is in phase j and whose target is known at phase j
  (in a phase ≤ j, or in no phase); links into later phases belong to no phase's task.
- Phase j's held-out links are always ranked among the notes known at phase j, for every later k, so that a
  change of R[k][j] is the model's doing and not the growth of the candidate set.
- Drift is measured on the old notes (those known before the phase): how far their embeddings moved, and how
  many of their top-10 lists within the old notes changed, i.e. how much of the existing index the phase
  disturbed; the arrival of the phase's own notes is not counted as drift.
- Ranking is filtered: for a held-out A→B the candidates exclude A and every other note A links to (its
  remaining links and its other held-out targets).
- Gain and forgetting average over phases weighted by held-out links. Relative forgetting is pooled over the old
  phases whose learned gain is at least one held-out link's worth: Σ n_j·forgetting_j / Σ n_j·(R_best − R_frozen);
  undefined (None) when no old phase qualifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from vaultlearn.index.learned import map_vectors
from vaultlearn.metrics import (
    changed_share,
    cosine_shift,
    neighbour_sets,
    rank_of_targets,
    recall_mrr,
    targets_by_source,
)


@dataclass
class EvalCorpus:
    """Notes (paths, texts, phase or None), phases in learning order, resolved note→note links (indices);
    for the no-trace protocol also each note's markdown and names (path, aliases)."""

    paths: list[str]
    texts: list[str]
    phase_of: list[str | None]
    phases: list[str]
    edges: list[tuple[int, int]]
    markdown: list[str] | None = None
    names: list[list[str]] | None = None
    max_embed_chars: int = 4000

    def __post_init__(self) -> None:
        if not len(self.paths) == len(self.texts) == len(self.phase_of):
            raise ValueError("paths, texts and phase_of must have one entry per note")
        unknown = {p for p in self.phase_of if p is not None} - set(self.phases)
        if unknown:
            raise ValueError(f"phase_of names phases missing from phases: {sorted(unknown)}")
        n = len(self.paths)
        clean = sorted({(int(a), int(b)) for a, b in self.edges if a != b})
        if any(not (0 <= a < n and 0 <= b < n) for a, b in clean):
            raise ValueError("an edge points outside the notes")
        self.edges = clean

    def phase_rank(self) -> list[int]:
        """Per note, the index of its phase in ``phases``; -1 for notes in no phase (known from the start)."""
        rank = {p: i for i, p in enumerate(self.phases)}
        return [rank[p] if p is not None else -1 for p in self.phase_of]

    def known_at(self, k: int) -> np.ndarray:
        """Indices of the notes known once phase ``k`` is reached (phases ≤ k, and unphased); k = -1: unphased."""
        return np.flatnonzero(np.asarray(self.phase_rank()) <= k)


@dataclass
class Split:
    """Links of each phase cut into training links and held-out links (seeded)."""

    train: list[list[tuple[int, int]]]  # per phase
    heldout: list[list[tuple[int, int]]]  # per phase
    visible: list[tuple[int, int]] = field(default_factory=list)  # every link the model may see (the graph)


def split_links(corpus: EvalCorpus, seed: int, share: float = 0.2) -> Split:
    """Per phase, hold out ``round(share · links)`` of its links (at least one when it has two or more)."""
    rank = corpus.phase_rank()
    per_phase: list[list[tuple[int, int]]] = [[] for _ in corpus.phases]
    for a, b in corpus.edges:
        if rank[a] >= 0 and rank[b] <= rank[a]:
            per_phase[rank[a]].append((a, b))
    train, heldout = [], []
    for j, links in enumerate(per_phase):
        rng = np.random.default_rng([seed, j])
        n_out = int(round(share * len(links)))
        if len(links) >= 2:
            n_out = max(1, n_out)
        chosen = set(rng.permutation(len(links))[:n_out].tolist())
        heldout.append([links[i] for i in sorted(chosen)])
        train.append([link for i, link in enumerate(links) if i not in chosen])
    hidden = {link for links in heldout for link in links}
    visible = [e for e in corpus.edges if e not in hidden]
    return Split(train=train, heldout=heldout, visible=visible)


def score_phases(
    corpus: EvalCorpus, split: Split, emb: np.ndarray, upto: int,
    source_maps: Mapping[str, np.ndarray] | None = None,
) -> tuple[list[float], list[float]]:
    """Recall@10 and MRR on the held-out links of phases 0…upto, each among the notes known at its phase, by
    ``emb``. With ``source_maps`` (phase → map), ``emb`` is the base vectors and each phase's links are ranked
    with that phase's map applied to every note, the source's and the candidates' alike (a phase without a map:
    ``emb`` as it is)."""
    targets = targets_by_source(corpus.edges)
    recalls, mrrs = [], []
    for j in range(upto + 1):
        own_map = None if source_maps is None else source_maps.get(corpus.phases[j])
        vectors = emb if own_map is None else map_vectors(emb, own_map)
        ranks = rank_of_targets(vectors, split.heldout[j], corpus.known_at(j), targets)
        r, m = recall_mrr(ranks)
        recalls.append(r)
        mrrs.append(m)
    return recalls, mrrs


def drift(before: np.ndarray, after: np.ndarray, old: np.ndarray) -> tuple[float, float]:
    """Mean cosine distance of the ``old`` notes' embeddings, and the share of them whose top-10 among the old
    notes (the index as it stood before the phase) changed."""
    if len(old) == 0:
        return 0.0, 0.0
    return cosine_shift(before[old], after[old]), changed_share(neighbour_sets(before[old]), neighbour_sets(after[old]))


def summarize(R: list[list[float]], frozen: list[float], n_heldout: list[int]) -> dict:
    """Gain, forgetting, relative forgetting and worst old-phase margin over frozen, from the R matrix.

    ``R[k][j]`` (j ≤ k) is the score on phase j after learning phase k, ``frozen[j]`` the base model's score.
    Gain and forgetting are averages over phases weighted by their held-out links (phases without any are
    skipped), so a phase with two held-out links cannot swing the average."""
    n = len(R)
    last = n - 1
    gain_num = gain_den = forget_num = forget_den = lost = learned = 0.0
    margins = []
    for k in range(n):
        if n_heldout[k]:
            gain_num += n_heldout[k] * (R[k][k] - frozen[k])
            gain_den += n_heldout[k]
    for j in range(last):
        if not n_heldout[j]:
            continue
        best = max(R[l][j] for l in range(j, last))
        forget_num += n_heldout[j] * (best - R[last][j])
        forget_den += n_heldout[j]
        margins.append(R[last][j] - frozen[j])
        if best - frozen[j] >= 1.0 / n_heldout[j]:
            lost += n_heldout[j] * (best - R[last][j])
            learned += n_heldout[j] * (best - frozen[j])
    return {
        "gain": gain_num / gain_den if gain_den else None,
        "forgetting": forget_num / forget_den if forget_den else None,
        "relative_forgetting": lost / learned if learned > 0 else None,
        "min_old_minus_frozen": float(min(margins)) if margins else None,
    }
