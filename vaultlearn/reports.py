"""Typed results of the service: what an index pass found and changed, what learning did per phase, and the
vault's status. Each ``to_json()`` is exactly the dict ``--json`` prints and the API serves, keys in order."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .vault.note import Note
from .vault.scan import ScannedFile


@dataclass
class ChangedNotes:
    """What reading the vault found: notes parsed anew (note, file stat, content hash), notes whose file moved
    on but whose content did not (id, file stat), files that could not be read, and the embeddings of the
    parsed notes (vectors, memory slots per note or None; None when nothing was embedded)."""

    changed: list[tuple[Note, ScannedFile, str]]
    touched: list[tuple[int, ScannedFile]]
    vanished: set[str]
    embedded: tuple[np.ndarray, list[np.ndarray] | None] | None


@dataclass
class IndexReport:
    """One index pass: notes added, updated and deleted, notes embedded, the rank fit when the rank weights were
    fitted again, the (path, message) warnings, the seconds it took and the process's peak memory."""

    added: int
    updated: int
    deleted: int
    embedded: int
    rank_fit: dict | None = None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    peak_memory_mb: int | None = None

    def to_json(self) -> dict:
        """The report as ``index --json`` prints it (before its ``status``): warnings counted and listed."""
        out = {"added": self.added, "updated": self.updated, "deleted": self.deleted, "embedded": self.embedded}
        if self.rank_fit is not None:
            out["rank_fit"] = self.rank_fit
        return {**out, "seconds": self.seconds, "peak_memory_mb": self.peak_memory_mb, "warnings": len(self.warnings),
                "warning_list": [{"path": path, "message": message} for path, message in self.warnings]}


@dataclass
class PhaseReport:
    """Learning one phase: what was tried, what it changed, and whether it was committed and why."""

    phase: str
    links: int
    steps: int
    seconds: float
    loss_start: float | None  # None: the link map had no fitting links to train on
    loss_end: float | None
    updated_slots: int  # the token-level memory's; 0 for the link map
    reembedded: int  # notes encoded again (the link map re-encodes none)
    reembedded_share: float
    drift_cosine: float  # mean cosine distance of old notes' vectors before → after
    top10_changed: float  # share of (a sample of) old notes whose ten nearest notes changed
    vectors_changed: float  # share of notes whose search vector changed
    start: str | None = None  # the link map's: where its kept map started ("previous" or "ridge"); None: memory
    committed: bool = False
    forced: bool = False
    reason: str = ""
    validation: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class LearnReport:
    """A ``learn`` run: each phase tried, in order, and the phases learned after it."""

    phases: list[PhaseReport]
    learned_phases: list[str]

    def to_json(self) -> dict:
        return {"phases": [p.to_json() for p in self.phases], "learned_phases": self.learned_phases}


@dataclass
class Status:
    """What is indexed, the phases, what is learned, declined and pending, the rank weights.

    ``repair_due``: the learned model on disk is not the one the stored state was committed with (a process
    was killed between learning's two commits); the next ``index`` or ``learn`` repairs it (re-embedding every
    note after the token memory; recording the link map). ``learner``: ``linkmap`` or ``memory``, the learner of
    the state on disk (``config.learner`` before any)."""

    vault: str
    notes: int
    links: int
    unresolved_links: int
    phases: list[str]
    phase_source: str | None
    notes_by_phase: dict[str, int]
    embedded: int
    index_size: int
    learned_phases: list[str]
    pending_phases: list[str]
    declined_phases: dict[str, str]
    learn_validation: dict
    new_links_by_phase: dict[str, int]
    rank_weights: dict[str, float]
    notes_with_warnings: int
    repair_due: bool
    learner: str

    def to_json(self) -> dict:
        return asdict(self)
