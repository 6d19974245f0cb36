"""Suggestion quality on a vault: Recall@10 and MRR of hidden links, plain cosine vs vaultlearn's rankers.

Per seed: 100 (``--sample``) source notes with two or more links, one link hidden from each (all hidden from
the graph at once); all notes are candidates for the source except itself and the notes it still links to.
Two protocols:

- ``standard``: the hidden link's words stay in the source's text, as plain words (a writer mentions a note
  without linking it), and the source keeps its stored embedding;
- ``no-trace``: every trace of the link (the link, its alias text, the target's title and aliases as words)
  is removed from the source (vaultlearn.eval.traces) and the source is re-embedded (needs the model; the
  embeddings are cached in the work folder).

Rankers, all fitted on other sources' links of the same vault with the evaluated links hidden: plain cosine;
the blend shipped before the reranker (cosine + g·Adamic–Adar/max + m·mention, grid-fitted); the reranker
(vaultlearn.index.fit); and the reranker refitted without each feature group (ablation).

``--learn``: per seed, also the same rankers after learning. A link map is learned phase after phase as
`vaultlearn learn` does (:meth:`Learning.map_candidate`: replay, validation, a declined phase keeps the map it
had) on every link of the vault but the seed's hidden ones, and each source (a no-trace one re-embedded too) is
compared with every note by its phase's map (the rankers' ``learned`` feature); the rankers are fitted again,
as `learn` refits the vault's reranker (hiding only links the map never fits). Plain cosine stays the base
model's; "learned cosine" ranks by the learned similarity alone.

    python bench/bench_quality.py [VAULT …] [--hub-notes N] [--sample 100] [--seeds 1 2 3] [--workdir DIR]
                                  [--learn] [--json F]

A vault folder is copied into ``--workdir`` (or a temporary folder) and indexed there; a kept work folder
is reused by the next run. ``--hub-notes N`` adds a synthetic hub-structured vault of N templated notes
(bench/synth_vault.py ``write_hub_vault``, seed 0).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_vault import write_hub_vault  # noqa: E402

from vaultlearn.eval.traces import remove_traces
from vaultlearn.index.features import BASE_FEATURES, GROUPS, PairFeatures
from vaultlearn.index.fit import COSINE, add_learned, fit_ranker, quality, target_ranks
from vaultlearn.index.holdout import hidden_cases, sample_hidden, unseen_by_map
from vaultlearn.service import VaultService
from vaultlearn.vault.read import read_note_text

BLEND_GRAPH = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)
BLEND_MENTION = (0.0, 0.05, 0.1, 0.2, 0.4)


def blend_scores(pairs: PairFeatures, graph: float, mention: float) -> np.ndarray:
    """cosine + graph·AA/max AA of the query's candidates + mention·mentioned (the pre-reranker blend)."""
    aa = np.expm1(pairs.column("adamic_adar"))
    top = np.zeros(pairs.rows.max() + 1 if len(pairs.rows) else 0)
    np.maximum.at(top, pairs.rows, aa)
    scaled = np.divide(aa, top[pairs.rows], out=np.zeros_like(aa), where=top[pairs.rows] > 0)
    return pairs.column("cosine") + graph * scaled + mention * pairs.column("mentioned")


def fit_blend(pairs: PairFeatures, targets: np.ndarray) -> tuple[float, float]:
    """The grid weights with the best MRR on the fit links (plain cosine unless one beats it by 0.01)."""
    best, best_mrr = (0.0, 0.0), quality(target_ranks(blend_scores(pairs, 0, 0), pairs, targets))["mrr"] + 0.01
    for g in BLEND_GRAPH:
        for m in BLEND_MENTION:
            mrr = quality(target_ranks(blend_scores(pairs, g, m), pairs, targets))["mrr"]
            if mrr > best_mrr + 1e-9:
                best, best_mrr = (g, m), mrr
    return best


def no_trace_vectors(service: VaultService, ctx, hidden: np.ndarray, cache: Path) -> np.ndarray:
    """Embeddings of each source re-embedded without the hidden link's traces (cached by note paths)."""
    stored = dict(np.load(cache, allow_pickle=False)) if cache.exists() else {}
    keys = [f"{ctx.notes[a].path}\t{ctx.notes[b].path}" for a, b in hidden]
    todo = [(key, a, b) for key, (a, b) in zip(keys, hidden) if key not in stored]
    if todo:
        texts = []
        for _, a, b in todo:
            names = [ctx.notes[b].path, *ctx.notes[b].aliases]
            texts.append(read_note_text(service.vault, ctx.notes[a].path, service.config,
                                        lambda markdown: remove_traces(markdown, names)))
        for (key, _, _), vector in zip(todo, service.encoder().encode(texts)):
            stored[key] = np.asarray(vector, dtype=np.float32)
        np.savez(cache, **stored)
    return np.stack([stored[key] for key in keys])


def learned_context(service: VaultService, ctx, hidden: np.ndarray):
    """``ctx`` with the learned similarity of a link map learned on all links but ``hidden`` (positions), phase
    by phase through `learn`'s validation (a declined phase keeps the map it had), and the phases it kept."""
    from vaultlearn.index.learned import PhaseReading
    from vaultlearn.model.linkfit import LinkMapLearner

    if service.learned_kind() != "linkmap" or service.indexer.phase_maps() is not None:
        raise SystemExit(f"{service.vault}: the work copy holds learned state; --learn needs a fresh --workdir")
    split = service.learning.split({(int(ctx.ids[a]), int(ctx.ids[b])) for a, b in hidden})
    order, kept = service.phases(), []
    learner = LinkMapLearner(ctx.vectors.shape[1], service.config)
    for name in order:
        before = copy.deepcopy(learner)
        _, check = service.learning.map_candidate(learner, name, order, split)
        if check["commit"]:
            kept.append(name)
        else:
            learner = before
    maps = {phase: weight.numpy() for phase, weight in learner.phase_maps.items()}
    return replace(ctx, learned=PhaseReading.of(ctx.vectors, [note.phase for note in ctx.notes], maps)), kept


