"""Evaluation protocol: held-out split, ranking metrics, the summary numbers, and run_eval's schema."""

import numpy as np
import pytest
import torch

from vaultlearn.errors import NonFiniteError
from vaultlearn.eval.protocol import EvalCorpus, score_phases, split_links, summarize
from vaultlearn.index.learned import map_vectors
from vaultlearn.metrics import moved_ranks, rank_of_targets, recall_mrr, targets_by_source
from vaultlearn.eval.strategies import run_seeds
from vaultlearn.eval.summary import format_table
from vaultlearn.plots import plot_recall_matrix

from .conftest import synthetic_corpus, tiny_config


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


def test_ranks_scored_in_blocks_equal_one_source_at_a_time(monkeypatch):
    import vaultlearn.metrics as metrics

    rng = np.random.default_rng(3)
    emb = rng.normal(size=(40, 8))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    emb[11] = emb[12]  # an exact tie with the target counts for it (strictly above only)
    edges = [(int(a), int(b)) for a, b in rng.integers(0, 40, (120, 2)) if a != b] + [(3, 12), (3, 11)]
    targets = targets_by_source(edges)
    links = edges[::3] + [(3, 12)]
    candidates = np.arange(2, 40)
    links = [(a, b) for a, b in links if b >= 2]
    expected = []
    for a, b in links:  # the definition, one source at a time
        others = [c for c in candidates if c != a and (c == b or c not in targets[a])]
        expected.append(1 + sum(emb[c] @ emb[a] > emb[b] @ emb[a] for c in others if c != b))
    monkeypatch.setattr(metrics, "SCORE_BLOCK", 5 * len(candidates))  # blocks of five sources
    assert rank_of_targets(emb, links, candidates, targets).tolist() == expected
    with pytest.raises(ValueError, match="held-out target 1 is not among the candidates"):
        rank_of_targets(emb, [(5, 1)], candidates, targets)


