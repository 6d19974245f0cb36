"""Non-finite numbers are errors, never results: in ranking, in the eval run, in learning; CUDA training stays
finite (float32 master weights)."""

import numpy as np
import pytest
import torch

import vaultlearn.eval.learners as learners
from vaultlearn.errors import NonFiniteError
from vaultlearn.metrics import rank_of_targets, targets_by_source
from vaultlearn.eval.strategies import run_eval
from vaultlearn.model.continual import ContinualLearner
from vaultlearn.model.encoder import NoteEncoder

from .conftest import synthetic_corpus, tiny_config


def test_a_nan_embedding_is_an_error_not_rank_one():
    emb = np.eye(4, dtype=np.float32)
    emb[2] = np.nan  # the target: every comparison with NaN is false, so it used to rank first
    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        rank_of_targets(emb, [(0, 2)], np.arange(4), targets_by_source([(0, 2)]))
    emb[2] = 1.0
    emb[0] = np.inf  # the query: finite candidates, non-finite scores
    with pytest.raises(NonFiniteError, match="similarity scores of note 0"):
        rank_of_targets(emb, [(0, 2)], np.array([1, 2, 3]), targets_by_source([(0, 2)]))


def test_eval_run_with_a_nan_embedding_fails(monkeypatch):
    def poisoned(self, phase, k, data, known, emb):
        emb[known[0]] = np.nan
        return 1

    monkeypatch.setattr(learners.Frozen, "learn", poisoned)
    with pytest.raises(NonFiniteError):
        run_eval(synthetic_corpus(), ["frozen"], tiny_config(), steps=1, seed=0, device="cpu", max_phases=1)


def test_learning_that_turns_nan_fails_and_commits_nothing(sample_vault, monkeypatch):
    from vaultlearn.service import VaultService

    service = VaultService(sample_vault, tiny_config(learn_steps=2, learn_top_t=64, memory_topk=8, memory_heads=2,
                                                     learner="memory"))
    service.index()

    def poisoned(self, rows):
        self.encoder.memory.values.data[rows] = float("nan")

    monkeypatch.setattr(ContinualLearner, "_sgd_rows", poisoned)
    with pytest.raises(NonFiniteError, match="phase"):
        service.learn()
    assert service.status().learned_phases == []
    assert not (service.paths.model / "manifest.json").exists()
    service.close()


def test_a_link_map_that_turns_nan_fails_and_commits_nothing(sample_vault, monkeypatch):
    from vaultlearn.model.linkfit import LinkMapLearner
    from vaultlearn.service import VaultService

    service = VaultService(sample_vault, tiny_config())
    service.index()
    nan = staticmethod(lambda *args: torch.tensor(float("nan"), requires_grad=True))
    monkeypatch.setattr(LinkMapLearner, "_loss", nan)
    with pytest.raises(NonFiniteError, match="link-map training loss of phase"):
        service.learn(force=True)
    assert service.status().learned_phases == []
    assert not (service.paths.model / "manifest.json").exists()
    service.close()


@pytest.mark.gpu
def test_full_finetuning_on_cuda_stays_finite():
    result = run_eval(synthetic_corpus(), ["frozen", "full"], tiny_config(), steps=20, seed=0, device="cuda",
                      max_phases=None)
    full = result["strategies"]["full"]
    assert np.isfinite(np.concatenate(full["R"])).all() and full["gain"] is not None
    assert {p.dtype for p in NoteEncoder(tiny_config(), "cuda").st.parameters()} == {torch.float32}
