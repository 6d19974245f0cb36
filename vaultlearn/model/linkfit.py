"""Learning a :class:`LinkMap` phase after phase: replay, a checked stopping point, online EWC.

Per phase the map learns from every link learned so far, not only the phase's own (a vault keeps its old
links, so replay costs seconds and no data). Each link is, once and for all, a *fitting* link or a *checking*
link (:func:`is_checking_link`, a seeded hash of the two notes' names), so no phase ever trains on a link that
another phase checks with. Training takes Adam steps of InfoNCE (in-batch negatives plus one graph-aware hard
negative per anchor, the learners' shared batch plan) on the fitting links from the previous phase's map, and
again from the best closed-form ridge map (:mod:`vaultlearn.model.ridge`) when that checks better than the
previous map; the ridge maps and every ``CHECK_EVERY``-th step are checked by ranking the checking links' targets
among the known notes (filtered MRR). The map kept is the best checked one — the previous map included, so a
phase that does not help changes nothing; a phase with no fitting link of its own keeps it untrained (replay
alone would only fit the earlier phases' links again). The map kept is also that phase's own map: the phase's notes
are compared with every note by it from then on (:class:`vaultlearn.index.learned.PhaseReading`; checked on the
phase's own checking links, ``own_checks``), and later phases leave it as it is. A phase with fewer than
``config.map_min_phase_links`` fitting links of its own (none included) leaves its notes on the map the previous
phase's notes are read by: a 384 × 384 map fitted to a dozen links and checked on a handful moves them for noise. A
small phase still trains the map the next phase starts from. With ``use_fisher`` the loss adds the online-EWC
penalty towards the previous map and the ridge maps include ones held by the same importance, the per-example Fisher
of each learned phase on its own fitting links (kept per phase either way: the overlap report). The learner saves
itself like the token-level memory does: files under new names, then the manifest swap (the commit point).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vaultlearn.atomic import atomic_write_bytes, atomic_write_text
from vaultlearn.config import Config
from vaultlearn.errors import require_finite
from vaultlearn.metrics import rank_of_targets
from vaultlearn.model.pairs import PhaseData, batch_loss, example_loss, plan_phase
from vaultlearn.model.fisher import OnlineEWC, per_example_fisher, unit_max
from vaultlearn.index.learned import LINKMAP_KIND, committed_phase_maps, map_by_phase
from vaultlearn.model.linkmap import LinkMap, map_embeddings
from vaultlearn.model.manifest import MANIFEST, STATE_FORMAT, read_manifest
from vaultlearn.model.overlap import phase_fishers
from vaultlearn.model.ridge import ridge_maps
from vaultlearn.model.topology import edge_weights
from vaultlearn.model.validation import is_checking_link

MAX_STEPS = 300
CHECK_EVERY = 25
LEARNING_RATE = 1e-4
MAX_CHECKING_LINKS = 500
MIN_OWN_CHECKING = 30  # own_checks: the fewest checking links of its own a phase is checked on alone
MAP_FISHER = "map_weights"  # the overlap report's group: the per-example Fisher of W


@dataclass
class LinkTask:
    """One phase's learning as the map sees it; note indices refer to ``embeddings`` (the known notes)."""

    embeddings: np.ndarray  # base-model embeddings, float32 (n, dim), L2-normalised
    fitting: list[tuple[int, int]]  # every learned phase's fitting links, this phase's last
    checking: list[tuple[int, int]]  # every learned phase's checking links
    adjacency: list[set[int]]  # visible links per note, both directions (filtering, hard negatives)
    weights: np.ndarray | None = None  # per fitting link (TWP edge weights); None: uniform
    own: int | None = None  # how many of the last fitting links are this phase's (None: all)
    own_checking: int = 0  # how many of the last checking links are this phase's

    @cached_property
    def checked(self) -> list[tuple[int, int]]:
        """The checking links a check ranks: all of them, or a fixed sample of ``MAX_CHECKING_LINKS`` across
        every phase's (the first ones alone would be the earliest phase's, and a large vault's later phases
        would be checked without a link of their own)."""
        return _at_most(self.checking, MAX_CHECKING_LINKS)

    @cached_property
    def own_checked(self) -> list[tuple[int, int]]:
        """This phase's own checking links (a fixed sample of ``MAX_CHECKING_LINKS`` of them at most)."""
        return _at_most(self.checking[len(self.checking) - self.own_checking:], MAX_CHECKING_LINKS)

    @cached_property
    def targets(self) -> dict[int, set[int]]:
        """Every note's linked notes, for the filtered ranking."""
        return {i: set(n) for i, n in enumerate(self.adjacency)}

    @cached_property
    def own_links(self) -> np.ndarray:
        """Indices into ``fitting`` of this phase's own links."""
        n = len(self.fitting)
        return np.arange(n - (n if self.own is None else min(self.own, n)), n)


