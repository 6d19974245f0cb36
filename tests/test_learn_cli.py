"""`learn` and `report overlap` end to end on a copy of sample_vault/ (real model; the link map, and the token
memory with a tiny config)."""

import json
import signal
import subprocess
import sys
import time

import pytest

import numpy as np

from tests.conftest import TINY, run
from vaultlearn.index.learned import map_vectors
from vaultlearn.service import VaultService
from vaultlearn.store import Store

PHASES = ["solar-dryer", "rainwater", "beehive-monitor", "greenhouse"]


def check_overlap(vault, tmp_path, phases: list[str], groups: set[str]) -> None:
    png = tmp_path / "overlap.png"
    overlap = run("report", "overlap", "--vault", vault, "--json", "--png", png)
    assert overlap.returncode == 0, overlap.stderr
    table = json.loads(overlap.stdout)
    assert table["phases"] == phases and set(table["groups"]) == groups
    for matrix in table["groups"].values():
        for i, row in enumerate(matrix):
            assert row[i] is None or abs(row[i] - 1.0) < 1e-6
            assert all(v is None or 0.0 <= v <= 1.0 + 1e-9 for v in row)
            assert all(row[j] == matrix[j][i] or abs(row[j] - matrix[j][i]) < 1e-9 for j in range(len(row)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learn_a_link_map_then_suggest_search_status_and_overlap(tiny_vault, tmp_path):
    store = Store(tiny_vault, create=False)
    ids, base = store.all_embeddings()
    store.close()
    out = run("learn", "--vault", tiny_vault, "--force", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["learned_phases"] == PHASES
    for phase in report["phases"]:
        assert phase["links"] > 0 and 0 <= phase["steps"] <= 300 and phase["committed"]
        assert phase["reembedded"] == 0 and phase["updated_slots"] == 0, "the map re-encodes no note"
        assert phase["start"] in ("previous", "ridge"), "where the kept map started"
        assert 0.0 <= phase["vectors_changed"] <= 1.0 and 0.0 <= phase["top10_changed"] <= 1.0
    assert any(phase["vectors_changed"] > 0 for phase in report["phases"])
    assert json.loads((tiny_vault / ".vaultlearn" / "model" / "manifest.json").read_text())["kind"] == "linkmap"

    store = Store(tiny_vault, create=False)
    again_ids, again = store.all_embeddings()
    assert (again_ids == ids).all() and (again == base).all(), "the stored embeddings stay the base model's"
    assert store.get_json("rank_fit") is not None
    store.close()
    assert run("suggest", "Dew Point", "--vault", tiny_vault, "--json").returncode == 0
    status = json.loads(run("status", "--vault", tiny_vault, "--json").stdout)
    assert status["learned_phases"] == PHASES and status["pending_phases"] == [] and not status["repair_due"]
    assert status["learner"] == "linkmap" and "(linkmap)" in run("status", "--vault", tiny_vault).stdout
    assert status["embedded"] == 60 and status["index_size"] == 60
    service = VaultService(tiny_vault, create=False)
    maps = service.indexer.phase_maps()
    assert sorted(maps) == sorted(PHASES) and not np.allclose(maps[PHASES[-1]], np.eye(len(base[0])))
    phase_of = {row.id: row.phase for row in service.store.notes()}
    scores, hits = service.vectors().search(base[0], 1)
    assert hits[0][0] == ids[0] and scores[0][0] == pytest.approx(1.0, abs=1e-4), "the index holds base vectors"
    assert service.search("dew point and humidity")[0].score <= 1.0 + 1e-5
    ctx = service.rank_context()  # the reranker weighs the learned similarity beside the base model's
    assert not isinstance(ctx.notes, list), "learn saved the learned state's rank context; a process reads it"
    assert (ctx.vectors == base).all()
    everyone = np.arange(len(ids))
    for phase in PHASES:  # a phase's notes are compared with every note by its own map
        rows = [i for i, note in enumerate(ids.tolist()) if phase_of[note] == phase]
        space = map_vectors(base, maps[phase])
        for q in rows[:3]:
            query = ctx.learned.queries(base[[q]], np.array([q]))
            learned = ctx.learned.similarity(np.repeat(query, len(ids), 0), np.full(len(ids), q), base, everyone)
            np.testing.assert_allclose(learned, space @ space[q], atol=1e-5)
    service.close()
    assert "nothing to learn" in run("learn", "--vault", tiny_vault).stdout
    check_overlap(tiny_vault, tmp_path, PHASES, {"map_weights"})

    (tiny_vault / ".vaultlearn" / "config.toml").write_text(TINY + 'learner = "memory"\n')
    mismatch = run("learn", "--vault", tiny_vault, "--phase", "rainwater")
    assert mismatch.returncode == 1 and "learner = 'memory'" in mismatch.stderr


def test_learn_the_token_memory_then_suggest_status_and_overlap(tiny_vault, tmp_path):
    (tiny_vault / ".vaultlearn" / "config.toml").write_text(TINY + 'learner = "memory"\n')
    out = run("learn", "--vault", tiny_vault, "--force", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["learned_phases"] == PHASES
    for phase in report["phases"]:
        assert phase["links"] > 0 and phase["steps"] == 4 and phase["start"] is None
        assert 0 <= phase["reembedded"] <= 60 and 0.0 <= phase["top10_changed"] <= 1.0
    store = Store(tiny_vault, create=False)
    assert store.notes_without_postings() == set(), "every note has its memory-slot postings after learning"
    touched = store.notes_touching(range(1024))
    assert touched == {row.id for row in store.notes()}

    status = json.loads(run("status", "--vault", tiny_vault, "--json").stdout)
    assert status["learned_phases"] == PHASES and status["pending_phases"] == [] and status["learner"] == "memory"
    assert status["embedded"] == 60
    assert run("suggest", "Dew Point", "--vault", tiny_vault, "--json").returncode == 0
    again = run("learn", "--vault", tiny_vault)
    assert again.returncode == 0 and "nothing to learn" in again.stdout
    check_overlap(tiny_vault, tmp_path, PHASES, {"memory_values", "output_dims"})


def test_learn_one_phase_and_unknown_phase(tiny_vault):
    out = run("learn", "--vault", tiny_vault, "--phase", "rainwater", "--force", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["learned_phases"] == ["rainwater"]
    bad = run("learn", "--vault", tiny_vault, "--phase", "no-such-phase")
    assert bad.returncode == 1 and "no phase 'no-such-phase'" in bad.stderr
    overlap = run("report", "overlap", "--vault", tiny_vault)
    assert overlap.returncode == 1 and "fewer than two phases" in overlap.stderr


def test_a_phase_without_held_out_links_is_not_trained_unless_forced(tiny_vault):
    note = tiny_vault / "Projects" / "Kiln.md"
    note.write_text("---\nphase_id: kiln\n---\n# Kiln\n\nFiring schedule; see [[Dew Point]].\n")
    plain = run("learn", "--vault", tiny_vault, "--phase", "kiln")
    assert plain.returncode == 0, plain.stderr
    assert "kiln: kept the current model (1 links, not trained): no held-out links" in plain.stdout
    report = json.loads(run("learn", "--vault", tiny_vault, "--phase", "kiln", "--json").stdout)
    (phase,) = report["phases"]
    assert not phase["committed"] and phase["steps"] == 0 and phase["loss_start"] is None
    assert report["learned_phases"] == [] and not (tiny_vault / ".vaultlearn" / "model" / "manifest.json").exists()
    forced = json.loads(run("learn", "--vault", tiny_vault, "--phase", "kiln", "--force", "--json").stdout)
    assert forced["phases"][0]["committed"] and forced["phases"][0]["forced"] and forced["learned_phases"] == ["kiln"]
    assert note.read_text().endswith("see [[Dew Point]].\n"), "the note is never modified"


def test_kill_9_mid_learning_keeps_the_last_good_model(tiny_vault):
    assert run("learn", "--vault", tiny_vault, "--phase", "solar-dryer", "--force").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "vaultlearn.cli", "learn", "--vault", str(tiny_vault), "--force"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    status = run("status", "--vault", tiny_vault, "--json")
    assert status.returncode == 0, status.stderr
    learned = json.loads(status.stdout)["learned_phases"]
    assert learned[0] == "solar-dryer"
    assert run("suggest", "Dew Point", "--vault", tiny_vault, "--json").returncode == 0
    finish = run("learn", "--vault", tiny_vault, "--force", "--json")
    assert finish.returncode == 0, finish.stderr
    assert json.loads(finish.stdout)["learned_phases"] == PHASES
    final = json.loads(run("status", "--vault", tiny_vault, "--json").stdout)
    assert final["embedded"] == 60 and final["pending_phases"] == []
