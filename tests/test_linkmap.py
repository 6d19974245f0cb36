"""The link map: saving and loading itself (and the learner), the fixed fitting/checking split, and the learner."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from vaultlearn.errors import NonFiniteError
from vaultlearn.metrics import rank_of_targets
from vaultlearn.model.linkfit import MIN_OWN_CHECKING, LinkMapLearner, LinkTask, _Kept, link_task, nearest_within_noise
from vaultlearn.model.validation import is_checking_link
from vaultlearn.index.learned import PhaseReading, committed_phase_maps, map_by_phase
from vaultlearn.model.linkmap import LinkMap
from vaultlearn.model.pairs import hard_negative_pool
from vaultlearn.model.manifest import read_manifest

from .conftest import synthetic_corpus, tiny_config


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_link_map_saves_and_loads_itself(tmp_path):
    link_map = LinkMap(4)
    with torch.no_grad():
        link_map.weight.copy_(torch.randn(4, 4, generator=torch.Generator().manual_seed(0)))
    link_map.save(tmp_path / "map")
    assert sorted(p.name for p in (tmp_path / "map").iterdir()) == ["config.json", "model.safetensors"]
    again = LinkMap.load(tmp_path / "map")
    x = unit(np.random.default_rng(0).normal(size=(5, 4)))
    np.testing.assert_array_equal(again.apply(x), link_map.apply(x))
    np.testing.assert_allclose(np.linalg.norm(again.apply(x), axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(LinkMap(4).apply(x), x, atol=1e-6)  # the identity at the start


def test_the_learner_saves_loads_and_commits_by_its_manifest(tmp_path):
    x, links, adjacency = rotated_links(n=80)
    learner = LinkMapLearner(x.shape[1], tiny_config())
    assert committed_phase_maps(tmp_path) is None
    learner.learn("a", LinkTask(x, links[10:], links[:10], adjacency), seed=0)
    map_of_a = learner.map.weight.clone()
    learner.save(tmp_path)
    learner.learn("b", LinkTask(x, links[10:], links[:10], adjacency, own=20), seed=0)
    learner.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "learner-000002.safetensors", "manifest.json", "map-000002", "phase-maps-000002.safetensors"]
    maps = committed_phase_maps(tmp_path)
    assert sorted(maps) == ["a", "b"]
    np.testing.assert_array_equal(maps["a"], map_of_a.numpy())  # a phase keeps the map it was learned with
    np.testing.assert_array_equal(maps["b"], learner.map.weight.numpy())
    again = LinkMapLearner.load(tmp_path, x.shape[1], tiny_config())
    assert read_manifest(tmp_path)["generation"] == again.generation == 2 and again.learned_phases == ["a", "b"]
    assert list(again.phase_fisher) == ["a", "b"]
    assert torch.equal(again.phase_fisher["b"], learner.phase_fisher["b"])
    assert again.ewc.importance["weight"].shape == (x.shape[1], x.shape[1])
    np.testing.assert_array_equal(again.map.apply(x), learner.map.apply(x))
    phases = ["a", "b", None] * (len(x) // 3) + ["a"] * (len(x) % 3)
    np.testing.assert_array_equal(again.apply_by_phase(x, phases), learner.apply_by_phase(x, phases))


def test_each_note_is_read_by_its_phase_map_and_others_keep_their_base_vector():
    x = unit(np.random.default_rng(0).normal(size=(6, 4)))
    turn = np.roll(np.eye(4, dtype=np.float32), 1, axis=0)
    scale = np.diag([2.0, 1.0, 1.0, 1.0]).astype(np.float32)
    phases = ["a", None, "b", "c", "a", "b"]
    out = map_by_phase(x, phases, {"a": turn, "b": scale})
    np.testing.assert_allclose(out[[0, 4]], unit(x[[0, 4]] @ turn.T), atol=1e-6)
    np.testing.assert_allclose(out[[2, 5]], unit(x[[2, 5]] @ scale.T), atol=1e-6)
    np.testing.assert_array_equal(out[[1, 3]], x[[1, 3]])  # no phase, or a phase not learned
    with pytest.raises(ValueError, match="6 vectors but 5 phases"):
        map_by_phase(x, phases[:5], {"a": turn})


def test_the_learned_similarity_reads_both_notes_by_the_query_phases_map():
    x = unit(np.random.default_rng(0).normal(size=(7, 4)))
    turn = np.random.default_rng(1).normal(size=(4, 4)).astype(np.float32)
    scale = np.diag([3.0, 1.0, 0.5, 1.0]).astype(np.float32)
    phases = ["a", None, "b", "c", "a", "b", "d"]
    reading = PhaseReading.of(x, phases, {"a": turn, "b": scale, "d": scale.copy()})
    assert len(reading.maps) == 2 and reading.map_of.tolist() == [0, -1, 1, -1, 0, 1, 1]  # "d" shares b's map
    queries = np.arange(7)
    pairs = np.array([(q, t) for q in queries for t in range(7)])
    u = reading.queries(x, queries)
    got = reading.similarity(u[pairs[:, 0]], pairs[:, 0], x[pairs[:, 1]], pairs[:, 1]).reshape(7, 7)
    weights = {"a": turn, "b": scale, "d": scale}
    for q, phase in enumerate(phases):
        space = x if phase not in weights else unit(x @ weights[phase].T)  # a query without a map: base cosine
        np.testing.assert_allclose(got[q], space @ space[q], atol=1e-5)
    moved, same = x.copy(), np.array([0, 1, 2, -1, 4, 5, 6])  # note 3 changed: its norms are computed again
    moved[3] = x[0]
    marked = replace(reading, norms=reading.norms * 2)  # an earlier reading's norms are taken, not recomputed
    again = PhaseReading.of(moved, phases, {"a": turn, "b": scale, "d": scale}, (marked, same))
    np.testing.assert_array_equal(again.norms[same >= 0], marked.norms[same[same >= 0]])
    np.testing.assert_allclose(again.norms[3], reading.norms[0], atol=1e-6)
    other = PhaseReading.of(moved, phases, {"a": scale}, (marked, same))  # other maps: nothing is taken
    np.testing.assert_allclose(other.norms, PhaseReading.of(moved, phases, {"a": scale}).norms, atol=1e-6)
    with pytest.raises(ValueError, match="7 vectors but 6 phases"):
        PhaseReading.of(x, phases[:6], {"a": turn})


def test_a_state_saved_before_phase_maps_reads_every_learned_phase_by_its_one_map(tmp_path):
    import json

    x, links, adjacency = rotated_links(n=80)
    learner = LinkMapLearner(x.shape[1], tiny_config())
    learner.learn("a", LinkTask(x, links[10:], links[:10], adjacency), seed=0)
    learner.save(tmp_path)
    manifest = read_manifest(tmp_path)
    (tmp_path / manifest.pop("phase_maps")).unlink()
    del manifest["own_checks"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    maps = committed_phase_maps(tmp_path)
    assert list(maps) == ["a"]
    np.testing.assert_array_equal(maps["a"], learner.map.weight.numpy())
    again = LinkMapLearner.load(tmp_path, x.shape[1], tiny_config())
    np.testing.assert_array_equal(again.apply_by_phase(x, ["a"] * len(x)), learner.map.apply(x))
    assert again.own_checks, "a state saved before the setting learns its next phases as learn does now"


def test_checking_links_are_fixed_per_link_and_about_a_fifth():
    links = [(f"n{i}.md", f"m{i % 37}.md") for i in range(3000)]
    first = [is_checking_link(0, a, b) for a, b in links]
    assert first == [is_checking_link(0, a, b) for a, b in links]
    assert 0.17 < np.mean(first) < 0.23
    assert first != [is_checking_link(1, a, b) for a, b in links]


def test_a_check_ranks_a_fixed_sample_across_every_phase_not_the_earliest_links():
    from vaultlearn.model.linkfit import MAX_CHECKING_LINKS

    emb = np.eye(4, dtype=np.float32)
    few = LinkTask(emb, [], [(0, 1)] * 10, [set() for _ in range(4)])
    assert few.checked == few.checking
    earliest, latest = [(0, 1)] * (2 * MAX_CHECKING_LINKS), [(2, 3)] * (MAX_CHECKING_LINKS // 2)
    many = LinkTask(emb, [], earliest + latest, [set() for _ in range(4)])
    again = LinkTask(emb, [], earliest + latest, [set() for _ in range(4)])
    assert len(many.checked) == MAX_CHECKING_LINKS and many.checked == again.checked
    assert 0.1 < many.checked.count((2, 3)) / MAX_CHECKING_LINKS < 0.3, "the last phase's links in their share"


def rotated_links(n: int = 240, dim: int = 12, seed: int = 0):
    """Notes whose links follow a hidden rotation: i links to the note nearest to R·x_i (not to x_i itself)."""
    rng = np.random.default_rng(seed)
    x = unit(rng.normal(size=(n, dim)))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    target = unit(x @ rotation.T)
    links = []
    for i in range(n):
        scores = x @ target[i]
        scores[i] = -np.inf
        links.append((i, int(np.argmax(scores))))
    adjacency = [set() for _ in range(n)]
    for a, b in links:
        adjacency[a].add(b)
        adjacency[b].add(a)
    return x, links, adjacency


def rotation_task() -> LinkTask:
    """:func:`rotated_links` with every fifth link checking (and hidden from the visible links)."""
    x, links, adjacency = rotated_links()
    fitting = [link for i, link in enumerate(links) if i % 5]
    checking = [link for i, link in enumerate(links) if not i % 5]
    visible = [set(n) for n in adjacency]
    for a, b in checking:
        visible[a].discard(b)
        visible[b].discard(a)
    return LinkTask(x, fitting, checking, visible)


def test_the_learner_learns_a_link_structure_the_base_embeddings_miss(monkeypatch):
    import vaultlearn.model.linkfit as linkfit

    monkeypatch.setattr(linkfit, "LEARNING_RATE", 1e-2)  # a whole rotation to learn, not a vault's nudge
    task = rotation_task()
    x = task.embeddings
    learner = LinkMapLearner(x.shape[1], tiny_config(), use_fisher=True)
    report = learner.learn("p", task, seed=0)
    assert report.steps > 0 and report.loss_end < report.loss_start
    assert report.check_mrr_after > 3 * report.check_mrr_before  # held-out links the base model ranks ~40th
    assert learner.check(task) == pytest.approx(report.check_mrr_after)
    assert learner.phase_fisher["p"].shape == (x.shape[1], x.shape[1]) and learner.phase_fisher["p"].sum() > 0
    assert np.isfinite(learner.map.apply(x)).all()


def test_the_learner_keeps_the_previous_map_when_no_step_checks_better():
    # every checking link joins two notes with the same embedding: the identity already ranks them first
    x, links, adjacency = rotated_links(n=120)
    twins = unit(np.concatenate([x, x]))
    checking = [(i, i + 120) for i in range(0, 120, 4)]
    learner = LinkMapLearner(x.shape[1], tiny_config(), use_fisher=False)
    report = learner.learn("p", LinkTask(twins, links, checking, adjacency + [set() for _ in range(120)]), seed=0)
    assert report.check_mrr_before == 1.0 and report.steps == 0
    assert torch.equal(learner.map.weight, torch.eye(x.shape[1]))


def test_a_phase_with_no_links_of_its_own_keeps_the_previous_map(monkeypatch):
    """Replayed links alone teach a phase nothing new: its notes are read by the map it found."""
    import vaultlearn.model.linkfit as linkfit

    monkeypatch.setattr(linkfit, "LEARNING_RATE", 1e-2)
    task = rotation_task()
    learner = LinkMapLearner(task.embeddings.shape[1], tiny_config())
    learner.learn("a", task, seed=0)
    after_a = learner.map.weight.clone()
    assert not torch.equal(after_a, torch.eye(len(after_a)))
    report = learner.learn("b", replace(task, own=0), seed=0)
    assert report.steps == 0 and report.start == "previous" and report.check_mrr_after is None
    assert torch.equal(learner.map.weight, after_a) and torch.equal(learner.phase_maps["b"], after_a)


def test_a_small_phase_trains_the_map_but_its_notes_keep_the_previous_phases_map(monkeypatch):
    """Below ``map_min_phase_links`` fitting links of its own a phase still trains the map the next phase starts
    from, but its notes are read as the previous phase's notes are (the identity before any phase)."""
    import vaultlearn.model.linkfit as linkfit

    monkeypatch.setattr(linkfit, "LEARNING_RATE", 1e-2)
    task = rotation_task()
    own = len(task.fitting)
    learner = LinkMapLearner(task.embeddings.shape[1], tiny_config(map_min_phase_links=own + 1))
    first = learner.learn("a", task, seed=0)
    assert first.own_links == own and not first.moved_notes
    assert first.check_mrr_after > first.check_mrr_before  # the map learned ...
    assert not torch.equal(learner.map.weight, torch.eye(len(learner.map.weight)))
    assert torch.equal(learner.phase_maps["a"], torch.eye(len(learner.map.weight)))  # ... and a's notes stay put
    x = task.embeddings
    np.testing.assert_allclose(learner.apply_by_phase(x, ["a"] * len(x)), x, atol=1e-6)

    learner.config = tiny_config(map_min_phase_links=own)  # the next phase has enough and starts from a's map
    second = learner.learn("b", task, seed=0)
    assert second.moved_notes and second.check_mrr_before == pytest.approx(first.check_mrr_after)
    assert torch.equal(learner.phase_maps["b"], learner.map.weight)
    third = learner.learn("c", replace(task, own=0), seed=0)  # nothing of its own: read as b's notes are
    assert not third.moved_notes and torch.equal(learner.phase_maps["c"], learner.phase_maps["b"])