@dataclass
class LinkMapReport:
    phase: str
    steps: int  # the checked Adam step kept (0: the starting map itself)
    start: str  # where the kept map started: "previous" (the previous map) or "ridge" (a closed-form map)
    fitting_links: int
    own_links: int  # the fitting links that are this phase's own
    checking_links: int
    moved_notes: bool  # the phase's notes are read by the map kept (False: by the previous phase's)
    check_mrr_before: float | None
    check_mrr_after: float | None
    loss_start: float | None  # InfoNCE of the first training batch under the previous map
    loss_end: float | None  # the same batch under the kept map
    seconds: float


@dataclass(frozen=True)
class _Kept:
    """A checked map: the reciprocal rank of each checking link's target, its weight, its Adam step and its
    starting point."""

    reciprocal: np.ndarray
    weight: torch.Tensor
    step: int
    origin: str

    @property
    def score(self) -> float:
        """Filtered MRR of the checking links (-inf: nothing checked yet)."""
        return float(self.reciprocal.mean()) if len(self.reciprocal) else -np.inf


class LinkMapLearner:
    """Owns the map and its online-EWC state; ``learn`` one phase at a time."""

    kind = LINKMAP_KIND  # config.learner

    def __init__(self, dim: int, config: Config, *, use_fisher: bool = True, use_ridge: bool = True,
                 within_noise: bool = False, own_checks: bool = True, ewc_lambda: float | None = None):
        """``ewc_lambda``: the EWC penalty's scale over the largest Fisher entry (default
        ``config.map_ewc_lambda``); ``use_ridge`` off: Adam steps from the previous map only (an ablation);
        ``within_noise``: keep :func:`nearest_within_noise` of the checked maps, not the best (an eval variant);
        ``own_checks``: a phase with at least ``MIN_OWN_CHECKING`` checking links of its own is checked on those
        alone, the links its map ranks (its notes are compared with every note by it,
        :class:`~vaultlearn.index.learned.PhaseReading`); off: on every learned phase's (an eval variant)."""
        self.map = LinkMap(dim)
        self.config = config
        self.use_fisher = use_fisher
        self.use_ridge = use_ridge
        self.within_noise = within_noise
        self.own_checks = own_checks
        self.ewc_lambda = config.map_ewc_lambda if ewc_lambda is None else ewc_lambda
        self.ewc = OnlineEWC(gamma=config.fisher_gamma)
        self.phase_fisher: dict[str, torch.Tensor] = {}
        self.phase_maps: dict[str, torch.Tensor] = {}  # the map each learned phase's notes are read by
        self.learned_phases: list[str] = []
        self.generation = 0

    def apply_by_phase(self, embeddings: np.ndarray, phases: Sequence[str | None]) -> np.ndarray:
        """The learned vectors of notes with base ``embeddings`` and ``phases`` (one per row): each learned
        phase's notes mapped by its map, the others as they are."""
        return map_by_phase(embeddings, phases, {p: w.numpy() for p, w in self.phase_maps.items()})

    def check(self, task: LinkTask, weight: torch.Tensor | None = None) -> float:
        """Filtered MRR of the checking links' targets among all known notes under ``weight`` (default: the
        map)."""
        return float(self._reciprocal(task, weight).mean())

    def _reciprocal(self, task: LinkTask, weight: torch.Tensor | None = None) -> np.ndarray:
        """Reciprocal filtered rank of each checking link's target under ``weight`` (default: the map)."""
        with torch.no_grad():
            emb = map_embeddings(torch.as_tensor(task.embeddings), self.map.weight if weight is None else weight)
        own = self.own_checks and task.own_checking >= MIN_OWN_CHECKING
        links = task.own_checked if own else task.checked
        return 1.0 / rank_of_targets(emb.numpy(), links, np.arange(len(emb)), task.targets)

    def learn(self, phase: str, task: LinkTask, seed: int) -> LinkMapReport:
        """Fit the map to ``task``; keep the best checked map (or the previous one)."""
        began = time.perf_counter()
        reading = self._reading_map()
        self.learned_phases.append(phase)
        own = len(task.own_links)
        if not own or not task.checking:  # nothing of its own to fit, or nothing to check on
            self.phase_fisher[phase] = torch.zeros(self.map.dim, self.map.dim)
            self.phase_maps[phase] = reading
            return LinkMapReport(phase, 0, "previous", len(task.fitting), own, len(task.checking), False, None,
                                 None, None, None, time.perf_counter() - began)
        base = torch.as_tensor(task.embeddings)
        pairs = np.asarray(task.fitting, dtype=np.int64)
        weights = np.ones(len(pairs), np.float32) if task.weights is None else task.weights
        link_weights = torch.as_tensor(weights, dtype=torch.float32)
        batches, negatives = self._plan(task, seed)
        previous = self.map.weight.detach().clone()
        best = _Kept(self._reciprocal(task), previous, 0, "previous")
        before, seen = best.score, [best] if self.within_noise else None
        probe = (batches[0], negatives[0])
        with torch.no_grad():
            loss_start = float(self._loss(base, previous, pairs, *probe, link_weights))
        starts = [("previous", previous)]
        ridge = self._best_ridge(task, pairs, np.asarray(weights), seen) if self.use_ridge else None
        if ridge is not None and ridge.score > best.score:
            best = ridge
            starts.append(("ridge", ridge.weight))
        for origin, initial in starts:
            best = self._adam_path(phase, task, base, pairs, link_weights, batches, negatives, origin, initial,
                                   best, seen)
        if self.within_noise:
            best = nearest_within_noise(seen, previous)
        require_finite(best.weight, f"link map after phase {phase!r}")
        moved = own >= self.config.map_min_phase_links
        self.phase_maps[phase] = best.weight.detach().clone() if moved else reading
        with torch.no_grad():
            self.map.weight.copy_(best.weight)
            loss_end = float(self._loss(base, best.weight, pairs, *probe, link_weights))
        self._consolidate(phase, task, base, pairs, batches, negatives, seed)
        return LinkMapReport(phase, best.step, best.origin, len(pairs), own, len(task.checking), moved, before,
                             best.score, loss_start, loss_end, time.perf_counter() - began)

    def _reading_map(self) -> torch.Tensor:
        """The map the last learned phase's notes are read by (the identity before any phase)."""
        if not self.learned_phases:
            return torch.eye(self.map.dim)
        return self.phase_maps[self.learned_phases[-1]].clone()

    def _best_ridge(self, task: LinkTask, pairs: np.ndarray, link_weights: np.ndarray,
                    seen: list[_Kept] | None) -> _Kept:
        """The best checked of the closed-form maps (:func:`ridge_maps`; Fisher-held ones with ``use_fisher``);
        each checked map is added to ``seen`` (when a list)."""
        importance = self.ewc.importance.get("weight") if self.use_fisher else None
        best = _Kept(np.zeros(0), self.map.weight, 0, "ridge")
        for candidate in ridge_maps(task.embeddings, pairs, link_weights, self.map.weight, importance):
            require_finite(candidate, "a closed-form link map")
            best = _checked(_Kept(self._reciprocal(task, candidate), candidate, 0, "ridge"), best, seen)
        return best

    def _adam_path(self, phase, task, base, pairs, link_weights, batches, negatives, origin, initial,
                   best, seen) -> _Kept:
        """Adam steps from ``initial`` (the ``origin`` start), checked every ``CHECK_EVERY``; the best of ``best``
        and every check. Each checked map is added to ``seen`` (when a list)."""
        weight = torch.nn.Parameter(initial.detach().clone())
        anchor = {"weight": weight}
        optimizer = torch.optim.Adam([weight], lr=LEARNING_RATE)
        for step, (batch, negs) in enumerate(zip(batches, negatives), 1):
            loss = self._loss(base, weight, pairs, batch, negs, link_weights)
            require_finite(loss, f"link-map training loss of phase {phase!r} at step {step}")
            if self.use_fisher:
                loss = loss + self.ewc.penalty(anchor, 1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step % CHECK_EVERY == 0:
                reciprocal = self._reciprocal(task, weight.detach())
                if seen is not None or reciprocal.mean() > best.score:  # a copy only of a map that is kept
                    best = _checked(_Kept(reciprocal, weight.detach().clone(), step, origin), best, seen)
        return best

    def _plan(self, task: LinkTask, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        data = PhaseData(texts=[""] * len(task.embeddings), phase_notes=np.zeros(0, np.int64), pairs=task.fitting,
                         background=np.zeros(0, np.int64), adjacency=task.adjacency)
        config = replace(self.config, learn_steps=MAX_STEPS, seed=seed)
        return plan_phase(data, self.map.apply(task.embeddings), config, len(self.phase_fisher))

    @staticmethod
    def _loss(base, weight, pairs, batch, negs, link_weights) -> torch.Tensor:
        return batch_loss(lambda notes: map_embeddings(base[notes], weight), pairs, batch, negs, link_weights)

    def _consolidate(self, phase, task, base, pairs, batches, negatives, seed) -> None:
        """Per-example Fisher of a sample of the phase's own fitting links under the kept map; fold it into online
        EWC."""
        rng = np.random.default_rng([seed, len(self.phase_fisher), 1])
        sample = rng.permutation(task.own_links)[: self.config.fisher_samples]
        weight = self.map.weight
        current = self.map.apply(task.embeddings)

        def embed(idx):
            return map_embeddings(base[idx], weight)

        weight.requires_grad_(True)
        try:
            examples = (example_loss(embed, pairs, int(i), batches, negatives, current, rng) for i in sample)
            fisher, _ = per_example_fisher(examples, [weight])
        finally:
            weight.requires_grad_(False)
        self.phase_fisher[phase] = fisher[0]
        if self.use_fisher:
            importance = self.ewc_lambda * unit_max(fisher[0])
            self.ewc.consolidate({"weight": importance}, {"weight": weight})

    # ----- state -----
    def save(self, state_dir: Path) -> None:
        """Write the map and the learner's tensors under new names, then swap the manifest (the commit point)."""
        state_dir = Path(state_dir)
        generation = self.generation + 1
        map_folder, learner_file = f"map-{generation:06d}", f"learner-{generation:06d}.safetensors"
        maps_file = f"phase-maps-{generation:06d}.safetensors"
        self.map.save(state_dir / map_folder)
        atomic_write_bytes(state_dir / maps_file, save_safetensors(
            {p: w.detach().cpu().contiguous() for p, w in self.phase_maps.items()}))
        tensors = {f"ewc.{k}": v for k, v in self.ewc.state().items()}
        tensors.update({f"phase.{i}.{MAP_FISHER}": f for i, f in enumerate(self.phase_fisher.values())})
        atomic_write_bytes(state_dir / learner_file,
                           save_safetensors({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))
        manifest = {"format": STATE_FORMAT, "kind": LINKMAP_KIND, "generation": generation, "map": map_folder,
                    "phase_maps": maps_file, "learner": learner_file, "learned_phases": self.learned_phases,
                    "phase_fisher": list(self.phase_fisher), "fisher_groups": [MAP_FISHER],
                    "use_fisher": self.use_fisher, "use_ridge": self.use_ridge, "own_checks": self.own_checks,
                    "ewc_lambda": self.ewc_lambda}
        atomic_write_text(state_dir / MANIFEST, json.dumps(manifest, indent=1))
        self.generation = generation
        for old in [*state_dir.glob("learner-*.safetensors"), *state_dir.glob("phase-maps-*.safetensors")]:
            if old.name not in (learner_file, maps_file):
                old.unlink(missing_ok=True)
        for old in state_dir.glob("map-*"):
            if old.name != map_folder:
                shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, state_dir: Path, dim: int, config: Config) -> "LinkMapLearner":
        """The learner saved in ``state_dir``; a fresh one (identity map) if nothing is saved there."""
        manifest = read_manifest(state_dir)
        if manifest is None:
            return cls(dim, config)
        if manifest.get("kind") != LINKMAP_KIND:
            raise ValueError(f"{state_dir} holds a learned {manifest.get('kind', 'memory')} state, not a link map")
        learner = cls(dim, config, use_fisher=manifest["use_fisher"], use_ridge=manifest.get("use_ridge", True),
                      own_checks=manifest.get("own_checks", True), ewc_lambda=manifest["ewc_lambda"])
        learner.map = LinkMap.load(Path(state_dir) / manifest["map"])
        tensors = load_safetensors((Path(state_dir) / manifest["learner"]).read_bytes())
        learner.ewc.load_state({k[4:]: v for k, v in tensors.items() if k.startswith("ewc.")})
        learner.phase_fisher = {p: groups[MAP_FISHER] for p, groups in phase_fishers(manifest, tensors).items()}
        learner.learned_phases = list(manifest["learned_phases"])
        learner.phase_maps = {p: torch.tensor(w) for p, w in committed_phase_maps(state_dir).items()}
        learner.generation = manifest["generation"]
        return learner


def link_task(embeddings: np.ndarray, links_by_phase: Sequence[Sequence[tuple[int, int]]], paths: Sequence[str],
              adjacency: list[set[int]], config: Config, use_twp: bool = True) -> LinkTask:
    """The task of learning the last of ``links_by_phase`` (every learned phase's training links in order, the
    earlier ones replayed): each link fitting or checking by :func:`is_checking_link` of its notes' ``paths``;
    TWP degree weights (``config.edge_weighting``) unless ``use_twp`` is off."""
    fitting, checking, own, own_checking = [], [], 0, 0
    for k, links in enumerate(links_by_phase):
        for a, b in links:
            checks = is_checking_link(config.seed, paths[a], paths[b])
            (checking if checks else fitting).append((a, b))
            if k == len(links_by_phase) - 1:
                own_checking += checks
                own += not checks
    mode = config.edge_weighting if use_twp else "none"
    weights = edge_weights(fitting, adjacency, mode, config.seed) if fitting else None
    return LinkTask(embeddings, fitting, checking, adjacency, weights, own, own_checking)


def _at_most(links: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """``links``, or a fixed sample of ``size`` of them in their order."""
    if len(links) <= size:
        return list(links)
    chosen = np.random.default_rng(0).choice(len(links), size, replace=False)
    return [links[i] for i in np.sort(chosen)]


def _checked(kept: _Kept, best: _Kept, seen: list[_Kept] | None) -> _Kept:
    """The better of ``kept`` and ``best``; ``kept`` is added to ``seen`` (when a list)."""
    if seen is not None:
        seen.append(kept)
    return kept if kept.score > best.score else best


def nearest_within_noise(checked: Sequence[_Kept], previous: torch.Tensor) -> _Kept:
    """Of the checked maps whose MRR is below the best one's by at most one standard error of the paired
    difference (per checking link), the one nearest ``previous`` (Frobenius norm): the one-standard-error rule,
    so that the best of many checks on few links does not move the map for what is likely noise."""
    best = max(checked, key=lambda kept: kept.score)

    def within(kept: _Kept) -> bool:
        diff = best.reciprocal - kept.reciprocal
        error = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else 0.0
        return diff.mean() <= error

    return min((kept for kept in checked if within(kept)),
               key=lambda kept: float(torch.linalg.matrix_norm(kept.weight - previous)))
