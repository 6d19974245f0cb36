"""The strategies as learners the protocol drives: ``refresh`` embeds notes that just became known, ``learn``
learns one phase and updates the embeddings in place (returning how many known notes were re-embedded).

Frozen learns nothing; Sparse is the token-level memory (ContinualLearner); LinkMapStrategy the link map on the
frozen embeddings (model/linkfit.py); Dense is full / ewc / lora finetuning; Joint finetunes on every phase's
training links at once (a reference). :func:`phase_data` is what each of them sees of a phase.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from vaultlearn.config import Config
from vaultlearn.errors import require_finite
from vaultlearn.eval.protocol import EvalCorpus, Split
from vaultlearn.index.learned import map_vectors
from vaultlearn.model.continual import ContinualLearner
from vaultlearn.model.encoder import NoteEncoder
from vaultlearn.model.fisher import OnlineEWC, per_example_fisher
from vaultlearn.model.hidden import HiddenCache
from vaultlearn.model.linkfit import LinkMapLearner, link_task
from vaultlearn.model.pairs import PhaseData, batch_loss, example_loss, plan_phase
from vaultlearn.model.topology import edge_weights
from vaultlearn.model.validation import compare, split_held_out

DENSE_LR = {"full": 2e-5, "ewc": 2e-5, "lora": 2e-4}
LORA_RANK = 16


def phase_data(corpus: EvalCorpus, split: Split, k: int, *, twp: bool, config: Config) -> tuple[PhaseData, np.ndarray]:
    """Phase k as the learner sees it (indices local to the notes known at k) and those notes' global indices."""
    known = corpus.known_at(k)
    local = {int(g): i for i, g in enumerate(known)}
    adjacency: list[set[int]] = [set() for _ in known]
    for a, b in split.visible:
        if a in local and b in local:
            adjacency[local[a]].add(local[b])
            adjacency[local[b]].add(local[a])
    pairs = [(local[a], local[b]) for a, b in split.train[k]]
    weights = edge_weights(pairs, adjacency, config.edge_weighting if twp else "none", config.seed)
    phase = corpus.phases[k]
    data = PhaseData(
        texts=[corpus.texts[i] for i in known],
        phase_notes=np.array([local[int(g)] for g in known if corpus.phase_of[g] == phase], dtype=np.int64),
        pairs=pairs,
        background=np.array([local[int(g)] for g in corpus.known_at(k - 1)], dtype=np.int64),
        adjacency=adjacency,
        weights=weights,
    )
    return data, known


class Frozen:
    """The base model: learns nothing, re-embeds nothing."""

    def refresh(self, known: np.ndarray, emb: np.ndarray) -> None:
        """Embed notes that just became known with the current model (nothing to do here)."""

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        """Learn phase k, update ``emb`` rows in place; returns how many known notes were re-embedded."""
        return 0


class Sparse(Frozen):
    """The memory strategies: a ContinualLearner; re-embeds only the notes whose slots meet the updated ones."""

    def __init__(self, encoder: NoteEncoder, config: Config, cache: HiddenCache, universe: np.ndarray, texts, options):
        encoder.memory = None
        self.encoder, self.universe, self.texts = encoder, universe, texts
        self.learner = ContinualLearner(encoder, config, cache=cache, **options)

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        result = self.learner.learn_phase(phase, data)
        texts = [self.texts[i] for i in self.universe]
        updated = result["updated_slots"]
        hit = np.array([np.intersect1d(s, updated, assume_unique=True).size > 0 for s in self.learner.cache.slots(texts)])
        notes = self.universe[hit]
        if len(notes):
            emb[notes] = self.learner.embed_texts([self.texts[i] for i in notes])
        return int(np.isin(notes, known).sum())


