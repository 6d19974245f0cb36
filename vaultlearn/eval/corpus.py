"""Reading a vault into an EvalCorpus in memory: nothing is written, so read-only vaults can be evaluated."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ..config import Config
from ..vault.parse import parse_note
from ..vault.phases import assign_phases
from ..vault.resolve import LinkResolver
from ..vault.scan import read_note_bytes, scan_vault
from .protocol import EvalCorpus


def load_corpus(vault: Path, config: Config, *, progress: bool = False) -> EvalCorpus:
    """Every note of ``vault`` with its embedded text and phase, and its resolved note→note links."""
    scan = scan_vault(vault, config.ignore)
    notes = []
    for scanned in tqdm(scan.notes, desc="parsing", unit="note", disable=not progress):
        raw = read_note_bytes(vault, scanned.path, config.max_note_bytes)
        if raw is not None:
            notes.append(parse_note(scanned.path, raw, config.max_embed_chars))
    mtimes = {f.path: f.mtime for f in scan.notes}
    assignment = assign_phases(notes, mtimes, config)
    resolver = LinkResolver([n.path for n in notes], scan.attachments)
    index = {note.path: i for i, note in enumerate(notes)}
    edges = []
    for i, note in enumerate(notes):
        for link in note.links:
            target = resolver.resolve(link, note.path).path
            if target is not None and target in index and index[target] != i:
                edges.append((i, index[target]))
    return EvalCorpus(
        paths=[n.path for n in notes],
        texts=[n.text for n in notes],
        phase_of=[assignment.phase_of.get(n.path) for n in notes],
        phases=assignment.order,
        edges=edges,
    )
