"""Rows of sparse 0/1 matrices read from their index arrays equal scipy's own selections."""

import numpy as np
import scipy.sparse as sp

from vaultlearn.vault.sparse_rows import dense_rows, select_rows, shared_columns


def _matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((30, 12)) < 0.25).astype(np.float32))


def test_dense_rows_equal_scipys_row_selection():
    m = _matrix()
    rows = np.array([4, 0, 29, 4, 7])
    assert np.array_equal(dense_rows(m, rows), m[rows].toarray() > 0)
    assert dense_rows(m, np.array([], dtype=np.int64)).shape == (0, 12)
    weighted = m.multiply(np.arange(12, dtype=np.float32)).tocsr()
    picked = select_rows(weighted, rows)
    assert np.array_equal(picked.toarray(), weighted[rows].toarray()) and picked.shape == (5, 12)
    assert np.array_equal((picked @ np.ones((12, 2))), weighted[rows] @ np.ones((12, 2)))
    assert select_rows(m, np.array([], dtype=np.int64)).shape == (0, 12)


def test_shared_columns_count_what_both_rows_have():
    m = _matrix()
    rng = np.random.default_rng(1)
    left, right = rng.integers(0, 30, 200), rng.integers(0, 30, 200)
    expected = np.asarray(m[left].multiply(m[right]).sum(axis=1)).ravel()
    assert np.array_equal(shared_columns(m, left, right), expected)
    assert shared_columns(sp.csr_matrix((5, 1), dtype=np.float32), np.array([0, 1]), np.array([2, 3])).tolist() == [0, 0]
    assert shared_columns(m, np.array([], dtype=np.int64), np.array([], dtype=np.int64)).shape == (0,)
