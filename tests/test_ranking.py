"""Ranking: candidates and pair features on a hand-made vault, the reranker's fit, ranks and reasons."""

import math
from functools import partial

import numpy as np
import pytest

from vaultlearn.index.candidates import top_mask
from vaultlearn.index.context import NoteInfo, RankContext
from vaultlearn.index.features import (BASE_FEATURES, CREATED_SCALE_DAYS, FEATURES, NEIGHBOURS, PairFeatures,
                                       pair_features)
from vaultlearn.index.fit import (COSINE, LEARNED_WEIGHTS, MIN_GAIN, LinearRanker, add_learned, fit_ranker, quality,
                                  target_ranks)
from vaultlearn.index.holdout import hidden_cases, sample_hidden
from vaultlearn.index.mentions import EVIDENCE, MentionMatcher, folded_names, learned_names, plain_text
from vaultlearn.index.suggest import suggest_for

isclose = partial(math.isclose, rel_tol=1e-6)  # float32 products

# note ids 10..15 at positions 0..5; 0 links to 1 and 2; 1→3, 2→3, 2→4, 5→4
IDS = np.array([10, 11, 12, 13, 14, 15])
EDGES = [(10, 11), (10, 12), (11, 13), (12, 13), (12, 14), (15, 14)]
NOTES = [NoteInfo("a/Query.md", "Query", tags=["x"], phase="p1", created=19000.0), NoteInfo("a/One.md", "One"),
         NoteInfo("b/Two.md", "Two"),
         NoteInfo("a/Solar Dryer.md", "Solar Dryer", aliases=["dryer box"], tags=["X"], created=19000.5),
         NoteInfo("b/Four.md", "Four", phase="p1", created=19007.0), NoteInfo("b/Five.md", "Five", phase="p2")]


def vectors() -> np.ndarray:
    raw = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 0.2, 0]], dtype=np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def context() -> RankContext:
    return RankContext.build(IDS, vectors(), EDGES, NOTES)


def features_of_query(text=None) -> tuple[PairFeatures, dict[int, dict[str, float]]]:
    ctx = context()
    pairs = pair_features(ctx, np.array([0]), ctx.vectors[[0]], [text], pool=10)
    return pairs, {int(n): dict(zip(FEATURES, row)) for n, row in zip(pairs.notes, pairs.values)}


def test_candidates_are_every_note_but_the_query_and_its_links():
    _, by_note = features_of_query()
    assert set(by_note) == {3, 4, 5}


def test_graph_features_have_their_known_values():
    _, f = features_of_query()
    v = vectors()
    assert isclose(f[3]["common_neighbours"], math.log1p(2))
    assert isclose(f[3]["adamic_adar"], math.log1p(1 / math.log(2) + 1 / math.log(3)))
    assert isclose(f[4]["resource_allocation"], math.log1p(1 / 3))
    assert f[5]["common_neighbours"] == 0 and f[5]["adamic_adar"] == 0
    # the query's nearest notes (all of 3, 4, 5 here) vote for what they link to: 5 links to 4
    assert NEIGHBOURS >= 3
    assert isclose(f[4]["collaborative"], float(v[0] @ v[5]))
    assert isclose(f[4]["collaborative_count"], math.log1p(1)) and f[3]["collaborative"] == 0
    assert isclose(f[3]["cosine"], float(v[0] @ v[3]))
    assert isclose(f[5]["cosine_gap"], 0.0)  # 5 is the most similar candidate
    assert isclose(f[4]["in_degree"], math.log1p(2)) and isclose(f[3]["in_degree"], math.log1p(2))
    assert f[3]["pagerank"] > f[4]["pagerank"] > f[5]["pagerank"] > 0  # 3 is reached through both links
    profile = (v[1] + v[2]) / np.linalg.norm(v[1] + v[2])
    assert isclose(f[4]["link_profile"], float(profile @ v[4]))


def test_context_features_folder_tags_phase():
    _, f = features_of_query()
    assert f[3]["same_folder"] == 1 and f[4]["same_folder"] == 0
    assert isclose(f[3]["shared_tags"], math.log1p(1)) and f[4]["shared_tags"] == 0  # tags ignore case
    assert f[4]["same_phase"] == 1 and f[5]["same_phase"] == 0


