"""The pictures vaultlearn writes (PNG, matplotlib's Agg backend, imported only when a picture is asked for)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def _figure(panels: int, width: float, height: float, **subplots):
    """A row of ``panels`` axes of ``width`` × ``height`` inches each; closed when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(width * panels, height), squeeze=False, **subplots)
    try:
        yield fig, axes[0]
    finally:
        plt.close(fig)


def _save(fig, png_path: Path | str) -> None:
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)


def plot_recall_matrix(result: dict, png_path: Path | str) -> None:
    """One panel per phase j: R[k][j] (Recall@10, mean over the seeds) against k for every strategy."""
    phases = result["phases"]
    with _figure(len(phases), 3.2, 3.2, sharey=True) as (fig, axes):
        for j, ax in enumerate(axes):
            for name, s in result["summary"].items():
                xs = list(range(j, len(phases)))
                ax.plot(xs, [s["R"][k][j] for k in xs], marker="o", label=name)
            ax.set_title(phases[j], fontsize=9)
            ax.set_xlabel("after phase")
            ax.set_xticks(range(len(phases)))
        axes[0].set_ylabel("Recall@10")
        axes[-1].legend(fontsize=7)
        _save(fig, png_path)


def plot_overlap(table: dict, png_path: Path | str) -> None:
    """One heatmap per parameter group, phases on both axes, overlap in [0, 1] (blank where undefined)."""
    phases, groups = table["phases"], table["groups"]
    with _figure(len(groups), 4.5, 4) as (fig, axes):
        for ax, (group, matrix) in zip(axes, groups.items()):
            values = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
            image = ax.imshow(values.reshape(len(phases), len(phases)), vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(phases)), phases, rotation=60, ha="right", fontsize=7)
            ax.set_yticks(range(len(phases)), phases, fontsize=7)
            ax.set_title(group)
            fig.colorbar(image, ax=ax, fraction=0.046)
        _save(fig, png_path)
