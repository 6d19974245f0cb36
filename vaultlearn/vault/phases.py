"""Phases: the projects (or periods) a vault was written in, learned one after another.

Each source in ``config.phase_sources`` proposes a phase per note; the first source that gives a phase to
at least half of the notes and yields two or more distinct phases is used for the whole vault.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Sequence

from vaultlearn.config import Config, ConfigError
from vaultlearn.vault.note import Note

NO_SOURCE = "none"
_BUCKETS = ("month", "quarter", "year")


@dataclass
class PhaseAssignment:
    """The chosen source, each note's phase (None: not in any phase) and the phases in learning order."""

    source: str
    phase_of: dict[str, str | None]
    order: list[str]


def assign_phases(notes: Sequence[Note], mtimes: Mapping[str, float], config: Config) -> PhaseAssignment:
    """Choose the vault's phase source and order its phases by the median creation time of their notes."""
    for source in config.phase_sources:
        reader = _phase_reader(source, config)
        phase_of = {note.path: reader(note, mtimes) for note in notes}
        if source == "tag":
            phase_of = _merge_case(phase_of)
        covered = [phase for phase in phase_of.values() if phase is not None]
        if notes and 2 * len(covered) >= len(notes) and len(set(covered)) >= 2:
            return PhaseAssignment(source, phase_of, _order(notes, phase_of, mtimes))
    return PhaseAssignment(NO_SOURCE, {note.path: None for note in notes}, [])


def _phase_reader(source: str, config: Config) -> Callable[[Note, Mapping[str, float]], str | None]:
    if source == "frontmatter":
        return lambda note, _: _from_frontmatter(note, config.phase_keys)
    if source == "tag":
        prefixes = [p.strip("/").lower() + "/" for p in config.phase_tag_prefixes if p.strip("/")]
        return lambda note, _: _from_tags(note, prefixes)
    if source == "folder":
        return lambda note, _: note.path.split("/", 1)[0] if "/" in note.path else None
    if source == "date":
        if config.phase_date_bucket not in _BUCKETS:
            raise ConfigError(f"phase_date_bucket should be one of {', '.join(_BUCKETS)}")
        return lambda note, mtimes: _date_bucket(_when(note, mtimes), config.phase_date_bucket)
    raise ConfigError(f"unknown phase source {source!r} (use frontmatter, tag, folder or date)")


def _from_frontmatter(note: Note, keys: Sequence[str]) -> str | None:
    """The first of ``keys`` holding a scalar value, as a string."""
    for key in keys:
        value = note.frontmatter.get(key)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def _from_tags(note: Note, prefixes: Sequence[str]) -> str | None:
    """The path component after the first matching prefix: ``Topics/Set_Theory/Choice`` → ``Set_Theory``."""
    for tag in note.tags:
        lowered = tag.lower()
        for prefix in prefixes:
            if lowered.startswith(prefix) and (name := tag[len(prefix) :].split("/", 1)[0]):
                return name
    return None


def _merge_case(phase_of: dict[str, str | None]) -> dict[str, str | None]:
    """Tags ignore case: ``topics/Topology`` and ``Topics/topology`` are one phase (first spelling wins)."""
    spelling: dict[str, str] = {}
    for phase in phase_of.values():
        if phase is not None:
            spelling.setdefault(phase.lower(), phase)
    return {path: spelling[p.lower()] if p is not None else None for path, p in phase_of.items()}


def _when(note: Note, mtimes: Mapping[str, float]) -> datetime | None:
    """When the note was written: its ``created`` date, else its file modification time."""
    if note.created is not None:
        return note.created
    mtime = mtimes.get(note.path)
    return datetime.fromtimestamp(mtime) if mtime is not None else None


def _date_bucket(when: datetime | None, bucket: str) -> str | None:
    if when is None:
        return None
    if bucket == "year":
        return f"{when.year}"
    if bucket == "quarter":
        return f"{when.year}-Q{(when.month - 1) // 3 + 1}"
    return f"{when.year}-{when.month:02d}"


def _order(
    notes: Sequence[Note], phase_of: Mapping[str, str | None], mtimes: Mapping[str, float]
) -> list[str]:
    """Phases by the median creation time of their notes; ties (and phases with no dates) by name."""
    times: dict[str, list[float]] = {}
    for note in notes:
        phase = phase_of[note.path]
        if phase is None:
            continue
        when = _when(note, mtimes)
        times.setdefault(phase, [])
        if when is not None:
            times[phase].append(when.timestamp())
    return sorted(times, key=lambda p: (statistics.median(times[p]) if times[p] else float("inf"), p))
