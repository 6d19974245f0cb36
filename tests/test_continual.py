"""ContinualLearner: sparse updates, learning a synthetic two-phase vault, state round trip and crash safety."""

import numpy as np
import pytest
import torch

import vaultlearn.model.continual as continual
from vaultlearn.eval.protocol import split_links
from vaultlearn.eval.learners import phase_data
from vaultlearn.model.continual import ContinualLearner
from vaultlearn.model.encoder import NoteEncoder

from .conftest import synthetic_corpus, tiny_config

@pytest.fixture(scope="module")
def corpus():
    return synthetic_corpus()


@pytest.fixture(scope="module")
def encoder():
    return NoteEncoder(tiny_config(), device="cpu")


def fresh(encoder, **kw) -> ContinualLearner:
    encoder.memory = None
    return ContinualLearner(encoder, tiny_config(**kw), cache=getattr(encoder, "_test_cache", None))


def test_only_top_t_rows_change(corpus, encoder):
    learner = fresh(encoder, learn_top_t=5, learn_steps=1)
    data, _ = phase_data(corpus, split_links(corpus, 0), 0, twp=True, config=learner.config)
    learner.ensure_memory(data.texts)
    before = encoder.memory.values.detach().clone()
    result = learner.learn_phase("alpha", data)
    after = encoder.memory.values.detach()
    changed = torch.nonzero((after != before).any(1)).flatten().numpy()
    assert 0 < len(changed) <= 5
    assert set(changed) <= set(result["updated_slots"].tolist())
    untouched = np.setdiff1d(np.arange(len(after)), changed)
    assert torch.equal(after[untouched], before[untouched])  # exact bytes everywhere else
    assert result["steps"] == 1 and result["phase"] == "alpha"


def test_learning_raises_phase_recall_over_frozen(corpus, encoder):
    from vaultlearn.eval.protocol import score_phases

    split = split_links(corpus, 0)
    learner = fresh(encoder)
    data, known = phase_data(corpus, split, 0, twp=True, config=learner.config)
    learner.ensure_memory(data.texts)
    states = learner.cache.states(data.texts)
    emb = np.zeros((len(corpus.texts), encoder.dim), dtype=np.float32)
    emb[known] = encoder.encode_hidden(states)
    frozen_r, frozen_mrr = score_phases(corpus, split, emb, 0)
    result = learner.learn_phase("alpha", data)
    emb[known] = encoder.encode_hidden(states)
    learned_r, learned_mrr = score_phases(corpus, split, emb, 0)
    assert result["loss_end"] < result["loss_start"]
    assert learned_r[0] >= frozen_r[0] and learned_mrr[0] > frozen_mrr[0]


def learn_two(corpus, encoder, tmp_path=None):
    split = split_links(corpus, 0)
    learner = fresh(encoder, learn_steps=5)
    for k, phase in enumerate(corpus.phases):
        data, _ = phase_data(corpus, split, k, twp=True, config=learner.config)
        learner.learn_phase(phase, data)
        if tmp_path is not None and k == 0:
            learner.save(tmp_path)
    return learner


def test_save_load_round_trip(corpus, encoder, tmp_path):
    learner = learn_two(corpus, encoder)
    learner.save(tmp_path)
    values = encoder.memory.values.detach().clone()
    expected = encoder.encode(corpus.texts[:4])
    other = NoteEncoder(tiny_config(), device="cpu")
    loaded = ContinualLearner.load(tmp_path, other, tiny_config())
    assert loaded.learned_phases == ["alpha", "beta"]
    assert torch.equal(other.memory.values, values)
    assert torch.equal(loaded.ewc.importance["values"], learner.ewc.importance["values"])
    assert set(loaded.phase_fisher) == {"alpha", "beta"}
    np.testing.assert_array_equal(other.encode(corpus.texts[:4]), expected)
    assert ContinualLearner.load(tmp_path / "nothing", other, tiny_config()).learned_phases == []


def test_overlap_table_and_plot(corpus, encoder, tmp_path):
    from vaultlearn.model.overlap import overlap_table
    from vaultlearn.plots import plot_overlap

    learn_two(corpus, encoder).save(tmp_path)
    table = overlap_table(tmp_path)
    assert table["phases"] == ["alpha", "beta"]
    for matrix in table["groups"].values():
        assert matrix[0][0] == pytest.approx(1.0) and matrix[1][1] == pytest.approx(1.0)
        assert matrix[0][1] == pytest.approx(matrix[1][0]) and 0.0 <= matrix[0][1] <= 1.0
    plot_overlap(table, tmp_path / "overlap.png")
    assert (tmp_path / "overlap.png").stat().st_size > 0


def test_crash_between_writes_keeps_previous_state(corpus, encoder, tmp_path, monkeypatch):
    learner = learn_two(corpus, encoder, tmp_path)  # saved after the first phase
    after_first = ContinualLearner.load(tmp_path, NoteEncoder(tiny_config(), device="cpu"), tiny_config())

    def crash(*args, **kwargs):
        raise OSError("simulated crash after the tensors were written")

    monkeypatch.setattr(continual, "atomic_write_text", crash)
    with pytest.raises(OSError):
        learner.save(tmp_path)
    monkeypatch.undo()
    other = NoteEncoder(tiny_config(), device="cpu")
    reloaded = ContinualLearner.load(tmp_path, other, tiny_config())
    assert reloaded.learned_phases == ["alpha"]
    assert torch.equal(other.memory.values, after_first.encoder.memory.values)


@pytest.mark.parametrize("layer", [4, 6])
def test_training_forward_matches_the_encode_path(corpus, layer):
    """The learner's embeddings (the linear readout after the last block, or memory + upper blocks below it)
    equal what the hooked model encodes, once values are non-zero."""
    encoder = NoteEncoder(tiny_config(memory_layer=layer), device="cpu")
    assert encoder.linear_readout == (layer == 6)
    learner = ContinualLearner(encoder, tiny_config(memory_layer=layer, learn_steps=5, learn_lr=50.0))
    data, _ = phase_data(corpus, split_links(corpus, 0), 0, twp=True, config=learner.config)
    learner.learn_phase("alpha", data)
    assert encoder.memory.active
    texts = data.texts[:24]
    np.testing.assert_allclose(learner.embed_texts(texts), encoder.encode(texts), atol=1e-5)
    encoder.bf16 = True  # the CPU bf16 forward pass: encode() is as close to the learner's as to float32
    assert np.min(np.sum(learner.embed_texts(texts) * encoder.encode(texts), axis=1)) >= 0.999
