"""Evaluation protocol: held-out split, ranking metrics, the summary numbers, and run_eval's schema."""

import numpy as np
import pytest

from vaultlearn.eval.protocol import (
    EvalCorpus,
    rank_of_targets,
    recall_mrr,
    split_links,
    summarize,
    targets_by_source,
)
from vaultlearn.eval.strategies import format_table, plot_results, run_eval

from .test_continual import synthetic_corpus, tiny_config


def test_split_holds_out_a_fifth_per_phase_deterministically():
    corpus = synthetic_corpus()
    first, again, other = split_links(corpus, 0), split_links(corpus, 0), split_links(corpus, 1)
    assert first.heldout == again.heldout and first.train == again.train
    assert first.heldout != other.heldout
    rank = corpus.phase_rank()
    for j in range(len(corpus.phases)):
        links = first.train[j] + first.heldout[j]
        assert len(first.heldout[j]) == round(0.2 * len(links))
        assert all(rank[a] == j for a, _ in links)
        assert not set(first.heldout[j]) & set(first.train[j])
    hidden = {e for h in first.heldout for e in h}
    assert not hidden & set(first.visible)
    assert len(first.visible) + len(hidden) == len(corpus.edges)


def test_corpus_drops_self_links_and_duplicates():
    corpus = EvalCorpus(["a", "b"], ["x", "y"], ["p", None], ["p"], [(0, 1), (0, 1), (1, 1)])
    assert corpus.edges == [(0, 1)]
    assert corpus.known_at(-1).tolist() == [1] and corpus.known_at(0).tolist() == [0, 1]


def test_rank_and_metrics_on_a_hand_made_ranking():
    # query 0; candidate similarities 3 > 2 > 1 > 4 > 5 (note 4 is also a true target of 0, so it is filtered)
    emb = np.array([[1.0, 0.0], [0.2, 0.98], [0.9, 0.436], [0.99, 0.141], [0.999, 0.045], [0.0, 1.0]])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    edges = [(0, 2), (0, 4), (0, 5)]
    ranks = rank_of_targets(emb, [(0, 2), (0, 5)], np.arange(6), targets_by_source(edges))
    # for 0→2: candidates 1, 2, 3 (4 and 5 are other targets): 3 beats 2 → rank 2
    # for 0→5: candidates 1, 3, 5: 3 and 1 beat 5 → rank 3
    assert ranks.tolist() == [2, 3]
    recall, mrr = recall_mrr(np.array([1, 2, 20]), k=10)
    assert recall == pytest.approx(2 / 3) and mrr == pytest.approx((1 + 0.5 + 0.05) / 3)


def test_summary_numbers():
    R = [[0.6], [0.5, 0.7], [0.55, 0.6, 0.8]]
    frozen = [0.4, 0.5, 0.6]
    s = summarize(R, frozen, [10, 10, 20])
    assert s["gain"] == pytest.approx((10 * 0.2 + 10 * 0.2 + 20 * 0.2) / 40)
    # forgetting: phase 0 best 0.6 → 0.55; phase 1 best 0.7 → 0.6
    assert s["forgetting"] == pytest.approx((0.05 + 0.1) / 2)
    assert s["relative_forgetting"] == pytest.approx((0.05 + 0.1) / (0.2 + 0.2))
    assert s["min_old_minus_frozen"] == pytest.approx(0.1)
    flat = summarize([[0.4], [0.4, 0.5]], [0.4, 0.5], [10, 10])
    assert flat["relative_forgetting"] is None  # no learned gain: undefined, not a division by ~0


def test_run_eval_schema(tmp_path):
    corpus = synthetic_corpus()
    result = run_eval(
        corpus, ["frozen", "vaultlearn"], tiny_config(), steps=3, seed=0, device="cpu", max_phases=None
    )
    assert result["phases"] == ["alpha", "beta"]
    for name in ("frozen", "vaultlearn"):
        s = result["strategies"][name]
        assert [len(row) for row in s["R"]] == [1, 2] and [len(row) for row in s["MRR"]] == [1, 2]
        assert len(s["frozen_R"]) == 2
        for key in ("gain", "forgetting", "relative_forgetting", "min_old_minus_frozen", "seconds"):
            assert key in s
        assert set(s["drift"]) == {"cosine", "top10_changed", "reembedded"}
    frozen = result["strategies"]["frozen"]
    assert frozen["gain"] == 0 and frozen["drift"]["reembedded"] == 0
    assert "vaultlearn" in format_table(result)
    plot_results(result, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0
