"""Validated commits: the rule on hand-made embeddings, and `learn` keeping or committing a phase for real."""

import json

import numpy as np
import pytest

from tests.conftest import TINY, run
from vaultlearn.config import Config
from vaultlearn.model.validation import HeldOutRanks, compare, held_out, is_checking_link, never_fitted

# note 0 links to 1 (held out, phase "new") and 2 (held out, phase "old" is note 3's: 3 → 4)
EDGES = [(0, 1), (3, 4)]
HELDOUT = {"new": [(0, 1)], "old": [(3, 4)]}


def embeddings(near: dict[int, int], notes: int = 200) -> np.ndarray:
    """``notes`` unit vectors; ``near[a] = b`` puts b right next to a, everything else is spread out."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(notes, 32)).astype(np.float32)
    for a, b in near.items():
        emb[b] = emb[a] + 0.01 * emb[b]
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def test_held_out_share_is_seeded_stable_and_never_empty():
    links = [(i, i + 1) for i in range(50)]
    names = [(f"n{a}.md", f"n{b}.md") for a, b in links]
    out = held_out(links, names, 0.2, seed=0)
    assert out == held_out(links, names, 0.2, seed=0) and out != held_out(links, names, 0.2, seed=1)
    assert 3 <= len(out) <= 20
    grown = held_out(links + [(60, 61)], names + [("n60.md", "n61.md")], 0.2, seed=0)
    assert out <= grown, "a link stays held out when the phase gains links"
    assert len(held_out(links[:2], names[:2], 0.01, seed=0)) == 1 and held_out(links[:1], names[:1], 0.5, 0) == set()


def test_never_fitted_links_are_the_held_out_and_the_checking_ones():
    names = [(f"n{i}.md", f"m{i % 41}.md") for i in range(2000)]
    config = Config()
    mask = never_fitted(names, config)
    held = held_out(list(range(2000)), names, config.learn_validation_share, config.seed)
    checking = {i for i, (a, b) in enumerate(names) if is_checking_link(config.seed, a, b)}
    assert set(np.flatnonzero(mask).tolist()) == held | checking
    assert 0.30 < mask.mean() < 0.42  # 20% held out + 20% of the rest checking


def test_a_candidate_that_gains_and_keeps_earlier_phases_is_committed():
    current, candidate = embeddings({3: 4}), embeddings({3: 4, 0: 1})
    check = compare(current, candidate, HELDOUT, "new", ["old"], EDGES, Config())
    assert check["commit"] and check["gain"] > 0 and check["mrr_gain"] > 0
    assert check["earlier"] == [{"phase": "old", "links": 1, "gain": 0.0, "mrr_gain": 0.0}]


def test_no_gain_or_an_earlier_drop_keeps_the_current_model():
    current = embeddings({3: 4})
    same = compare(current, current.copy(), HELDOUT, "new", ["old"], EDGES, Config())
    assert not same["commit"] and same["reason"].startswith("no gain")
    costly = compare(current, embeddings({0: 1}), HELDOUT, "new", ["old"], EDGES, Config())
    assert not costly["commit"] and "earlier phases drop" in costly["reason"] and "old" in costly["reason"]
    tolerant = compare(current, embeddings({0: 1}), HELDOUT, "new", ["old"], EDGES, Config(learn_max_drop=1.0))
    assert tolerant["commit"]
    empty = compare(current, current, {"new": []}, "new", [], EDGES, Config())
    assert not empty["commit"] and "no held-out links" in empty["reason"]


def test_the_phase_gains_by_recall_and_mrr_together_neither_down_by_more_than_one_link(monkeypatch):
    import vaultlearn.model.validation as validation

    links = [(2 * i, 2 * i + 1) for i in range(20)]
    current, candidate = np.zeros((40, 2)), np.ones((40, 2))

    def check(before: list[int], after: list[int]) -> dict:  # the held-out targets' ranks, before and after
        ranks = {id(current): np.array(before), id(candidate): np.array(after)}
        monkeypatch.setattr(validation.HeldOutRanks, "under", lambda self, v, checked, t: {"new": ranks[id(v)]})
        return compare(current, candidate, {"new": links}, "new", [], links, Config())

    one_out = check([5] * 10 + [50] * 10, [1] * 9 + [50] * 11)  # one link leaves the top ten, the rest rise
    assert one_out["commit"] and one_out["gain"] == pytest.approx(-1 / 20) and one_out["mrr_gain"] > 0.3
    two_out = check([5] * 10 + [50] * 10, [1] * 8 + [50] * 12)
    assert not two_out["commit"] and two_out["reason"].startswith("no gain") and "one link, 0.050" in two_out["reason"]
    mrr_down = check([1] * 10 + [50] * 10, [9] * 12 + [50] * 8)  # Recall@10 up, MRR down far more than a link
    assert not mrr_down["commit"] and mrr_down["gain"] == pytest.approx(0.1)
    level = check([5] * 20, [5] * 20)
    assert not level["commit"]


def test_an_earlier_phase_drops_by_more_than_one_of_its_links_or_all_of_them_together():
    small = [(3, 4), (5, 6), (7, 8)]
    big = [(a, a + 1) for a in range(100, 340, 2)]  # 120 held-out links
    heldout, edges = {"new": [(0, 1)], "small": small, "big": big}, [(0, 1), *small, *big]
    kept = dict(small + big)
    current = embeddings(kept, 400)

    def check(lost: list[int], earlier=("small", "big")) -> dict:
        candidate = embeddings({0: 1, **{a: b for a, b in kept.items() if a not in lost}}, 400)
        return compare(current, candidate, heldout, "new", list(earlier), edges, Config())

    one = check([3])  # one of small's three links: within one link's worth, and 1 of 123 together
    assert one["commit"], one["reason"]
    assert one["earlier_pooled"]["links"] == 123 and -0.01 < one["earlier_pooled"]["gain"] < 0
    assert one["earlier"][0]["gain"] == pytest.approx(-1 / 3)
    two = check([3, 5])  # two of its three
    assert not two["commit"] and "small (Recall@10 -0.667" in two["reason"]
    big_two = check([100, 102])  # two of big's 120: more than 0.01 and than one link's worth (1/120)
    assert not big_two["commit"] and "big (Recall@10 -0.017" in big_two["reason"]
    alone = check([3], earlier=("small",))  # the pooled links are small's alone: one of three is a drop
    assert not alone["commit"] and "together (small; Recall@10 -0.333" in alone["reason"]
    many = {"new": [(0, 1)], **{f"p{i}": [(a, a + 1)] for i, a in enumerate((3, 5, 7, 100))}}
    lost = compare(current, embeddings({0: 1}, 400), many, "new", ["p0", "p1", "p2", "p3"], edges, Config())
    assert "together (p0, p1, p2 and 1 more; Recall@10 -1.000" in lost["reason"]


def test_checks_one_after_another_from_carried_ranks_equal_checks_afresh(monkeypatch):
    import vaultlearn.metrics as metrics
    import vaultlearn.model.validation as validation

    rng = np.random.default_rng(1)
    notes, phase_of = 300, np.arange(300) // 100  # three phases of 100 notes; a link is its source's
    edges = sorted({(int(a), int(b)) for a, b in rng.integers(0, notes, (900, 2)) if a != b})
    heldout = {f"p{k}": [(a, b) for a, b in edges[k::4] if phase_of[a] == k] for k in range(3)}
    current = [embeddings({}, notes)]
    candidates = []
    for k in range(3):  # each phase's candidate moves that phase's notes; p1's is declined
        candidates.append(current[-1].copy())
        candidates[-1][phase_of == k] = embeddings({}, notes)[::-1][phase_of == k]
        current.append(current[-1] if k == 1 else candidates[-1])
    ranked: list[int] = []
    real = metrics.rank_of_targets

    def counted(emb, links, candidates, targets):
        ranked.append(len(links))
        return real(emb, links, candidates, targets)

    monkeypatch.setattr(metrics, "rank_of_targets", counted)
    monkeypatch.setattr(validation, "rank_of_targets", counted)
    carried = HeldOutRanks()
    for k in range(3):
        names = [f"p{j}" for j in range(k)]
        touching = [(a, b) for j in range(k + 1) for a, b in heldout[f"p{j}"] if k in (phase_of[a], phase_of[b])]
        ranked.clear()
        fresh = compare(current[k], candidates[k], heldout, f"p{k}", names, edges, Config())
        # afresh: every link under the current model; under the candidate, those whose source or target moved
        assert sum(ranked) == sum(len(heldout[f"p{j}"]) for j in range(k + 1)) + len(touching)
        ranked.clear()
        assert compare(current[k], candidates[k], heldout, f"p{k}", names, edges, Config(), carried) == fresh
        if k < 2:  # carried: the current model's ranks are the last candidate's, but for the phase's own links
            assert sum(ranked) == len(touching) + len(heldout[f"p{k}"])
        else:  # after a decline, those of the links that the declined phase's notes touch are ranked again
            assert sum(ranked) < sum(len(heldout[f"p{j}"]) for j in range(k + 1)) + len(touching)


@pytest.fixture
def tiny_vault(tiny_vault):
    """The indexed tiny vault (conftest), learning in two steps."""
    (tiny_vault / ".vaultlearn" / "config.toml").write_text(TINY.replace("learn_steps = 4", "learn_steps = 2"))
    return tiny_vault


def set_config(vault, **settings):
    path = vault / ".vaultlearn" / "config.toml"
    path.write_text(path.read_text() + "".join(f"{k} = {v}\n" for k, v in settings.items()))


def test_learn_declines_keeps_the_model_and_force_commits(tiny_vault):
    set_config(tiny_vault, learn_min_gain=1.0)  # no phase can gain this much
    out = run("learn", "--vault", tiny_vault, "--phase", "greenhouse", "--json")
    assert out.returncode == 0, out.stderr
    phase = json.loads(out.stdout)["phases"][0]
    assert not phase["committed"] and phase["reason"].startswith("no gain") and phase["reembedded"] == 0
    assert phase["validation"]["links"] >= 1 and "gain" in phase["validation"]
    assert not (tiny_vault / ".vaultlearn" / "model" / "manifest.json").exists()
    status = json.loads(run("status", "--vault", tiny_vault, "--json").stdout)
    assert status["learned_phases"] == [] and "greenhouse" in status["declined_phases"]
    assert "greenhouse" not in status["pending_phases"]
    assert status["learn_validation"]["greenhouse"]["validation"] == phase["validation"]
    text = run("status", "--vault", tiny_vault).stdout
    assert "declined         greenhouse: no gain" in text

    forced = run("learn", "--vault", tiny_vault, "--phase", "greenhouse", "--force", "--json")
    phase = json.loads(forced.stdout)["phases"][0]
    assert phase["committed"] and phase["forced"] and phase["reembedded"] == 0, "the link map re-encodes no note"
    assert json.loads((tiny_vault / ".vaultlearn" / "model" / "manifest.json").read_text())["learned_phases"] == [
        "greenhouse"]
    status = json.loads(run("status", "--vault", tiny_vault, "--json").stdout)
    assert status["learned_phases"] == ["greenhouse"] and status["declined_phases"] == {}


def test_learn_says_a_phase_too_small_to_move_its_notes_is_kept_as_it_is(tiny_vault):
    config = tiny_vault / ".vaultlearn" / "config.toml"
    config.write_text(config.read_text().replace("map_min_phase_links = 1\n", "map_min_phase_links = 1000\n"))
    set_config(tiny_vault, learn_min_gain=-1.0, learn_max_drop=1.0)  # would commit, were the notes moved
    out = run("learn", "--vault", tiny_vault, "--phase", "beehive-monitor", "--json")
    assert out.returncode == 0, out.stderr
    phase = json.loads(out.stdout)["phases"][0]
    assert not phase["committed"] and phase["vectors_changed"] == 0.0
    assert "links of its own to fit" in phase["reason"] and "at least 1000" in phase["reason"]
    assert phase["validation"]["gain"] == 0.0 and phase["validation"]["mrr_gain"] == 0.0  # nothing moved
    assert not (tiny_vault / ".vaultlearn" / "model" / "manifest.json").exists()


def test_learn_commits_a_phase_that_passes_validation(tiny_vault):
    set_config(tiny_vault, learn_min_gain=-1.0, learn_max_drop=1.0)  # passes unless Recall@10 falls
    out = run("learn", "--vault", tiny_vault, "--phase", "beehive-monitor")  # gains MRR, keeps Recall@10 here
    assert out.returncode == 0, out.stderr
    assert "beehive-monitor:" in out.stdout and "validated: Recall@10" in out.stdout
    status = json.loads(run("status", "--vault", tiny_vault, "--json").stdout)
    assert status["learned_phases"] == ["beehive-monitor"]
    record = status["learn_validation"]["beehive-monitor"]
    assert record["committed"] and not record["forced"] and record["validation"]["links"] >= 1
    assert record["validation"]["recall_candidate"] >= record["validation"]["recall_current"]
