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
