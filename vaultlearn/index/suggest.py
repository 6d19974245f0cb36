"""Ranking link suggestions for one note: candidates, features, the vault's fitted reranker, reasons.

The candidates and features are those of features.py; the ranker is the linear model fitted on the vault's
own links (fit.py), or plain cosine when the fit did not beat it. Every feature that lifts a suggestion is
named in its ``reason``, strongest first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from vaultlearn.index.context import RankContext
from vaultlearn.index.features import CREATED_SCALE_DAYS, FEATURES, PairFeatures, Search, pair_features
from vaultlearn.index.fit import LinearRanker

SHOWN_NAMES = 3  # titles listed in a reason before "…"
SCORE_DECIMALS = 6  # scores that agree to this many decimals are ties


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


def suggest_for(ctx: RankContext, ranker: LinearRanker, query: int, vector: np.ndarray, text: str | None,
                k: int, pool: int, search: Search | None = None) -> list[Suggestion]:
    """The ``k`` best notes for the note at position ``query`` to link to (its links excluded); ``search``: an
    approximate nearest-note search for a large vault (:func:`pair_features`)."""
    pairs = pair_features(ctx, np.array([query]), vector[None, :], [text], pool, search=search)
    contributions = ranker.contributions(pairs)
    scores = contributions.sum(axis=1)
    # equal scores (duplicate notes) in note id order, also when summation order moved them by a rounding error
    order = np.lexsort((ctx.ids[pairs.notes], -np.round(scores, SCORE_DECIMALS)))[:k]
    excluded = set(ctx.graph.outgoing(query).tolist()) | {query}
    out = []
    for i in order:
        note = int(pairs.notes[i])
        info = ctx.notes[note]
        shared = np.intersect1d(ctx.graph.neighbours(query), ctx.graph.neighbours(note))
        out.append(Suggestion(
            info.path, info.title, float(scores[i]),
            reason(ctx, ranker, pairs, int(i), contributions[i], shared, _voters(ctx, pairs, int(i), vector, excluded)),
            float(pairs.column("cosine")[i]), len(shared), bool(pairs.column("mentioned")[i]), info.phase))
    return out


def _voters(ctx: RankContext, pairs: PairFeatures, i: int, vector: np.ndarray, excluded: set[int]) -> np.ndarray:
    """The query's nearest notes that link to candidate ``i``: the most similar of the notes linking to it,
    as many as the collaborative feature counted."""
    count = int(round(np.expm1(pairs.column("collaborative_count")[i])))
    linking = np.array([p for p in ctx.graph.incoming(int(pairs.notes[i])).tolist() if p not in excluded],
                       dtype=np.int64)
    if not count or not len(linking):
        return np.zeros(0, dtype=np.int64)
    return linking[np.argsort(-(ctx.vectors[linking] @ vector))[:count]]


def reason(ctx: RankContext, ranker: LinearRanker, pairs: PairFeatures, i: int, contributions: np.ndarray,
           shared: np.ndarray, voters: np.ndarray) -> str:
    """Why pair ``i`` is suggested: its text similarity, then each feature that raised its score."""

    def titles(positions: np.ndarray) -> str:
        names = [ctx.notes[int(p)].title for p in positions[:SHOWN_NAMES]]
        return ", ".join(names) + (" …" if len(positions) > SHOWN_NAMES else "")

    value = dict(zip(FEATURES, pairs.values[i].tolist()))
    said = {
        "learned": lambda: f"similar as your links taught ({value['learned']:.2f})",
        "propagated": lambda: f"its linked notes are similar ({value['propagated']:.2f})",
        "collaborative": lambda: f"linked from {len(voters)} similar note{'s' * (len(voters) != 1)} ({titles(voters)})",
        "adamic_adar": lambda: f"{len(shared)} shared neighbour{'s' * (len(shared) != 1)} ({titles(shared)})",
        "pagerank": lambda: "close to your links in the link graph",
        "mentioned": lambda: "mentioned in the text, not linked",
        "title_words": lambda: f"{value['title_words']:.0%} of its title's words are in the text",
        "initials": lambda: "its initials are in the text",
        "learned_alias": lambda: "named in the text as other notes' links to it name it",
        "link_rate": lambda: "the notes that name it mostly link it",
        "names_query": lambda: "it names this note in its own words",
        "links_query": lambda: "it links to this note",
        "in_degree": lambda: f"{ctx.graph.in_degree[pairs.notes[i]]:.0f} notes link to it",
        "same_folder": lambda: "same folder",
        "shared_tags": lambda: "shared tags",
        "same_phase": lambda: "same phase",
        "created_near": lambda: _created_apart(value["created_near"]),
    }
    aliases = {"collaborative_count": "collaborative", "resource_allocation": "adamic_adar",
               "common_neighbours": "adamic_adar", "mention_count": "mentioned", "mention_first": "mentioned",
               "mention_share": "mentioned"}
    strength: dict[str, float] = {}
    for feature, term in zip(ranker.features, contributions):
        key = aliases.get(feature, feature)
        if key in said:
            strength[key] = strength.get(key, 0.0) + float(term)
    present = {"collaborative": len(voters) > 0, "adamic_adar": len(shared) > 0,
               "mentioned": bool(pairs.column("mentioned")[i])}
    parts = [f"similar text ({value['cosine']:.2f})"]
    for key, term in sorted(strength.items(), key=lambda kv: -kv[1]):
        if term > 0 and present.get(key, value.get(key, 1.0) > 0):
            parts.append(said[key]())
    if pairs.column("mentioned")[i] and strength.get("mentioned", 0.0) <= 0:  # worth saying, even unweighted
        parts.append(said["mentioned"]())
    return "; ".join(parts)


def _created_apart(near: float) -> str:
    """The ``created_near`` feature said in days (it is exp(−days / CREATED_SCALE_DAYS))."""
    days = -CREATED_SCALE_DAYS * math.log(near)
    if days < 1:
        return "created within a day of this note"
    whole = round(days)
    return f"created {whole} day{'s' * (whole != 1)} apart"
