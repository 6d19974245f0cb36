"""Hide-and-rank cases: visible links hidden from the graph, their sources' candidates and features."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from vaultlearn.config import Config
from vaultlearn.index.context import RankContext
from vaultlearn.index.features import PairFeatures, pair_features
from vaultlearn.model.validation import never_fitted


def sample_hidden(ctx: RankContext, limit: int, seed: int, skip_sources: Collection[int] = (),
                  eligible: np.ndarray | None = None) -> np.ndarray:
    """One seeded link per sampled source note with two or more links, ``(m, 2)`` positions.

    The source keeps at least one link after hiding; ``skip_sources`` (positions) are never sampled;
    ``eligible`` (a mask over ``ctx.graph.links()``) limits the links that may be hidden.
    """
    links = ctx.graph.links()
    rng = np.random.default_rng(seed)
    rows = np.arange(len(links)) if eligible is None else np.flatnonzero(eligible)
    counts = np.bincount(links[:, 0], minlength=ctx.graph.n)
    open_counts = np.bincount(links[rows, 0], minlength=ctx.graph.n)
    sources = np.unique(links[rows, 0])
    sources = sources[(counts[sources] >= 2) & ~np.isin(sources, list(skip_sources))]
    sources = rng.permutation(sources)[:limit]
    starts = np.searchsorted(links[rows, 0], sources)
    picks = rows[starts + (rng.random(len(sources)) * open_counts[sources]).astype(np.int64)]
    return links[np.sort(picks)]


def unseen_by_map(ctx: RankContext, config: Config) -> np.ndarray:
    """The links of ``ctx.graph`` no link map ever fits (:func:`model.validation.never_fitted`): the ones a
    reranker may hide to weigh the learned similarity without the map having learned the answer."""
    return never_fitted([(ctx.notes[a].path, ctx.notes[b].path) for a, b in ctx.graph.links()], config)


def hidden_cases(ctx: RankContext, hidden: np.ndarray, texts: Sequence[str | None], pool: int,
                 vectors: np.ndarray | None = None) -> tuple[PairFeatures, np.ndarray]:
    """Features of each hidden link's source with all ``hidden`` links removed, and the hidden targets.

    ``vectors`` replace the sources' stored embeddings: a source re-embedded without the link's traces.
    """
    hidden = np.asarray(hidden, dtype=np.int64).reshape(-1, 2)
    seen = ctx.with_graph(ctx.graph.without(hidden))
    queries = hidden[:, 0]
    vectors = ctx.vectors[queries] if vectors is None else vectors
    return pair_features(seen, queries, vectors, texts, pool), hidden[:, 1]