def test_a_non_finite_embedding_is_an_error_not_a_score():
    x, links, adjacency = rotated_links(n=60)
    x[3, 0] = np.nan
    learner = LinkMapLearner(x.shape[1], tiny_config())
    with pytest.raises(NonFiniteError):
        learner.learn("p", LinkTask(x, links[10:], links[:10], adjacency), seed=0)


def test_eval_strategy_reads_each_phase_by_its_map_and_replays_earlier_links():
    from vaultlearn.eval.protocol import split_links
    from vaultlearn.eval.learners import LinkMapStrategy, phase_data

    corpus = synthetic_corpus()
    split = split_links(corpus, 0)
    config = tiny_config()
    frozen = unit(np.random.default_rng(0).normal(size=(len(corpus.texts), 8)))
    phase_of = np.array(corpus.phase_of, dtype=object)
    for reading in ("source", "notes", "global"):
        strategy = LinkMapStrategy(frozen, config, corpus.paths, corpus.phase_of, reading=reading)
        emb = frozen.copy()
        after, maps = [], []
        for k, phase in enumerate(corpus.phases[:2]):
            data, known = phase_data(corpus, split, k, twp=True, config=config)
            strategy.refresh(known, emb)
            changed = strategy.learn(phase, k, data, known, emb)
            assert np.isfinite(emb).all()
            after.append(emb.copy())
            maps.append(strategy.source_maps())
        assert [len(links) for links in strategy.learned] == [len(split.train[0]), len(split.train[1])]
        assert list(strategy.learner.phase_fisher) == corpus.phases[:2]
        first, second = (phase_of == p for p in corpus.phases[:2])
        if reading == "source":  # no vector moves: each phase's map, kept as it was learned, reads its links
            np.testing.assert_array_equal(after[1], frozen)
            assert list(maps[1]) == corpus.phases[:2] and changed == int(second.sum())
            np.testing.assert_array_equal(maps[1]["alpha"], maps[0]["alpha"])
            assert not np.allclose(maps[1]["beta"], np.eye(8))
            continue
        assert maps == [None, None]
        assert not np.allclose(after[0][first], frozen[first]), "the first phase's notes were learned"
        if reading == "notes":  # the second phase moved its own notes only
            np.testing.assert_array_equal(after[1][first], after[0][first])
            np.testing.assert_array_equal(after[1][phase_of == None], frozen[phase_of == None])  # noqa: E711
            assert changed == int(second.sum())
        else:
            assert not np.allclose(after[1][first], after[0][first])


