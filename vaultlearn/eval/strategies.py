"""Continual-learning strategies run through the protocol on the same data, seeds, batches and step budget.

frozen: the base model. full: all weights, AdamW. lora: LoRA adapters (peft), AdamW. ewc: full + online EWC.
sparse: the memory with TF-IDF top-t slots, plain SGD. vaultlearn: sparse + EWC on values (Fisher + TWP
importance) + Fisher-stable output dimensions (the default). Ablations: vaultlearn-nofisher (no EWC and no
stable dimensions, TWP edge weights kept), vaultlearn-notwp (no topology importance, uniform link weights),
vaultlearn-noidf (TF-only slot ranking).
References (no continual constraint, the bar): propagate and adapter (references.py), joint (full finetuning on
every phase's training links at once, before the first phase is scored, with the whole run's step budget).
Several seeds: :func:`run_seeds` gives mean ± sd of every figure and each strategy's gain against the best
reference.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from vaultlearn.config import Config
from vaultlearn.errors import require_finite
from vaultlearn.eval.corpus import without_traces
from vaultlearn.eval.protocol import EvalCorpus, Split, drift, score_phases, split_links, summarize
from vaultlearn.eval.notememory import NoteMemory
from vaultlearn.eval.references import Adapter, Propagate
from vaultlearn.model.continual import ContinualLearner, HiddenCache, PhaseData, info_nce, plan_phase
from vaultlearn.model.encoder import NoteEncoder
from vaultlearn.model.fisher import OnlineEWC, per_example_fisher
from vaultlearn.model.linkfit import LinkMapLearner, LinkTask, is_checking_link
from vaultlearn.model.topology import edge_weights

SPARSE_OPTIONS = {
    "sparse": {"use_idf": True, "use_fisher": False, "use_twp": False},
    "vaultlearn": {"use_idf": True, "use_fisher": True, "use_twp": True},
    "vaultlearn-nofisher": {"use_idf": True, "use_fisher": False, "use_twp": True},
    "vaultlearn-notwp": {"use_idf": True, "use_fisher": True, "use_twp": False},
    "vaultlearn-noidf": {"use_idf": False, "use_fisher": True, "use_twp": True},
}
DENSE_LR = {"full": 2e-5, "ewc": 2e-5, "lora": 2e-4}
LORA_RANK = 16
REFERENCES = ("propagate", "adapter", "joint")
NOTE_MEMORY_OPTIONS = {  # experimental design (notememory.py): train the phase's values, replay earlier links
    "notemem-init": {"train": False, "replay": False},
    "notemem": {"train": True, "replay": False},
    "notemem-replay": {"train": True, "replay": True},
}
LINK_MAP_OPTIONS = {  # the link map (model/linkfit.py) and its ablations
    "linkmap": {"use_fisher": True, "use_twp": True},
    "linkmap-nofisher": {"use_fisher": False, "use_twp": True},
    "linkmap-notwp": {"use_fisher": True, "use_twp": False},
}
STRATEGIES = ("frozen", *DENSE_LR, *SPARSE_OPTIONS, *LINK_MAP_OPTIONS, *REFERENCES, *NOTE_MEMORY_OPTIONS)


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


class _Frozen:
    """The base model: learns nothing, re-embeds nothing."""

    def refresh(self, known: np.ndarray, emb: np.ndarray) -> None:
        """Embed notes that just became known with the current model (nothing to do here)."""

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        """Learn phase k, update ``emb`` rows in place; returns how many known notes were re-embedded."""
        return 0


class _Sparse(_Frozen):
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


class _LinkMap(_Frozen):
    """The link map on the frozen embeddings: every learned phase's links replayed, links split once and for all
    into fitting and checking links by their notes' paths."""

    def __init__(self, frozen: np.ndarray, config: Config, paths: Sequence[str], use_fisher: bool, use_twp: bool):
        self.frozen, self.config, self.paths, self.use_twp = frozen, config, paths, use_twp
        self.learner = LinkMapLearner(frozen.shape[1], config, use_fisher=use_fisher)
        self.learned: list[tuple[int, int]] = []  # global training links of the learned phases
        self.mapped = np.zeros(len(frozen), dtype=bool)

    def refresh(self, known: np.ndarray, emb: np.ndarray) -> None:
        """Notes that just became known are mapped (their links propagate from the next learned phase on)."""
        new = known[~self.mapped[known]]
        emb[new] = self.learner.map.apply(self.frozen[new])
        self.mapped[new] = True

    def learn(self, phase: str, k: int, data: PhaseData, known: np.ndarray, emb: np.ndarray) -> int:
        self.learned += [(int(known[a]), int(known[b])) for a, b in data.pairs]
        local = {int(g): i for i, g in enumerate(known)}
        fitting, checking = [], []
        for a, b in self.learned:
            checks = is_checking_link(self.config.seed, self.paths[a], self.paths[b])
            (checking if checks else fitting).append((local[a], local[b]))
        mode = self.config.edge_weighting if self.use_twp else "none"
        weights = edge_weights(fitting, data.adjacency, mode, self.config.seed) if fitting else None
        task = LinkTask(self.frozen[known], fitting, checking, data.adjacency, weights)
        self.learner.learn(phase, task, self.config.seed)
        before = emb[known].copy()
        emb[known] = self.learner.map.apply(self.frozen[known], data.adjacency)
        return int(np.any(emb[known] != before, axis=1).sum())


