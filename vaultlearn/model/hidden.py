"""HiddenCache: each note's block-L token states and memory lookups, computed once (the layers below the
memory are frozen)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vaultlearn.model.encoder import NoteEncoder


class HiddenCache:
    """Per note text: its block-L token states and its memory lookup, each computed once."""

    def __init__(self, encoder: NoteEncoder):
        self.encoder = encoder
        self._states: dict[str, torch.Tensor] = {}
        self._lookups: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._pooled: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._keys_version: tuple[int, int] | None = None

    def states(self, texts: Sequence[str], *, show_progress: bool = False) -> list[torch.Tensor]:
        """Block-L states of each text (tokens, hidden), computing the missing ones in one pass."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._states))
        if missing:
            for text, state in zip(missing, self.encoder.hidden_states(missing, show_progress=show_progress)):
                self._states[text] = state
        return [self._states[t] for t in texts]

    def lookups(self, texts: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Memory (slot ids, weights) per token of each text; recomputed if the memory's keys changed."""
        memory = self.encoder.memory
        if memory is None:
            raise ValueError("the memory has not been created yet")
        version = (id(memory), memory.keys._version)
        if version != self._keys_version:
            self._lookups.clear()
            self._pooled.clear()
            self._keys_version = version
        missing = list(dict.fromkeys(t for t in texts if t not in self._lookups))
        with torch.no_grad():
            for text, state in zip(missing, self.states(missing)):
                idx, w = memory.lookup(state.to(self.encoder.device))
                self._lookups[text] = (idx.cpu(), w.cpu())
        return [self._lookups[t] for t in texts]

    def pooled(self, texts: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Per text: its mean block-L state, the slots its tokens read, each slot's summed softmax weight over
        the token count, and each slot's read count (what :attr:`NoteEncoder.linear_readout` training needs)."""
        lookups = self.lookups(texts)
        for text, (idx, w) in zip(texts, lookups):
            if text not in self._pooled:
                state = self._states[text]
                ids, inverse, counts = torch.unique(idx.flatten(), return_inverse=True, return_counts=True)
                weight = torch.zeros(len(ids)).index_add_(0, inverse, w.flatten().float()) / len(state)
                self._pooled[text] = (state.float().mean(0), ids, weight, counts)
        return [self._pooled[t] for t in texts]

    def slots(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Sorted unique slot ids each text reads."""
        return [np.unique(idx.numpy()) for idx, _ in self.lookups(texts)]
