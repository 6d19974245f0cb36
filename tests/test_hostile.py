"""Bad input, one case at a time: what a messy or hostile vault holds must not stop, wedge or mislead vaultlearn.

The whole hostile vault, end to end, is in test_hostile_vault.py; the parser and resolver are fuzzed in
test_fuzz.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import networkx as nx
import pytest

from tests.conftest import FIXTURE, TINY, mode_000_holds, run, run_cli
from vaultlearn.cli_state import graphml_text
from vaultlearn.errors import VaultlearnError
from vaultlearn.lock import FileLock
from vaultlearn.notices import summarise
from vaultlearn.paths import StatePaths
from vaultlearn.service import VaultService
from vaultlearn.store import Store
from vaultlearn.vault.parse import parse_note
from vaultlearn.vault.scan import read_note_bytes, scan_vault

BOMB = FIXTURE / "Hostile" / "Billion laughs.md"
MEMORY_LIMIT = 1 << 30  # the YAML bomb once took 23 GB


def test_billion_laughs_parses_in_bounded_memory_and_time():
    script = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))\n"
              "import json, sys; from pathlib import Path; from vaultlearn.vault.parse import parse_note\n"
              f"note = parse_note('Bomb.md', Path({str(BOMB)!r}).read_bytes())\n"
              "print(json.dumps({'tags': note.tags, 'aliases': note.aliases, 'warnings': note.warnings,\n"
              "                  'links': [l.target for l in note.links]}))\n")
    started = time.monotonic()
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr[-2000:]
    assert time.monotonic() - started < 10
    note = json.loads(child.stdout)
    assert note["tags"] == note["aliases"] == [] and note["links"] == ["Garden"]
    assert ["frontmatter expands past 200000 values and characters through its aliases; its properties "
            "were ignored"] == note["warnings"]


@pytest.mark.parametrize("frontmatter, problem", [
    ("a: &a [1, *a]\ntags: *a", "alias inside the value"),
    ("x: &x 1\ndeep: " + "[" * 500 + "*x" + "]" * 500, "deeper than 64 levels"),
    ("deep: " + "[" * 3000 + "]" * 3000, "not valid YAML"),
    ("k: " + "x" * 70_000, "frontmatter is too large ("),
    ("when: !!timestamp not a date", "not valid YAML"),
])
def test_frontmatter_past_its_bounds_is_ignored_with_a_warning(frontmatter, problem):
    started = time.perf_counter()
    note = parse_note("N.md", f"---\n{frontmatter}\n---\nThe body stays. [[Kept]]".encode())
    assert time.perf_counter() - started < 2
    assert note.frontmatter == {} and [link.target for link in note.links] == ["Kept"] and "The body stays" in note.text
    assert len(note.warnings) == 1 and problem in note.warnings[0]


def test_legitimate_anchors_and_merge_keys_still_work():
    note = parse_note("N.md", b"---\nbase: &b {x: 1}\nother:\n  <<: *b\n  y: 2\ntags: &t [a, b]\nalso: *t\n---\n")
    assert note.warnings == [] and note.tags == ["a", "b"] and note.frontmatter["other"] == {"x": 1, "y": 2}


def _fifo_read(vault: Path, rel: str, problems: list[str], out: list) -> None:
    out.append(read_note_bytes(vault, rel, 100, problems))


def test_a_fifo_named_like_a_note_never_blocks_and_is_skipped_with_a_warning(tmp_path):
    os.mkfifo(tmp_path / "pipe.md")
    (tmp_path / "Note.md").write_text("a note")
    problems: list[str] = []
    out: list = []
    reader = threading.Thread(target=_fifo_read, args=(tmp_path, "pipe.md", problems, out), daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock the reader stuck in open() before failing
        os.close(os.open(tmp_path / "pipe.md", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert out == [None] and problems == ["skipped, not a regular file (a FIFO)"]
    scan = scan_vault(tmp_path)
    assert [f.path for f in scan.notes] == ["Note.md"]
    assert scan.problems == [("pipe.md", "skipped, not a regular file (a FIFO)")]


def test_an_unreadable_note_is_skipped_with_a_warning(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "Locked.md").write_text("private")
    (vault / "Locked.md").chmod(0)
    if not mode_000_holds(vault / "Locked.md"):
        pytest.skip("a mode-000 file stays readable to child processes here")
    out = run_cli("index", vault, "--json", "-q")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["warning_list"] == [{"path": "Locked.md", "message": "skipped, cannot be read (Permission denied)"}]
    assert "warning: Locked.md: skipped, cannot be read (Permission denied)" in out.stderr
    assert report["status"]["notes"] == 0


def test_control_characters_end_a_tag_and_never_reach_graphml():
    note = parse_note("N.md", "---\ntags: [\"ok\", \"x\\ay\"]\n---\nA #draft\x07bell, #b\x1b[31m, #c\x85d".encode())
    assert note.tags == ["ok", "x", "y", "draft", "b", "c"]
    graph = nx.MultiDiGraph()
    graph.add_node("Bell\x07name.md", title="Bell\x07name", tags="draft\x07bell", phase="p\x00")
    graph.add_node("Plain.md", title="Plain", tags="", phase="")
    graph.add_edge("Bell\x07name.md", "Plain.md", kind="link")
    back = nx.parse_graphml(graphml_text(graph))
    assert set(back) == {"Bell\ufffdname.md", "Plain.md"}
    assert back.nodes["Bell\ufffdname.md"]["tags"] == "draft\ufffdbell" and back.number_of_edges() == 1


def test_warnings_name_their_file_and_repeated_kinds_are_summarised():
    warnings = [(f"Long/Note {i}.md", f"text capped at 4000 of {5000 + i} characters for embedding") for i in range(24)]
    warnings += [("Bad.md", "frontmatter is not valid YAML (while parsing a flow sequence); its properties were "
                            "ignored"), ("pipe.md", "skipped, not a regular file (a FIFO)")]
    assert summarise(warnings) == [
        "24 files: text capped at … of … characters for embedding: Long/Note 0.md, Long/Note 1.md, Long/Note 2.md "
        "and 21 more",
        "Bad.md: frontmatter is not valid YAML (while parsing a flow sequence); its properties were ignored",
        "pipe.md: skipped, not a regular file (a FIFO)",
    ]
    assert summarise(warnings[:3]) == [f"{path}: {message}" for path, message in warnings[:3]]


def test_an_ambiguous_name_says_which_note_answers(indexed_sample_vault):
    overviews = sorted(p.relative_to(indexed_sample_vault).as_posix()
                       for p in indexed_sample_vault.rglob("Overview.md"))
    assert len(overviews) == 4
    out = run("suggest", "Overview", "--vault", indexed_sample_vault, "--json", "-k", "3")
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout), list)  # --json stays a list; the notice is on stderr
    chosen = min(overviews, key=lambda p: (len(p), p))
    notice = out.stderr.strip()
    assert notice.startswith(f"warning: 4 notes are named 'Overview'; answering for {chosen}")
    assert all(p in notice for p in overviews)
    exact = run("suggest", "Projects/Solar Dryer/Overview", "--vault", indexed_sample_vault, "--json")
    assert exact.returncode == 0 and "named" not in exact.stderr


def test_status_of_an_empty_vault(tmp_path):
    (tmp_path / "empty").mkdir()
    assert run("index", tmp_path / "empty", "-q").returncode == 0
    out = run("status", "--vault", tmp_path / "empty")
    assert out.returncode == 0 and "None" not in out.stdout
    assert [line.split() for line in out.stdout.splitlines() if line.startswith("phases")] == [["phases", "0"]]


def test_learning_an_unknown_phase_fails_before_loading_the_model(indexed_sample_vault):
    service = VaultService(indexed_sample_vault)
    try:
        with pytest.raises(VaultlearnError, match="no phase 'nope'; the phases are: solar-dryer"):
            service.learn("nope")
        assert service._learner is None and service._encoder is None
    finally:
        service.close()


def test_suggest_for_a_deleted_note_says_so_once(indexed_sample_vault):
    """Runs last in this module's use of the shared vault: it deletes a note (and puts it back)."""
    note = indexed_sample_vault / "Concepts" / "Dew Point.md"
    kept = note.read_bytes()
    note.unlink()
    try:
        out = run("suggest", "Concepts/Dew Point.md", "--vault", indexed_sample_vault)
    finally:
        note.write_bytes(kept)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "Concepts/Dew Point.md is no longer in the vault" in out.stderr
    assert "changed" not in out.stderr and "no note named" not in out.stderr


