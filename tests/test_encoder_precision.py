"""The CPU bf16 forward pass: close to float32 (cosine), a different model id and key, chosen by "auto" only on a
CPU with native bf16, and checked config."""

import dataclasses

import numpy as np
import pytest

from vaultlearn.config import Config
import vaultlearn.model_identity as identity
from vaultlearn.model.encoder import NoteEncoder
from vaultlearn.model_identity import cpu_precision, model_key

TEXTS = ["Sourdough rises with a wild yeast starter.", "Python asyncio runs coroutines on an event loop.",
         "Dew point is the temperature at which air becomes saturated with water vapour. " * 20]


def test_bf16_autocast_stays_within_cosine_of_float32():
    encoder = NoteEncoder(dataclasses.replace(Config(), cpu_precision="bfloat16"), device="cpu")
    assert encoder.bf16
    fast_id = encoder.model_id
    fast = encoder.encode(TEXTS)
    encoder.bf16 = False
    exact = encoder.encode(TEXTS)
    assert not np.array_equal(fast, exact)  # the autocast really ran
    assert np.min(np.sum(fast * exact, axis=1)) >= 0.999
    assert encoder.model_id != fast_id


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="cpu_precision"):
        NoteEncoder(dataclasses.replace(Config(), cpu_precision="int4"), device="cpu")


@pytest.mark.parametrize("flags, expected", [("fpu avx2 avx512f avx512bw avx512_bf16", "bfloat16"),
                                             ("fpu avx2 amx_bf16 amx_tile", "bfloat16"),
                                             ("fpu avx2 avx512f avx512bw", "float32"), (None, "float32")])
def test_auto_precision_is_bf16_only_on_a_cpu_with_native_bf16(tmp_path, monkeypatch, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    real_path = identity.Path
    monkeypatch.setattr(identity, "Path", lambda p: cpuinfo if p == "/proc/cpuinfo" else real_path(p))
    identity.native_bf16_cpu.cache_clear()
    try:
        auto = Config()
        assert auto.cpu_precision == "auto" and cpu_precision(auto) == expected
        pinned = dataclasses.replace(auto, cpu_precision="float32")
        assert cpu_precision(pinned) == "float32"
        assert (model_key(auto) == model_key(pinned)) == (expected == "float32")  # bf16 embeddings: another key
    finally:
        identity.native_bf16_cpu.cache_clear()
