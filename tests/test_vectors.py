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
    assert [p.name for p in tmp_path.glob("index-*.faiss")] == ["index-base-4.faiss"]
    assert VectorIndex.load(tmp_path, 3) is None
    loaded = VectorIndex.load(tmp_path, 4)
    assert len(loaded) == 20
    assert loaded.search(vecs[5], 1)[1][0][0] == 5
    (tmp_path / "index-base-5.faiss").write_bytes(b"half-written")
    assert VectorIndex.load(tmp_path, 5) is None
    # an earlier version's file (it could hold link-mapped vectors) is never read, and the next save removes it
    (tmp_path / "index-6.faiss").write_bytes((tmp_path / "index-base-4.faiss").read_bytes())
    assert VectorIndex.load(tmp_path, 6) is None
    index.save(tmp_path, 7)
    assert [p.name for p in tmp_path.glob("index-*.faiss")] == ["index-base-7.faiss"]


def test_empty_index_searches_safely():
    index = VectorIndex.build(np.zeros(0, np.int64), np.zeros((0, 8), np.float32))
    assert len(index) == 0
    _, ids = index.search(np.ones(index.dim, np.float32), 5)
    assert (ids == -1).all()


def _topical(rows, dim=32, topics=40, seed=0):
    """Unit vectors around topic centres: the neighbour structure of real note embeddings, not uniform noise.
    The topics are the same for every ``seed`` (new notes on the vault's subjects)."""
    centres = np.random.default_rng(0).normal(size=(topics, dim)).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    x = centres[rng.integers(topics, size=rows)] + 0.6 * rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _recall_at_10(index, exact, queries):
    _, got = index.search(queries, 10)
    _, truth = exact.search(queries, 10)
    return np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth)])


def test_approximate_index_recall_and_incremental_updates(tmp_path):
    vecs = _topical(4000)
    ids = np.arange(4000) * 2 + 1
    index = VectorIndex.build(ids, vecs, approximate_above=1000)
    exact = VectorIndex.build(ids, vecs, approximate_above=10**9)
    assert index.approximate and not exact.approximate
    queries = vecs[::40]
    assert _recall_at_10(index, exact, queries) >= 0.99
    # incremental: replace, remove and add, as the daemon does; the exact index follows the same changes
    fresh = _topical(600, seed=1)
    for target in (index, exact):
        target.upsert(ids[:300], fresh[:300])
        target.remove(ids[300:600])
        target.upsert(np.arange(300) * 2 + 10_000, fresh[300:])
    assert index.approximate and len(index) == len(exact) == 4000 - 300 + 300
    assert _recall_at_10(index, exact, np.vstack([queries, fresh[::20]])) >= 0.99
    assert np.allclose(index.vectors(ids[:3]), fresh[:3], atol=2e-3)
    index.save(tmp_path, 7)
    loaded = VectorIndex.load(tmp_path, 7, approximate_above=1000)
    assert loaded.approximate
    assert (loaded.search(queries, 10)[1] == index.search(queries, 10)[1]).all()


def test_index_turns_exact_again_when_it_shrinks_and_retrains_when_it_grows():
    vecs = _topical(3000)
    index = VectorIndex.build(np.arange(1200), vecs[:1200], approximate_above=1000)
    assert index.approximate
    index.remove(np.arange(800))  # 400 left, under half the threshold
    assert not index.approximate and len(index) == 400
    assert index.search(vecs[900], 1)[1][0][0] == 900
    index.upsert(np.arange(1200, 3000), vecs[1200:])  # 2,200 notes: approximate again
    lists = index._index.nlist
    assert index.approximate and lists == int(np.sqrt(2200))
    index.upsert(np.arange(3000, 12_000), _topical(9000, seed=2))  # > 4x the training size: retrained
    assert index._index.nlist > lists and len(index) == 11_200