def test_ranks_after_some_notes_moved_equal_ranks_afresh(monkeypatch):
    import vaultlearn.metrics as metrics

    rng = np.random.default_rng(5)
    before = rng.normal(size=(60, 8)).astype(np.float32)
    before /= np.linalg.norm(before, axis=1, keepdims=True)
    edges = sorted({(int(a), int(b)) for a, b in rng.integers(0, 60, (240, 2)) if a != b})
    targets = targets_by_source(edges)
    links = edges[::2]
    moved = [4, 9, 17, 30, 31, 50]  # sources, targets and the sources' other targets among them
    after = before.copy()
    after[moved] = rng.normal(size=(len(moved), 8))
    after[moved] /= np.linalg.norm(after[moved], axis=1, keepdims=True)
    every = np.arange(60)
    ranks = rank_of_targets(before, links, every, targets)
    expected = rank_of_targets(after, links, every, targets)
    assert not np.array_equal(ranks, expected)
    assert any(a in moved or b in moved for a, b in links) and any(set(moved) & targets[a] for a, _ in links)
    monkeypatch.setattr(metrics, "SCORE_BLOCK", 7 * 2 * len(moved))  # blocks of seven sources
    assert moved_ranks(before, ranks, after, links, targets).tolist() == expected.tolist()
    assert moved_ranks(before, ranks, before.copy(), links, targets).tolist() == ranks.tolist()
    assert moved_ranks(before, ranks, before[::-1].copy(), links, targets).tolist() == \
        rank_of_targets(before[::-1].copy(), links, every, targets).tolist()  # most notes moved: afresh
    broken = after.copy()
    broken[17, 0] = np.nan
    with pytest.raises(NonFiniteError):
        moved_ranks(before, ranks, broken, links, targets)


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
    names = ["frozen", "vaultlearn", "propagate", "adapter", "joint"]
    result = run_seeds(corpus, names, tiny_config(), seeds=[0], steps=1, device="cpu", max_phases=None)
    assert result["phases"] == ["alpha", "beta"] and result["protocol"] == "standard" and result["seeds"] == [0]
    run = result["runs"][0]
    assert "cache" not in run and run["seed"] == 0
    assert run["heldout"] == [16, 16]  # per phase 5 clusters × 8 notes × 2 links = 80, a fifth held out
    for name in names:
        s = run["strategies"][name]
        assert [len(row) for row in s["R"]] == [1, 2] and [len(row) for row in s["MRR"]] == [1, 2]
        assert len(s["frozen_R"]) == 2
        for key in ("gain", "forgetting", "relative_forgetting", "min_old_minus_frozen", "seconds"):
            assert key in s
        assert set(s["drift"]) == {"cosine", "top10_changed", "reembedded"}
        figures = [v for row in s["R"] + s["MRR"] for v in row]
        assert all(np.isfinite(v) and 0 <= v <= 1 for v in figures), (name, figures)
        assert s["frozen_R"] == run["strategies"]["frozen"]["frozen_R"]  # one frozen baseline for every strategy
        reported = {k: s[k] for k in ("gain", "forgetting", "relative_forgetting", "min_old_minus_frozen")}
        assert reported == pytest.approx(summarize(s["R"], s["frozen_R"], run["heldout"]))
    frozen = run["strategies"]["frozen"]
    assert frozen["gain"] == 0 and frozen["drift"]["reembedded"] == 0
    # the base model never changes: each phase scores the same on every later row, and nothing drifts
    assert frozen["R"][1][0] == frozen["R"][0][0] and frozen["frozen_R"] == [frozen["R"][0][0], frozen["R"][1][1]]
    assert frozen["forgetting"] == 0
    assert frozen["drift"] == pytest.approx({"cosine": 0.0, "top10_changed": 0.0, "reembedded": 0.0}, abs=1e-6)
    assert run["strategies"]["propagate"]["drift"]["reembedded"] > 0  # linked notes moved, without training
    best = result["best_reference"]
    assert best in ("propagate", "adapter", "joint")
    assert result["summary"][best]["gain_minus_best_reference"]["mean"] == 0
    table = format_table(result)
    assert "vaultlearn" in table and f"best reference: {best}" in table
    plot_recall_matrix(result, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0


def test_seeds_give_mean_and_sd_of_each_figure():
    result = run_seeds(synthetic_corpus(), ["frozen", "propagate"], tiny_config(), seeds=[0, 1, 2], steps=1,
                       device="cpu", max_phases=None)
    gains = [run["strategies"]["propagate"]["gain"] for run in result["runs"]]
    figure = result["summary"]["propagate"]["gain"]
    assert figure == {"mean": pytest.approx(np.mean(gains)), "sd": pytest.approx(np.std(gains, ddof=1)), "n": 3}
    assert result["summary"]["frozen"]["relative_forgetting"] == {"mean": None, "sd": None, "n": 0}
    assert "±" in format_table(result)


def test_no_trace_removes_held_out_targets_from_their_sources(sample_vault):
    from vaultlearn.config import Config
    from vaultlearn.eval.corpus import load_corpus, without_traces

    corpus = load_corpus(sample_vault, Config())
    split = split_links(corpus, 0)
    hidden = without_traces(corpus, split)
    held = [link for links in split.heldout for link in links]
    assert held
    title = lambda b: corpus.paths[b].rsplit("/", 1)[-1].removesuffix(".md").lower()
    kept = [(a, b) for a, b in held if title(b) in corpus.texts[a].lower()]
    assert kept, "the standard protocol keeps the held-out targets' names in their sources"
    for a, b in held:
        assert title(b) not in hidden.texts[a].lower()
        for alias in corpus.names[b][1:]:
            assert alias.lower() not in hidden.texts[a].lower()
    untouched = set(range(len(corpus.texts))) - {a for a, _ in held}
    assert all(hidden.texts[i] == corpus.texts[i] for i in untouched)
    assert hidden.edges == corpus.edges


def test_eval_cli_no_trace_with_seeds(sample_vault):
    import json

    from tests.test_cli import run

    out = run("eval", sample_vault, "--strategies", "frozen,propagate", "--no-trace", "--seeds", "2", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["protocol"] == "no-trace" and result["seeds"] == [0, 1] and len(result["runs"]) == 2
    assert result["best_reference"] == "propagate"
    bad = run("eval", sample_vault, "--strategies", "frozen,nosuch")
    assert bad.returncode == 1 and "unknown strategies" in bad.stderr


def test_note_memory_adds_slots_per_phase_and_never_rewrites_old_ones(monkeypatch):
    import vaultlearn.eval.notememory as notememory
    from vaultlearn.eval.learners import phase_data

    corpus = synthetic_corpus()
    split = split_links(corpus, 0)
    config = tiny_config()
    rng = np.random.default_rng(0)
    frozen = rng.normal(size=(len(corpus.texts), 8)).astype(np.float32)
    frozen /= np.linalg.norm(frozen, axis=1, keepdims=True)
    monkeypatch.setattr(notememory, "NOTE_MEMORY_STEPS", 3)
    memory = notememory.NoteMemory(frozen, config, train=True, replay=True)
    emb = frozen.copy()
    data, known = phase_data(corpus, split, 0, twp=True, config=config)
    assert memory.learn("alpha", 0, data, known, emb) > 0
    first = memory.values.clone()
    sources = {int(known[a]) for a, _ in data.pairs}
    assert sorted(memory.slot_notes.tolist()) == sorted(sources)
    unlinked = [i for i in known if int(i) not in sources]
    assert not np.allclose(emb[unlinked], frozen[unlinked]), "notes without links read the memory too"
    data, known = phase_data(corpus, split, 1, twp=True, config=config)
    memory.learn("beta", 1, data, known, emb)
    assert len(memory.values) > len(first) and torch.equal(memory.values[: len(first)], first)
    assert np.isfinite(emb).all()


def test_source_space_ranks_each_phase_by_its_own_map_applied_to_every_note():
    corpus = synthetic_corpus()
    split = split_links(corpus, 0)
    base = np.random.default_rng(0).normal(size=(len(corpus.paths), 6)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    turn = np.random.default_rng(1).normal(size=(6, 6)).astype(np.float32)
    targets = targets_by_source(corpus.edges)

    def by(vectors, j):
        return recall_mrr(rank_of_targets(vectors, split.heldout[j], corpus.known_at(j), targets))

    recalls, mrrs = score_phases(corpus, split, base, 1, {"beta": turn})
    assert (recalls[0], mrrs[0]) == by(base, 0)  # a phase without a map: the vectors as they are
    assert (recalls[1], mrrs[1]) == by(map_vectors(base, turn), 1)
    assert by(map_vectors(base, turn), 1) != by(base, 1)


def test_vaultlearn_never_changes_an_earlier_phases_figures():
    names = ["frozen", "vaultlearn", "vaultlearn-gated"]
    result = run_seeds(synthetic_corpus(), names, tiny_config(), seeds=[0], steps=1, device="cpu", max_phases=None)
    frozen = result["runs"][0]["strategies"]["frozen"]
    for name in names[1:]:
        s = result["runs"][0]["strategies"][name]
        assert s["R"][1][0] == s["R"][0][0] and s["MRR"][1][0] == s["MRR"][0][0] and s["forgetting"] == 0
        assert np.isfinite(s["MRR"][1][1]), name
    assert result["runs"][0]["strategies"]["vaultlearn"]["MRR"][1][1] != frozen["MRR"][1][1]  # it learned
