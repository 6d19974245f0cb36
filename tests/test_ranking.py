"""Ranking: graph evidence, mentions, weight fitting."""

import math

from vaultlearn.index.suggest import (
    Candidate, HeldOutLink, RankWeights, fit_weights, graph_evidence, mean_reciprocal_rank, mentioned_names, rank,
    reason, recall_at, sample_links,
)


def test_adamic_adar_matches_definition():
    # 1-2, 1-3, 2-4, 3-4, 3-5: notes 4 and 5 are two hops from 1
    edges = [(1, 2), (1, 3), (2, 4), (3, 4), (3, 5)]
    evidence = graph_evidence(edges, 1)
    assert set(evidence) == {4, 5}
    assert math.isclose(evidence[4][0], 1 / math.log(2) + 1 / math.log(3))
    assert evidence[4][1] == (2, 3)
    assert math.isclose(evidence[5][0], 1 / math.log(3))


def test_mentions_are_whole_phrases_case_insensitive():
    text = "We dried mango slices; the Solar Dryer worked. Groups are fun."
    names = {1: ["Solar dryer"], 2: ["Group"], 3: ["mango", "Mangifera"], 4: ["er"]}
    assert mentioned_names(text, names) == {1, 3}


def test_rank_blends_and_breaks_ties_by_id():
    cands = [Candidate(1, 0.50), Candidate(2, 0.45, adamic_adar=2.0, shared=(9,)), Candidate(3, 0.50)]
    assert [c.note_id for c, _ in rank(cands, RankWeights(), 3)] == [1, 3, 2]
    assert [c.note_id for c, _ in rank(cands, RankWeights(graph=0.1), 2)] == [2, 1]


def test_fit_picks_zero_weights_when_graph_does_not_help():
    cases = [HeldOutLink((Candidate(1, 0.9), Candidate(2, 0.8, adamic_adar=1.0, shared=(5,))), 1)] * 5
    weights, report = fit_weights(cases)
    assert weights == RankWeights() and report["recall@10_fitted"] == 1.0 and report["mrr_fitted"] == 1.0


def test_fit_learns_graph_weight_when_it_helps():
    cases = [HeldOutLink((Candidate(1, 0.9), Candidate(2, 0.85, adamic_adar=1.0, shared=(5,))), 2)] * 5
    weights, report = fit_weights(cases)
    assert weights.graph > 0 and report["mrr_similarity"] == 0.5 and report["mrr_fitted"] == 1.0


def test_fit_needs_a_margin_over_plain_similarity():
    # the graph lifts one case in fifty from rank 2 to 1 (MRR +0.01) and is neutral elsewhere
    neutral = HeldOutLink((Candidate(1, 0.9), Candidate(2, 0.85)), 1)
    nudge = HeldOutLink((Candidate(1, 0.9), Candidate(2, 0.89, adamic_adar=1.0, shared=(5,))), 2)
    assert fit_weights([neutral] * 49 + [nudge], min_gain=0.05)[0] == RankWeights()
    assert fit_weights([neutral] * 49 + [nudge], min_gain=0.005)[0].graph > 0


def test_mrr_and_recall_of_a_known_ranking():
    cases = [HeldOutLink(tuple(Candidate(i, 1.0 - i / 100) for i in range(20)), target) for target in (0, 4, 15)]
    assert recall_at(cases, RankWeights(), k=10) == 2 / 3
    assert math.isclose(mean_reciprocal_rank(cases, RankWeights()), (1 + 1 / 5 + 1 / 16) / 3)


def test_reason_names_the_evidence():
    text = reason(Candidate(1, 0.71, 1.2, (4, 5), mentioned=True), ["Alpha", "Beta"])
    assert text == "similar text (0.71); 2 shared neighbours (Alpha, Beta); mentioned in the text, not linked"


def test_sample_links_is_seeded_and_keeps_a_link():
    edges = [(1, 2), (1, 3), (2, 3), (4, 1), (4, 2), (4, 3)]
    first = sample_links(edges, 10, seed=1)
    assert first == sample_links(edges, 10, seed=1)
    assert (2, 3) not in first and len(first) == 5