class LinkMapStrategy(Frozen):
    """The link map on the frozen embeddings, as `vaultlearn learn` runs it (:func:`model.linkfit.link_task`):
    every learned phase's links replayed, split once and for all into fitting and checking links. ``reading``:
    how a phase's links are ranked, "source" (as `learn` commits: with its map applied to every note,
    :meth:`source_maps`), "notes" (each learned phase's notes read by its own map) or "global" (every note by
    the latest map). ``gated``: `learn`'s validation gate too."""

    def __init__(self, frozen: np.ndarray, config: Config, paths: Sequence[str], phase_of: Sequence[str | None],
                 use_twp: bool = True, reading: str = "source", gated: bool = False, **options):
        self.frozen, self.config, self.paths, self.phase_of = frozen, config, paths, phase_of
        self.use_twp, self.reading, self.gated = use_twp, reading, gated
        self.learner = LinkMapLearner(frozen.shape[1], config, **options)
        self.learned: list[list[tuple[int, int]]] = []  # global training links of each learned phase
        self.validation: dict[str, list[tuple[int, int]]] = {}  # ``gated``: each phase's held-out links (global)

    def refresh(self, known: np.ndarray, emb: np.ndarray) -> None:
        """Notes that just became known are read as the learned state reads them."""
        emb[known] = self._learned(known)

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        """Learn ``phase``; the count is of the known notes whose learned vectors changed (with the "source"
        reading, which changes no note's vector: the phase's notes, when its map moved)."""
        pairs = [(int(known[a]), int(known[b])) for a, b in data.pairs]
        local = {int(g): i for i, g in enumerate(known)}
        adjacency = data.adjacency
        if self.gated:  # as `learn` splits a phase's links: a seeded share held out to validate on
            self.validation[phase], pairs = split_held_out(pairs, [(self.paths[a], self.paths[b]) for a, b in pairs],
                                                           self.config)
            adjacency = _without(adjacency, [(local[a], local[b]) for a, b in self.validation[phase]])
        self.learned.append(pairs)
        if self.gated and not self.validation[phase]:  # as `learn`: nothing to validate on, so not trained
            return 0
        links = [[(local[a], local[b]) for a, b in phase_links] for phase_links in self.learned]
        task = link_task(self.frozen[known], links, [self.paths[g] for g in known], adjacency, self.config,
                         self.use_twp)
        kept, current = (copy.deepcopy(self.learner), self._learned(known)) if self.gated else (None, None)
        report = self.learner.learn(phase, task, self.config.seed)
        learned = self._learned(known)
        if self.gated:
            heldout = {p: [(local[a], local[b]) for a, b in held] for p, held in self.validation.items()}
            edges = [(a, b) for a, linked in enumerate(data.adjacency) for b in linked]
            if self.reading == "source":  # the phase's links in the base space against its map's; no other moves
                base = self.frozen[known]
                own_map = self.learner.phase_maps[phase].numpy()
                check = compare(base, map_vectors(base, own_map), heldout, phase, [], edges, self.config)
            else:
                check = compare(current, learned, heldout, phase, [p for p in heldout if p != phase], edges,
                                self.config)
            if not check["commit"]:  # declined: the learner as it was (later phases still replay the links)
                self.learner, learned = kept, current
                report = None
        if self.reading == "source":
            moved = report is not None and report.moved_notes
            return int(sum(self.phase_of[g] == phase for g in known)) if moved else 0
        before = emb[known].copy()
        emb[known] = learned
        return int(np.any(emb[known] != before, axis=1).sum())

    def source_maps(self) -> dict[str, np.ndarray] | None:
        """With the "source" reading, each learned phase's map, for :func:`protocol.score_phases` to rank that
        phase's links by (the geometry the map was fitted in; no later phase changes it); otherwise None."""
        if self.reading != "source":
            return None
        return {p: w.numpy() for p, w in self.learner.phase_maps.items()}

    def _learned(self, notes: np.ndarray) -> np.ndarray:
        """The notes' learned vectors: the base ones with the "source" reading (a phase's map is applied when its
        links are scored), else as ``reading`` says."""
        if self.reading == "source":
            return self.frozen[notes]
        if self.reading == "notes":
            return self.learner.apply_by_phase(self.frozen[notes], [self.phase_of[g] for g in notes])
        return self.learner.map.apply(self.frozen[notes])


def _without(adjacency: list[set[int]], links: Sequence[tuple[int, int]]) -> list[set[int]]:
    """``adjacency`` (both directions) without ``links``."""
    out = [set(linked) for linked in adjacency]
    for a, b in links:
        out[a].discard(b)
        out[b].discard(a)
    return out


