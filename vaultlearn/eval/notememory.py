"""An experimental learner design measured against the references: a note-level memory on frozen embeddings.

One slot per note that has training links, added when its phase is learned. Key = the note's frozen embedding
(keys from the data); value = the mean frozen embedding of the notes it links to (initialised from the link
neighbourhood, not zero). Every note reads the ``NOTE_MEMORY_TOPK`` slots nearest to it (softmax over cosine /
``NOTE_MEMORY_TAU``) and its embedding becomes normalize(e + ``NOTE_MEMORY_BETA`` · Σ w·value): what a slot
holds reaches unseen notes through similarity (the non-parametric limit is item-kNN). With training, the phase's
slot values are fitted by InfoNCE on the phase's training links (plus, with replay, the earlier phases' training
links), Adam, float32; earlier phases' slots never change, so an old note moves only by reading new slots.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from vaultlearn.config import Config
from vaultlearn.errors import require_finite
from vaultlearn.model.pairs import PhaseData, batch_loss, plan_phase

NOTE_MEMORY_TOPK = 16
NOTE_MEMORY_TAU = 0.05
NOTE_MEMORY_BETA = 0.5
NOTE_MEMORY_STEPS = 200
NOTE_MEMORY_LR = 1e-3


class NoteMemory:
    """The note-level memory as an eval strategy (``train``: fit the phase's values; ``replay``: with the earlier
    phases' links too)."""

    def __init__(self, frozen: np.ndarray, config: Config, *, train: bool, replay: bool):
        self.frozen = frozen
        self.config = replace(config, learn_steps=NOTE_MEMORY_STEPS)
        self.train, self.replay = train, replay
        self.slot_notes = np.zeros(0, dtype=np.int64)  # global note index of each slot
        self.values = torch.zeros(0, frozen.shape[1])
        self.pairs_seen: list[tuple[int, int]] = []  # global (anchor, positive) of the learned phases

    def _read(self, rows: np.ndarray, values: torch.Tensor) -> torch.Tensor:
        base = torch.as_tensor(self.frozen[rows])
        if not len(self.slot_notes):
            return base
        sims = base @ torch.as_tensor(self.frozen[self.slot_notes]).T
        k = min(NOTE_MEMORY_TOPK, len(self.slot_notes))
        top, idx = sims.topk(k, dim=1)
        weights = torch.softmax(top / NOTE_MEMORY_TAU, dim=1)
        readout = (weights[..., None] * values[idx]).sum(1)
        return F.normalize(base + NOTE_MEMORY_BETA * readout, p=2, dim=1)

    def refresh(self, known: np.ndarray, emb: np.ndarray) -> None:
        """Notes that just became known read the memory as it stands."""
        with torch.no_grad():
            emb[known] = self._read(known, self.values).numpy()

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        if not data.pairs:
            return 0
        pairs = np.asarray(data.pairs, dtype=np.int64)
        targets: dict[int, list[int]] = {}
        for a, b in pairs:
            targets.setdefault(int(known[a]), []).append(int(known[b]))
        new_notes = np.array(sorted(targets), dtype=np.int64)
        init = torch.as_tensor(np.stack([self.frozen[targets[n]].mean(0) for n in new_notes]))
        old_values = self.values
        self.slot_notes = np.concatenate([self.slot_notes, new_notes])
        fresh = torch.nn.Parameter(init.clone())
        self.pairs_seen += [(int(known[a]), int(known[b])) for a, b in pairs]
        if self.train:
            self._fit(phase, k, data, known, emb, old_values, fresh)
        self.values = torch.cat([old_values, fresh.detach()])
        before = emb[known].copy()
        self.refresh(known, emb)
        return int(np.any(emb[known] != before, axis=1).sum())

    def _fit(self, phase, k, data, known, emb, old_values, fresh) -> None:
        local = {int(g): i for i, g in enumerate(known)}
        pairs = [(local[a], local[b]) for a, b in self.pairs_seen] if self.replay else list(data.pairs)
        train = replace(data, pairs=pairs, weights=np.ones(len(pairs)))
        batches, negatives = plan_phase(train, emb[known], self.config, k)
        optimizer = torch.optim.Adam([fresh], lr=NOTE_MEMORY_LR)
        pairs_arr = np.asarray(pairs, dtype=np.int64)
        for step, (batch, neg) in enumerate(zip(batches, negatives)):
            values = torch.cat([old_values, fresh])
            loss = batch_loss(lambda notes: self._read(known[notes], values), pairs_arr, batch, neg,
                              torch.ones(len(pairs_arr)))
            require_finite(loss, f"note-memory training loss of phase {phase!r} at step {step + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
