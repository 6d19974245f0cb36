"""Reading a vault into an EvalCorpus in memory: nothing is written, so read-only vaults can be evaluated.

The no-trace protocol re-parses each source note with its held-out links' every trace removed
(:func:`without_traces`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from ..config import Config
from ..vault.parse import parse_note
from ..vault.phases import assign_phases
from ..vault.resolve import LinkResolver
from ..vault.scan import ResolvedRoot, read_note_beneath, scan_vault
from .protocol import EvalCorpus, Split
from .traces import remove_traces


def load_corpus(vault: Path, config: Config, *, progress: bool = False) -> EvalCorpus:
    """Every note of ``vault`` with its embedded text and phase, and its resolved note→note links."""
    scan = scan_vault(vault, config.ignore)
    notes, markdown, root = [], [], ResolvedRoot(vault)
    for scanned in tqdm(scan.notes, desc="parsing", unit="note", disable=not progress):
        raw = read_note_beneath(root, scanned.path, config.max_note_bytes)
        if raw is not None:
            notes.append(parse_note(scanned.path, raw, config.max_embed_chars))
            markdown.append(raw.decode("utf-8", errors="replace"))
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
        markdown=markdown,
        names=[[n.path, *n.aliases] for n in notes],
        max_embed_chars=config.max_embed_chars,
    )


def without_traces(corpus: EvalCorpus, split: Split) -> EvalCorpus:
    """``corpus`` with each held-out link's source note re-parsed from its markdown without any trace of the
    link's target (the link, its shown text, the target's title and aliases as words)."""
    if corpus.markdown is None or corpus.names is None:
        raise ValueError("the no-trace protocol needs the notes' markdown: load the corpus with load_corpus")
    hidden: dict[int, list[str]] = {}
    for links in split.heldout:
        for a, b in links:
            hidden.setdefault(a, []).extend(corpus.names[b])
    texts = list(corpus.texts)
    for a, names in hidden.items():
        markdown = remove_traces(corpus.markdown[a], names)
        texts[a] = parse_note(corpus.paths[a], markdown.encode("utf-8"), corpus.max_embed_chars).text
    return replace(corpus, texts=texts)
