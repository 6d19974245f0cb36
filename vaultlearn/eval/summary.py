"""Several seeds' runs as mean ± sd per strategy and figure, the gain against the best reference, and the table."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from vaultlearn.eval.references import REFERENCES


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
