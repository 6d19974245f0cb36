"""The learned similarity: each learned phase's link map applied to the stored base embeddings, without torch.

The learned state (``VAULT/.vaultlearn/model/``) is committed by its manifest. A link-map manifest names the
folder its :class:`~vaultlearn.model.linkmap.LinkMap` saved itself to (the learner's current map) and the file
of phase maps: for each learned phase, the map as it stood when that phase was learned. A note of a learned
phase is compared with every other note in its phase's map's space (:class:`PhaseReading`): the space that
map was fitted and checked in for that phase's links, which no later phase changes. A note in no learned
phase is compared by base embeddings. Before any learning, or with the token-level memory (which changes the
embeddings themselves), the stored embeddings are the learned ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_numpy

from vaultlearn.errors import require_finite
from vaultlearn.model.manifest import read_manifest

MAP_CONFIG = "config.json"
MAP_WEIGHTS = "model.safetensors"
LINKMAP_KIND = "linkmap"


def map_vectors(vectors: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """normalize(W x) for each row x of ``vectors`` (float32)."""
    out = np.asarray(vectors, dtype=np.float32) @ weight.T.astype(np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    out = out / np.where(norms > 0, norms, 1.0)
    require_finite(out, "learned note vectors")
    return out


def map_by_phase(vectors: np.ndarray, phases: Sequence[str | None], maps: dict[str, np.ndarray]) -> np.ndarray:
    """``vectors`` (float32, one row per note) with each row whose phase (``phases``, per row) has a map in
    ``maps`` mapped by it (:func:`map_vectors`); the other rows as they are."""
    if len(phases) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(phases)} phases")
    out = np.array(vectors, dtype=np.float32)
    rows_of: dict[str, list[int]] = {}
    for row, phase in enumerate(phases):
        if phase in maps:
            rows_of.setdefault(phase, []).append(row)
    for phase, rows in rows_of.items():
        out[rows] = map_vectors(out[rows], maps[phase])
    return out


@dataclass(frozen=True)
class PhaseReading:
    """The learned similarity of a query note to every note: both read by the map of the *query's* phase,
    cos(W x_q, W x_t), the geometry that phase's map was fitted in (a later phase's map never changes it); a
    query in no learned phase compares base vectors. Held as the distinct maps, each note's map and each note's
    norm under every map, so a query costs one map product, not one per candidate."""

    maps: np.ndarray  # (m, d, d) float32, the distinct phase maps
    map_of: np.ndarray  # (n,) int32: the map of each note's phase, -1 for none
    norms: np.ndarray  # (n, m) float32: ‖W_k x‖ of each note under each map (1 where it is 0)

    @classmethod
    def of(cls, vectors: np.ndarray, phases: Sequence[str | None], maps: dict[str, np.ndarray],
           previous: tuple[PhaseReading, np.ndarray] | None = None) -> PhaseReading:
        """The reading of notes with base ``vectors`` (float32, L2-normalised) and ``phases`` (one per row) under
        ``maps`` (phase → map). ``previous``: an earlier reading and, per row, the row there with the same base
        vector (-1: none), whose norms are taken when the maps are the same (an edit re-reads a few notes)."""
        if len(phases) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors but {len(phases)} phases")
        code: dict[str, int] = {}
        distinct: dict[bytes, int] = {}
        stack: list[np.ndarray] = []
        for phase in sorted(maps):
            weight = np.ascontiguousarray(maps[phase], dtype=np.float32)
            code[phase] = distinct.setdefault(weight.tobytes(), len(stack))
            if code[phase] == len(stack):
                stack.append(weight)
        dim = vectors.shape[1]
        stacked = np.stack(stack) if stack else np.zeros((0, dim, dim), dtype=np.float32)
        norms = np.full((len(vectors), len(stack)), np.nan, dtype=np.float32) if previous is None \
            else previous[0].norms_for(stacked, previous[1])
        todo = np.flatnonzero(np.isnan(norms).any(axis=1))
        rows = np.asarray(vectors if len(todo) == len(vectors) else vectors[todo], dtype=np.float32)
        for k, weight in enumerate(stack):
            norms[todo, k] = np.linalg.norm(rows @ weight.T, axis=1)
        norms[norms == 0] = 1.0
        require_finite(norms, "learned note norms")
        map_of = np.array([code.get(phase, -1) for phase in phases], dtype=np.int32)
        return cls(stacked, map_of, norms)

    def norms_for(self, maps: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """This reading's norms of ``rows`` (positions here) under ``maps``, NaN where a row is -1 or ``maps`` are
        not this reading's maps."""
        out = np.full((len(rows), len(maps)), np.nan, dtype=np.float32)
        if maps.shape == self.maps.shape and np.array_equal(maps, self.maps):
            found = rows >= 0
            out[found] = self.norms[rows[found]]
        return out

    def queries(self, vectors: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Each query's vector in base coordinates such that its dot product with a note's base vector, divided by
        the note's norm under the query's map (:meth:`similarity`), is the learned similarity: Wᵀ W x / ‖W x‖ for
        a query whose phase has a map (``vectors``: the queries' base embeddings, ``positions``: their notes),
        the base vector for the others."""
        out = np.array(vectors, dtype=np.float32)
        codes = self.map_of[positions]
        for k in np.unique(codes[codes >= 0]):
            rows = codes == k
            mapped = out[rows] @ self.maps[k].T
            norm = np.linalg.norm(mapped, axis=1, keepdims=True)
            out[rows] = (mapped / np.where(norm > 0, norm, 1.0)) @ self.maps[k]
        require_finite(out, "learned query vectors")
        return out

    def similarity(self, queries: np.ndarray, positions: np.ndarray, base: np.ndarray,
                   notes: np.ndarray) -> np.ndarray:
        """Per pair: the learned similarity of the query (``queries``: :meth:`queries`' vectors, one per pair;
        ``positions``: its note) and the note at ``notes`` with base vector ``base`` (one per pair)."""
        codes = self.map_of[positions]
        scale = np.ones(len(notes), dtype=np.float32)
        mapped = codes >= 0
        scale[mapped] = self.norms[notes[mapped], codes[mapped]]
        return np.einsum("ij,ij->i", queries, base) / scale


def committed_phase_maps(state_dir: Path) -> dict[str, np.ndarray] | None:
    """Each learned phase's map (None: no link map is committed)."""
    manifest = read_manifest(state_dir)
    if manifest is None or manifest.get("kind") != LINKMAP_KIND:
        return None
    if "phase_maps" not in manifest:  # saved before phase maps: each learned phase is read by the one map
        weight = load_numpy((Path(state_dir) / manifest["map"] / MAP_WEIGHTS).read_bytes())["weight"]
        return {phase: weight for phase in manifest["learned_phases"]}
    return load_numpy((Path(state_dir) / manifest["phase_maps"]).read_bytes())
