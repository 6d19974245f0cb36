"""The hostile fixture vault end to end: `index`, `graph` and `watch` over it, as a user runs them.

tests/fixtures/hostile_vault holds the bad notes that can be committed (a YAML "billion laughs", a recursive
anchor, 3000 nested lists, a tag with a bell character, Latin-1 bytes, broken YAML, a huge note, odd links);
a copy gets at test time what cannot: a FIFO, a mode-000 note, a symlink loop, a symlink out of the vault, a
file name with a control character and one that is not UTF-8. Nothing may crash or block, every readable note
is indexed, every warning names its file, and the vault is byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import networkx as nx
import pytest

from tests.conftest import (FIXTURE, WATCH, DaemonProcess, drop_file_capabilities, mode_000_holds, poll,
                            run_cli)
from vaultlearn.paths import STATE_DIR
from vaultlearn.store import Store

# readable hostile notes: indexed, with a warning naming them
WARNED = {
    "Hostile/Billion laughs.md": "through its aliases",
    "Hostile/Recursive anchor.md": "alias inside the value",
    "Hostile/Deep nesting.md": "not valid YAML",
    "Hostile/Not UTF-8.md": "not valid UTF-8",
    "Hostile/Bad YAML.md": "not valid YAML",
    "Hostile/Aliases string.md": "not a YAML list",
    "Hostile/Huge.md": "text capped",
}
# made at test time: never read as notes, each skipped with a warning naming it
SKIPPED = {
    "Hostile/pipe.md": "not a regular file (a FIFO)",
    "Hostile/Locked.md": "cannot be read (Permission denied)",
    "Hostile/Loop.md": "symlink loop",
    "Hostile/Escape.md": "outside the vault",
    "Hostile/bad?.md": "name is not valid UTF-8",
}
BELL_NAME = "Hostile/Bell\x07name.md"
CONFIG = "debounce_seconds = 0.2\nlearn_quiet_seconds = 3600.0\n"
def make_hostile_vault(root: Path) -> Path:
    """A copy of the fixture vault plus the hostile files that cannot be committed."""
    vault = root / "vault"
    shutil.copytree(FIXTURE, vault)
    hostile = vault / "Hostile"
    os.mkfifo(hostile / "pipe.md")
    (hostile / "Locked.md").write_text("A private note. [[Home]]")
    (hostile / "Locked.md").chmod(0)
    os.symlink("Loop.md", hostile / "Loop.md")
    (root / "outside.md").write_text("outside the vault")
    os.symlink(root / "outside.md", hostile / "Escape.md")
    (vault / BELL_NAME).write_text("A title with a bell character. [[Garden]]")
    (hostile / os.fsdecode(b"bad\xff.md")).write_text("A name that is not UTF-8.")
    (vault / STATE_DIR).mkdir()
    (vault / STATE_DIR / "config.toml").write_text(CONFIG)
    return vault


def readable_notes(vault: Path) -> set[str]:
    """The notes vaultlearn can read: regular .md files with UTF-8 names, readable without privileges."""
    return {p.relative_to(vault).as_posix() for p in vault.rglob("*.md")
            if STATE_DIR not in p.parts and not p.is_symlink() and p.is_file()
            and p.stat().st_mode & stat.S_IRUSR and _utf8(p.name)}


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def vault_state(vault: Path) -> dict[str, tuple]:
    """Every file's type, mode, size, mtime and (regular files) content hash; the state folder left out."""
    state = {}
    for folder, dirs, files in os.walk(vault):
        dirs[:] = [d for d in dirs if d != STATE_DIR]
        for name in files:
            path = Path(folder) / name
            info = path.lstat()
            readable = stat.S_ISREG(info.st_mode) and os.access(path, os.R_OK)
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if readable else None
            state[os.fsencode(path.relative_to(vault))] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode),
                                                           info.st_size, info.st_mtime_ns, digest)
    return state


def assert_warnings_name_their_files(vault: Path, lines: list[str], listed: set[str]) -> None:
    """Each ``warning:`` line names a file of the vault (or, summarised, several)."""
    known = listed | readable_notes(vault)
    for line in lines:
        text = line.removeprefix("warning: ")
        summary = re.match(r"(\d+) files: .*: (.+) and (\d+) more$", text)
        named = summary.group(2).split(", ") if summary else [next((p for p in known if text.startswith(p + ": ")),
                                                                   None)]
        assert all(p in known for p in named), line


@pytest.fixture
def hostile_vault(tmp_path) -> Path:
    vault = make_hostile_vault(tmp_path)
    if not mode_000_holds(vault / "Hostile" / "Locked.md"):
        pytest.skip("a mode-000 file stays readable to child processes here")
    return vault


