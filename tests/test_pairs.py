"""The learners' shared InfoNCE: a note a batch repeats is no negative of the anchors it belongs to."""

import numpy as np
import torch
import torch.nn.functional as F

from vaultlearn.model.pairs import LOSS_SCALE, batch_loss, repeated_notes


def test_repeated_notes_marks_the_positive_again_and_the_anchor_itself():
    anchors = np.array([0, 2, 3])
    candidates = np.array([1, 1, 4, 5, 0])  # positives of the three links, then two hard negatives
    expected = np.array([
        [False, True, False, False, True],  # anchor 0: its positive 1 again (column 1), itself (column 4)
        [True, False, False, False, False],  # anchor 2: its positive 1 again (column 0)
        [False, False, False, False, False],
    ])
    np.testing.assert_array_equal(repeated_notes(anchors, candidates), expected)


def test_batch_loss_leaves_repeated_notes_out_of_the_negatives():
    emb = F.normalize(torch.randn(6, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    pairs = np.array([[0, 1], [2, 1], [3, 4]])
    negatives = np.array([5, -1, 0])  # the second link has none
    weights = torch.tensor([1.0, 2.0, 1.0])

    loss = batch_loss(lambda notes: emb[torch.as_tensor(notes)], pairs, np.arange(3), negatives, weights)

    kept_columns = {0: [0, 2, 3], 1: [1, 2, 3, 4], 2: [0, 1, 2, 3, 4]}  # columns: notes 1, 1, 4, 5, 0
    column_notes = [1, 1, 4, 5, 0]
    by_hand = []
    for i, (anchor, positive) in enumerate(pairs):
        columns = kept_columns[i]
        logits = LOSS_SCALE * emb[[column_notes[c] for c in columns]] @ emb[anchor]
        by_hand.append(-torch.log_softmax(logits, 0)[columns.index(i)])
        assert column_notes[i] == positive
    expected = (weights * torch.stack(by_hand)).sum() / weights.sum()
    assert torch.isclose(loss, expected, atol=1e-5)
    assert torch.isfinite(loss)


def test_batch_loss_of_a_hub_batch_can_reach_zero():
    """Links that all reach one hub: every anchor's only negative would otherwise be its own positive, and the
    loss could not fall below log 3 however well the anchors point at the hub."""
    hub = torch.tensor([[1.0, 0.0]])
    emb = torch.cat([hub, hub.repeat(3, 1)])  # note 0 the hub, notes 1-3 its linking notes, all alike
    pairs = np.array([[1, 0], [2, 0], [3, 0]])
    loss = batch_loss(lambda notes: emb[torch.as_tensor(notes)], pairs, np.arange(3), np.full(3, -1),
                      torch.ones(3))
    assert float(loss) < 1e-6