def test_eval_strategy_gated_holds_out_links_as_learn_does_and_keeps_a_declined_phase_out(monkeypatch):
    from vaultlearn.eval import learners
    from vaultlearn.eval.protocol import split_links
    from vaultlearn.model.validation import held_out

    corpus = synthetic_corpus()
    split = split_links(corpus, 0)
    config = tiny_config()
    frozen = unit(np.random.default_rng(0).normal(size=(len(corpus.texts), 8)))
    for commits in (True, False):
        calls = []

        def verdict(current, candidate, heldout, phase, earlier, edges, config):
            calls.append((phase, earlier, sorted(heldout)))
            return {"commit": commits}

        monkeypatch.setattr(learners, "compare", verdict)
        strategy = learners.LinkMapStrategy(frozen, config, corpus.paths, corpus.phase_of, reading="notes",
                                            gated=True)
        emb = frozen.copy()
        for k, phase in enumerate(corpus.phases[:2]):
            data, known = learners.phase_data(corpus, split, k, twp=True, config=config)
            strategy.refresh(known, emb)
            strategy.learn(phase, k, data, known, emb)
            links = [(int(known[a]), int(known[b])) for a, b in data.pairs]
            out = held_out(links, [(corpus.paths[a], corpus.paths[b]) for a, b in links],
                           config.learn_validation_share, config.seed)
            assert strategy.validation[phase] == [link for i, link in enumerate(links) if i in out] != []
            assert strategy.learned[k] == [link for i, link in enumerate(links) if i not in out]
        assert calls == [("alpha", [], ["alpha"]), ("beta", ["alpha"], ["alpha", "beta"])]
        assert strategy.learner.learned_phases == (corpus.phases[:2] if commits else [])
        if not commits:  # declined phases: every note keeps its base vector; their links are still replayed
            np.testing.assert_array_equal(emb, frozen)
            assert len(strategy.learned) == 2