def test_created_near_weighs_days_apart_and_is_zero_without_dates():
    _, f = features_of_query()
    assert isclose(f[3]["created_near"], math.exp(-0.5 / CREATED_SCALE_DAYS))  # half a day apart
    assert isclose(f[4]["created_near"], math.exp(-1.0))  # a week apart
    assert f[5]["created_near"] == 0  # Five states no date
    ctx = context()
    ranker = LinearRanker(("cosine", "created_near"), (0.0, 0.0), (1.0, 1.0), (1.0, 1.0))
    reasons = {s.path: s.reason for s in suggest_for(ctx, ranker, 0, ctx.vectors[0], None, k=3, pool=10)}
    assert reasons["a/Solar Dryer.md"].endswith("; created within a day of this note")
    assert reasons["b/Four.md"].endswith("; created 7 days apart")
    assert ";" not in reasons["b/Five.md"]


def test_mentioned_needs_the_name_in_the_query_words():
    _, f = features_of_query("We built a DRYER BOX last week.")
    assert f[3]["title_words"] == 0  # fully mentioned: counted once
    assert f[3]["mentioned"] == 1 and f[4]["mentioned"] == 0
    _, f = features_of_query("Nothing here.")
    assert f[3]["mentioned"] == 0


def test_plain_text_drops_the_title_line_and_link_text():
    markdown = "---\ntags: [a]\n---\nSee [[Overview]] and [the dryer](Solar%20Dryer.md); humidity matters."
    assert plain_text(markdown).split() == "See and ; humidity matters.".split()
    kept = plain_text(markdown, shown=["Solar Dryer"])
    assert kept.split() == "See and the dryer ; humidity matters.".split()
    matcher = MentionMatcher([["Overview"], ["Solar Dryer"]])
    assert not matcher.evidence(kept, np.array([0, 1]))[:, 0].any()


def test_mention_evidence_plurals_title_words_and_initials():
    matcher = MentionMatcher([["Gluons"], ["History of Ethereum"], ["Display Serial Interface"], ["Query", "gluon"],
                              ["AI"]])
    text = "A gluon binds quarks; Ethereum's DSI port and AI. Query words."
    evidence = matcher.evidence(text, np.arange(5), query=3)
    assert evidence[:, 0].tolist() == [0, 0, 0, 0, 0]  # "gluon" is a name of the query (3) itself: no mention
    assert MentionMatcher([["Gluons"]]).evidence(text, np.array([0]))[0, 0] == 1  # plural folded
    assert evidence[1, 1] == 0.5  # "ethereum" of "history", "ethereum"
    assert evidence[:, 2].tolist() == [0, 0, 1, 0, 0]


def test_mention_count_first_position_and_share():
    matcher = MentionMatcher([["Query"], ["Solar Dryer"], ["Gluon"], ["Absent"]])
    text = "gluons and a solar dryer; the solar dryer again"  # 9 words: gluon at 0, solar dryer at 3 and 6
    evidence = matcher.evidence(text, np.arange(4), query=0)
    columns = {name: evidence[:, k] for k, name in enumerate(EVIDENCE)}
    assert columns["mention_count"].tolist() == pytest.approx([0, math.log1p(2), math.log1p(1), 0])
    assert columns["mention_first"].tolist() == pytest.approx([0, 1 - 3 / 9, 1.0, 0])
    assert columns["mention_share"].tolist() == [0, 0.5, 0.5, 0]  # two notes named