def test_two_index_runs_do_the_work_once_and_say_they_wait(sample_vault, tmp_path):
    state = sample_vault / ".vaultlearn"
    state.mkdir()
    Store(sample_vault).close()
    held = FileLock(StatePaths(sample_vault).writer_lock)
    assert held.acquire()
    logs = [tmp_path / "first.err", tmp_path / "second.err"]
    procs = [subprocess.Popen([sys.executable, "-m", "vaultlearn.cli", "index", str(sample_vault), "--json", "-q"],
                              stdout=subprocess.PIPE, stderr=open(log, "wb"), text=True) for log in logs]
    try:
        deadline = time.monotonic() + 120
        while not all(f"waiting for pid {os.getpid()}" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text() for log in logs]
            time.sleep(0.2)
        assert Store(sample_vault, create=False).notes() == []  # nothing written while the lock is held
    finally:
        held.release()
    reports = [json.loads(proc.communicate(timeout=300)[0]) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert sorted(r["embedded"] for r in reports) == [0, 60], "the second run must find the work done"
    assert sum("waiting for pid" in log.read_text() for log in logs) >= 1
    assert not any("Loading weights" in log.read_text() for log in logs), "-q shows no progress bar"


def test_status_says_a_repair_is_due_after_a_kill_between_the_two_commits(sample_vault, tmp_path):
    (sample_vault / ".vaultlearn").mkdir()
    (sample_vault / ".vaultlearn" / "config.toml").write_text(TINY)
    assert run("index", sample_vault, "-q").returncode == 0
    state = sample_vault / ".vaultlearn"
    saved = tmp_path / "saved"
    saved.mkdir()
    for db in state.glob("state.sqlite*"):
        shutil.copy2(db, saved / db.name)
    assert run("learn", "--vault", sample_vault, "--phase", "solar-dryer", "--force").returncode == 0
    assert (state / "model" / "manifest.json").exists()
    for db in state.glob("state.sqlite*"):  # the sqlite commit undone: what a kill right before it leaves
        db.unlink()
    for db in saved.iterdir():
        shutil.copy2(db, state / db.name)

    status = json.loads(run("status", "--vault", sample_vault, "--json").stdout)
    assert status["repair_due"] is True and "solar-dryer" in status["pending_phases"]
    text = run("status", "--vault", sample_vault).stdout
    assert "repair due" in text and "vaultlearn index" in text
    assert run("index", sample_vault, "-q").returncode == 0
    status = json.loads(run("status", "--vault", sample_vault, "--json").stdout)
    assert status["repair_due"] is False and status["learned_phases"] == ["solar-dryer"]