class _Dense(_Frozen):
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
        negs = negatives[negatives >= 0]
        notes, where = np.unique(np.concatenate([pairs[batch, 0], pairs[batch, 1], negs]), return_inverse=True)
        emb = self._embed_train([data.texts[i] for i in notes])
        n = len(batch)
        weights = torch.as_tensor(data.weights[batch], dtype=torch.float32, device=emb.device)
        return info_nce(emb[torch.as_tensor(where[:n])], emb[torch.as_tensor(where[n:])], weights)

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

        def example(i: int) -> Callable:
            def loss():
                a, p = pairs[i]
                b = int(rng.integers(len(batches)))
                others = [j for j in np.concatenate([pairs[batches[b], 1], negatives[b]]) if j >= 0 and j not in (a, p)]
                emb = self._embed_train([data.texts[a], data.texts[p]])
                anchor = emb[0:1]
                fixed = torch.as_tensor(current[others], device=emb.device)
                return info_nce(anchor, torch.cat([emb[1:2], fixed]), torch.ones(1, device=emb.device)), None

            return loss

        sample = rng.permutation(len(pairs))[: self.config.fisher_samples]
        fisher, _ = per_example_fisher((example(int(i)) for i in sample), [self.params[n] for n in names])
        top = max(float(f.max()) for f in fisher)
        importance = {n: self.config.ewc_lambda * f / top for n, f in zip(names, fisher)} if top > 0 else {}
        self.ewc.consolidate(importance, self.params)


class _Joint(_Dense):
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


def summarize_runs(runs: list[dict], strategies: Sequence[str], no_trace: bool) -> dict:
    """Several seeds' :func:`run_eval` results (same vault, phases and protocol) as :func:`run_seeds` reports them."""
    refs = [r for r in REFERENCES if r in strategies]
    mean_gain = {r: np.mean([_num(run["strategies"][r]["gain"]) for run in runs]) for r in refs}
    best = max(refs, key=lambda r: mean_gain[r]) if refs else None
    summary = {}
    for name in strategies:
        per_seed = [run["strategies"][name] for run in runs]
        figures = {key: [_figures(s)[key] for s in per_seed] for key in _figures(per_seed[0])}
        if best is not None:
            figures["gain_minus_best_reference"] = [
                _num(s["gain"]) - _num(run["strategies"][best]["gain"]) for s, run in zip(per_seed, runs)
            ]
        summary[name] = {key: _mean_sd(values) for key, values in figures.items()}
        with warnings.catch_warnings():  # a phase without held-out links is NaN in every seed
            warnings.simplefilter("ignore", RuntimeWarning)
            summary[name]["R"] = [np.nanmean([s["R"][k] for s in per_seed], axis=0).tolist()
                                  for k in range(len(runs[0]["phases"]))]
    return {
        "phases": runs[0]["phases"],
        "heldout": runs[0]["heldout"],
        "protocol": "no-trace" if no_trace else "standard",
        "seeds": [run["seed"] for run in runs],
        "best_reference": best,
        "summary": summary,
        "runs": runs,
    }


