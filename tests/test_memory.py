"""SparseMemory: shapes, product-key top-k, sparse gradients; NoteEncoder: bit-exact until something is learned."""

import numpy as np
import pytest
import torch

from vaultlearn.config import Config
from vaultlearn.model.encoder import NoteEncoder
from vaultlearn.model import memory as memory_module
from vaultlearn.model.memory import SparseMemory

TEXTS = [
    "Group homomorphism: a map between groups that preserves the operation.",
    "A topological space is compact if every open cover has a finite subcover.",
    "",
    "Short.",
    "The determinant of a square matrix is non-zero iff the matrix is invertible. " * 8,
]


def small_memory(**kw) -> SparseMemory:
    args = dict(dim=16, n_slots=64, topk=4, heads=2, key_dim=8, seed=0)
    args.update(kw)
    return SparseMemory(**args)


def test_lookup_shapes_and_weights():
    memory = small_memory()
    idx, weights = memory.lookup(torch.randn(3, 5, 16))
    assert idx.shape == weights.shape == (3, 5, 8)
    assert int(idx.min()) >= 0 and int(idx.max()) < 64
    torch.testing.assert_close(weights.view(3, 5, 2, 4).sum(-1), torch.ones(3, 5, 2))
    assert memory(torch.randn(2, 16)).shape == (2, 16)


@pytest.mark.parametrize("sizes", [dict(), dict(dim=32, n_slots=16384, topk=32, heads=4, key_dim=64)])
def test_product_key_topk_equals_brute_force(sizes):
    """The slots read are the top k of every slot's summed score (at the default sizes too: 32 of 16,384, where
    only the pairs of ranks i·j ≤ k are summed)."""
    memory = small_memory(**sizes)
    k, heads = memory.topk, memory.heads
    hidden = torch.randn(20, memory.dim)
    idx, weights = memory.lookup(hidden)
    q = memory.queries(hidden)  # (20, heads, 2, d/2)
    sub = torch.einsum("thsd,hsnd->thsn", q, memory.keys) - 0.5 * (memory.keys**2).sum(-1)
    full = (sub[:, :, 0, :, None] + sub[:, :, 1, None, :]).flatten(-2)  # every slot's score
    expected = full.topk(k, dim=-1)
    got = idx.view(20, heads, k)
    for t in range(20):
        for h in range(heads):
            assert set(got[t, h].tolist()) == set(expected.indices[t, h].tolist())
    torch.testing.assert_close(weights.view(20, heads, k), torch.softmax(expected.values, dim=-1))


def test_lookup_in_chunks_equals_one_pass(monkeypatch):
    """A CPU lookup runs the tokens in chunks; the slots do not depend on where the chunks end (the weights only
    to rounding: the query projection's sums run in another order at another size)."""
    memory = small_memory()
    hidden = torch.randn(3, 11, memory.dim)
    whole = memory.lookup(hidden)
    monkeypatch.setattr(memory_module, "CPU_LOOKUP_CHUNK", 4)  # 33 tokens: 8 full chunks and one of 1
    chunked = memory.lookup(hidden)
    assert chunked[0].shape == whole[0].shape == (3, 11, memory.heads * memory.topk)
    assert torch.equal(chunked[0], whole[0])
    torch.testing.assert_close(chunked[1], whole[1])
    empty = memory.lookup(hidden[:, :0])
    assert empty[0].shape == empty[1].shape == (3, 0, memory.heads * memory.topk)


def test_reading_only_sums_the_written_rows_to_the_same_readout():
    memory = small_memory()
    with torch.no_grad():
        memory.values[:10] = torch.randn(10, 16)  # fewer than half the rows written: the rows read are filtered
    assert memory.written_count == 10
    idx, weights = memory.lookup(torch.randn(3, 7, 16))
    dense = torch.nn.functional.embedding_bag(idx.reshape(-1, 8), memory.values.detach(),
                                              per_sample_weights=weights.reshape(-1, 8), mode="sum").view(3, 7, 16)
    with torch.no_grad():
        torch.testing.assert_close(memory.read(idx, weights), dense)
    torch.testing.assert_close(memory.read(idx, weights), dense)  # with gradients: every row read
    with torch.no_grad():
        memory.values.zero_()
        assert not memory.active and not memory.read(idx, weights).any()


def test_slots_must_be_a_perfect_square():
    with pytest.raises(ValueError):
        small_memory(n_slots=60)


def test_only_read_rows_get_gradient():
    memory = small_memory()
    with torch.no_grad():
        memory.values.normal_()
    hidden = torch.randn(6, 16)
    idx, weights = memory.lookup(hidden)
    memory.read(idx, weights).pow(2).sum().backward()
    nonzero = set(torch.nonzero(memory.values.grad.abs().sum(1)).flatten().tolist())
    assert nonzero and nonzero <= set(idx.flatten().tolist())


def test_kmeans_init_spreads_slot_use():
    memory = small_memory()
    hidden = torch.randn(4000, 16)
    random_use = (memory.slot_usage(hidden) > 0).sum()
    memory.init_keys(hidden)
    assert (memory.slot_usage(hidden) > 0).sum() >= random_use
    assert (memory.slot_usage(hidden) > 0).float().mean() > 0.9


@pytest.fixture(scope="module")
def encoder():
    config = Config(memory_slots=256, memory_topk=4, memory_heads=2, memory_key_dim=16, max_seq_length=64,
                    cpu_precision="float32")  # bit for bit with sentence-transformers
    enc = NoteEncoder(config, device="cpu")
    enc.new_memory().init_keys(torch.cat(enc.hidden_states(TEXTS)))
    return enc


def test_zero_memory_is_bit_exact_with_sentence_transformers(encoder):
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(encoder.model_path, device="cpu")
    plain.max_seq_length = encoder.config.max_seq_length
    expected = plain.encode(TEXTS, batch_size=encoder.config.batch_size, normalize_embeddings=True)
    got = encoder.encode(TEXTS)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), encoder.dim)
    assert np.array_equal(got, expected)
    with_slots, slots = encoder.encode_with_slots(TEXTS)
    assert np.array_equal(with_slots, expected)
    assert all(len(s) > 0 and np.all(np.diff(s) > 0) for s in slots)


def test_learned_values_change_output_and_model_id(encoder):
    base_id = encoder.model_id
    before = encoder.encode(TEXTS)
    _, slots = encoder.encode_with_slots(TEXTS[:1])
    try:
        with torch.no_grad():
            encoder.memory.values[torch.as_tensor(slots[0])] = 0.5
        after = encoder.encode(TEXTS)
        assert encoder.model_id != base_id
        assert not np.allclose(after[0], before[0])
        np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, rtol=1e-5)
        split = encoder.encode_hidden(encoder.hidden_states(TEXTS))
        np.testing.assert_allclose(split, after, atol=1e-5)
    finally:
        with torch.no_grad():
            encoder.memory.values.zero_()
    assert encoder.model_id == base_id


@pytest.mark.gpu
def test_cuda_encode_matches_cpu():
    config = Config(max_seq_length=64)
    cpu = NoteEncoder(config, device="cpu").encode(TEXTS)
    gpu = NoteEncoder(config, device="cuda").encode(TEXTS)
    assert np.min(np.sum(cpu * gpu, axis=1)) > 0.999