def test_index_and_graph_over_the_hostile_vault(hostile_vault, tmp_path):
    vault = hostile_vault
    before = vault_state(vault)
    out = run_cli("index", vault, "--json", "-q")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    report = json.loads(out.stdout)
    listed = {w["path"] for w in report["warning_list"]}
    for path, phrase in {**WARNED, **SKIPPED}.items():
        assert any(w["path"] == path and phrase in w["message"] for w in report["warning_list"]), (path, phrase)
    assert report["warnings"] == len(report["warning_list"])
    lines = [line for line in out.stderr.splitlines() if line.startswith("warning: ")]
    assert len(lines) >= len(WARNED) + len(SKIPPED)
    assert_warnings_name_their_files(vault, lines, listed)

    store = Store(vault, create=False)
    indexed = {row.path: row for row in store.notes()}
    store.close()
    expected = readable_notes(vault)
    assert set(indexed) == expected and BELL_NAME in expected and set(WARNED) <= expected
    assert report["status"]["embedded"] == report["status"]["index_size"] == len(expected)
    assert indexed["Hostile/Billion laughs.md"].tags == [] and indexed["Hostile/Billion laughs.md"].aliases == []
    assert set(indexed["Hostile/Bell tag.md"].tags) == {"ok", "x", "y", "draft", "clean"}

    graphml = tmp_path / "graph.graphml"
    out = run_cli("graph", "--vault", vault, "--format", "graphml", "-o", graphml)
    assert out.returncode == 0, out.stderr
    graph = nx.read_graphml(graphml)
    assert "Hostile/Bell\ufffdname.md" in graph and set(expected - {BELL_NAME}) <= set(graph)
    assert "draft" in graph.nodes["Hostile/Bell tag.md"]["tags"].split()
    text = graphml.read_text(encoding="utf-8")
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", text)

    out = run_cli("suggest", "Billion laughs", "--vault", vault, "--json")
    assert out.returncode == 0 and isinstance(json.loads(out.stdout), list), out.stderr
    again = json.loads(run_cli("index", vault, "--json", "-q").stdout)
    assert (again["added"], again["updated"], again["embedded"]) == (0, 0, 0)
    assert vault_state(vault) == before, "vaultlearn must never modify a vault, hostile files included"


class UnprivilegedDaemon(DaemonProcess):
    """``vaultlearn watch`` as a child that cannot read mode-000 files."""

    def __init__(self, vault: Path, log: Path):
        self.vault, self.log, self.client = vault, log, None
        self.proc = subprocess.Popen([*WATCH, str(vault), "--port", "0"],
                                     stdout=subprocess.DEVNULL, stderr=open(log, "ab"),
                                     preexec_fn=drop_file_capabilities)


def test_watch_over_the_hostile_vault_keeps_applying_changes(hostile_vault, tmp_path):
    vault, log = hostile_vault, tmp_path / "daemon.log"
    before = vault_state(vault)
    daemon = UnprivilegedDaemon(vault, log).wait_serving()
    try:
        status = daemon.wait_idle(timeout=300)
        assert status["notes"] == len(readable_notes(vault)) and status["last_error"] is None
        for path in SKIPPED:
            assert path in log.read_text(errors="replace"), path

        os.mkfifo(vault / "Hostile" / "pipe2.md")  # a FIFO appearing while the daemon runs
        (vault / "Later.md").write_text("Seed saving: dry the beans, label the jars. [[Garden]]")
        bomb = vault / "Hostile" / "Billion laughs.md"
        bomb.write_bytes(bomb.read_bytes() + b"\nEdited while watched.\n")
        poll(lambda: daemon.suggest("Later").status_code == 200, 60, "the note written after the FIFO")
        status = daemon.wait_idle(timeout=120)
        assert status["last_error"] is None and status["notes"] == len(readable_notes(vault))
        assert "Hostile/pipe2.md: skipped, not a regular file (a FIFO)" in log.read_text(errors="replace")
        assert daemon.client.post("/learn", json={"phase": "nope"}).status_code == 404
        oversized = daemon.client.post("/search", content=(b"a" * 65536 for _ in range(64)))  # chunked, 4 MiB
        assert oversized.status_code == 413
        assert daemon.client.post("/reindex").json() == {"queued": True}
        assert daemon.wait_idle(timeout=120)["last_error"] is None
        assert daemon.stop() == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()
    assert "Traceback" not in log.read_text(errors="replace")
    after = vault_state(vault)
    changed = {os.fsencode(p) for p in ("Hostile/pipe2.md", "Later.md", "Hostile/Billion laughs.md")}
    assert {k: v for k, v in after.items() if k not in changed} == {k: v for k, v in before.items()
                                                                     if k not in changed}
