"""`vaultlearn watch` end to end: real daemon processes on a temp vault, real files, real HTTP, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import WATCH, DaemonProcess, make_vault, paths, poll
from vaultlearn.index.context import RankContext
from vaultlearn.paths import STATE_DIR, rank_snapshot_folders
from vaultlearn.daemon.writer import LearnPolicy
from vaultlearn.service import VaultService
from vaultlearn.vault.scan import scan_vault


def assert_consistent(vault: Path) -> None:
    """The stored state matches the files exactly: same notes, each current, each embedded and indexed."""
    on_disk = {f.path for f in scan_vault(vault).notes}
    service = VaultService(vault)
    try:
        stored = {row.path for row in service.store.notes()}
        assert stored == on_disk, (sorted(on_disk - stored)[:5], sorted(stored - on_disk)[:5])
        stale = [p for p in sorted(on_disk) if not service.is_current(p)]
        assert not stale, stale[:5]
        status = service.status()
        assert status.embedded == status.index_size == len(on_disk)
    finally:
        service.close()


def test_learn_policy_learns_phases_in_order_up_to_a_ready_one():
    policy = LearnPolicy(min_new_links=20, quiet_seconds=1.0)
    pending, new = ["a", "b", "c"], {"a": 3, "b": 25, "c": 5}
    assert policy.ready_phase(pending, new) == "a"  # b is ready, and a comes first
    policy.tried("a", new)  # ...and stayed pending: not again until its links change
    assert policy.ready_phase(pending, new) is None
    new["a"] = 4
    assert policy.ready_phase(pending, new) == "a"
    assert policy.ready_phase(["b", "c"], {"b": 25, "c": 5}) == "b"
    assert policy.ready_phase(["c"], {"c": 5, "a": 90}) is None


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    d = DaemonProcess(make_vault(root), root / "daemon.log").wait_serving()
    d.wait_idle()
    yield d
    if d.proc.poll() is None:
        d.kill()


def test_serves_the_indexed_vault(daemon):
    status = daemon.status()
    assert status["notes"] == len(scan_vault(daemon.vault).notes) and status["state"] == "idle"
    assert paths(daemon.suggest("Sourdough"))[0] == "Kitchen/Rye bread.md"
    assert oct((daemon.state / "token").stat().st_mode & 0o777) == "0o600"


def test_the_cli_asks_the_running_daemon_and_ranks_itself_when_it_does_not_answer(daemon, monkeypatch):
    from click.testing import CliRunner

    from vaultlearn.cli import cli

    poll(lambda: "rank context ready" in daemon.log.read_text(), 60, "the rank context built after the reconcile")
    args = ["suggest", "Sourdough", "--vault", str(daemon.vault), "-k", "5", "--json"]
    served = daemon.suggest("Sourdough").json()["suggestions"]
    with monkeypatch.context() as patch:  # the daemon answers: this process must not rank
        patch.setattr(VaultService, "suggest", lambda *a, **kw: pytest.fail("ranked in the CLI process"))
        asked = CliRunner().invoke(cli, args)
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout) == served
    token = daemon.state / "token"
    kept = token.read_text()
    token.write_text("not-the-token")  # the daemon refuses the request: the CLI ranks on its own, the same,
    try:  # from the rank context saved by the reconcile, not building one
        assert rank_snapshot_folders(daemon.state)
        with monkeypatch.context() as patch:
            patch.setattr(RankContext, "build", lambda *a, **kw: pytest.fail("built, not read from the snapshot"))
            alone = CliRunner().invoke(cli, args)
    finally:
        token.write_text(kept)
    assert alone.exit_code == 0, alone.output
    assert [s["path"] for s in json.loads(alone.stdout)] == [s["path"] for s in served]


def test_requests_without_the_token_are_refused(daemon):
    response = httpx.get(str(daemon.client.base_url) + "/status")
    assert response.status_code == 401
    response = httpx.get(str(daemon.client.base_url) + "/suggest", params={"note": "Sourdough"},
                         headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_path_traversal_is_refused(daemon, tmp_path):
    secret = daemon.vault.parent / "secret.md"
    secret.write_text("top secret")
    os.symlink(secret, daemon.vault / "Escape.md")
    try:
        for note in ["../secret.md", "Kitchen/../../secret.md", str(secret), "/etc/passwd"]:
            assert daemon.suggest(note).status_code == 400, note
        assert daemon.suggest("Escape.md").status_code == 404
    finally:
        (daemon.vault / "Escape.md").unlink()


def test_create_edit_rename_delete(daemon):
    vault = daemon.vault
    (vault / "Linker.md").write_text("Everything about waiting on coroutines: [[Await notes]]")
    note = vault / "Starter feeding.md"
    note.write_text("Feeding a sourdough starter: flour, water and wild yeast, bubbles before baking bread.")
    created = poll(lambda: daemon.suggest("Starter feeding").status_code == 200 and daemon.suggest(
        "Starter feeding"), 30, "the new note")
    assert set(paths(created)[:2]) <= {"Kitchen/Sourdough.md", "Kitchen/Rye bread.md"}
    unresolved = daemon.wait_idle()["unresolved_links"]

    # edit as a sync tool does: a temp file renamed over the note
    tmp = vault / ".Starter feeding.md.tmp"
    tmp.write_text("Awaiting coroutines in Python asyncio: the event loop schedules tasks and futures.")
    os.replace(tmp, note)
    poll(lambda: paths(daemon.suggest("Starter feeding"))[0] == "Code/Asyncio.md", 30, "suggestions of the edit")

    # rename: the note keeps its identity (nothing re-embedded) and [[Await notes]] now resolves
    note.rename(vault / "Code" / "Await notes.md")
    poll(lambda: daemon.suggest("Await notes").status_code == 200, 30, "the renamed note")
    status = daemon.wait_idle()
    assert daemon.suggest("Starter feeding").status_code == 404
    assert status["last_change"]["moves"] == 1 and status["last_change"]["embedded"] == 0
    assert status["unresolved_links"] == unresolved - 1
    assert paths(daemon.suggest("Await notes"))[0] == "Code/Asyncio.md"

    # a folder rename moves every note under it, keeping identities
    (vault / "Kitchen").rename(vault / "Bakery")
    poll(lambda: daemon.suggest("Bakery/Sourdough.md").status_code == 200, 30, "the moved folder")
    status = daemon.wait_idle()
    assert status["last_change"]["moves"] == 2 and status["last_change"]["embedded"] == 0
    assert daemon.suggest("Kitchen/Sourdough.md").status_code == 404

    # delete
    (vault / "Code" / "Await notes.md").unlink()
    poll(lambda: daemon.suggest("Await notes").status_code == 404, 30, "the deletion")
    assert "Code/Await notes.md" not in paths(daemon.suggest("Asyncio", k=50))


def test_a_second_daemon_on_the_same_vault_exits(daemon, tmp_path):
    second = subprocess.run([*WATCH, str(daemon.vault), "--port", "0"], capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"pid {daemon.proc.pid}" in second.stderr


def test_refuses_a_remote_address_unless_allowed(tmp_path):
    result = subprocess.run([*WATCH, str(tmp_path), "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--allow-remote" in result.stderr


def test_burst_of_1000_writes_loses_nothing(daemon):
    vault = daemon.vault
    burst = vault / "Burst"
    burst.mkdir()
    notes = [burst / f"Item {i:03d}.md" for i in range(250)]
    for round_ in range(3):  # 750 writes: every note created, then saved twice more
        for i, note in enumerate(notes):
            note.write_text(f"Item {i}, version {round_}. Related: [[Item {(i + 1) % 250:03d}]]")
    for i, note in enumerate(notes):  # 250 more, each in two halves, like a slow writer
        with open(note, "a") as handle:
            handle.write(" Appended in two halves, ")
            handle.flush()
            handle.write("the second one now.")
    for note in notes[5::50]:
        note.unlink()
    for note in notes[7::100]:
        note.rename(note.with_name(f"Renamed {note.name}"))
    status = daemon.wait_idle(timeout=300)
    assert status["notes"] == len(scan_vault(vault).notes)
    assert_consistent(vault)  # read beside the idle daemon: every note's final version is the stored one


def test_kill_9_while_indexing_then_restart(daemon):
    """Last of the module: kills the shared daemon mid-indexing, restarts, stops it cleanly."""
    vault = daemon.vault
    for i in range(300):
        (vault / f"Bulk {i:03d}.md").write_text(f"Bulk note number {i} about topic {i % 7}. [[Bulk {i // 2:03d}]]")
    poll(lambda: daemon.status()["state"] == "indexing" and daemon.status()["pending_changes"] == 0, 60,
         "indexing of the bulk")
    time.sleep(0.5)
    daemon.kill()
    assert json.loads((daemon.state / "daemon.json").read_text())["pid"] == daemon.proc.pid  # left behind

    second = DaemonProcess(vault, daemon.log).wait_serving()  # the stale files are replaced
    status = second.wait_idle(timeout=300)
    assert status["notes"] == len(scan_vault(vault).notes)
    assert second.suggest("Bulk 123").status_code == 200
    assert second.stop() == 0
    assert not (second.state / "daemon.json").exists() and not (second.state / "token").exists()
    assert_consistent(vault)


def test_kill_9_while_learning_keeps_the_previous_model(tmp_path):
    vault = make_vault(tmp_path)
    # the token memory: a learning job of tens of seconds, so the kill lands inside it (a link-map phase on this
    # vault takes about a second; its commit is the same manifest swap, tested in test_hostile.py)
    config = vault / STATE_DIR / "config.toml"
    config.write_text(config.read_text() + 'learner = "memory"\n')
    first_log = tmp_path / "first.log"
    first = DaemonProcess(vault, first_log).wait_serving()
    before = first.wait_idle()
    phase = before["pending_phases"][0]
    assert first.client.post("/learn", json={"phase": phase}).json() == {"queued": True}

    def under_way() -> bool:
        job = first.client.get("/learn").json()
        assert job["result"] is None and job["error"] is None, f"the learning job ended before the kill: {job}"
        return job["running"] and job["progress"] is not None

    poll(under_way, 300, "learning progress")
    assert first.status()["state"] == "learning"
    assert paths(first.suggest("Sourdough"))  # still served from the last consistent state
    first.kill()
    log = first_log.read_text()  # the job logs its end, success or failure: the kill landed before it
    assert "learned phases now" not in log and f"learning {phase} failed" not in log, log

    second = DaemonProcess(vault, tmp_path / "daemon.log").wait_serving()
    after = second.wait_idle(timeout=300)
    assert after["learned_phases"] == before["learned_phases"] and phase in after["pending_phases"]
    assert paths(second.suggest("Sourdough"))[0] == "Kitchen/Rye bread.md"
    assert second.stop(signal.SIGINT) == 0
    assert_consistent(vault)


@pytest.mark.slow
def test_background_learning_when_ready_and_quiet(tmp_path):
    """Phases are learned in order while one still has enough new links; the last (11 links) waits."""
    vault = make_vault(tmp_path)
    (vault / STATE_DIR / "config.toml").write_text(
        "debounce_seconds = 0.2\nlearn_quiet_seconds = 2.0\nlearn_min_new_links = 20\n"
        "learn_steps = 5\nlearn_batch_size = 8\n"
        "learn_min_gain = -1.0\nlearn_max_drop = 1.0\n")  # validation passes: this test is about the policy
    daemon = DaemonProcess(vault, tmp_path / "daemon.log").wait_serving()
    status = poll(lambda: (s := daemon.status())["applied_batches"] and s, 120, "the startup reconcile")
    ready = [p for p in status["pending_phases"] if status["new_links_by_phase"].get(p, 0) >= 20]
    last_ready = status["pending_phases"].index(ready[-1])
    expected = status["pending_phases"][: last_ready + 1]
    poll(lambda: daemon.status()["state"] == "learning", 60, "background learning to start")
    assert daemon.suggest("Sourdough").status_code == 200

    def tried(status: dict) -> list[str]:  # learned or declined by validation (a small vault's Recall@10 can fall)
        return [p for p in expected if p in status["learned_phases"] or p in status["declined_phases"]]

    poll(lambda: tried(s := daemon.status()) == expected and s["state"] == "idle", 1200,
         f"background learning of {expected}")
    time.sleep(5)  # quiet, and no phase left with enough new links: nothing more is learned
    status = daemon.status()
    assert tried(status) == expected and status["state"] == "idle"
    assert [p for p in status["learned_phases"] if p not in expected] == []
    log = (tmp_path / "daemon.log").read_text()
    assert [line.split("phase ")[1].split(" has")[0] for line in log.splitlines()
            if "has enough new links" in line] == expected, "tried in order, each once"
    assert daemon.stop() == 0
