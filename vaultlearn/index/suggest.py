"""Ranking link suggestions: text similarity combined with graph evidence, weighted per vault.

Features of a candidate note C for a query note Q:
- ``similarity``: cosine of the two embeddings;
- ``adamic_adar``: Adamic–Adar index of Q and C on the undirected link graph (networkx), scaled by the
  largest value among Q's candidates so one weight fits notes of every degree;
- ``mentioned``: C's title or one of its aliases appears in Q's text as a whole phrase (what Obsidian calls
  an unlinked mention).

A fixed blend of similarity and graph evidence does not beat plain cosine on every vault (measured in
``../shared/research/baselines.md``), so the weights are fitted on the vault's own visible links by
:func:`fit_weights` and stored with the index: a weight that does not help on this vault comes out as zero.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import networkx as nx
import numpy as np

WEIGHT_GRID_GRAPH = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)
WEIGHT_GRID_MENTION = (0.0, 0.05, 0.1, 0.2, 0.4)
FIT_MIN_GAIN = 0.01  # MRR a blend must add over plain similarity to be used


@dataclass(frozen=True)
class RankWeights:
    """How much graph evidence and unlinked mentions add to the cosine similarity."""

    graph: float = 0.0
    mention: float = 0.0


@dataclass(frozen=True)
class Candidate:
    """One note that could be linked, with the evidence for it."""

    note_id: int
    similarity: float
    adamic_adar: float = 0.0
    shared: tuple[int, ...] = ()  # common neighbours' ids
    mentioned: bool = False

    def score(self, weights: RankWeights, aa_scale: float) -> float:
        graph = self.adamic_adar / aa_scale if aa_scale > 0 else 0.0
        return self.similarity + weights.graph * graph + weights.mention * float(self.mentioned)


@dataclass(frozen=True)
class Suggestion:
    """A ranked suggestion as printed by ``suggest --json`` and served by the API."""

    path: str
    title: str
    score: float
    reason: str
    similarity: float
    shared_neighbours: int
    mentioned: bool
    phase: str | None

    def to_json(self) -> dict:
        out = asdict(self)
        out["score"] = round(self.score, 4)
        out["similarity"] = round(self.similarity, 4)
        return out


def graph_evidence(edges: Iterable[tuple[int, int]], query: int,
                   candidates: Iterable[int] | None = None) -> dict[int, tuple[float, tuple[int, ...]]]:
    """Adamic–Adar index and common neighbours of ``query`` with each candidate.

    ``edges`` must hold every undirected edge touching ``query`` or one of its neighbours (so that the
    neighbours' degrees are exact). Without ``candidates``, every note two hops away is scored.
    """
    graph = nx.Graph()
    graph.add_edges_from((a, b) for a, b in edges if a != b)
    if query not in graph:
        return {}
    if candidates is None:
        candidates = {c for n in graph[query] for c in graph[n]} - {query} - set(graph[query])
    pairs = [(query, c) for c in candidates if c in graph and c != query]
    out = {}
    for _, c, aa in nx.adamic_adar_index(graph, pairs):
        if aa > 0:
            out[c] = (aa, tuple(sorted(nx.common_neighbors(graph, query, c))))
    return out


def mentioned_names(text: str, names: Mapping[int, Sequence[str]]) -> set[int]:
    """Ids whose title or alias occurs in ``text`` as a whole phrase (case-insensitive)."""
    folded = " " + re.sub(r"[\W_]+", " ", text.casefold()) + " "
    found = set()
    for note_id, note_names in names.items():
        for name in note_names:
            phrase = re.sub(r"[\W_]+", " ", name.casefold()).strip()
            if len(phrase) >= 3 and f" {phrase} " in folded:
                found.add(note_id)
                break
    return found


def rank(candidates: Sequence[Candidate], weights: RankWeights, k: int) -> list[tuple[Candidate, float]]:
    """The ``k`` best candidates with their scores, best first (ties by note id for stable output)."""
    aa_scale = max((c.adamic_adar for c in candidates), default=0.0)
    scored = [(c, c.score(weights, aa_scale)) for c in candidates]
    scored.sort(key=lambda pair: (-pair[1], pair[0].note_id))
    return scored[:k]


def reason(candidate: Candidate, shared_titles: Sequence[str]) -> str:
    """A short human-readable account of why a note is suggested."""
    parts = [f"similar text ({candidate.similarity:.2f})"]
    if candidate.shared:
        shown = ", ".join(shared_titles[:3]) + (" …" if len(shared_titles) > 3 else "")
        noun = "neighbour" if len(candidate.shared) == 1 else "neighbours"
        parts.append(f"{len(candidate.shared)} shared {noun} ({shown})")
    if candidate.mentioned:
        parts.append("mentioned in the text, not linked")
    return "; ".join(parts)


@dataclass(frozen=True)
class HeldOutLink:
    """A visible link hidden for weight fitting: the candidates built without it, and the hidden target."""

    candidates: tuple[Candidate, ...]
    target: int


def recall_at(cases: Sequence[HeldOutLink], weights: RankWeights, k: int = 10) -> float:
    """Share of held-out links whose target ranks in the top ``k``."""
    return sum(_rank_of(case, weights) <= k for case in cases) / len(cases) if cases else 0.0


def mean_reciprocal_rank(cases: Sequence[HeldOutLink], weights: RankWeights) -> float:
    """Mean of 1/rank of the hidden target (0 when it is not among the candidates)."""
    return sum(1.0 / _rank_of(case, weights) for case in cases) / len(cases) if cases else 0.0


def _rank_of(case: HeldOutLink, weights: RankWeights) -> float:
    ranked = rank(case.candidates, weights, len(case.candidates))
    return next((n for n, (c, _) in enumerate(ranked, 1) if c.note_id == case.target), float("inf"))


def fit_weights(cases: Sequence[HeldOutLink], mention_grid: Sequence[float] = WEIGHT_GRID_MENTION,
                min_gain: float = FIT_MIN_GAIN) -> tuple[RankWeights, dict]:
    """The grid weights with the best MRR on held-out visible links.

    MRR is smoother than Recall@10 on a few hundred links, and a blend must beat plain similarity by
    ``min_gain`` to be taken (measured on vaultofknowledge: a Recall@10 fit on 300 links picked a graph
    weight that lost 4 points on other links). Returns the weights and a report of both metrics.
    """
    plain = mean_reciprocal_rank(cases, RankWeights())
    best, best_mrr = RankWeights(), plain + min_gain
    for g in WEIGHT_GRID_GRAPH:
        for m in mention_grid:
            weights = RankWeights(g, m)
            value = mean_reciprocal_rank(cases, weights)
            if value > best_mrr + 1e-9:
                best, best_mrr = weights, value
    return best, {"cases": len(cases), "mrr_similarity": plain, "mrr_fitted": mean_reciprocal_rank(cases, best),
                  "recall@10_similarity": recall_at(cases, RankWeights()),
                  "recall@10_fitted": recall_at(cases, best), "graph": best.graph, "mention": best.mention}


def sample_links(edges: Sequence[tuple[int, int]], limit: int, seed: int) -> list[tuple[int, int]]:
    """A seeded sample of directed links whose source keeps at least one other link after hiding."""
    out_degree: dict[int, int] = {}
    for src, _ in edges:
        out_degree[src] = out_degree.get(src, 0) + 1
    eligible = sorted({(s, d) for s, d in edges if out_degree[s] >= 2})
    random.Random(seed).shuffle(eligible)
    return eligible[:limit]


def build_candidates(query: int, query_vec: np.ndarray, exclude: set[int],
                     search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
                     vectors_of: Callable[[np.ndarray], np.ndarray],
                     edges: Iterable[tuple[int, int]], names: Callable[[Iterable[int]], Mapping[int, Sequence[str]]],
                     text: str | None, pool: int) -> list[Candidate]:
    """Candidates for ``query``: its ``pool`` nearest notes plus every note two link-hops away.

    ``exclude`` holds the query and the notes it already links to; ``names`` gives titles/aliases of ids;
    ``text`` (the query note's text) enables the mention feature.
    """
    scores, ids = search(query_vec, pool + len(exclude) + 1)
    similarity = {int(i): float(s) for s, i in zip(scores[0], ids[0]) if i >= 0 and int(i) not in exclude}
    evidence = graph_evidence(edges, query)
    extra = np.array([c for c in evidence if c not in similarity and c not in exclude], dtype=np.int64)
    if len(extra):
        for c, s in zip(extra, vectors_of(extra) @ query_vec):
            similarity[int(c)] = float(s)
    for c in exclude:
        similarity.pop(c, None)
    mentioned = mentioned_names(text, names(similarity)) if text else set()
    return [
        Candidate(c, s, *evidence.get(c, (0.0, ())), mentioned=c in mentioned)
        for c, s in similarity.items()
    ]
