"""Features of (query, candidate) pairs, computed for many queries at once.

Each feature has a name the reranker's coefficients and the ``reason`` use:

- ``cosine``: cosine of the two notes' embeddings; ``cosine_gap``: its distance to the query's best candidate;
- ``learned``: cosine of the two notes read by the link map `vaultlearn learn` fitted for the query's phase
  (learned.py; the cosine before any learning), so what learning taught is one weighed piece of evidence,
  never a replacement for the rest;
- ``adapted``: cosine of the candidate with the query's embedding mapped by the vault's link adapter (adapter.py:
  a linear map from a note's embedding towards the notes it links to, fitted on the visible links);
- ``propagated``: cosine of the query with the mean embedding of the candidate's linked neighbourhood;
- ``link_profile``: cosine of the candidate with the mean embedding of the notes the query is linked with
  (the notes a note links to resemble each other);
- ``expected_target``: cosine of the candidate with the similarity-weighted mean of what the query's nearest
  notes link to (collaborative filtering in embedding space: it reaches targets no similar note links to);
- ``collaborative``: Σ cosine of the query's ``NEIGHBOURS`` nearest notes that link to the candidate, and
  ``collaborative_count``: how many of them do (similar notes share targets);
- ``adamic_adar``, ``resource_allocation``, ``common_neighbours``: shared link neighbours (log1p);
- ``pagerank``: personalised PageRank from the query's links (log1p of n × probability);
- ``mentioned``, ``title_words``, ``initials``: the candidate's name in the query's own words, and
  ``learned_alias``: a display text other notes' links give it, and how often, how early and among how many
  named notes it is named (``mention_count``, ``mention_first``, ``mention_share``; mentions.py);
- ``link_rate``, for a candidate the query names: how often the vault's notes that name it link it, against
  how often they name it without a link (log1p of each, the query's own mention not counted): "Gluon" is
  linked where named, "System" named everywhere and seldom linked (the keyphraseness of entity linking);
- ``names_query``: the candidate names the query in its own words without linking it, and ``links_query``: it
  links to the query (the link asked for would answer it); a note's own words name the notes it belongs with
  both ways, and the candidate's text is intact when the query's says nothing of it;
- ``in_degree``: log1p of the links the candidate receives;
- ``same_folder``, ``shared_tags`` (log1p of the count), ``same_phase``;
- ``created_near``: exp(−|days between the two notes' stated creation dates| / ``CREATED_SCALE_DAYS``), 0 when
  either states none: notes written in the same days link each other (mathwiki: 28% of links join notes created
  within a day of each other, 1.2% of random pairs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vaultlearn.index.candidates import GRAPH_POOL, candidate_mask
from vaultlearn.index.context import RankContext
from vaultlearn.index.mentions import EVIDENCE
from vaultlearn.threads import one_blas_thread
from vaultlearn.vault.graph import normalise
from vaultlearn.vault.sparse_rows import dense_rows, shared_columns

FEATURES = ("cosine", "cosine_gap", "learned", "adapted", "propagated", "link_profile", "expected_target",
            "collaborative", "collaborative_count", "adamic_adar", "resource_allocation", "common_neighbours",
            "pagerank", *EVIDENCE, "link_rate", "names_query", "links_query", "in_degree", "same_folder", "shared_tags",
            "same_phase", "created_near")
GROUPS = {  # feature groups, for ablations
    "text": ("cosine", "cosine_gap"),
    "adapted": ("adapted",),
    "propagated": ("propagated",),
    "link profile": ("link_profile",),
    "expected target": ("expected_target",),
    "collaborative": ("collaborative", "collaborative_count"),
    "neighbours": ("adamic_adar", "resource_allocation", "common_neighbours"),
    "pagerank": ("pagerank",),
    "mention": ("mentioned", "title_words", "initials"),
    "learned alias": ("learned_alias",),
    "mention detail": ("mention_count", "mention_first", "mention_share"),
    "link rate": ("link_rate",),
    "reverse": ("names_query", "links_query"),
    "popularity": ("in_degree",),
    "context": ("same_folder", "shared_tags", "same_phase"),
    "created": ("created_near",),
}
BASE_FEATURES = tuple(f for f in FEATURES if f != "learned")  # the reranker's first stage (fit.add_learned)
NEIGHBOURS = 20  # nearest notes whose links vote for candidates
CREATED_SCALE_DAYS = 7.0  # a week: how far apart two creation dates still count as written together
CHUNK = 128  # queries scored together (bounds memory to a few (CHUNK, n) arrays)
Search = Callable[[np.ndarray, int], np.ndarray]  # (query rows, k) -> (rows, k) note positions, -1 for none


@dataclass(frozen=True)
class PairFeatures:
    """Candidate pairs of a batch of queries: ``rows[i]`` indexes the query, ``notes[i]`` the candidate."""

    rows: np.ndarray
    notes: np.ndarray
    values: np.ndarray  # (pairs, len(FEATURES))

    def column(self, name: str) -> np.ndarray:
        return self.values[:, FEATURES.index(name)]

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """(pairs, len(names)): the named features, in one copy (stacking strided columns one by one is slower)."""
        return self.values[:, [FEATURES.index(name) for name in names]]


def pair_features(ctx: RankContext, queries: np.ndarray, vectors: np.ndarray, texts: Sequence[str | None],
                  pool: int, search: Search | None = None) -> PairFeatures:
    """Candidates and their features for each query position (``vectors``: the queries' embeddings, read by
    ``ctx.learned`` as the query notes' phases are for the ``learned`` feature; ``texts``: their own words for
    the mention feature, None to skip it). A query's existing links in ``ctx.graph`` are excluded from its
    candidates. Before any learning the ``learned`` feature is the cosine.

    ``search`` (a large vault's approximate vector index) makes the embedding similarities choose among the
    notes it returns for a query instead of among every note; every feature of a chosen pair is still exact.
    """
    learned = vectors if ctx.learned is None else ctx.learned.queries(vectors, queries)
    with one_blas_thread():
        parts = [_chunk(ctx, queries[s:s + CHUNK], vectors[s:s + CHUNK], learned[s:s + CHUNK], texts[s:s + CHUNK],
                        pool, s, search) for s in range(0, len(queries), CHUNK)]
    if not parts:
        return PairFeatures(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(FEATURES))))
    return PairFeatures(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("rows", "notes", "values")))


def _chunk(ctx: RankContext, queries: np.ndarray, vectors: np.ndarray, learned: np.ndarray,
           texts: Sequence[str | None], pool: int, offset: int, search: Search | None) -> PairFeatures:
    graph, n = ctx.graph, len(ctx.ids)
    local = np.arange(len(queries))
    excluded = graph.outgoing_mask(queries)
    excluded[local, queries] = True
    most_excluded = int(excluded.sum(axis=1).max())
    adapted_queries = normalise(vectors @ ctx.adapter)
    cosine = _similarities(ctx, vectors, search, pool + most_excluded)
    adapted = _similarities(ctx, adapted_queries, search, GRAPH_POOL + most_excluded)
    similar = np.where(excluded, -np.inf, cosine)
    similar[local, queries] = -np.inf
    nearest = np.argpartition(-similar, min(NEIGHBOURS, n) - 1, axis=1)[:, :NEIGHBOURS]
    weight = np.maximum(np.take_along_axis(similar, nearest, axis=1), 0.0).astype(np.float32)
    collaborative, collaborative_count = graph.linked_from(nearest, weight)
    two_hops = graph.neighbour_scores(queries)
    adamic_adar = two_hops.adamic_adar
    pagerank = graph.personalised_pagerank(graph.indicator(queries))
    links_query = graph.incoming_mask(queries)
    names_query = dense_rows(ctx.namers, queries)
    answering = np.where(links_query | names_query, 2.0 + np.maximum(cosine, -1.0), 0.0)  # the most similar first
    named = np.zeros((len(queries), n), dtype=bool)
    for r, text in enumerate(texts):
        if text:
            named[r, ctx.mentions.named_in(text)] = True
    mask = candidate_mask(cosine, (adamic_adar, collaborative, pagerank, adapted, answering), excluded,
                          pool) | (named & ~excluded)
    rows, notes = np.nonzero(mask)
    pair_cosine = _at_pairs(cosine, rows, notes, vectors, ctx.vectors)
    best = np.full(len(queries), -np.inf)
    np.maximum.at(best, rows, pair_cosine)
    query_of = queries[rows]
    shared_tags = shared_columns(ctx.tags, query_of, notes)
    mentions = np.zeros((len(rows), len(EVIDENCE)))
    for r in np.unique(rows):
        if texts[r]:
            at = np.flatnonzero(rows == r)
            mentions[at] = ctx.mentions.evidence(texts[r], notes[at], int(queries[r]))
    profiles = graph.propagate(ctx.vectors, queries)  # the query's link profile
    voters, voter_of = np.unique(nearest, return_inverse=True)
    expected = normalise(np.einsum("qk,qkd->qd", weight, graph.propagate(ctx.vectors, voters, outgoing=True)[
        voter_of.reshape(nearest.shape)]))
    similarities = _neighbourhood_similarities(ctx, rows, notes, vectors, profiles, expected)
    columns = {
        "cosine": pair_cosine,
        "cosine_gap": pair_cosine - best[rows],
        "learned": pair_cosine if ctx.learned is None else ctx.learned.similarity(learned[rows], query_of,
                                                                                  ctx.vectors[notes], notes),
        "adapted": _at_pairs(adapted, rows, notes, adapted_queries, ctx.vectors),
        "propagated": similarities[:, 0],
        "link_profile": similarities[:, 1],
        "expected_target": similarities[:, 2],
        "collaborative": collaborative[rows, notes],
        "collaborative_count": np.log1p(collaborative_count[rows, notes]),
        "adamic_adar": np.log1p(adamic_adar[rows, notes]),
        "resource_allocation": np.log1p(two_hops.resource_allocation[rows, notes]),
        "common_neighbours": np.log1p(two_hops.common[rows, notes]),
        "pagerank": np.log1p(n * pagerank[rows, notes]),
        **{name: mentions[:, k] for k, name in enumerate(EVIDENCE)},
        "link_rate": _link_rate(ctx, query_of, notes) * (mentions[:, EVIDENCE.index("mention_count")] > 0),
        "names_query": names_query[rows, notes],
        "links_query": links_query[rows, notes],
        "in_degree": np.log1p(graph.in_degree[notes]),
        "same_folder": ctx.folder[notes] == ctx.folder[query_of],
        "shared_tags": np.log1p(shared_tags),
        "same_phase": (ctx.phase[notes] == ctx.phase[query_of]) & (ctx.phase[notes] >= 0),
        "created_near": _created_near(ctx.created[query_of], ctx.created[notes]),
    }
    values = np.stack([np.asarray(columns[f], dtype=np.float64) for f in FEATURES], axis=1)
    return PairFeatures(rows + offset, notes, values)


def _created_near(query: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """exp(−|days apart| / CREATED_SCALE_DAYS) of two stated creation dates; 0 where either is unknown (NaN)."""
    return np.nan_to_num(np.exp(-np.abs(query - candidate) / CREATED_SCALE_DAYS), nan=0.0)


def _similarities(ctx: RankContext, queries: np.ndarray, search: Search | None, k: int) -> np.ndarray:
    """Cosine of each query row with every note, or with the ``k`` notes ``search`` returns for it (-inf for the
    others, which the candidate choice then passes over)."""
    if search is None:
        return queries @ (ctx.vectors.T if ctx.by_dimension is None else ctx.by_dimension)
    out = np.full((len(queries), len(ctx.ids)), -np.inf, dtype=np.float32)
    for r, found in enumerate(search(queries, k)):
        found = found[found >= 0]
        out[r, found] = ctx.vectors[found] @ queries[r]
    return out


def _at_pairs(scores: np.ndarray, rows: np.ndarray, notes: np.ndarray, queries: np.ndarray,
              candidates: np.ndarray) -> np.ndarray:
    """``scores[rows, notes]``, with the dot product of the query and candidate vectors where no score was
    computed (a pair chosen by another feature than the searched similarity)."""
    values = scores[rows, notes].astype(np.float64)
    missing = ~np.isfinite(values)
    values[missing] = _dots(queries[rows[missing]], candidates[notes[missing]])
    return values


def _dots(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Row-wise dot products."""
    return np.einsum("ij,ij->i", left, right)


def _link_rate(ctx: RankContext, queries: np.ndarray, notes: np.ndarray) -> np.ndarray:
    """Per pair: log1p of the candidate's links minus log1p of the notes other than the query that name it in
    their own words and do not link it (``ctx.unlinked``)."""
    named = ctx.named_unlinked[notes]
    if ctx.unlinked is not None and len(notes):  # (scipy gives a sparse matrix, not an array, for no pairs)
        named = named - np.asarray(ctx.unlinked[queries, notes]).ravel()
    return np.log1p(ctx.graph.in_degree[notes]) - np.log1p(named)


def _neighbourhood_similarities(ctx: RankContext, rows: np.ndarray, notes: np.ndarray, vectors: np.ndarray,
                                profiles: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per pair: cosine of the query with the candidate's neighbourhood, and of the candidate with the query's
    link profile and expected target (one query at a time: ``rows`` come sorted from ``np.nonzero``)."""
    out = np.zeros((len(rows), 3), dtype=np.float32)
    unique, index = np.unique(notes, return_inverse=True)
    neighbourhoods = ctx.graph.propagate(ctx.vectors, unique)
    bounds = np.searchsorted(rows, np.arange(len(vectors) + 1))
    for r in range(len(vectors)):
        at = slice(bounds[r], bounds[r + 1])
        out[at, 0] = neighbourhoods[index[at]] @ vectors[r]
        out[at, 1:] = ctx.vectors[notes[at]] @ np.stack([profiles[r], expected[r]], axis=1)
    return out