def test_within_noise_the_checked_map_nearest_the_previous_one_is_kept():
    previous = torch.eye(3)

    def kept(reciprocal, offset):
        return _Kept(np.array(reciprocal, dtype=float), previous + offset, 0, "previous")

    best = kept([1, 1, 1, 0.5], 2.0)
    tie = kept([1, 1, 0.5, 1], 1.0)  # the same MRR on other links, nearer the previous map
    worse = kept([0.1, 0.1, 0.1, 0.1], 0.0)  # the previous map itself, clearly below the best
    assert nearest_within_noise([worse, best, tie], previous) is tie
    unmoved = kept([1, 0.9, 1, 0.6], 0.0)  # 0.875 against 0.875: a difference of noise only
    assert nearest_within_noise([worse, best, tie, unmoved], previous) is unmoved
    assert nearest_within_noise([best], previous) is best


def test_hard_negatives_are_the_nearest_allowed_candidates_in_order(monkeypatch):
    import vaultlearn.metrics as metrics

    angles = np.array([0.0, 0.12, 0.2, 0.2, 0.33, 0.5, 0.9, 1.4])  # notes 2 and 3 tie
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    exclude = [{4}, set(), set(), set(), set(), set(), set(), set(range(8))]
    monkeypatch.setattr(metrics, "SCORE_BLOCK", 2 * 8)  # blocks of two anchors (metrics.score_blocks)
    pool = hard_negative_pool(emb, [0, 0, 5, 7, 1], exclude, np.arange(8), 3)
    assert pool[0].tolist() == [1, 2, 3], "itself and its excluded note left out; ties in candidate order"
    assert pool[5].tolist() == [4, 2, 3] and pool[1].tolist() == [2, 3, 0]
    assert pool[7].tolist() == [], "every candidate excluded: no negative"
    assert hard_negative_pool(emb, [0], exclude, np.array([4, 6]), 3)[0].tolist() == [6]


