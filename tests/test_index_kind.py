"""The vector index's kind by note count, as the index itself switches it (index/vectors.py)."""

import numpy as np

from vaultlearn.index.index_kind import always_exact, becomes_approximate, stays_approximate
from vaultlearn.index.vectors import VectorIndex


def test_the_rule_has_a_band_where_either_kind_holds():
    assert not becomes_approximate(100, 100) and becomes_approximate(101, 100)
    assert stays_approximate(51, 100) and not stays_approximate(50, 100)
    assert always_exact(50, 100) and not always_exact(51, 100)


def test_the_index_switches_as_the_rule_says():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(130, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(np.arange(100), vectors[:100], approximate_above=100)
    assert not index.approximate
    index.upsert(np.arange(100, 130), vectors[100:])
    assert index.approximate  # 130 > 100
    index.remove(np.arange(70, 130))
    assert index.approximate and not always_exact(len(index), 100)  # 70: still IVF, in the band
    index.remove(np.arange(20, 70))
    assert not index.approximate and always_exact(len(index), 100)  # 20: exact again
