"""The FAISS index: real index files, generations, upsert/remove."""

import numpy as np

from vaultlearn.index.vectors import VectorIndex


def _unit(rows, dim=16, seed=0):
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_finds_itself_and_upsert_replaces():
    vecs = _unit(50)
    index = VectorIndex.build(np.arange(100, 150), vecs)
    scores, ids = index.search(vecs[7], 3)
    assert ids[0][0] == 107 and abs(scores[0][0] - 1.0) < 2e-3
    index.upsert(np.array([107]), vecs[8:9])
    assert len(index) == 50
    _, ids = index.search(vecs[8], 2)
    assert set(ids[0]) == {107, 108}
    index.remove(np.array([107, 999]))
    assert len(index) == 49
    assert np.allclose(index.vectors(np.array([108])), vecs[8:9], atol=2e-3)


def test_save_load_generations(tmp_path):
    vecs = _unit(20)
    index = VectorIndex.build(np.arange(20), vecs)
    index.save(tmp_path, 3)
    index.save(tmp_path, 4)
    assert [p.name for p in tmp_path.glob("index-*.faiss")] == ["index-4.faiss"]
    assert VectorIndex.load(tmp_path, 3) is None
    loaded = VectorIndex.load(tmp_path, 4)
    assert len(loaded) == 20
    assert loaded.search(vecs[5], 1)[1][0][0] == 5
    (tmp_path / "index-5.faiss").write_bytes(b"half-written")
    assert VectorIndex.load(tmp_path, 5) is None


def test_empty_index_searches_safely():
    index = VectorIndex.build(np.zeros(0, np.int64), np.zeros((0, 8), np.float32))
    assert len(index) == 0
    _, ids = index.search(np.ones(index.dim, np.float32), 5)
    assert (ids == -1).all()
