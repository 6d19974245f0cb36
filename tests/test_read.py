"""Reading many notes: worker processes give exactly what reading in this process gives, in order."""

from vaultlearn.vault import read
from vaultlearn.vault.read import content_hash, read_notes


def test_workers_read_like_this_process(tmp_path, monkeypatch):
    vault = tmp_path / "vault"
    vault.mkdir()
    for i in range(60):
        (vault / f"n{i}.md").write_text(f"---\naliases: [N{i}]\n---\n# Note {i}\nabout [[n{(i + 1) % 60}]] #t{i % 3}\n")
    unchanged = content_hash((vault / "n5.md").read_bytes())
    paths = [(f"n{i}.md", unchanged if i == 5 else None) for i in range(60)] + [("gone.md", None)]
    monkeypatch.setattr(read, "CHUNK", 16)
    here = [r for chunk in read_notes(vault, paths, 10_000, 4000, workers=1) for r in chunk]
    monkeypatch.setattr(read, "PARALLEL_ABOVE", 10)
    chunks = list(read_notes(vault, paths, 10_000, 4000, workers=2))
    assert len(chunks) == 4  # 61 paths in chunks of 16, each sent to a worker
    workers = [r for chunk in chunks for r in chunk]
    assert workers == here
    assert [r.path for r in workers] == [p for p, _ in paths]
    assert workers[5].note is None and workers[5].digest == unchanged  # known content: not parsed
    assert workers[-1].digest is None  # vanished
    assert workers[7].note.aliases == ["N7"] and [l.target for l in workers[7].note.links] == ["n8"]
