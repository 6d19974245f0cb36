"""ContinualLearner: learns the vault's links one phase at a time with sparse memory finetuning.

Per phase: the phase's links are (anchor, positive, weight) pairs; the loss is InfoNCE over in-batch positives
plus one graph-aware hard negative per anchor (a near note that is not linked). Per step (Lin et al. 2025) the
slots the batch reads are counted, TF = count/total, IDF = log((|B|+1)/(background batches reading the slot + 1))
with the background = notes of the phases already learned, and only the top-t slots by TF·IDF are updated, by
plain SGD on their value rows; every other row keeps its exact bytes, and the base model stays frozen.
With ``use_fisher`` the update is a proximal step of the online-EWC penalty (importance = Fisher + TWP topology
importance) and the loss gradient is damped along Fisher-stable output dimensions.

The layers below the memory are frozen, so each note's block-L states and memory lookups are computed once and
cached (:class:`HiddenCache`); a training step runs only memory read + the blocks above + pooling.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vaultlearn.atomic import atomic_write_bytes, atomic_write_text
from vaultlearn.config import Config
from vaultlearn.errors import require_finite
from vaultlearn.model.encoder import NoteEncoder, pad_hidden
from vaultlearn.model.hidden import HiddenCache
from vaultlearn.model.fisher import OnlineEWC, StableDims, per_example_fisher, unit_max
from vaultlearn.model.manifest import MANIFEST, STATE_FORMAT, read_manifest
from vaultlearn.model.overlap import phase_fishers
from vaultlearn.model.pairs import PhaseData, batch_loss, example_loss, plan_phase
from vaultlearn.model.topology import edge_weights, linked_similarity, topology_importance

KEY_INIT_TOKENS = 65_536  # token states sampled for the sub-key k-means


class ContinualLearner:
    """Sparse memory finetuning of the encoder's memory, one phase after another, with state on disk."""

    kind = "memory"  # config.learner

    def __init__(
        self,
        encoder: NoteEncoder,
        config: Config,
        *,
        use_idf: bool = True,
        use_fisher: bool = True,
        use_twp: bool = True,
        cache: HiddenCache | None = None,
    ):
        self.encoder = encoder
        self.config = config
        self.use_idf, self.use_fisher, self.use_twp = use_idf, use_fisher, use_twp
        self.cache = cache or HiddenCache(encoder)
        self.learned_phases: list[str] = []
        self.history: list[dict] = []
        self.ewc = OnlineEWC(gamma=config.fisher_gamma)
        self.dims = StableDims(encoder.dim, config.stable_dim_damping, gamma=config.fisher_gamma)
        self.phase_fisher: dict[str, dict[str, torch.Tensor]] = {}
        self.background_counts: torch.Tensor | None = None  # per slot: background batches reading it (last IDF)
        self.background_batches = 0
        self.slot_counts: torch.Tensor | None = None  # per slot: reads by the learned phases' notes
        self.generation = 0

    # ----- memory -----
    def ensure_memory(self, texts: Sequence[str]) -> None:
        """Create the memory with sub-keys fitted to ``texts``' token states, unless it exists (seeded)."""
        if self.encoder.memory is not None:
            return
        states = self.cache.states(texts)
        tokens = torch.cat(states)
        gen = torch.Generator().manual_seed(self.config.seed)
        if len(tokens) > KEY_INIT_TOKENS:
            tokens = tokens[torch.randperm(len(tokens), generator=gen)[:KEY_INIT_TOKENS]]
        memory = self.encoder.new_memory()
        memory.init_keys(tokens.to(self.encoder.device), seed=self.config.seed)

    # ----- learning -----
    def learn_phase(
        self, phase: str, corpus: PhaseData, progress: Callable[[float], None] | None = None
    ) -> dict:
        """Learn one phase's links; returns steps, seconds, the updated slot ids and the loss before/after."""
        start = time.perf_counter()
        c = self.config
        self.ensure_memory(corpus.texts)
        memory = self.encoder.memory
        values = memory.values
        device = self.encoder.device
        if not corpus.pairs:
            return self._finish(phase, corpus, start, steps=0, updated=np.zeros(0, np.int64), losses=(None, None))

        pairs = np.asarray(corpus.pairs, dtype=np.int64)
        weights = self._pair_weights(corpus)
        idf = self._idf(corpus).to(device)
        current = self._embed(corpus.texts, np.arange(len(corpus.texts)))
        batches, negatives = plan_phase(corpus, current, c, len(self.learned_phases))

        probe = (batches[0], negatives[0])
        loss_start = self._batch_loss(corpus, pairs, weights, *probe, grad=False).item()
        updated = torch.zeros(memory.n_slots, dtype=torch.bool, device=device)
        values.requires_grad_(True)
        try:
            for step, (b, neg) in enumerate(zip(batches, negatives)):
                loss, counts = self._batch_loss(corpus, pairs, weights, b, neg, grad=True, with_slots=True)
                require_finite(loss, f"training loss of phase {phase!r} at step {step + 1}")
                loss.backward()
                rows = self._top_slots(counts, idf)
                self._sgd_rows(rows)
                updated[rows] = True
                values.grad = None
                if progress is not None:
                    progress((step + 1) / len(batches))
            require_finite(values, f"memory values after learning phase {phase!r}")
            loss_end = self._batch_loss(corpus, pairs, weights, *probe, grad=False).item()
            self._consolidate(phase, corpus, pairs, weights, batches, negatives)
        finally:
            values.requires_grad_(False)
            values.grad = None
        updated_slots = torch.nonzero(updated).flatten().cpu().numpy()
        return self._finish(phase, corpus, start, len(batches), updated_slots, (loss_start, loss_end))

    def _finish(self, phase, corpus, start, steps, updated, losses) -> dict:
        self._count_slots(corpus.phase_notes, corpus.texts)
        self.learned_phases.append(phase)
        record = {"phase": phase, "steps": steps, "updated_slots": int(len(updated)), "pairs": len(corpus.pairs)}
        self.history.append(record)
        return {
            **record,
            "seconds": time.perf_counter() - start,
            "updated_slots": updated,
            "loss_start": losses[0],
            "loss_end": losses[1],
        }

    def _pair_weights(self, corpus: PhaseData) -> np.ndarray:
        if corpus.weights is not None:
            return np.asarray(corpus.weights, dtype=np.float64)
        return edge_weights(corpus.pairs, corpus.adjacency, self.config.edge_weighting, self.config.seed)

    def _embed(self, texts: Sequence[str], notes: np.ndarray) -> np.ndarray:
        """Current embeddings (memory included) of ``notes``, in a full-size array indexed by note."""
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        out[notes] = self.embed_texts([texts[i] for i in notes])
        return out

    def embed_texts(self, texts: Sequence[str], chunk: int = 1024) -> np.ndarray:
        """Current embeddings (memory included) of ``texts`` from the cached states, float32 (n, dim)."""
        if self.encoder.memory is None or not self.encoder.linear_readout:
            return self.encoder.encode_hidden(self.cache.states(texts))
        out = np.zeros((len(texts), self.encoder.dim), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(texts), chunk):
                out[s : s + chunk] = self._forward(texts[s : s + chunk])[0].cpu().numpy()
        return out

    def _forward(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable embeddings of ``texts`` (memory included) and the slot read counts of their tokens.

        With a linear readout (memory after the last block, mean pooling) each note's embedding is
        normalize(mean state + C·values), C its row of slot weights: exact, and far cheaper than running
        the token states through the memory. Otherwise memory + upper blocks on tokens cut to learn_max_tokens."""
        n_slots = self.encoder.memory.n_slots
        device = self.encoder.device
        if self.encoder.linear_readout:
            pooled = self.cache.pooled(texts)
            rows = torch.cat([torch.full((len(p[1]),), i, dtype=torch.long) for i, p in enumerate(pooled)])
            cols = torch.cat([p[1] for p in pooled])
            readout = torch.zeros(len(texts), n_slots)  # dense: a note reads a large share of the slots
            readout[rows, cols] = torch.cat([p[2] for p in pooled])
            mean = torch.stack([p[0] for p in pooled])
            emb = F.normalize(mean.to(device) + readout.to(device) @ self.encoder.memory.values, p=2, dim=1)
            counts = torch.zeros(n_slots, device=device)
            counts.index_add_(0, cols.to(device), torch.cat([p[3] for p in pooled]).float().to(device))
            return emb, counts
        hidden, mask, (idx, w) = self._train_inputs(texts)
        emb = self.encoder.embed_hidden(hidden, mask, lookup=(idx, w))
        return emb, torch.bincount(idx[mask.bool()].flatten(), minlength=n_slots).float()

    def _batch_loss(self, corpus, pairs, weights, batch, negatives, *, grad: bool, with_slots: bool = False):
        """:func:`batch_loss` of one batch through memory + upper blocks (with ``with_slots``, and the batch's slot
        read counts)."""
        counts = None

        def embed(notes: np.ndarray) -> torch.Tensor:
            nonlocal counts
            emb, counts = self._forward([corpus.texts[i] for i in notes])
            if grad and self.use_fisher:
                self.dims.hook(emb)
            return emb

        with torch.set_grad_enabled(grad):
            loss = batch_loss(embed, pairs, batch, negatives, torch.as_tensor(weights, dtype=torch.float32))
        return (loss, counts) if with_slots else loss

    def _train_inputs(self, texts: Sequence[str]):
        """Padded block-L states, mask and memory lookups of ``texts``, cut to ``learn_max_tokens`` tokens."""
        cut = self.config.learn_max_tokens
        device = self.encoder.device
        hidden, mask = pad_hidden([s[:cut] for s in self.cache.states(texts)], device)
        lookups = [(i[:cut], w[:cut]) for i, w in self.cache.lookups(texts)]
        idx = torch.zeros(len(texts), hidden.shape[1], lookups[0][0].shape[1], dtype=torch.long)
        weights = torch.zeros(idx.shape)
        for row, (i, w) in enumerate(lookups):
            idx[row, : len(i)] = i
            weights[row, : len(i)] = w
        return hidden, mask, (idx.to(device), weights.to(device))

    def _top_slots(self, counts: torch.Tensor, idf: torch.Tensor) -> torch.Tensor:
        """The top-t slots of this batch (``counts``: reads per slot) by TF·IDF (TF alone without ``use_idf``)."""
        score = counts / counts.sum()
        if self.use_idf:
            score = score * idf
        read = torch.nonzero(counts).flatten()
        t = min(self.config.learn_top_t, len(read))
        return read[score[read].topk(t).indices]

    def _sgd_rows(self, rows: torch.Tensor) -> None:
        """Plain SGD on the chosen value rows (a proximal EWC step with ``use_fisher``); other rows untouched."""
        values = self.encoder.memory.values
        lr = self.config.learn_lr
        with torch.no_grad():
            stepped = values[rows] - lr * values.grad[rows]
            if self.use_fisher:
                stepped = self.ewc.proximal_rows("values", values, rows, stepped, lr, 1.0)
            values[rows] = stepped

    def _idf(self, corpus: PhaseData) -> torch.Tensor:
        """IDF per slot over the background notes cut into batches of ``learn_batch_size`` (seeded)."""
        n_slots = self.encoder.memory.n_slots
        notes = np.asarray(corpus.background, dtype=np.int64)
        if len(notes) == 0:
            return torch.ones(n_slots)
        order = np.random.default_rng([self.config.seed, 7]).permutation(notes)
        slots = self.cache.slots([corpus.texts[i] for i in order])
        bs = self.config.learn_batch_size
        touched = torch.zeros(n_slots, dtype=torch.long)
        for s in range(0, len(slots), bs):
            touched[torch.as_tensor(np.unique(np.concatenate(slots[s : s + bs])))] += 1
        self.background_counts, self.background_batches = touched, -(-len(slots) // bs)
        return torch.log((self.background_batches + 1) / (touched.float() + 1))

    def _count_slots(self, notes: np.ndarray, texts: Sequence[str]) -> None:
        """Slot statistics: reads per slot by the learned phases' notes."""
        if self.encoder.memory is None or len(notes) == 0:
            return
        if self.slot_counts is None:
            self.slot_counts = torch.zeros(self.encoder.memory.n_slots, dtype=torch.long)
        for idx, _ in self.cache.lookups([texts[i] for i in notes]):
            self.slot_counts += torch.bincount(idx.flatten(), minlength=len(self.slot_counts))

    # ----- after a phase -----
    def _consolidate(self, phase, corpus, pairs, weights, batches, negatives) -> None:
        """Per-example Fisher (+ TWP topology importance) of this phase; fold into the EWC state and dims."""
        c = self.config
        values = self.encoder.memory.values
        rng = np.random.default_rng([c.seed, len(self.learned_phases), 1])
        sample = rng.permutation(len(pairs))[: c.fisher_samples]
        notes = np.unique(np.concatenate([pairs.ravel(), *negatives]))
        current = self._embed(corpus.texts, notes[notes >= 0])

        def embed(idx):
            return self._forward([corpus.texts[j] for j in idx])[0]

        fisher, dims = per_example_fisher(
            (example_loss(embed, pairs, i, batches, negatives, current, rng) for i in sample), [values]
        )
        importance = c.ewc_lambda * unit_max(fisher[0])
        if self.use_twp:
            topo = topology_importance(
                (self._structure(corpus, pairs, weights, b) for b in batches[: max(1, len(pairs) // len(batches[0]))]),
                [values],
            )
            importance = importance + c.twp_lambda * unit_max(topo[0])
        self.phase_fisher[phase] = {"memory_values": fisher[0].sum(1).cpu(), "output_dims": dims.cpu()}
        if self.use_fisher:
            self.ewc.consolidate({"values": importance}, {"values": values})
            self.dims.consolidate(dims)

    def _structure(self, corpus, pairs, weights, batch):
        """Closure: S = Σ w·cos² over one batch of the phase's links (TWP's topology structure)."""

        def structure():
            a, p = pairs[batch, 0], pairs[batch, 1]
            notes, where = np.unique(np.concatenate([a, p]), return_inverse=True)
            emb, _ = self._forward([corpus.texts[j] for j in notes])
            n = len(batch)
            w = torch.as_tensor(weights[batch], dtype=torch.float32, device=emb.device)
            return linked_similarity(emb[torch.as_tensor(where[:n])], emb[torch.as_tensor(where[n:])], w)

        return structure

    # ----- state -----
    def save(self, state_dir: Path) -> None:
        """Write memory + learner tensors under new names, then swap the manifest (the commit point)."""
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        if self.encoder.memory is None:
            raise ValueError("nothing to save: no memory yet")
        generation = self.generation + 1
        memory_file = f"memory-{generation:06d}.safetensors"
        learner_file = f"learner-{generation:06d}.safetensors"
        self.encoder.save_memory(state_dir / memory_file)
        atomic_write_bytes(state_dir / learner_file, save_safetensors(self._tensors()))
        manifest = {
            "format": STATE_FORMAT,
            "generation": generation,
            "memory": memory_file,
            "learner": learner_file,
            "model": self.encoder.model_path,
            "memory_layer": self.encoder.layer,
            "learned_phases": self.learned_phases,
            "history": self.history,
            "phase_fisher": list(self.phase_fisher),
            "background_batches": self.background_batches,
        }
        atomic_write_text(state_dir / MANIFEST, json.dumps(manifest, indent=1))
        self.generation = generation
        for old in state_dir.glob("*-*.safetensors"):
            if old.name not in (memory_file, learner_file):
                old.unlink(missing_ok=True)

    def _tensors(self) -> dict[str, torch.Tensor]:
        out = {f"ewc.{k}": v for k, v in self.ewc.state().items()}
        out["dims.fisher"] = self.dims.fisher
        if self.slot_counts is not None:
            out["slots.counts"] = self.slot_counts
        if self.background_counts is not None:
            out["slots.background"] = self.background_counts
        for i, (phase, groups) in enumerate(self.phase_fisher.items()):
            for group, tensor in groups.items():
                out[f"phase.{i}.{group}"] = tensor
        return {k: v.detach().cpu().contiguous() for k, v in out.items()}

    @classmethod
    def load(cls, state_dir: Path, encoder: NoteEncoder, config: Config, **options) -> "ContinualLearner":
        """The learner saved in ``state_dir`` (its memory loaded into ``encoder``); a fresh one if none is there."""
        learner = cls(encoder, config, **options)
        manifest = read_manifest(state_dir)
        if manifest is None:
            return learner
        state_dir = Path(state_dir)
        encoder.load_memory(state_dir / manifest["memory"])
        tensors = load_safetensors((state_dir / manifest["learner"]).read_bytes())
        device = encoder.device
        learner.ewc.load_state({k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("ewc.")})
        learner.dims.fisher = tensors["dims.fisher"]
        learner.slot_counts = tensors.get("slots.counts")
        learner.background_counts = tensors.get("slots.background")
        learner.background_batches = manifest["background_batches"]
        learner.learned_phases = list(manifest["learned_phases"])
        learner.history = list(manifest["history"])
        learner.phase_fisher = phase_fishers(manifest, tensors)
        learner.generation = manifest["generation"]
        return learner
