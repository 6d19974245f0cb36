"""Per-example Fisher, online EWC, Fisher-stable dimensions, Fisher overlap."""

import numpy as np
import pytest
import torch

from vaultlearn.model.fisher import OnlineEWC, StableDims, fisher_overlap, per_example_fisher


def test_per_example_fisher_differs_from_squared_batch_gradient():
    w = torch.tensor([1.0, 0.0], requires_grad=True)
    xs = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    ys = torch.tensor([0.0, 2.0])  # residuals +1 and -1: the two gradients cancel in the batch mean

    def example(i):
        return lambda: ((xs[i] @ w - ys[i]) ** 2, None)

    fisher, dims = per_example_fisher([example(0), example(1)], [w])
    batch_loss = ((xs @ w - ys) ** 2).mean()
    (batch_grad,) = torch.autograd.grad(batch_loss, w)
    assert dims is None
    assert torch.equal(batch_grad.pow(2), torch.zeros(2))
    torch.testing.assert_close(fisher[0], torch.tensor([4.0, 0.0]))  # (2·1)² and (2·(-1))², averaged


def test_per_example_fisher_of_output_dims():
    w = torch.tensor([2.0, -1.0], requires_grad=True)

    def example():
        emb = w * torch.tensor([1.0, 1.0])
        return emb[0] * 3.0, emb

    _, dims = per_example_fisher([example], [w])
    torch.testing.assert_close(dims, torch.tensor([9.0, 0.0]))


def test_overlap_proportional_disjoint_symmetric():
    p = np.array([1.0, 2.0, 3.0, 0.0])
    assert fisher_overlap(p, 5 * p) == pytest.approx(1.0)
    assert fisher_overlap(np.array([1.0, 1.0, 0, 0]), np.array([0, 0, 2.0, 3.0])) == pytest.approx(0.0)
    q = np.array([0.5, 0.1, 2.0, 1.0])
    assert fisher_overlap(p, q) == pytest.approx(fisher_overlap(q, p))
    assert 0.0 < fisher_overlap(p, q) < 1.0
    with pytest.raises(ValueError):
        fisher_overlap(np.zeros(4), p)


def test_online_ewc_accumulates_and_anchors_at_latest():
    ewc = OnlineEWC(gamma=0.5)
    theta = torch.tensor([1.0, 2.0])
    ewc.consolidate({"w": torch.tensor([1.0, 0.0])}, {"w": theta})
    ewc.consolidate({"w": torch.tensor([0.0, 2.0])}, {"w": theta + 1})
    torch.testing.assert_close(ewc.importance["w"], torch.tensor([0.5, 2.0]))
    torch.testing.assert_close(ewc.anchor["w"], theta + 1)
    assert float(ewc.penalty({"w": theta + 1}, lam=10.0)) == 0.0
    # λ/2 · Σ F (θ − θ*)² with θ − θ* = (1, 1): 5 · (0.5 + 2)
    assert float(ewc.penalty({"w": theta + 2}, lam=10.0)) == pytest.approx(12.5)


def test_proximal_rows_hold_important_rows_at_anchor():
    ewc = OnlineEWC()
    values = torch.zeros(3, 2)
    ewc.consolidate({"v": torch.tensor([[1e6, 1e6], [0, 0], [1, 1]])}, {"v": values})
    stepped = torch.ones(3, 2)
    rows = torch.arange(3)
    out = ewc.proximal_rows("v", values, rows, stepped, lr=1.0, lam=1.0)
    assert float(out[0].abs().max()) < 1e-5  # held at the anchor
    torch.testing.assert_close(out[1], torch.ones(2))  # unimportant: the plain step
    torch.testing.assert_close(out[2], torch.full((2,), 0.5))  # (1 + 0)/(1 + 1)


def test_stable_dims_damp_gradient_along_important_dims():
    dims = StableDims(3, damping=0.5)
    emb = torch.ones(2, 3, requires_grad=True)
    out = emb * 1.0
    dims.hook(out)
    out.sum().backward()
    torch.testing.assert_close(emb.grad, torch.ones(2, 3))  # nothing learned yet: no damping
    dims.consolidate(torch.tensor([4.0, 1.0, 0.0]))
    emb.grad = None
    out = emb * 1.0
    dims.hook(out)
    out.sum().backward()
    torch.testing.assert_close(emb.grad[0], torch.tensor([0.5, 0.875, 1.0]))