class Dense(Frozen):
    """full / ewc / lora: AdamW on the model's weights (or LoRA adapters), same batches as the memory."""

    def __init__(self, kind: str, config: Config, device: str | None, texts: Sequence[str], universe: np.ndarray):
        self.kind, self.config, self.texts, self.universe = kind, config, texts, universe
        self.encoder = NoteEncoder(config, device)  # float32 weights: AdamW never updates half precision
        model = self.encoder.auto_model
        if kind == "lora":
            from peft import LoraConfig, inject_adapter_in_model

            lora = LoraConfig(r=LORA_RANK, lora_alpha=2 * LORA_RANK, target_modules=["query", "key", "value", "dense"])
            inject_adapter_in_model(lora, model)
            self.params = {n: p for n, p in model.named_parameters() if "lora_" in n}
        else:
            self.params = dict(model.named_parameters())
        for p in self.params.values():
            p.requires_grad_(True)
        self.optimizer = torch.optim.AdamW(self.params.values(), lr=DENSE_LR[kind if kind in DENSE_LR else "full"],
                                           weight_decay=0.01)
        self.ewc = OnlineEWC(gamma=config.fisher_gamma) if kind == "ewc" else None
        self.stale = np.zeros(len(texts), dtype=bool)  # embedded with weights older than the current ones

    def refresh(self, known: np.ndarray, emb: np.ndarray) -> None:
        notes = known[self.stale[known]]
        if len(notes):
            emb[notes] = self.encoder.encode([self.texts[i] for i in notes])
            self.stale[notes] = False

    def _embed_train(self, texts: Sequence[str]) -> torch.Tensor:
        st = self.encoder.st
        features = st.preprocess(list(texts))
        cut = self.config.learn_max_tokens
        features = {k: v[:, :cut].to(self.encoder.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        with self.encoder.precision(training=True):
            emb = st(features)["sentence_embedding"]
        return torch.nn.functional.normalize(emb.float(), p=2, dim=1)

    def _loss(self, data: PhaseData, pairs: np.ndarray, batch: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        weights = torch.as_tensor(data.weights, dtype=torch.float32)
        return batch_loss(lambda notes: self._embed_train([data.texts[i] for i in notes]), pairs, batch, negatives,
                          weights)

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        if not data.pairs:
            return 0
        pairs = np.asarray(data.pairs, dtype=np.int64)
        batches, negatives = plan_phase(data, emb[known], self.config, k)
        for step, (batch, neg) in enumerate(zip(batches, negatives)):
            loss = self._loss(data, pairs, batch, neg)
            require_finite(loss, f"{self.kind} training loss of phase {phase!r} at step {step + 1}")
            if self.ewc is not None:
                loss = loss + self.ewc.penalty(self.params, 1.0)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        if self.ewc is not None:
            self._consolidate(data, pairs, batches, negatives, emb[known], k)
        self.stale[:] = True
        self.refresh(known, emb)
        return len(known)

    def _consolidate(self, data, pairs, batches, negatives, current, k) -> None:
        """Per-example Fisher of all weights (one pair vs fixed negatives per backward), then EWC anchor."""
        rng = np.random.default_rng([self.config.seed, k, 1])
        names = list(self.params)

        def embed(idx):
            return self._embed_train([data.texts[j] for j in idx])

        sample = rng.permutation(len(pairs))[: self.config.fisher_samples]
        examples = (example_loss(embed, pairs, int(i), batches, negatives, current, rng) for i in sample)
        fisher, _ = per_example_fisher(examples, [self.params[n] for n in names])
        top = max(float(f.max()) for f in fisher)
        importance = {n: self.config.ewc_lambda * f / top for n, f in zip(names, fisher)} if top > 0 else {}
        self.ewc.consolidate(importance, self.params)


class Joint(Dense):
    """Full finetuning on every phase's training links at once (the run's whole step budget), done when the first
    phase is reached; later phases only embed their new notes with that model."""

    def __init__(self, config: Config, device: str | None, corpus: EvalCorpus, split: Split, n_phases: int,
                 universe: np.ndarray):
        super().__init__("joint", replace(config, learn_steps=config.learn_steps * n_phases), device, corpus.texts,
                         universe)
        every = [link for links in split.train[:n_phases] for link in links]
        joint = replace(split, train=[[] for _ in range(n_phases - 1)] + [every])  # all links, the last phase's notes
        self.data, _ = phase_data(corpus, joint, n_phases - 1, twp=True, config=config)

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        if k:
            return 0
        super().learn("all phases", 0, self.data, self.universe, emb)
        return len(known)
