"""bench/synth_vault.py as a script: the hub-structured vault it writes, and the folder it refuses."""

import subprocess
import sys
from pathlib import Path

from vaultlearn.vault.parse import parse_note

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "synth_vault.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_the_hub_vault_links_items_to_hubs_mocs_and_people_and_every_link_resolves(tmp_path):
    vault = tmp_path / "hub"
    done = run(vault, "--notes", 40, "--hub")
    assert done.returncode == 0, done.stderr
    notes = {p.stem: parse_note(p.relative_to(vault).as_posix(), p.read_bytes()) for p in vault.rglob("*.md")}
    items = [n for n in notes.values() if n.path.startswith("kind-")]
    assert len(items) == 40 and f"wrote {len(notes)} notes" in done.stdout
    folders = {n.path.split("/")[0] for n in notes.values()}
    assert {"maps", "hubs", "people"} <= folders
    for item in items:  # its MOC, its author and at least one hub
        linked = {notes[link.target].path.split("/")[0] for link in item.links}
        assert linked >= {"maps", "people", "hubs"}, item.path
    assert all(link.target in notes for note in notes.values() for link in note.links)


def test_it_writes_only_into_an_empty_folder(tmp_path):
    (tmp_path / "mine.md").write_text("# mine\n", encoding="utf-8")
    done = run(tmp_path, "--notes", 10, "--hub")
    assert done.returncode != 0 and "not empty" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["mine.md"]