def _figures(s: dict) -> dict[str, float]:
    return {
        "R_last": float(np.nanmean(s["R"][-1])),
        "gain": _num(s["gain"]),
        "forgetting": _num(s["forgetting"]),
        "relative_forgetting": _num(s["relative_forgetting"]),
        "min_old_minus_frozen": _num(s["min_old_minus_frozen"]),
        "drift_cosine": s["drift"]["cosine"],
        "top10_changed": s["drift"]["top10_changed"],
        "reembedded": s["drift"]["reembedded"],
        "seconds": s["seconds"],
    }


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def _mean_sd(values: list[float]) -> dict:
    """Mean and sample sd over the seeds where the figure is defined (None where it never is)."""
    defined = [v for v in values if not np.isnan(v)]
    if not defined:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(np.mean(defined)), "sd": float(np.std(defined, ddof=1)) if len(defined) > 1 else 0.0,
            "n": len(defined)}


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
        emb = frozen.copy()
        R, MRR, cosines, changed, reembedded = [], [], [], [], []
        for k in range(n_phases):
            data, known = phase_data(corpus, split, k, twp=_uses_twp(name), config=config)
            strategy.refresh(known, emb)
            before = emb.copy()
            count = strategy.learn(phases[k], k, data, known, emb)
            r, m = score_phases(corpus, split, emb, k)
            R.append(r)
            MRR.append(m)
            cos, top = drift(before, emb, corpus.known_at(k - 1))
            cosines.append(cos)
            changed.append(top)
            reembedded.append(count / len(known))
            say(f"  {name} phase {k + 1}/{n_phases} {phases[k]}: R@10 {r[k]:.3f} (frozen {frozen_R[k]:.3f})")
        results[name] = {
            "R": R,
            "MRR": MRR,
            "frozen_R": frozen_R,
            "frozen_MRR": frozen_M,
            **summarize(R, frozen_R, n_heldout),
            "drift": {
                "cosine": float(np.mean(cosines)),
                "top10_changed": float(np.mean(changed)),
                "reembedded": float(np.mean(reembedded)),
            },
            "seconds": time.perf_counter() - started,
        }
    return {"phases": list(phases), "heldout": n_heldout, "seed": seed, "strategies": results, "cache": cache}


def _uses_twp(name: str) -> bool:
    return {**SPARSE_OPTIONS, **LINK_MAP_OPTIONS}.get(name, {}).get("use_twp", True)


def _make(name, encoder, config, cache, universe, corpus, device, frozen, split, n_phases):
    if name == "frozen":
        return _Frozen()
    if name in SPARSE_OPTIONS:
        return _Sparse(encoder, config, cache, universe, corpus.texts, SPARSE_OPTIONS[name])
    if name == "propagate":
        return Propagate(frozen)
    if name == "adapter":
        return Adapter(frozen, config)
    if name in LINK_MAP_OPTIONS:
        return _LinkMap(frozen, config, corpus.paths, **LINK_MAP_OPTIONS[name])
    if name in NOTE_MEMORY_OPTIONS:
        return NoteMemory(frozen, config, **NOTE_MEMORY_OPTIONS[name])
    if name == "joint":
        return _Joint(config, device, corpus, split, n_phases, universe)
    return _Dense(name, config, device, corpus.texts, universe)


def format_table(result: dict) -> str:
    """The strategies × figures table of :func:`run_seeds` (mean ± sd over the seeds when there are several),
    with the best reference's gain beside each strategy."""
    several = len(result["seeds"]) > 1
    width = 13 if several else 7
    columns = [("R_last", "R@10 last"), ("gain", "gain"), ("forgetting", "forget"), ("relative_forgetting", "rel.forg"),
               ("min_old_minus_frozen", "old-frz"), ("top10_changed", "top10Δ"), ("reembedded", "re-emb")]
    best = result["best_reference"]
    ref_gain = result["summary"][best]["gain"] if best else None
    head = f"{'strategy':20} " + " ".join(f"{label:>{width}}" for _, label in columns)
    head += f" {'best ref gain':>{width + 8}} {'gain-ref':>{width}} {'sec':>6}"
    lines = [
        f"phases: {', '.join(result['phases'])}  (held-out links: {result['heldout']}); protocol {result['protocol']};"
        f" seeds {result['seeds']}" + (f"; best reference: {best}" if best else ""),
        head,
    ]
    for name, s in result["summary"].items():
        cells = " ".join(_ms(s[key], width, several) for key, _ in columns)
        ref = f"{best + ' ' + _ms(ref_gain, 0, several):>{width + 8}}" if best else f"{'-':>{width + 8}}"
        vs = _ms(s["gain_minus_best_reference"], width, several) if best else f"{'-':>{width}}"
        lines.append(f"{name:20} {cells} {ref} {vs} {s['seconds']['mean']:6.0f}")
    return "\n".join(lines)


def _ms(figure: dict | None, width: int, several: bool) -> str:
    if figure is None or figure["mean"] is None:
        return f"{'n/a':>{width}}"
    text = f"{figure['mean']:.3f}±{figure['sd']:.3f}" if several else f"{figure['mean']:.3f}"
    return f"{text:>{width}}"
