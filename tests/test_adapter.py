"""The link adapter: a closed-form ridge map from a note's embedding towards the notes it links to."""

import numpy as np

from vaultlearn.index.adapter import fit_adapter
from vaultlearn.vault.graph import VaultGraph


def test_adapter_has_its_closed_form_on_a_two_note_vault():
    # note 0 (along x) links to note 1 (along y); d = 2, one linking note: λ = ridge · 1 / 2
    vectors = np.eye(2, dtype=np.float32)
    graph = VaultGraph(2, np.array([[0, 1]]))
    w = fit_adapter(vectors, graph, ridge=1.0)  # λ = 0.5: W = [[λ/(1+λ), 1/(1+λ)], [0, 1]]
    assert np.allclose(w, [[1 / 3, 2 / 3], [0, 1]], atol=1e-6)
    assert np.allclose(fit_adapter(vectors, graph, ridge=1e-6)[0], [0, 1], atol=1e-5)  # x maps onto y
    assert np.allclose(fit_adapter(vectors, graph, ridge=1e6), np.eye(2), atol=1e-5)


def test_adapter_without_links_is_the_identity():
    vectors = np.eye(3, dtype=np.float32)
    assert np.allclose(fit_adapter(vectors, VaultGraph(3, np.zeros((0, 2)))), np.eye(3))
