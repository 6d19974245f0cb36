"""Continual-learning strategies run through the protocol on the same data, seeds, batches and step budget.

frozen: the base model. full: all weights, AdamW. lora: LoRA adapters (peft), AdamW. ewc: full + online EWC.
vaultlearn: the link map, what `vaultlearn learn` runs (model/linkfit.py: ridge starts, replay, a checked
stopping point on the phase's own checking links, online EWC on the phase's own Fisher, TWP link weights; each
phase's links ranked with its map applied to every note, as `learn` compares a phase's notes); ablations
vaultlearn-nofisher, vaultlearn-notwp, vaultlearn-noridge (Adam from the previous map only); variants
vaultlearn-1se (of the checked maps within one standard error of the best, the one nearest the previous map),
vaultlearn-gated (`learn`'s validation gate too: a seeded share of each phase's training links held out, the
phase kept only if its map beats its reading before on them), vaultlearn-notes (each learned phase's notes read
by its own map and compared with the others' learned vectors, checked on every phase's checking links: the
default until December 2026) and vaultlearn-global (every note read by the latest map).
sparse: the token-level memory with TF-IDF top-t slots, plain SGD. memory: sparse + EWC on values (Fisher + TWP
importance) + Fisher-stable output dimensions (``learner = "memory"``). Ablations: memory-nofisher (no EWC and
no stable dimensions, TWP edge weights kept), memory-notwp (no topology importance, uniform link weights),
memory-noidf (TF-only slot ranking).
References (no continual constraint, the bar): propagate and adapter (references.py), joint (full finetuning on
every phase's training links at once, before the first phase is scored, with the whole run's step budget).
Several seeds: :func:`run_seeds` gives mean ± sd of every figure and each strategy's gain against the best
reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from vaultlearn.config import Config
from vaultlearn.eval.corpus import without_traces
from vaultlearn.eval.learners import DENSE_LR, Dense, Frozen, Joint, LinkMapStrategy, Sparse, phase_data
from vaultlearn.eval.notememory import NoteMemory
from vaultlearn.eval.protocol import EvalCorpus, drift, score_phases, split_links, summarize
from vaultlearn.eval.references import REFERENCES, Adapter, Propagate
from vaultlearn.eval.summary import summarize_runs
from vaultlearn.model.encoder import NoteEncoder
from vaultlearn.model.hidden import HiddenCache

SPARSE_OPTIONS = {
    "sparse": {"use_idf": True, "use_fisher": False, "use_twp": False},
    "memory": {"use_idf": True, "use_fisher": True, "use_twp": True},
    "memory-nofisher": {"use_idf": True, "use_fisher": False, "use_twp": True},
    "memory-notwp": {"use_idf": True, "use_fisher": True, "use_twp": False},
    "memory-noidf": {"use_idf": False, "use_fisher": True, "use_twp": True},
}
NOTE_MEMORY_OPTIONS = {  # experimental design (notememory.py): train the phase's values, replay earlier links
    "notemem-init": {"train": False, "replay": False},
    "notemem": {"train": True, "replay": False},
    "notemem-replay": {"train": True, "replay": True},
}
LINK_MAP_OPTIONS = {  # the link map (model/linkfit.py), the default learner, its ablations and variants
    "vaultlearn": {},
    "vaultlearn-nofisher": {"use_fisher": False},
    "vaultlearn-notwp": {"use_twp": False},
    "vaultlearn-noridge": {"use_ridge": False},
    "vaultlearn-1se": {"within_noise": True},
    "vaultlearn-gated": {"gated": True},
    "vaultlearn-notes": {"reading": "notes", "own_checks": False},
    "vaultlearn-global": {"reading": "global", "own_checks": False},
}
STRATEGIES = ("frozen", *DENSE_LR, *SPARSE_OPTIONS, *LINK_MAP_OPTIONS, *REFERENCES, *NOTE_MEMORY_OPTIONS)


def run_seeds(corpus: EvalCorpus, strategies: Sequence[str], config: Config, *, seeds: Sequence[int],
              no_trace: bool = False, **options) -> dict:
    """:func:`run_eval` once per seed (one shared block-L cache); per strategy the mean and sd of every figure,
    and the gain against the best reference of the run (the reference with the highest mean gain)."""
    cache = options.pop("cache", None)
    runs = []
    for seed in seeds:
        run = run_eval(corpus, strategies, config, seed=seed, no_trace=no_trace, cache=cache, **options)
        cache = run.pop("cache")
        runs.append(run)
    return summarize_runs(runs, strategies, no_trace)


def run_eval(
    corpus: EvalCorpus,
    strategies: Sequence[str],
    config: Config,
    *,
    steps: int,
    seed: int,
    device: str | None,
    max_phases: int | None,
    progress: Callable[[str], None] | None = None,
    cache: HiddenCache | None = None,
    no_trace: bool = False,
) -> dict:
    """Run each strategy over the phases; R/MRR matrices, frozen scores, gain, forgetting, drift, seconds.

    ``cache``: block-L note states already computed by an encoder built from the same config (else computed;
    returned under ``"cache"`` for the next seed). ``no_trace``: the held-out links' sources lose every trace
    of them (:func:`without_traces`)."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(STRATEGIES)}")
    config = replace(config, learn_steps=steps, seed=seed)
    n_phases = len(corpus.phases) if max_phases is None else min(max_phases, len(corpus.phases))
    phases = corpus.phases[:n_phases]
    split = split_links(corpus, seed)
    if no_trace:
        corpus = without_traces(corpus, split)
    universe = corpus.known_at(n_phases - 1)
    say = progress or (lambda message: None)
    torch.manual_seed(seed)

    cache = cache or HiddenCache(NoteEncoder(config, device))
    encoder = cache.encoder
    say(f"embedding {len(universe)} notes with the base model")
    frozen = np.zeros((len(corpus.texts), encoder.dim), dtype=np.float32)
    frozen[universe] = encoder.encode_hidden(cache.states([corpus.texts[i] for i in universe], show_progress=True))
    frozen_R, frozen_M = [], []
    for k in range(n_phases):
        r, m = score_phases(corpus, split, frozen, k)
        frozen_R.append(r[k])
        frozen_M.append(m[k])
    n_heldout = [len(split.heldout[k]) for k in range(n_phases)]

    results = {}
    for name in strategies:
        say(f"strategy {name}")
        started = time.perf_counter()
        strategy = _make(name, encoder, config, cache, universe, corpus, device, frozen, split, n_phases)
        run = _run_phases(name, strategy, corpus, split, frozen, phases, config, frozen_R, say)
        results[name] = {
            "R": run.pop("R"),
            "MRR": run.pop("MRR"),
            "frozen_R": frozen_R,
            "frozen_MRR": frozen_M,
            **run,
            "seconds": time.perf_counter() - started,
        }
    return {"phases": list(phases), "heldout": n_heldout, "seed": seed, "strategies": results, "cache": cache}