def test_link_rate_counts_the_other_notes_that_name_a_candidate_without_linking_it():
    # 3 (Solar Dryer) is linked by 1 and 2 and named, unlinked, by the query 0 and by 4;
    # 1 also names 3 while linking it: a link, not an unlinked mention
    mentions = [(10, 13), (14, 13), (11, 13), (14, 12)]
    ctx = RankContext.build(IDS, vectors(), EDGES, NOTES, mentions=mentions)
    assert ctx.unlinked.nnz == 3 and ctx.unlinked[1, 3] == 0

    def rate(query, text):
        pairs = pair_features(ctx, np.array([query]), ctx.vectors[[query]], [text], pool=10)
        return dict(zip(pairs.notes.tolist(), pairs.column("link_rate")))

    from_query = rate(0, "the solar dryer")
    assert from_query[3] == pytest.approx(math.log1p(2) - math.log1p(1))  # the query's own mention not counted
    assert from_query[4] == 0 and from_query[5] == 0  # not named by the query
    assert rate(5, "a solar dryer")[3] == pytest.approx(math.log1p(2) - math.log1p(2))  # 0 and 4 name it
    linked_to_all = RankContext.build(IDS[:2], vectors()[:2], [(10, 11)], NOTES[:2], mentions=[(10, 11)])
    none = pair_features(linked_to_all, np.array([0]), linked_to_all.vectors[[0]], ["one"], pool=10)
    assert len(none.notes) == 0 and none.values.shape == (0, len(FEATURES))  # no candidate left: no pairs


def test_reverse_features_mark_the_notes_that_name_or_link_the_query():
    # 4 names the query 0 in its own words without linking it; 5 links to 0; 3 names 0 but 0 is far from it
    mentions = [(14, 10), (13, 10), (10, 13)]
    ctx = RankContext.build(IDS, vectors(), EDGES + [(15, 10)], NOTES, mentions=mentions)
    pairs = pair_features(ctx, np.array([0]), ctx.vectors[[0]], [None], pool=1)
    f = {int(n): dict(zip(FEATURES, row)) for n, row in zip(pairs.notes, pairs.values)}
    assert {n: (v["names_query"], v["links_query"]) for n, v in f.items()} == {3: (1, 0), 4: (1, 0), 5: (0, 1)}
    ranker = LinearRanker(("cosine", "names_query", "links_query"), (0,) * 3, (1,) * 3, (1.0, 1.0, 1.0))
    reasons = {s.path: s.reason for s in suggest_for(ctx, ranker, 0, ctx.vectors[0], None, k=3, pool=10)}
    assert reasons["b/Four.md"].endswith("; it names this note in its own words")
    assert reasons["b/Five.md"].endswith("; it links to this note")
    # the query's own mention of 3 is not 3 naming the query: the other way round reads 3's words
    back = pair_features(ctx, np.array([3]), ctx.vectors[[3]], [None], pool=10)
    assert dict(zip(back.notes.tolist(), back.column("names_query"))) == {0: 1, 1: 0, 2: 0, 4: 0, 5: 0}
    # the least similar of 300 notes is a candidate because it names the query (or links to it)
    ids = np.arange(300)
    vecs = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    far = int(np.argmin(vecs @ vecs[0]))
    notes = [NoteInfo(f"n/{i}.md", f"Note {i}") for i in ids]
    for edges, named in (([], [(far, 0)]), ([(far, 0)], []), ([], [])):
        ctx = RankContext.build(ids, vecs, edges, notes, mentions=named)
        found = far in pair_features(ctx, np.array([0]), vecs[[0]], [None], pool=5).notes
        assert found == bool(edges or named)


def test_ranks_and_quality_of_a_known_ranking():
    pairs = PairFeatures(np.array([0, 0, 0, 1, 1]), np.array([3, 4, 5, 3, 4]), np.zeros((5, len(FEATURES))))
    scores = np.array([0.9, 0.5, 0.7, 0.2, 0.1])
    ranks = target_ranks(scores, pairs, np.array([4, 5]))  # query 1's target is not a candidate
    assert ranks.tolist() == [3.0, math.inf]
    assert quality(ranks) == {"recall@10": 0.5, "mrr": pytest.approx(1 / 6)}
    assert target_ranks(np.array([0.5, 0.5, 0.1, 0, 0]), pairs, np.array([4, 3]))[0] == 2  # ties count against
    with pytest.raises(ValueError):
        quality(np.array([]))


