"""Suggestion quality on a real vault: Recall@10 of a hidden link, plain cosine vs vaultlearn's ranking.

Protocol of ../shared/research/baselines.md: a seeded sample of 100 source notes with at least two resolved
links; in each, one link is hidden (its words stay in the text); all notes are ranked for the source,
excluding itself and the notes it still links to. Baseline in the same run: plain cosine of the same
embeddings. vaultlearn's rank weights are fitted on other links of the vault, never the evaluated ones.

    python bench/bench_quality.py VAULT [--sample 100] [--seed 1]      (indexes a temporary copy of VAULT)
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
from pathlib import Path

from vaultlearn.index.suggest import RankWeights, fit_weights, mean_reciprocal_rank, recall_at, sample_links
from vaultlearn.service import VaultService


def pick_eval_links(service: VaultService, sample: int, seed: int) -> list[tuple[int, int]]:
    """One hidden link for each of ``sample`` seeded source notes that have at least two links."""
    outgoing: dict[int, list[int]] = {}
    for a, b, _ in service.store.edges():
        if b not in outgoing.setdefault(a, []):
            outgoing[a].append(b)
    rng = random.Random(seed)
    sources = sorted(a for a, targets in outgoing.items() if len(targets) >= 2)
    return [(a, rng.choice(sorted(outgoing[a]))) for a in rng.sample(sources, min(sample, len(sources)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vault", type=Path)
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the indexed copy here and reuse it on the next run (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = (args.workdir or Path(tmp)) / "vault"
        if not copy.exists():
            shutil.copytree(args.vault, copy, ignore=shutil.ignore_patterns(".vaultlearn"))
        service = VaultService(copy)
        service.index(progress=True)
        eval_links = pick_eval_links(service, args.sample, args.seed)
        eval_sources = {a for a, _ in eval_links}
        fit_links = [l for l in sample_links(sorted({(a, b) for a, b, _ in service.store.edges()}), 10**9, 0)
                     if l[0] not in eval_sources][:600]
        fit_cases = service.held_out_cases(fit_links)
        fitted, _ = fit_weights(fit_cases)
        graph_only, _ = fit_weights(fit_cases, mention_grid=(0.0,))
        cases = service.held_out_cases(eval_links)
        rows = [("plain cosine (baseline)", RankWeights()),
                ("Adamic-Adar first, cosine breaks ties", RankWeights(graph=1000.0)),
                (f"fitted similarity+graph (g={graph_only.graph})", graph_only),
                (f"fitted similarity+graph+mention (g={fitted.graph}, m={fitted.mention})", fitted)]
        print(f"{args.vault}: {len(cases)} held-out links from {len(eval_sources)} notes; "
              f"weights fitted on {len(fit_cases)} other links")
        base = recall_at(cases, RankWeights())
        for name, weights in rows:
            value = recall_at(cases, weights)
            print(f"  {name:<62} Recall@10 {value:.3f}  ({value / base:4.2f}x baseline)"
                  f"  MRR {mean_reciprocal_rank(cases, weights):.3f}")


if __name__ == "__main__":
    main()