def _run_phases(name, strategy, corpus, split, frozen, phases, config, frozen_R, say) -> dict:
    """One strategy through every phase: R/MRR matrices, the summary figures and drift."""
    emb = frozen.copy()
    R, MRR, cosines, changed, reembedded = [], [], [], [], []
    for k, phase in enumerate(phases):
        data, known = phase_data(corpus, split, k, twp=_uses_twp(name), config=config)
        strategy.refresh(known, emb)
        before = emb.copy()
        count = strategy.learn(phase, k, data, known, emb)
        maps = strategy.source_maps() if isinstance(strategy, LinkMapStrategy) else None
        r, m = score_phases(corpus, split, emb if maps is None else frozen, k, maps)
        R.append(r)
        MRR.append(m)
        cos, top = drift(before, emb, corpus.known_at(k - 1))
        cosines.append(cos)
        changed.append(top)
        reembedded.append(count / len(known))
        scored = f"R@10 {r[k]:.3f} (frozen {frozen_R[k]:.3f})" if split.heldout[k] else "no held-out links"
        say(f"  {name} phase {k + 1}/{len(phases)} {phase}: {scored}")
    n_heldout = [len(split.heldout[k]) for k in range(len(phases))]
    return {
        "R": R,
        "MRR": MRR,
        **summarize(R, frozen_R, n_heldout),
        "drift": {
            "cosine": float(np.mean(cosines)),
            "top10_changed": float(np.mean(changed)),
            "reembedded": float(np.mean(reembedded)),
        },
    }


def _uses_twp(name: str) -> bool:
    return {**SPARSE_OPTIONS, **LINK_MAP_OPTIONS}.get(name, {}).get("use_twp", True)


def _make(name, encoder, config, cache, universe, corpus, device, frozen, split, n_phases):
    if name == "frozen":
        return Frozen()
    if name in SPARSE_OPTIONS:
        return Sparse(encoder, config, cache, universe, corpus.texts, SPARSE_OPTIONS[name])
    if name == "propagate":
        return Propagate(frozen)
    if name == "adapter":
        return Adapter(frozen, config)
    if name in LINK_MAP_OPTIONS:
        return LinkMapStrategy(frozen, config, corpus.paths, corpus.phase_of, **LINK_MAP_OPTIONS[name])
    if name in NOTE_MEMORY_OPTIONS:
        return NoteMemory(frozen, config, **NOTE_MEMORY_OPTIONS[name])
    if name == "joint":
        return Joint(config, device, corpus, split, n_phases, universe)
    return Dense(name, config, device, corpus.texts, universe)
