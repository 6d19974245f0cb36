"""Fisher overlap between learned phases (Kirkpatrick et al. 2017): which phases rely on the same parameters.

Groups: for the link map, ``map_weights`` (the per-example Fisher of the map's weights, on the phase's own
links); for the token-level memory, ``memory_values`` (the per-example Fisher of the value table, summed per
slot row) and ``output_dims`` (the Fisher of the output embedding dimensions). An entry is None where a phase's
Fisher is all zero (a phase with no links).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors

from vaultlearn.model.fisher import fisher_overlap
from vaultlearn.model.manifest import read_manifest

FISHER_GROUPS = ("memory_values", "output_dims")  # per-phase Fishers the memory keeps (a manifest may name others)


def overlap_table(state_dir: Path) -> dict:
    """``{"phases": [...], "groups": {group: n×n matrix of overlaps (None where undefined)}}``."""
    fishers = read_phase_fishers(state_dir)
    phases = list(fishers)
    groups = {}
    for group in (next(iter(fishers.values())) if fishers else ()):
        matrix = []
        for p in phases:
            row = []
            for q in phases:
                fp, fq = fishers[p][group], fishers[q][group]
                row.append(fisher_overlap(fp, fq) if fp.sum() > 0 and fq.sum() > 0 else None)
            matrix.append(row)
        groups[group] = matrix
    return {"phases": phases, "groups": groups}


def read_phase_fishers(state_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Per learned phase, its own Fisher per group; {} if no state."""
    manifest = read_manifest(state_dir)
    if manifest is None:
        return {}
    return phase_fishers(manifest, load_safetensors((Path(state_dir) / manifest["learner"]).read_bytes()))


def phase_fishers(manifest: dict, tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The per-phase Fishers among a saved learner's ``tensors``, by phase and group."""
    groups = manifest.get("fisher_groups", FISHER_GROUPS)
    return {phase: {group: tensors[f"phase.{i}.{group}"] for group in groups}
            for i, phase in enumerate(manifest["phase_fisher"])}