def test_own_checks_rank_the_phases_own_checking_links_once_it_has_enough_of_them():
    x = unit(np.random.default_rng(3).normal(size=(100, 8)))
    earlier = [(i, i + 1) for i in range(0, 20, 2)]
    own = [(i, i + 1) for i in range(20, 20 + 2 * MIN_OWN_CHECKING, 2)]
    adjacency = [set() for _ in range(len(x))]
    for a, b in earlier + own:
        adjacency[a].add(b)
        adjacency[b].add(a)

    def mrr(task, links):
        return float(np.mean(1.0 / rank_of_targets(x, links, np.arange(len(x)), task.targets)))

    enough = LinkTask(x, [], earlier + own, adjacency, own_checking=len(own))
    fewer = LinkTask(x, [], earlier + own[1:], adjacency, own_checking=len(own) - 1)
    assert enough.own_checked == own
    assert mrr(enough, own) != pytest.approx(mrr(enough, earlier + own))  # the two checks differ here
    by_own = LinkMapLearner(8, tiny_config(), own_checks=True)
    assert by_own.check(enough) == pytest.approx(mrr(enough, own))
    assert by_own.check(fewer) == pytest.approx(mrr(fewer, earlier + own[1:]))  # too few of its own: all
    every = LinkMapLearner(8, tiny_config(), own_checks=False)
    assert every.check(enough) == pytest.approx(mrr(enough, earlier + own))


def test_link_task_counts_the_last_phases_own_checking_links():
    corpus = synthetic_corpus()
    config = tiny_config()
    first, second = corpus.edges[:40], corpus.edges[40:80]
    task = link_task(np.zeros((len(corpus.paths), 4), np.float32), [first, second], corpus.paths,
                     [set() for _ in corpus.paths], config)
    checks = [is_checking_link(config.seed, corpus.paths[a], corpus.paths[b]) for a, b in second]
    assert 0 < sum(checks) < len(second)
    assert task.own_checking == sum(checks) and task.own == len(second) - sum(checks)
    assert task.own_checked == [link for link, c in zip(second, checks) if c]
