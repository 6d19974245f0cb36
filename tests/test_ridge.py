"""The link map's closed-form starts: the ridge maps against scikit-learn, the Fisher-held maps' optimality, and
the learner starting from them."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from vaultlearn.model.linkfit import LinkMapLearner
from vaultlearn.model.ridge import FISHER_STRENGTHS, HELD_STRENGTHS, STRENGTHS, ridge_maps

from .conftest import tiny_config
from .test_linkmap import rotated_links, rotation_task


def both_directions(x, pairs, weights):
    source = np.concatenate([x[pairs[:, 0]], x[pairs[:, 1]]]).astype(np.float64)
    target = np.concatenate([x[pairs[:, 1]], x[pairs[:, 0]]]).astype(np.float64)
    return source, target, np.concatenate([weights, weights]).astype(np.float64)


def test_plain_ridge_maps_are_scikit_learns_ridge_towards_the_previous_map():
    x, links, _ = rotated_links(n=120)
    pairs = np.asarray(links)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(pairs))
    maps = ridge_maps(x, pairs, weights, torch.eye(x.shape[1]))
    assert len(maps) == len(STRENGTHS)  # no importance: no held maps
    source, target, w = both_directions(x, pairs, weights)
    unit = np.trace((source * w[:, None]).T @ source) / x.shape[1]
    for mu, found in zip(STRENGTHS, maps):
        # W = I + V, V the ridge fit of the residual target − source (the penalty ‖W − I‖² = ‖V‖²)
        ridge = Ridge(alpha=mu * unit, fit_intercept=False).fit(source, target - source, sample_weight=w)
        np.testing.assert_allclose(found.numpy(), np.eye(x.shape[1]) + ridge.coef_, atol=1e-5)


def test_fisher_held_maps_minimise_the_per_entry_penalty_and_hold_the_important_rows():
    x, links, _ = rotated_links(n=120)
    pairs = np.asarray(links)
    weights = np.ones(len(pairs))
    dim = x.shape[1]
    previous = torch.eye(dim) + 0.05 * torch.randn(dim, dim, generator=torch.Generator().manual_seed(0))
    importance = torch.zeros(dim, dim)
    importance[:3] = torch.rand(3, dim, generator=torch.Generator().manual_seed(1)) + 0.5  # rows 0-2 matter
    maps = ridge_maps(x, pairs, weights, previous, importance)
    assert len(maps) == len(STRENGTHS) + len(HELD_STRENGTHS) * len(FISHER_STRENGTHS)
    plain = dict(zip(STRENGTHS, maps))
    held = maps[len(STRENGTHS):]
    source, target, w = both_directions(x, pairs, weights)
    unit = np.trace((source * w[:, None]).T @ source) / dim
    f = (importance / importance.max()).double()
    k = 0
    for mu in HELD_STRENGTHS:
        for nu in FISHER_STRENGTHS:
            found = held[k]
            k += 1
            # the objective's gradient vanishes at the map (float32 maps: a float32-sized residual)
            weight = found.double().clone().requires_grad_(True)
            s, t = torch.from_numpy(source), torch.from_numpy(target)
            loss = (torch.from_numpy(w)[:, None] * (s @ weight.T - t) ** 2).sum() \
                + (unit * (mu + nu * f) * (weight - previous.double()) ** 2).sum()
            (grad,) = torch.autograd.grad(loss, weight)
            assert grad.abs().max() < 1e-4 * len(source)
            # rows without importance are the plain map of the same μ; the important rows stay nearer the previous
            np.testing.assert_allclose(found[3:].numpy(), plain[mu][3:].numpy(), atol=1e-5)
            assert (found[:3] - previous[:3]).norm() < 0.5 * (plain[mu][:3] - previous[:3]).norm()


def test_the_learner_starts_from_a_ridge_map_that_checks_better():
    # a whole rotation: far beyond 300 Adam steps of 1e-4 from the identity; the closed form (fitting both
    # directions of each link, so R and its inverse at once) gets part of the way
    task = rotation_task()
    plain = LinkMapLearner(task.embeddings.shape[1], tiny_config(), use_ridge=False)
    without = plain.learn("p", task, seed=0)
    learner = LinkMapLearner(task.embeddings.shape[1], tiny_config())
    report = learner.learn("p", task, seed=0)
    assert without.start == "previous" and report.start == "ridge"
    assert report.check_mrr_after > 2 * report.check_mrr_before
    assert report.check_mrr_after > 1.5 * without.check_mrr_after
    assert learner.check(task) == pytest.approx(report.check_mrr_after)
    assert report.loss_end < report.loss_start


def test_a_saved_learner_keeps_its_ridge_setting(tmp_path):
    task = rotation_task()
    learner = LinkMapLearner(task.embeddings.shape[1], tiny_config(), use_ridge=False)
    learner.learn("p", task, seed=0)
    learner.save(tmp_path)
    assert LinkMapLearner.load(tmp_path, task.embeddings.shape[1], tiny_config()).use_ridge is False
