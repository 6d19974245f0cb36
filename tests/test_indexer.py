"""Indexer commits: links are stored resolved, links of unchanged notes follow the names that come and go, and the
cyclic garbage collector paused while indexing is enabled again."""

import gc
import shutil

import numpy as np
import pytest

from vaultlearn.config import Config
from vaultlearn.indexer import Indexer
from vaultlearn.service import VaultService


class FreeEncoder:
    """Stands in for the model: seeded random unit vectors (no model is loaded)."""

    memory = None

    def encode(self, texts, show_progress=False):
        x = np.random.default_rng(len(texts)).normal(size=(len(texts), 8)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def write(vault, files):
    for rel, text in files.items():
        (vault / rel).parent.mkdir(parents=True, exist_ok=True)
        (vault / rel).write_text(text, encoding="utf-8")


def stored_links(vault):
    """``(source path, target, kind, resolved path, attachment)`` of every stored link, after an index."""
    service = VaultService(vault, Config())
    service._encoder = FreeEncoder()
    service.ranking.refit_due = lambda: False
    try:
        service.index()
        path_of = {row.id: row.path for row in service.store.notes()}
        return sorted((path_of[link.src], link.target, link.kind, path_of.get(link.dst), link.attachment)
                      for link in service.store.links())
    finally:
        service.close()


def test_links_resolve_alike_incrementally_and_from_scratch(tmp_path):
    vault = tmp_path / "vault"
    write(vault, {"A.md": "[[B]] [[C]] [[Dup]] [[#Top]] ![[pic.png]] [b](B.md) [[Gone]]",
                  "B.md": "[[A]]", "x/Dup.md": "", "longer/Dup.md": "", "Gone.md": "", "pic.png": ""})
    first = stored_links(vault)
    assert ("A.md", "B", "link", "B.md", False) in first and ("A.md", "B.md", "link", "B.md", False) in first
    assert ("A.md", "C", "link", None, False) in first and ("A.md", "Dup", "link", "x/Dup.md", False) in first
    assert ("A.md", "pic.png", "embed", None, True) in first and ("A.md", "", "link", "A.md", False) in first
    write(vault, {"C.md": "[[Dup]]", "B.md": "[[A]] [[C]]"})
    (vault / "x" / "Dup.md").unlink()
    (vault / "Gone.md").unlink()
    moved = stored_links(vault)
    assert ("A.md", "C", "link", "C.md", False) in moved  # A did not change: its link follows the new note
    assert ("A.md", "Dup", "link", "longer/Dup.md", False) in moved and ("A.md", "Gone", "link", None, False) in moved
    shutil.rmtree(vault / ".vaultlearn")
    assert stored_links(vault) == moved


def test_indexing_gives_the_cyclic_garbage_collector_back(tmp_path, monkeypatch):
    vault = tmp_path / "vault"
    write(vault, {"A.md": "[[B]]", "B.md": ""})
    stored_links(vault)
    assert gc.isenabled()
    write(vault, {"A.md": "[[B]] changed"})
    monkeypatch.setattr(Indexer, "_commit", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        stored_links(vault)
    assert gc.isenabled()
