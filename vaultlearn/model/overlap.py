"""Fisher overlap between learned phases (Kirkpatrick et al. 2017): which phases rely on the same parameters.

Groups: ``memory_values`` (the per-example Fisher of the value table, summed per slot row) and ``output_dims``
(the Fisher of the output embedding dimensions). An entry is None where a phase's Fisher is all zero (a phase
with no links).
"""

from __future__ import annotations

from pathlib import Path

from vaultlearn.model.continual import FISHER_GROUPS, read_phase_fishers
from vaultlearn.model.fisher import fisher_overlap


def overlap_table(state_dir: Path) -> dict:
    """``{"phases": [...], "groups": {group: n×n matrix of overlaps (None where undefined)}}``."""
    fishers = read_phase_fishers(state_dir)
    phases = list(fishers)
    groups = {}
    for group in FISHER_GROUPS:
        matrix = []
        for p in phases:
            row = []
            for q in phases:
                fp, fq = fishers[p][group], fishers[q][group]
                row.append(fisher_overlap(fp, fq) if fp.sum() > 0 and fq.sum() > 0 else None)
            matrix.append(row)
        groups[group] = matrix
    return {"phases": phases, "groups": groups}


def plot_overlap(table: dict, png_path: Path) -> None:
    """One heatmap per group, phases on both axes, overlap in [0, 1] (blank where undefined)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    phases, groups = table["phases"], table["groups"]
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 4), squeeze=False)
    for ax, (group, matrix) in zip(axes[0], groups.items()):
        values = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
        image = ax.imshow(values.reshape(len(phases), len(phases)), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(phases)), phases, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(phases)), phases, fontsize=7)
        ax.set_title(group)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