def run_seed(service: VaultService, ctx, seed: int, sample: int, workdir: Path) -> dict:
    """Every ranker's Recall@10 and MRR on one seed's hidden links, under both protocols (with ``ctx``'s learned
    similarity, when it has one, the reranker's second stage is fitted and the no-trace sources are read by it
    too)."""
    pool = service.config.candidate_pool
    hidden = sample_hidden(ctx, sample, seed)
    fit_ctx = ctx.with_graph(ctx.graph.without(hidden))
    skip = set(hidden[:, 0].tolist())
    fit_pairs, fit_targets = service.ranking.fit_cases(fit_ctx, skip, seed + 1000, keep_seed=seed)
    ranker, report = fit_ranker(fit_pairs, fit_targets, BASE_FEATURES, seed=seed)
    ablations = {group: fit_ranker(fit_pairs, fit_targets, [f for f in BASE_FEATURES if f not in names], seed)[0]
                 for group, names in GROUPS.items() if group != "text"}
    if ctx.learned is not None:  # the second stage, as Ranking.fit: the learned weight on links the map never fitted
        ablations["learned"] = ranker
        unseen = service.ranking.fit_cases(fit_ctx, skip, seed + 2000, unseen_by_map(fit_ctx, service.config))
        ranker, report["learned"] = add_learned(ranker, *unseen, seed=seed)
    g, m = fit_blend(fit_pairs, fit_targets)
    out = {"fit": report, "blend": [g, m], "hidden": len(hidden)}
    for protocol in ("standard", "no-trace"):
        keep_words = np.full(len(hidden), protocol == "standard")
        vectors = None if protocol == "standard" else no_trace_vectors(
            service, ctx, hidden, workdir / f"notrace-vectors-{seed}-{sample}.npz")
        pairs, targets = hidden_cases(ctx, hidden, service.hidden_texts(ctx, hidden, keep_words), pool, vectors)
        scores = {"plain cosine": COSINE.scores(pairs), "learned cosine": pairs.column("learned"),
                  "fitted blend (before)": blend_scores(pairs, g, m),
                  "reranker": ranker.scores(pairs)}
        scores.update({f"reranker without {group}": model.scores(pairs) for group, model in ablations.items()})
        out[protocol] = {name: quality(target_ranks(s, pairs, targets)) for name, s in scores.items()}
    return out


def summarise(runs: list[dict]) -> list[str]:
    lines = []
    for protocol in ("standard", "no-trace"):
        lines.append(f"  {protocol}: Recall@10 / MRR, mean ± sd over {len(runs)} seeds")
        for name in runs[0][protocol]:
            r = np.array([run[protocol][name]["recall@10"] for run in runs])
            m = np.array([run[protocol][name]["mrr"] for run in runs])
            lines.append(f"    {name:<34} {r.mean():.3f} ± {r.std(ddof=1) if len(r) > 1 else 0:.3f}"
                         f"   {m.mean():.3f} ± {m.std(ddof=1) if len(m) > 1 else 0:.3f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vaults", type=Path, nargs="*")
    parser.add_argument("--hub-notes", type=int, default=0, help="add a synthetic hub-structured vault of N notes")
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the indexed copies here and reuse them on the next run (default: a temp folder)")
    parser.add_argument("--learn", action="store_true", help="also after learning a link map (hidden links unseen)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        vaults = list(args.vaults)
        if args.hub_notes:
            hub = (args.workdir or Path(tmp)) / f"hub-{args.hub_notes}" / "vault"  # indexed in place
            if not hub.exists():
                write_hub_vault(hub, args.hub_notes)
            vaults.append(hub)
        if not vaults:
            parser.error("give a vault or --hub-notes")
        for vault in vaults:
            label = vault.resolve().parent.name if vault.name == "vault" else vault.name
            workdir = (args.workdir or Path(tmp)) / label
            copy = workdir / "vault"
            if not copy.exists():
                shutil.copytree(vault, copy, ignore=shutil.ignore_patterns(".vaultlearn"))
            service = VaultService(copy)
            service.index()
            ctx = service.rank_context()
            runs = [run_seed(service, ctx, seed, args.sample, workdir) for seed in args.seeds]
            results[str(vault)] = runs
            print(f"{vault}: {len(ctx.ids)} notes, {len(ctx.graph.links())} links; {runs[0]['hidden']} hidden "
                  f"links per seed; reranker fitted on {runs[0]['fit']['cases']} other sources' links "
                  f"(kept: {', '.join(run['fit']['model'] for run in runs)})")
            print("\n".join(summarise(runs)), flush=True)
            if args.learn:
                learned = []
                for seed in args.seeds:
                    learned_ctx, kept = learned_context(service, ctx, sample_hidden(ctx, args.sample, seed))
                    learned.append({**run_seed(service, learned_ctx, seed, args.sample, workdir),
                                    "learned_phases": kept})
                results[f"{vault} (learned)"] = learned
                print(f"  after learning (phases kept per seed: {[len(run['learned_phases']) for run in learned]} "
                      f"of {len(service.phases())})")
                print("\n".join(summarise(learned)), flush=True)
            service.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