def synthetic_cases(helpful: bool, queries: int = 200, seed: int = 0) -> tuple[PairFeatures, np.ndarray]:
    """30 candidates per query; the target's cosine is good but not best; a graph feature says which it is."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(queries), 30)
    notes = np.tile(np.arange(30), queries)
    values = rng.normal(size=(len(rows), len(FEATURES)))
    targets = rng.integers(0, 30, size=queries)
    is_target = notes == targets[rows]
    values[:, FEATURES.index("cosine")] += 1.5 * is_target
    if helpful:
        values[:, FEATURES.index("collaborative")] += 3.0 * is_target
    return PairFeatures(rows, notes, values), targets


def test_fit_learns_a_feature_that_helps_and_beats_cosine():
    pairs, targets = synthetic_cases(helpful=True)
    ranker, report = fit_ranker(pairs, targets)
    assert report["model"] == "linear" and report["mrr_fitted"] > report["mrr_cosine"] + 0.1
    assert ranker.coef[ranker.features.index("collaborative")] > 0
    assert LinearRanker.from_json(ranker.to_json()) == ranker
    # the score a fit ranks by is the sum of the terms a suggestion's reason reads
    np.testing.assert_allclose(ranker.scores(pairs), ranker.contributions(pairs).sum(axis=1), atol=1e-9)
    assert pairs.columns(["pagerank", "cosine"]).tolist() == \
        np.stack([pairs.column("pagerank"), pairs.column("cosine")], axis=1).tolist()


def test_the_learned_similarity_is_weighed_only_when_it_adds():
    pairs, targets = synthetic_cases(helpful=True)
    ranker, _ = fit_ranker(pairs, targets, BASE_FEATURES)
    assert "learned" not in ranker.features
    unseen, unseen_targets = synthetic_cases(helpful=True, seed=1)
    noise, _ = add_learned(ranker, unseen, unseen_targets)  # "learned" is noise in these cases
    assert noise.features[-1] == "learned" and noise.coef[-1] == 0.0
    np.testing.assert_allclose(noise.scores(unseen), ranker.scores(unseen))
    unseen.values[:, FEATURES.index("learned")] += 3.0 * (unseen.notes == unseen_targets[unseen.rows])
    stacked, report = add_learned(ranker, unseen, unseen_targets)
    assert stacked.coef[-1] > 0 and report["mrr_with"] > report["mrr_without"] + 0.05
    assert stacked.coef[:-1] == ranker.coef, "the first stage is kept as it was fitted"
    with pytest.raises(ValueError, match="never fitted"):
        add_learned(ranker, unseen, np.zeros(0, dtype=np.int64))


def test_a_learned_weight_that_helps_only_by_chance_is_not_taken():
    """Noise as the learned similarity: on some draws the best of the weights adds MIN_GAIN MRR on the very cases
    it was chosen on; the out-of-fold check declines every draw."""
    pairs, targets = synthetic_cases(helpful=True)
    ranker, _ = fit_ranker(pairs, targets, BASE_FEATURES)
    lucky = 0
    for seed in range(1, 13):
        unseen, unseen_targets = synthetic_cases(helpful=True, seed=seed, queries=150)
        learned = unseen.column("learned")
        z = (learned - learned.mean()) / learned.std()
        base = ranker.scores(unseen)
        mrr = [quality(target_ranks(base + w * z, unseen, unseen_targets))["mrr"] for w in (0.0, *LEARNED_WEIGHTS)]
        lucky += max(mrr[1:]) >= mrr[0] + MIN_GAIN
        stacked, report = add_learned(ranker, unseen, unseen_targets, seed=seed)
        assert stacked.coef[-1] == 0.0 and report["weight"] == 0.0, report
    assert lucky >= 2, "the draws should include some where chance alone passes an in-sample choice"


def test_fit_falls_back_to_cosine_when_nothing_helps_or_links_are_few():
    pairs, targets = synthetic_cases(helpful=False)
    ranker, report = fit_ranker(pairs, targets)
    assert ranker == COSINE and report["model"] == "cosine"
    few, few_targets = synthetic_cases(helpful=True, queries=10)
    assert fit_ranker(few, few_targets)[0] == COSINE


def test_a_kept_ranker_is_never_below_cosine_on_its_fit_links():
    for seed in range(3):
        pairs, targets = synthetic_cases(helpful=seed != 1, seed=seed)
        ranker, report = fit_ranker(pairs, targets, seed=seed)
        fitted = quality(target_ranks(ranker.scores(pairs), pairs, targets))["mrr"]
        assert fitted >= quality(target_ranks(pairs.column("cosine"), pairs, targets))["mrr"]


def test_hidden_cases_hide_the_links_from_the_graph():
    ctx = context()
    hidden = sample_hidden(ctx, 10, seed=0)
    assert hidden[:, 0].tolist() == [0, 2]  # the sources with two or more links, one link each
    pairs, targets = hidden_cases(ctx, hidden, [None, None], pool=10)
    for row, (source, target) in enumerate(hidden):
        assert target in pairs.notes[pairs.rows == row]  # hidden, so a candidate again
    assert sample_hidden(ctx, 10, seed=0, skip_sources={0})[:, 0].tolist() == [2]


def test_hidden_links_can_be_limited_to_eligible_ones():
    ctx = context()
    links = ctx.graph.links()
    everything = np.ones(len(links), dtype=bool)
    for seed in range(5):
        assert (sample_hidden(ctx, 10, seed, eligible=everything) == sample_hidden(ctx, 10, seed)).all()
    only = np.array([tuple(link) in {(0, 2), (2, 4)} for link in links.tolist()])
    for seed in range(5):
        assert sorted(map(tuple, sample_hidden(ctx, 10, seed, eligible=only).tolist())) == [(0, 2), (2, 4)]
    none = np.zeros(len(links), dtype=bool)
    assert len(sample_hidden(ctx, 10, 0, eligible=none)) == 0


def test_suggest_for_explains_each_feature_that_lifts_a_note():
    ctx = context()
    ranker = LinearRanker(("cosine", "common_neighbours", "mentioned"), (0, 0, 0), (1, 1, 1), (1.0, 1.0, 1.0))
    out = suggest_for(ctx, ranker, 0, ctx.vectors[0], "the solar dryer", k=2, pool=10)
    assert [s.path for s in out] == ["a/Solar Dryer.md", "b/Five.md"]
    assert out[0].reason.startswith("similar text (")
    assert "2 shared neighbours (One, Two)" in out[0].reason and "mentioned in the text, not linked" in out[0].reason
    assert out[0].mentioned and out[0].shared_neighbours == 2 and out[1].reason.count(";") == 0
    plain = suggest_for(ctx, COSINE, 0, ctx.vectors[0], "the solar dryer", k=3, pool=10)
    assert {s.path: s.reason.endswith("mentioned in the text, not linked") for s in plain}["a/Solar Dryer.md"]
    # how often and how early it is named count towards "mentioned", and order the reasons with it
    detail = LinearRanker(("cosine", "common_neighbours", "mention_count", "mention_first"), (0,) * 4, (1,) * 4,
                          (1.0, 0.1, 2.0, 2.0))
    named = suggest_for(ctx, detail, 0, ctx.vectors[0], "the solar dryer", k=1, pool=10)[0]
    assert named.reason.split("; ")[1:] == ["mentioned in the text, not linked", "2 shared neighbours (One, Two)"]


def test_a_note_named_in_the_text_is_a_candidate_however_far():
    ids = np.arange(300)
    vecs = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    notes = [NoteInfo(f"n/{i}.md", f"Note number {i}") for i in ids]
    ctx = RankContext.build(ids, vecs, [], notes)
    far = int(np.argmin(vecs @ vecs[0]))
    pairs = pair_features(ctx, np.array([0]), vecs[[0]], [f"see note number {far} here"], pool=5)
    assert far in pairs.notes and pairs.column("mentioned")[pairs.notes == far][0] == 1
    assert MentionMatcher([["Solar Dryer", "dryer box"], ["Box"]]).named_in("a Dryer Box list").tolist() == [0, 1]


def test_learned_names_keep_display_texts_that_name_one_note_only():
    names = [["Life"], ["CERN Council"], ["Here"], ["Other"]]
    links = np.array([[3, 0], [2, 0], [3, 1], [0, 1], [3, 1], [0, 2]])
    texts = ["living", "Living things", "the Council", "here", "the council", "Life"]
    learned = learned_names(folded_names(names), links, texts)
    # "here" and "Life" are notes' names, not learned; "the council" (twice, one note) is
    assert learned == [["living", "living thing"], ["the council"], [], []]
    ambiguous = learned_names(folded_names(names), np.array([[3, 0], [3, 1]]), ["source", "source"])
    assert ambiguous == [[], [], [], []]


def test_learned_alias_feature_comes_from_visible_links_only():
    # 5 → 4 is written [[Four|drying rack]]; 2 → 4 as [[Four|Two]] (a note's title, not learned)
    link_texts = [(15, 14, "drying rack"), (12, 14, "Two")]
    ctx = RankContext.build(IDS, vectors(), EDGES, NOTES, link_texts)
    text = "Two drying racks stand here."

    def learned(c):
        pairs = pair_features(c, np.array([0]), c.vectors[[0]], [text], pool=10)
        return {int(n): v for n, v in zip(pairs.notes, pairs.column("learned_alias"))}

    assert learned(ctx) == {3: 0, 4: 1, 5: 0}
    assert ctx.mentions.named_in(text).tolist() == [2, 4]  # "Two" by title, "drying racks" by the learned name
    assert learned(ctx.with_graph(ctx.graph.without(np.array([[5, 4]])))) == {3: 0, 4: 0, 5: 0}


def test_adapted_feature_is_cosine_with_the_mapped_query():
    ctx = context()
    _, f = features_of_query()
    mapped = ctx.vectors[0] @ ctx.adapter
    mapped /= np.linalg.norm(mapped)
    for note in (3, 4, 5):
        assert isclose(f[note]["adapted"], float(mapped @ ctx.vectors[note]))
    assert not np.allclose(ctx.adapter, np.eye(3))  # fitted on the hand-made links


def _random_context(n: int = 300, seed: int = 0) -> RankContext:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 16))
    raw = centres[rng.integers(0, 12, n)] + 0.8 * rng.normal(size=(n, 16))
    vecs = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    edges = [(int(a), int(b)) for a, b in rng.integers(0, n, (3 * n, 2)) if a != b]
    notes = [NoteInfo(f"f{i % 7}/N{i}.md", f"N{i}") for i in range(n)]
    return RankContext.build(np.arange(n), vecs, edges, notes)


def _by_pair(pairs: PairFeatures) -> dict[tuple[int, int], np.ndarray]:
    return {(int(r), int(c)): v for r, c, v in zip(pairs.rows, pairs.notes, pairs.values)}


def test_an_exact_search_gives_the_features_of_comparing_with_every_note():
    ctx = _random_context()
    queries = np.arange(0, 300, 25)

    def exact(rows, k):
        return np.argsort(-(rows @ ctx.vectors.T), axis=1)[:, :k]

    dense = pair_features(ctx, queries, ctx.vectors[queries], [None] * len(queries), pool=30)
    searched = pair_features(ctx, queries, ctx.vectors[queries], [None] * len(queries), pool=30, search=exact)
    assert len(dense.rows) > 30 * len(queries)  # graph candidates beyond the cosine pool
    a, b = _by_pair(dense), _by_pair(searched)
    assert a.keys() == b.keys()
    assert all(np.allclose(a[key], b[key], atol=1e-5) for key in a)


def test_a_partial_search_keeps_every_pair_feature_exact():
    """Notes the search misses are not chosen by similarity, but a pair chosen by the graph or the search has
    its exact cosine, adapted similarity, PageRank and neighbour scores."""
    ctx = _random_context()
    queries = np.arange(0, 300, 25)

    def every_other(rows, k):
        order = np.argsort(-(rows @ ctx.vectors.T), axis=1)[:, ::2][:, :k]
        order[:, -3:] = -1  # fewer hits than asked
        return order

    dense = _by_pair(pair_features(ctx, queries, ctx.vectors[queries], [None] * len(queries), pool=30))
    partial_ = _by_pair(pair_features(ctx, queries, ctx.vectors[queries], [None] * len(queries), pool=30,
                                      search=every_other))
    shared = dense.keys() & partial_.keys()
    assert len(shared) > len(queries) * 20 and partial_.keys() - dense.keys()
    pairwise = [FEATURES.index(f) for f in ("cosine", "learned", "adapted", "pagerank", "adamic_adar", "in_degree")]
    assert all(np.allclose(dense[key][pairwise], partial_[key][pairwise], atol=1e-5) for key in shared)


def test_top_mask_of_one_row_is_that_row_of_many():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(6, 500))
    scores[rng.random(scores.shape) < 0.3] = -np.inf  # not computed
    scores[5, 10:] = -np.inf  # fewer finite entries than asked
    for positive_only in (False, True):
        together = top_mask(scores, 40, positive_only)
        for r in range(len(scores)):
            alone = top_mask(scores[r:r + 1], 40, positive_only)[0]
            assert np.array_equal(alone, together[r])
            assert alone.sum() == min(40, int(((scores[r] > 0) if positive_only else np.isfinite(scores[r])).sum()))


def test_a_rebuilt_context_reuses_the_name_matcher_only_when_every_name_is_the_same():
    link_texts = [(15, 14, "drying rack")]
    before = RankContext.build(IDS, vectors(), EDGES, NOTES, link_texts)
    moved = vectors()[::-1].copy()  # the embeddings and links changed, no name did
    same = RankContext.build(IDS, moved, EDGES[:-1] + [(15, 13)], NOTES, [(15, 13, "drying rack")], previous=before)
    assert same.mentions is not before.mentions  # the display text now names another note
    kept = RankContext.build(IDS, moved, EDGES + [(10, 15)], NOTES, link_texts, previous=before)
    assert kept.mentions is before.mentions
    text = "the dryer box and a drying rack"
    assert kept.mentions.named_in(text).tolist() == RankContext.build(IDS, moved, EDGES + [(10, 15)], NOTES,
                                                                      link_texts).mentions.named_in(text).tolist()
    renamed = [NOTES[0]._replace(title="Query Two"), *NOTES[1:]]
    assert RankContext.build(IDS, moved, EDGES, renamed, link_texts, previous=before).mentions is not before.mentions
    aliased = [*NOTES[:5], NOTES[5]._replace(aliases=["five"])]
    assert RankContext.build(IDS, moved, EDGES, aliased, link_texts, previous=before).mentions is not before.mentions


def test_the_learned_feature_is_the_cosine_in_the_query_phases_map_and_a_rebuild_keeps_it():
    weight = np.array([[0, 2, 0], [0, 0, 1], [1, 0, 0.5]], dtype=np.float32)  # the map phase p1 learned
    ctx = RankContext.build(IDS, vectors(), EDGES, NOTES, maps={"p1": weight})
    pairs = pair_features(ctx, np.array([0]), ctx.vectors[[0]], [None], pool=10)  # Query is in p1
    space = vectors() @ weight.T
    space /= np.linalg.norm(space, axis=1, keepdims=True)
    np.testing.assert_allclose(pairs.column("learned"), space[pairs.notes] @ space[0], rtol=1e-5)
    assert not np.allclose(pairs.column("learned"), pairs.column("cosine"))
    unphased = pair_features(ctx, np.array([1]), ctx.vectors[[1]], [None], pool=10)  # One has no phase
    np.testing.assert_allclose(unphased.column("learned"), unphased.column("cosine"), rtol=1e-5)
    moved = vectors()
    moved[4] = moved[5]  # an edit re-embedded one note: the rebuilt context reads it as a fresh build does
    rebuilt = RankContext.build(IDS, moved, EDGES, NOTES, maps={"p1": weight}, previous=ctx)
    fresh = RankContext.build(IDS, moved, EDGES, NOTES, maps={"p1": weight})
    np.testing.assert_allclose(rebuilt.learned.norms, fresh.learned.norms, rtol=1e-6)
    assert not np.allclose(rebuilt.learned.norms[4], ctx.learned.norms[4])
