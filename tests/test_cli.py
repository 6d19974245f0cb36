"""The command line end to end on a copy of sample_vault/, with the real default model and real state files."""

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner

from tests.conftest import run
from vaultlearn.cli import cli
from vaultlearn.store import Store


def vault_digest(vault: Path) -> dict[str, str]:
    return {str(p.relative_to(vault)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(vault.rglob("*")) if p.is_file() and ".vaultlearn" not in p.parts}


def test_index_status_and_reindex(sample_vault):
    before = vault_digest(sample_vault)
    runner = CliRunner()
    first = runner.invoke(cli, ["index", str(sample_vault), "--json", "-q"])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["added"] == report["embedded"] == 60
    status = json.loads(runner.invoke(cli, ["status", "--vault", str(sample_vault), "--json"]).stdout)
    assert status["notes"] == status["embedded"] == status["index_size"] == 60
    assert status["phases"] == ["solar-dryer", "rainwater", "beehive-monitor", "greenhouse"]
    assert status["links"] > 80 and status["unresolved_links"] >= 1
    assert vault_digest(sample_vault) == before, "vaultlearn must never modify the user's notes"
    assert (sample_vault / ".vaultlearn" / "state.sqlite").is_file()
    assert len(list((sample_vault / ".vaultlearn").glob("index-*.faiss"))) == 1

    again = json.loads(runner.invoke(cli, ["index", str(sample_vault), "--json", "-q"]).stdout)
    assert (again["added"], again["updated"], again["deleted"], again["embedded"]) == (0, 0, 0, 0)

    note = sample_vault / "Concepts" / "Dew Point.md"
    note.write_text(note.read_text() + "\nCondensation on the glazing at dawn.\n")
    (sample_vault / "Concepts" / "Shade Cloth.md").unlink()
    changed = json.loads(runner.invoke(cli, ["index", str(sample_vault), "--json", "-q"]).stdout)
    assert (changed["updated"], changed["deleted"], changed["embedded"]) == (1, 1, 1)
    assert changed["status"]["notes"] == changed["status"]["index_size"] == 59


def test_suggest_json_excludes_existing_links(indexed_sample_vault):
    out = run("suggest", "Projects/Solar Dryer/Overview.md", "--vault", indexed_sample_vault, "-k", "5", "--json")
    assert out.returncode == 0, out.stderr
    suggestions = json.loads(out.stdout)
    assert len(suggestions) == 5
    assert {"path", "title", "score", "reason"} <= set(suggestions[0])
    scores = [s["score"] for s in suggestions]
    assert scores == sorted(scores, reverse=True)
    store = Store(indexed_sample_vault, create=False)
    source = store.note_by_path("Projects/Solar Dryer/Overview.md")
    linked = {row.path for row in store.notes_by_ids(store.outgoing(source.id)).values()}
    assert linked and not linked & {s["path"] for s in suggestions}
    assert source.path not in {s["path"] for s in suggestions}


def test_suggest_by_link_name_and_by_file_path(indexed_sample_vault):
    by_name = run("suggest", "Dew Point", "--json", cwd=indexed_sample_vault)
    by_file = run("suggest", indexed_sample_vault / "Concepts" / "Dew Point.md", "--json", cwd="/")
    assert by_name.returncode == by_file.returncode == 0, by_name.stderr + by_file.stderr
    assert json.loads(by_name.stdout) == json.loads(by_file.stdout)
    assert "similar text" in json.loads(by_name.stdout)[0]["reason"]


def test_suggest_for_an_indexed_note_does_not_load_torch(indexed_sample_vault):
    code = ("import sys; from vaultlearn.cli import main; sys.argv=['vaultlearn','suggest','Dew Point','--json'];\n"
            "try: main()\nexcept SystemExit as e: assert e.code == 0, e.code\n"
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules, 'faiss' in sys.modules,\n"
            "      file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=indexed_sample_vault)
    # nor FAISS: below half the approximate index's size the vector index is exact, and not read
    assert out.stderr.strip().splitlines()[-1] == "False False False", out.stderr


def test_graph_export_json_and_graphml(indexed_sample_vault, tmp_path):
    out = run("graph", "--vault", indexed_sample_vault, "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    ids = {node["id"] for node in data["nodes"]}
    assert "Projects/Solar Dryer/Overview.md" in ids
    assert any(node["unresolved"] for node in data["nodes"])
    assert {"link", "embed"} <= {edge["kind"] for edge in data["edges"]}
    assert all(edge["source"] in ids and edge["target"] in ids for edge in data["edges"])
    target = tmp_path / "g.graphml"
    assert run("graph", "--vault", indexed_sample_vault, "--format", "graphml", "-o", target).returncode == 0
    assert nx.read_graphml(target).number_of_nodes() == len(ids)


def test_errors_are_messages_with_exit_codes(indexed_sample_vault, tmp_path):
    missing = run("suggest", "No Such Note At All", "--vault", indexed_sample_vault)
    assert missing.returncode == 1 and "no note named" in missing.stderr and "Traceback" not in missing.stderr
    outside = run("suggest", "../../etc/passwd", "--vault", indexed_sample_vault)
    assert outside.returncode == 1 and "outside the vault" in outside.stderr
    not_a_vault = run("index", tmp_path / "nope")
    assert not_a_vault.returncode == 1 and "not a folder" in not_a_vault.stderr
    usage = run("suggest")
    assert usage.returncode == 2
    (tmp_path / "fresh").mkdir()
    never_indexed = run("status", "--vault", tmp_path / "fresh")
    assert never_indexed.returncode == 1 and "not been indexed" in never_indexed.stderr


def test_empty_vault_indexes_with_a_warning(tmp_path):
    (tmp_path / "empty").mkdir()
    out = run("index", tmp_path / "empty")
    assert out.returncode == 0 and "no notes" in out.stderr
    status = json.loads(run("status", "--vault", tmp_path / "empty", "--json").stdout)
    assert status["notes"] == status["embedded"] == 0


def test_kill_9_mid_index_leaves_a_usable_state(sample_vault):
    assert run("index", sample_vault, "-q").returncode == 0
    baseline = json.loads(run("suggest", "Dew Point", "--vault", sample_vault, "--json").stdout)
    for n, note in enumerate(sorted(sample_vault.rglob("*.md"))):
        note.write_text(note.read_text(encoding="utf-8") + f"\nrevision {n}\n", encoding="utf-8")
    for delay in (1.0, 2.5, 4.0):
        proc = subprocess.Popen([sys.executable, "-m", "vaultlearn.cli", "index", str(sample_vault), "-q"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        status = run("status", "--vault", sample_vault, "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["notes"] == 60
        after = run("suggest", "Dew Point", "--vault", sample_vault, "--json")
        assert after.returncode == 0, after.stderr
        assert len(json.loads(after.stdout)) == len(baseline)
    final = run("index", sample_vault, "-q")
    assert final.returncode == 0
    status = json.loads(run("status", "--vault", sample_vault, "--json").stdout)
    assert status["notes"] == status["embedded"] == status["index_size"] == 60


@pytest.mark.parametrize("bad", [b"\xff\xfe not utf-8 \x80\x81", b"---\ntitle: [unclosed\n---\nbody [[Dew Point]]\n"])
def test_bad_notes_are_indexed_with_warnings(sample_vault, bad):
    (sample_vault / "Bad.md").write_bytes(bad)
    out = run("index", sample_vault, "-q")
    assert out.returncode == 0 and "warning" in out.stderr and "Traceback" not in out.stderr
    assert run("suggest", "Bad", "--vault", sample_vault, "--json").returncode == 0
