"""Rows of a sparse 0/1 matrix read from its index arrays: for the few rows one suggestion asks for, scipy's row
selection costs ten times the work (it builds and checks a new matrix per call)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def row_ranges(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many entries each of ``rows`` holds, and where they lie in ``matrix.indices``, row after row."""
    counts = matrix.indptr[rows + 1] - matrix.indptr[rows]
    return counts, np.arange(counts.sum()) + np.repeat(matrix.indptr[rows] - np.cumsum(counts) + counts, counts)


def select_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
    """``matrix[rows]`` (a canonical CSR matrix: sorted indices, no duplicates), made from its index arrays."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    counts, at = row_ranges(matrix, rows)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    out = sp.csr_matrix((matrix.data[at], matrix.indices[at], indptr), shape=(len(rows), matrix.shape[1]))
    out.has_sorted_indices = True
    return out


def dense_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Where ``rows`` of a 0/1 ``matrix`` are set, as dense booleans (read from its index arrays: a sparse row
    selection and ``toarray`` cost ten times as much for the one row of a suggestion)."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    counts, at = row_ranges(matrix, rows)
    out = np.zeros((len(rows), matrix.shape[1]), dtype=bool)
    out[np.repeat(np.arange(len(rows)), counts), matrix.indices[at]] = True
    return out


def shared_columns(matrix: sp.csr_matrix, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Per pair ``(left[i], right[i])`` of rows of a 0/1 ``matrix``: how many columns both have set."""
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    firsts, pair_of = np.unique(left, return_inverse=True)
    first_set = dense_rows(matrix, firsts)
    counts, at = row_ranges(matrix, right)
    both = first_set[np.repeat(pair_of.reshape(-1), counts), matrix.indices[at]]
    return np.bincount(np.repeat(np.arange(len(right)), counts), weights=both, minlength=len(right))
