"""Indexer: the index path. Scan and read the vault, embed changed notes, commit notes, links, resolutions,
phases and embeddings in one transaction, keep the vector index in step, and move notes on rename.

It takes no locks of its own beyond the vector index's: the service holds the writer lock around every call
that writes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from .config import Config
from .errors import NoteNotFoundError
from .index.learned import committed_phase_maps
from .model.manifest import MANIFEST, read_manifest
from .model_identity import model_key
from .paths import StatePaths
from .reports import ChangedNotes, IndexReport
from .store import LinkRow, NoteStat, PhaseRow, Store
from .vault.names import NOTE_SUFFIX, is_note_path, name_key
from .vault.note import Link, Note
from .vault.parse import parse_note
from .vault.phases import assign_phases
from .vault.read import read_notes
from .vault.resolve import LinkResolver
from .vault.scan import ScannedFile, is_ignored, read_note_bytes, scan_vault

if TYPE_CHECKING:  # FAISS is imported where the index is first read, not by every process
    from .index.vectors import VectorIndex

EMBED_CHUNK = 1024  # notes embedded at a time while worker processes parse the next ones


class Indexer:
    """Brings the stored state of one vault up to date with its files; owns the resolver and the vector index."""

    def __init__(self, vault: Path, config: Config, store: Store, paths: StatePaths,
                 encoder: Callable[[], object], index_lock: threading.RLock):
        """``encoder`` returns the loaded NoteEncoder (called only when a note has to be embedded);
        ``index_lock`` guards the in-memory vector index."""
        self.vault, self.config, self.store = vault, config, store
        self.paths = paths
        self._encoder = encoder
        self._index_lock = index_lock
        self._vectors: VectorIndex | None = None
        self._vectors_generation: int | None = None
        self._resolver: LinkResolver | None = None
        self._maps: tuple[int, dict[str, np.ndarray] | None] | None = None  # (manifest mtime in ns, phase maps)

    def model_key(self) -> str:
        """Identifies the base model without loading it; a change means every note is embedded again."""
        return model_key(self.config)

    def vectors(self) -> VectorIndex:
        """The vector index of the last committed generation (loaded from its file, rebuilt when stale)."""
        from .index.vectors import VectorIndex  # FAISS is imported by the first process that needs the index

        with self._index_lock:
            generation = self.store.generation
            if self._vectors is None:
                shape = (self.config.approximate_index_above, self.config.approximate_probe_share)
                self._vectors = VectorIndex.load(self.paths.vector_indexes, generation, *shape)
                if self._vectors is None:
                    ids, vecs = self.store.all_embeddings()
                    self._vectors = VectorIndex.build(ids, vecs, *shape)
                    if len(ids):
                        self._vectors.save(self.paths.vector_indexes, generation)
                self._vectors_generation = generation
            return self._vectors

    def nearest(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, note ids) of the ``k`` nearest indexed notes per row of ``queries`` (base-model vectors, as the
        index holds), searched under the index lock; missing hits have id -1."""
        with self._index_lock:
            return self.vectors().search(queries, k)

    def phase_maps(self) -> dict[str, np.ndarray] | None:
        """The committed link map of each learned phase, None when no link map is committed (re-read when the
        manifest changes)."""
        manifest = self.paths.model / MANIFEST
        stamp = manifest.stat().st_mtime_ns if manifest.exists() else 0
        if self._maps is None or self._maps[0] != stamp:
            self._maps = (stamp, committed_phase_maps(self.paths.model))
        return self._maps[1]

    def drop_vectors(self) -> None:
        """Forget the in-memory vector index: the next :meth:`vectors` builds it from the committed state."""
        with self._index_lock:
            self._vectors = self._vectors_generation = None

    def resolver(self) -> LinkResolver:
        """The link resolver over the stored paths (built on first use, kept in step by commits and renames)."""
        if self._resolver is None:
            self._resolver = LinkResolver(self.store.paths())
        return self._resolver

    # ------------------------------------------------------------------------------------------------------
    # indexing
    def update(self, paths: Iterable[str] | None, progress: bool) -> IndexReport:
        """Bring the state up to date with the vault (all of it, or ``paths``): the counts of what changed,
        with the (path, message) warnings of the scan and of the notes read."""
        stored = {row.path: row for row in self.store.note_stats()}
        warnings: list[tuple[str, str]] = []
        if paths is None:
            scan = scan_vault(self.vault, self.config.ignore)
            warnings += scan.problems
            present = {f.path: f for f in scan.notes}
            gone = set(stored) - set(present)
        else:
            present, gone = self._stat_paths(paths)
            gone &= set(stored)
        if self.store.get_meta("relink"):
            self._relink(stored)
        learned_since = self.memory_generation_on_disk() != int(self.store.get_meta("memory_generation", "0"))
        # a learned memory changes the embeddings themselves; a link map only the learned similarity made from them
        force = (self.store.get_meta("model_key") not in (None, self.model_key())
                 or (learned_since and self.phase_maps() is None))
        with _cyclic_gc_paused():
            found = self._read_and_embed(present, stored, force, progress, warnings)
            gone |= found.vanished & set(stored)
            report = self._commit(stored, found, gone, force or learned_since)
        report.warnings = warnings + [(note.path, w) for note, _, _ in found.changed for w in note.warnings]
        return report

    def _relink(self, stored: dict[str, NoteStat]) -> None:
        """Store every note's links again from its file, with their display texts (state written by a version
        that did not keep them); embeddings are untouched. A note changed since is re-read by the index anyway."""
        links = {}
        for row in stored.values():
            raw = read_note_bytes(self.vault, row.path, self.config.max_note_bytes)
            if raw is not None:
                links[row.id] = _link_rows(parse_note(row.path, raw, self.config.max_embed_chars))
        with self.store.transaction():
            self.store.replace_links_of(links)
            self._resolve_links(list(links), set())
            self.store.set_meta("relink", "")
            self.store.bump_generation()

    def memory_generation_on_disk(self) -> int:
        """The generation of the learned memory saved under the model folder (0: none)."""
        manifest = read_manifest(self.paths.model)
        return manifest["generation"] if manifest else 0

    def sync_learned_state(self) -> None:
        """Record, with the embeddings just written, which learned memory produced them."""
        manifest = read_manifest(self.paths.model) or {"generation": 0, "learned_phases": []}
        self.store.set_meta("memory_generation", str(manifest["generation"]))
        self.store.set_json("learned_phases", manifest["learned_phases"])

    def _stat_paths(self, paths: Iterable[str]) -> tuple[dict[str, ScannedFile], set[str]]:
        present, gone = {}, set()
        for rel in paths:
            rel = PurePosixPath(rel).as_posix()
            if not is_note_path(rel) or is_ignored(rel, self.config.ignore):
                continue
            try:
                stat = (self.vault / rel).stat()
                present[rel] = ScannedFile(rel, stat.st_size, stat.st_mtime)
            except OSError:
                gone.add(rel)
        return present, gone

    def _read_and_embed(self, present: dict[str, ScannedFile], stored: dict[str, NoteStat], force: bool,
                        progress: bool, warnings: list[tuple[str, str]]) -> ChangedNotes:
        """Parse the notes whose content differs from the stored state and embed them, a chunk at a time: in a
        large vault worker processes parse the next chunks while this one is embedded. A note that cannot be
        read is dropped as if it vanished, with a warning in ``warnings`` saying why."""
        changed, touched, vanished = [], [], set()
        todo = {f.path: f for f in present.values()
                if force or f.path not in stored or (stored[f.path].size, stored[f.path].mtime) != (f.size, f.mtime)}
        known = [(path, None if force or path not in stored else stored[path].hash) for path in todo]
        parts, waiting = [], []
        limit = self.config.max_note_bytes
        with tqdm(total=len(todo), desc="indexing", unit="note", disable=not progress or not todo) as bar:
            for chunk in read_notes(self.vault, known, limit, self.config.max_embed_chars):
                fresh = len(waiting)
                for read in chunk:
                    scanned = todo[read.path]
                    if read.digest is None:
                        vanished.add(read.path)
                        warnings += [(read.path, problem) for problem in read.problems]
                    elif read.note is None:
                        touched.append((stored[read.path].id, scanned))
                    else:
                        if scanned.size > limit:
                            read.note.warnings.append(f"only the first {limit} bytes were read")
                        changed.append((read.note, scanned, read.digest))
                        waiting.append(read.note)
                bar.update(len(chunk) - (len(waiting) - fresh))  # unchanged and vanished notes are done
                if len(waiting) >= EMBED_CHUNK:
                    parts.append(self._embed(waiting))
                    bar.update(len(waiting))
                    waiting = []
            if waiting:
                parts.append(self._embed(waiting))
                bar.update(len(waiting))
        return ChangedNotes(changed, touched, vanished, _concatenate(parts))

    def _embed(self, notes: list[Note]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Embeddings of ``notes`` and, once a memory exists, the memory slots each note reads."""
        encoder = self._encoder()
        texts = [n.text for n in notes]
        if encoder.memory is None:
            return encoder.encode(texts), None
        return encoder.encode_with_slots(texts)

    def _commit(self, stored: dict[str, NoteStat], found: ChangedNotes, gone: set[str], sync: bool) -> IndexReport:
        """Write one consistent new state: notes, links, resolutions, phases, embeddings, index; ``sync``: record
        the learned state on disk as the one the embeddings go with (it changed, or every note was embedded)."""
        changed, touched = found.changed, found.touched
        vectors, slots = found.embedded if found.embedded is not None else (None, None)
        resolver = self.resolver()
        added = [note.path for note, _, _ in changed if note.path not in stored]
        with self.store.transaction():
            gone_ids = [stored[p].id for p in gone]
            self.store.delete_notes(gone_ids)
            ids = self.store.upsert_notes([
                (note.path, note.title, digest, scanned.size, scanned.mtime, _phase_fields(note), note.aliases,
                 note.tags, note.warnings) for note, scanned, digest in changed])
            self.store.touch_notes((note_id, scanned.size, scanned.mtime) for note_id, scanned in touched)
            for path in gone:
                resolver.remove(path)
            for path in added:
                resolver.add(path)
            notes = {i: note for i, (note, _, _) in zip(ids, changed)}
            # the changed notes' links are stored resolved; the others' links to a name that came or went re-resolved
            others = {rowid: link for rowid, link in self.store.links_with_keys({name_key(p) for p in [*gone, *added]})
                      if link.src not in notes}
            self.store.replace_links_of(self._resolved_links(notes))
            self._resolve_stored(others)
            if changed or gone:
                self._assign_phases()
            if vectors is not None:
                self.store.put_embeddings(ids, vectors)
            if slots is not None:
                self.store.put_postings(ids, slots)
            self.store.set_meta("model_key", self.model_key())
            if sync or self.store.get_meta("memory_generation") is None:
                self.sync_learned_state()
            generation = self.store.bump_generation() if (changed or gone or sync) else self.store.generation
        if sync:
            self.drop_vectors()
        self.update_vectors(np.array(ids, dtype=np.int64), vectors, np.array(gone_ids, dtype=np.int64),
                             generation)
        return IndexReport(added=len(added), updated=len(changed) - len(added), deleted=len(gone),
                           embedded=0 if vectors is None else len(vectors))

    def update_vectors(self, ids: np.ndarray, vectors: np.ndarray | None, removed: np.ndarray,
                       generation: int) -> None:
        """Apply a committed change (``generation``) to the in-memory vector index and save it."""
        with self._index_lock:
            if self._vectors is None:
                if len(ids) or len(removed):  # else nothing to update: the next vectors() loads the file
                    self.vectors()  # loads the file of this generation, or builds and saves it from the store
                return
            self._vectors.remove(removed)
            if vectors is not None and len(ids):
                self._vectors.upsert(ids, vectors)
            if generation != self._vectors_generation:
                self._vectors.save(self.paths.vector_indexes, generation)
                self._vectors_generation = generation

    def _resolve_links(self, source_ids: list[int], keys: set[str]) -> None:
        """Re-resolve the links of ``source_ids`` and every link whose target name is in ``keys``."""
        rows = dict(self.store.links_from(source_ids))
        rows.update(self.store.links_with_keys(keys))
        self._resolve_stored(rows)

    def _resolve_stored(self, rows: dict[int, LinkRow]) -> None:
        """Resolve stored links (by rowid) again."""
        if not rows:
            return
        resolver = self.resolver()
        sources = self.store.paths_by_ids({link.src for link in rows.values()})
        resolved = {
            rowid: resolver.resolve(Link(link.target, link.kind, markdown=link.markdown), sources[link.src])
            for rowid, link in rows.items()
        }
        id_of = self.store.ids_by_paths({res.path for res in resolved.values() if res.path})
        self.store.set_resolutions(
            (rowid, id_of.get(res.path) if res.path else None, res.attachment) for rowid, res in resolved.items())

    def _resolved_links(self, notes: dict[int, Note]) -> dict[int, list[tuple]]:
        """The links of ``notes`` (by id) as rows to store, resolved: ``_link_rows`` plus ``(dst, attachment)``."""
        resolver = self.resolver()
        resolved = {i: [resolver.resolve(link, note.path) for link in note.links] for i, note in notes.items()}
        id_of = self.store.ids_by_paths({res.path for row in resolved.values() for res in row if res.path})
        return {i: [(*row, id_of.get(res.path) if res.path else None, res.attachment)
                    for row, res in zip(_link_rows(notes[i]), resolved[i])] for i in notes}

    def _assign_phases(self) -> None:
        """Recompute every note's phase from the stored phase fields."""
        rows = self.store.phase_rows()
        notes = [_note_for_phases(row) for row in rows]
        assignment = assign_phases(notes, {row.path: row.mtime for row in rows}, self.config)
        self.store.set_phases({row.id: assignment.phase_of.get(row.path) for row in rows
                               if assignment.phase_of.get(row.path) != row.phase})
        self.store.set_json("phase_order", assignment.order)
        self.store.set_meta("phase_source", assignment.source)

    def rename(self, old: str, new: str) -> list[str]:
        """Move a note, keeping its identity (id, embedding, postings), and resolve links again; returns the
        paths to index next (both when the move cannot keep the identity)."""
        row = self.store.note_by_path(old)
        if row is None:
            return [new]
        if self.store.note_by_path(new) is not None:
            return [old, new]
        resolver = self.resolver()
        with self.store.transaction():
            self.store.rename_note(row.id, new, PurePosixPath(new).stem)
            resolver.remove(old)
            resolver.add(new)
            self._resolve_links([row.id], {name_key(old), name_key(new)})
            self._assign_phases()
            self.store.bump_generation()
        return [new]

    # ------------------------------------------------------------------------------------------------------
    # names
    def resolve_note(self, note: str) -> str:
        """The vault-relative path of ``note`` (a path or a link-style name); never outside the vault."""
        text = note.strip()
        if not text or "\x00" in text or len(text) > 1024:
            raise NoteNotFoundError(f"{note!r} is not a note name")
        candidate = Path(text).expanduser()
        if candidate.is_absolute():
            try:
                text = candidate.resolve().relative_to(self.vault).as_posix()
            except ValueError:
                raise NoteNotFoundError(f"{note} is outside the vault {self.vault}") from None
        if any(part == ".." for part in PurePosixPath(text).parts):
            raise NoteNotFoundError(f"{note} points outside the vault")
        path = self._stored_path(text) or self.resolver().resolve_name(text)
        if path is None:
            raise NoteNotFoundError(f"no note named {note!r} in {self.vault} (is it indexed? run `vaultlearn index`)")
        real = (self.vault / path).resolve()
        if real != self.vault and self.vault not in real.parents:
            raise NoteNotFoundError(f"{note} resolves outside the vault")
        return path

    def _stored_path(self, text: str) -> str | None:
        """``text`` itself, or with ``.md`` added, when that is an indexed note's exact path (no resolver needed)."""
        for path in (text, text + NOTE_SUFFIX):
            if self.store.note_by_path(path) is not None:
                return path
        return None

    def is_current(self, path: str) -> bool:
        """Whether the stored state of ``path`` matches the file (same size and mtime)."""
        row = self.store.note_by_path(path)
        try:
            stat = (self.vault / path).stat()
        except OSError:
            return row is None
        return row is not None and (row.size, row.mtime) == (stat.st_size, stat.st_mtime)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything): reading and committing
    make no reference cycles, and its passes would only walk the growing set of parsed notes again and again
    (15% of the CPU time of a 10k-note index, 20% at 30k)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _link_rows(note: Note) -> list[tuple[str, str, bool, str | None]]:
    return [(link.target, link.kind, link.markdown, link.display) for link in note.links]


def _concatenate(parts: list[tuple[np.ndarray, list[np.ndarray] | None]]):
    """One (vectors, slots) pair from the chunks' pairs; None when nothing was embedded."""
    if not parts:
        return None
    vectors = np.vstack([v for v, _ in parts])
    return vectors, None if parts[0][1] is None else [s for _, slots in parts for s in slots]


def _phase_fields(note: Note) -> dict:
    """What phase assignment needs of a note, kept so phases can be recomputed without reparsing."""
    return {
        "frontmatter": {k: v for k, v in note.frontmatter.items() if isinstance(v, (str, int, float))},
        "tags": note.tags,
        "created": note.created.isoformat() if note.created else None,
    }


def _note_for_phases(row: PhaseRow) -> Note:
    fields = row.phase_fields
    created = fields.get("created")
    return Note(path=row.path, title=row.title, text="", tags=fields.get("tags", []),
                frontmatter=fields.get("frontmatter", {}),
                created=datetime.fromisoformat(created) if created else None)
