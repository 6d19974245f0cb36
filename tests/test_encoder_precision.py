"""The opt-in CPU bf16 forward pass: close to float32 (cosine), but a different model id, and checked config."""

import dataclasses

import numpy as np
import pytest

from vaultlearn.config import Config
from vaultlearn.model.encoder import NoteEncoder

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
