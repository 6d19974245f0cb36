"""VaultService: the one place that knows the order of work. The CLI and the daemon call it.

files → scan/parse → store (notes, links) → resolve → phases → embed (changed notes only) → vector index
→ rank weights. Learning: phase links → ContinualLearner → changed memory slots → affected notes → re-embed.

Thread model: one writer at a time (``index``, ``rename``, ``learn`` take the write lock); readers
(``suggest``, ``search``, ``status``) may run concurrently and see the last committed state: sqlite
transactions are serialised by the store's lock and the vector index is swapped under its own lock.
Nothing here imports torch until a note has to be embedded or a phase learned.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Collection, Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from .config import Config
from .errors import NotAVaultError, NoteNotFoundError, NotIndexedError
from .index.suggest import (
    Candidate, HeldOutLink, RankWeights, Suggestion, build_candidates, fit_weights, rank, reason, sample_links,
)
from .index.vectors import VectorIndex
from .store import NoteRow, Store, state_dir, target_key
from .vault.note import Link, Note
from .vault.parse import parse_note
from .vault.phases import assign_phases
from .vault.resolve import LinkResolver
from .vault.scan import ScannedFile, is_ignored, read_note_bytes, scan_vault

FIT_SAMPLE = 300  # visible links hidden, one at a time, to fit the rank weights


def content_hash(raw: bytes) -> str:
    """The identity of a note's content."""
    return hashlib.sha256(raw).hexdigest()


class VaultService:
    """Index, suggest, learn and report on one vault. Owns ``VAULT/.vaultlearn/``."""

    def __init__(self, vault: Path | str, config: Config | None = None, *, create: bool = True):
        vault = Path(vault).expanduser()
        if not vault.is_dir():
            raise NotAVaultError(f"{vault} is not a folder: give the path of an Obsidian vault")
        self.vault = vault.resolve()
        self.config = config or Config.load(self.vault)
        self.store = Store(self.vault, create=create)
        self._write_lock = threading.RLock()
        self._index_lock = threading.RLock()
        self._vectors: VectorIndex | None = None
        self._encoder = None
        self._resolver: LinkResolver | None = None

    def close(self) -> None:
        """Release the state files."""
        self.store.close()

    @property
    def state_dir(self) -> Path:
        return state_dir(self.vault)

    # ------------------------------------------------------------------------------------------------------
    # model and index access (lazy)
    def encoder(self):
        """The NoteEncoder, loaded on first use (this is where torch is imported)."""
        if self._encoder is None:
            from .model.encoder import NoteEncoder

            self._encoder = NoteEncoder(self.config)
        return self._encoder

    @property
    def model_dir(self) -> Path:
        return self.state_dir / "model"

    def model_key(self) -> str:
        """Identifies the base model without loading it; a change means every note is embedded again."""
        return f"{os.environ.get('VAULTLEARN_MODEL') or self.config.model}|{self.config.max_seq_length}"

    def vectors(self) -> VectorIndex:
        """The vector index of the last committed generation (loaded from its file, rebuilt when stale)."""
        with self._index_lock:
            generation = self.store.generation
            if self._vectors is None:
                self._vectors = VectorIndex.load(self.state_dir, generation)
                if self._vectors is None:
                    ids, vecs = self.store.all_embeddings()
                    self._vectors = VectorIndex.build(ids, vecs)
                    if len(ids):
                        self._vectors.save(self.state_dir, generation)
            return self._vectors

    def _resolver_now(self) -> LinkResolver:
        if self._resolver is None:
            self._resolver = LinkResolver([n.path for n in self.store.notes()])
        return self._resolver

    # ------------------------------------------------------------------------------------------------------
    # indexing
    def index(self, paths: Iterable[str] | None = None, *, progress: bool = False) -> dict:
        """Bring the state up to date with the vault: all of it (``paths=None``) or just ``paths``.

        Unchanged notes (same size and mtime, else same content hash) are neither parsed nor embedded; a path
        that no longer exists is deleted. Returns counts of what changed and the seconds it took.
        """
        started = time.perf_counter()
        with self._write_lock:
            stored = {row.path: row for row in self.store.notes()}
            warnings: list[str] = []
            if paths is None:
                scan = scan_vault(self.vault, self.config.ignore)
                warnings += scan.warnings
                present = {f.path: f for f in scan.notes}
                gone = set(stored) - set(present)
            else:
                present, gone = self._stat_paths(paths)
                gone &= set(stored)
            force = self.store.get_meta("model_key") not in (None, self.model_key())
            changed, touched, vanished = self._read_changed(present, stored, force, progress)
            gone |= vanished & set(stored)
            vectors = self._embed([note for note, _, _ in changed], progress)
            report = self._commit(stored, changed, touched, gone, vectors)
            if paths is None and (report["added"] or report["updated"] or report["deleted"]
                                  or self.store.get_json("rank_weights") is None):
                report["rank_fit"] = self.fit_rank_weights()
        report["warnings"] = warnings + [w for note, _, _ in changed for w in note.warnings]
        report["seconds"] = round(time.perf_counter() - started, 3)
        return report

    def _stat_paths(self, paths: Iterable[str]) -> tuple[dict[str, ScannedFile], set[str]]:
        present, gone = {}, set()
        for rel in paths:
            rel = PurePosixPath(rel).as_posix()
            if not rel.lower().endswith(".md") or is_ignored(rel, self.config.ignore):
                continue
            try:
                stat = (self.vault / rel).stat()
                present[rel] = ScannedFile(rel, stat.st_size, stat.st_mtime)
            except OSError:
                gone.add(rel)
        return present, gone

    def _read_changed(self, present: dict[str, ScannedFile], stored: dict[str, NoteRow], force: bool,
                      progress: bool) -> tuple[list[tuple[Note, ScannedFile, str]], list[tuple[int, ScannedFile]],
                                               set[str]]:
        """Parse the notes whose content differs from the stored state."""
        changed, touched, vanished = [], [], set()
        todo = [f for f in present.values()
                if force or f.path not in stored or (stored[f.path].size, stored[f.path].mtime) != (f.size, f.mtime)]
        for scanned in tqdm(todo, desc="reading", unit="note", disable=not progress or not todo):
            raw = read_note_bytes(self.vault, scanned.path, self.config.max_note_bytes)
            if raw is None:
                vanished.add(scanned.path)
                continue
            digest = content_hash(raw)
            row = stored.get(scanned.path)
            if row is not None and row.hash == digest and not force:
                touched.append((row.id, scanned))
                continue
            note = parse_note(scanned.path, raw, self.config.max_embed_chars)
            if scanned.size > self.config.max_note_bytes:
                note.warnings.append(f"{scanned.path}: only the first {self.config.max_note_bytes} bytes were read")
            changed.append((note, scanned, digest))
        return changed, touched, vanished

    def _embed(self, notes: list[Note], progress: bool) -> np.ndarray | None:
        if not notes:
            return None
        return self.encoder().encode([n.text for n in notes], show_progress=progress)

    def _commit(self, stored: dict[str, NoteRow], changed, touched, gone: set[str],
                vectors: np.ndarray | None) -> dict:
        """Write one consistent new state: notes, links, resolutions, phases, embeddings, index."""
        resolver = self._resolver_now()
        added = [note.path for note, _, _ in changed if note.path not in stored]
        with self.store.transaction():
            gone_ids = [stored[p].id for p in gone]
            self.store.delete_notes(gone_ids)
            ids = []
            for note, scanned, digest in changed:
                ids.append(self.store.upsert_note(
                    note.path, note.title, digest, scanned.size, scanned.mtime, _phase_fields(note),
                    note.aliases, note.tags, note.warnings))
                self.store.replace_links(ids[-1], [(l.target, l.kind, l.markdown) for l in note.links])
            for note_id, scanned in touched:
                self.store.touch_note(note_id, scanned.size, scanned.mtime)
            for path in gone:
                resolver.remove(path)
            for path in added:
                resolver.add(path)
            self._resolve_links(ids, {target_key(p) for p in [*gone, *added]})
            if changed or gone:
                self._assign_phases()
            if vectors is not None:
                self.store.put_embeddings(ids, vectors, [digest for _, _, digest in changed])
            self.store.set_meta("model_key", self.model_key())
            generation = self.store.bump_generation() if (changed or gone) else self.store.generation
        self._update_vectors(np.array(ids, dtype=np.int64), vectors, np.array(gone_ids, dtype=np.int64),
                             generation)
        return {"added": len(added), "updated": len(changed) - len(added), "deleted": len(gone),
                "embedded": 0 if vectors is None else len(vectors)}

    def _update_vectors(self, ids: np.ndarray, vectors: np.ndarray | None, removed: np.ndarray,
                        generation: int) -> None:
        with self._index_lock:
            if self._vectors is None:
                self.vectors()
                return
            self._vectors.remove(removed)
            if vectors is not None and len(ids):
                self._vectors.upsert(ids, vectors)
            if generation != self._saved_generation():
                self._vectors.save(self.state_dir, generation)

    def _saved_generation(self) -> int | None:
        files = sorted(self.state_dir.glob("index-*.faiss"))
        return int(files[-1].stem.split("-")[1]) if len(files) == 1 else None

    def _resolve_links(self, source_ids: list[int], keys: set[str]) -> None:
        """Re-resolve the links of ``source_ids`` and every link whose target name is in ``keys``."""
        resolver = self._resolver_now()
        rows = dict(self.store.links_from(source_ids))
        rows.update(self.store.links_with_keys(keys))
        if not rows:
            return
        sources = self.store.notes_by_ids({link.src for link in rows.values()})
        resolved = {
            rowid: resolver.resolve(Link(link.target, link.kind, markdown=link.markdown), sources[link.src].path)
            for rowid, link in rows.items()
        }
        id_of = self._ids_of_paths({res.path for res in resolved.values() if res.path})
        self.store.set_resolutions(
            (rowid, id_of.get(res.path) if res.path else None, res.attachment) for rowid, res in resolved.items())

    def _ids_of_paths(self, paths: Iterable[str]) -> dict[str, int]:
        return {row.path: row.id for row in (self.store.note_by_path(p) for p in paths) if row is not None}

    def _assign_phases(self) -> None:
        rows = self.store.notes()
        notes = [_note_for_phases(row) for row in rows]
        assignment = assign_phases(notes, {row.path: row.mtime for row in rows}, self.config)
        self.store.set_phases({row.id: assignment.phase_of.get(row.path) for row in rows
                               if assignment.phase_of.get(row.path) != row.phase})
        self.store.set_json("phase_order", assignment.order)
        self.store.set_meta("phase_source", assignment.source)

    def rename(self, old: str, new: str) -> None:
        """Move a note, keeping its identity (id, embedding, postings); links are resolved again."""
        with self._write_lock:
            row = self.store.note_by_path(old)
            if row is None:
                self.index([new])
                return
            if self.store.note_by_path(new) is not None:
                self.index([old, new])
                return
            resolver = self._resolver_now()
            with self.store.transaction():
                self.store.rename_note(row.id, new, PurePosixPath(new).stem)
                resolver.remove(old)
                resolver.add(new)
                self._resolve_links([row.id], {target_key(old), target_key(new)})
                self._assign_phases()
                self.store.bump_generation()
            self.index([new])

    # ------------------------------------------------------------------------------------------------------
    # suggestions
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
        path = self._resolver_now().resolve_name(text)
        if path is None:
            raise NoteNotFoundError(f"no note named {note!r} in {self.vault} (is it indexed? run `vaultlearn index`)")
        real = (self.vault / path).resolve()
        if real != self.vault and self.vault not in real.parents:
            raise NoteNotFoundError(f"{note} resolves outside the vault")
        return path

    def is_current(self, path: str) -> bool:
        """Whether the stored state of ``path`` matches the file (same size and mtime)."""
        row = self.store.note_by_path(path)
        try:
            stat = (self.vault / path).stat()
        except OSError:
            return row is None
        return row is not None and (row.size, row.mtime) == (stat.st_size, stat.st_mtime)

    def suggest(self, note: str, k: int | None = None) -> list[Suggestion]:
        """Notes that ``note`` should link to and does not yet, best first. Uses no model."""
        k = k or self.config.suggest_k
        path = self.resolve_note(note)
        row = self.store.note_by_path(path)
        query_vec = self.store.embedding(row.id) if row else None
        if query_vec is None:
            raise NotIndexedError(f"{path} is not indexed yet: run `vaultlearn index`")
        neighbours = {b if a == row.id else a for a, b in self.store.neighbours([row.id])}
        edges = self.store.neighbours(neighbours | {row.id})
        raw = read_note_bytes(self.vault, path, self.config.max_note_bytes)
        text = parse_note(path, raw, self.config.max_embed_chars).text if raw is not None else None
        exclude = {row.id} | self.store.outgoing(row.id)
        vectors = self.vectors()
        with self._index_lock:
            candidates = build_candidates(row.id, query_vec, exclude, vectors.search, vectors.vectors, edges,
                                          self._names, text, self.config.candidate_pool)
        return self._present(rank(candidates, self.rank_weights(), k))

    def search(self, text: str, k: int | None = None) -> list[Suggestion]:
        """Notes nearest to a free text (loads the model)."""
        query = self.encoder().encode([text])[0]
        vectors = self.vectors()
        with self._index_lock:
            scores, ids = vectors.search(query, k or self.config.suggest_k)
        candidates = [Candidate(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
        return self._present([(c, c.similarity) for c in candidates])

    def rank_weights(self) -> RankWeights:
        stored = self.store.get_json("rank_weights") or {}
        return RankWeights(stored.get("graph", 0.0), stored.get("mention", 0.0))

    def _names(self, ids: Iterable[int]) -> dict[int, list[str]]:
        return {i: [row.title, *row.aliases] for i, row in self.store.notes_by_ids(ids).items()}

    def _present(self, ranked: list[tuple[Candidate, float]]) -> list[Suggestion]:
        rows = self.store.notes_by_ids({c.note_id for c, _ in ranked} | {s for c, _ in ranked for s in c.shared})
        out = []
        for cand, score in ranked:
            row = rows.get(cand.note_id)
            if row is None:
                continue
            shared_titles = [rows[s].title for s in cand.shared if s in rows]
            out.append(Suggestion(row.path, row.title, score, reason(cand, shared_titles), cand.similarity,
                                  len(cand.shared), cand.mentioned, row.phase))
        return out

    def held_out_cases(self, links: Iterable[tuple[int, int]]) -> list[HeldOutLink]:
        """For each visible link A→B: A's candidates built as if that one link did not exist, and B.

        The link's words stay in A's text (as when a writer mentions a note without linking it).
        """
        edges = [(a, b) for a, b, _ in self.store.edges()]
        adjacency: dict[int, set[int]] = {}
        outgoing: dict[int, set[int]] = {}
        for a, b in edges:
            adjacency.setdefault(a, set()).add(b)
            adjacency.setdefault(b, set()).add(a)
            outgoing.setdefault(a, set()).add(b)
        vectors = self.vectors()
        paths = {row.id: row.path for row in self.store.notes()}
        cases = []
        for a, b in links:
            query_vec = self.store.embedding(a)
            if query_vec is None or b not in paths:
                continue
            local = {(x, y) for x in adjacency[a] | {a} for y in adjacency.get(x, ())}
            visible = local - {(a, b), (b, a)} | ({(b, a)} if a in outgoing.get(b, ()) else set())
            raw = read_note_bytes(self.vault, paths[a], self.config.max_note_bytes)
            text = parse_note(paths[a], raw, self.config.max_embed_chars).text if raw is not None else None
            with self._index_lock:
                candidates = build_candidates(a, query_vec, {a} | (outgoing[a] - {b}), vectors.search,
                                              vectors.vectors, visible, self._names, text,
                                              self.config.candidate_pool)
            cases.append(HeldOutLink(tuple(candidates), b))
        return cases

    def fit_rank_weights(self, exclude: Collection[tuple[int, int]] = ()) -> dict:
        """Fit the blend of similarity, graph evidence and mentions on the vault's own visible links."""
        edges = sorted({(a, b) for a, b, _ in self.store.edges()} - set(exclude))
        weights, report = fit_weights(self.held_out_cases(sample_links(edges, FIT_SAMPLE, self.config.seed)))
        self.store.set_json("rank_weights", {"graph": weights.graph, "mention": weights.mention})
        self.store.set_json("rank_fit", report)
        return report

    # ------------------------------------------------------------------------------------------------------
    # reporting
    def status(self) -> dict:
        """Counts of what is indexed, the phases, and what is learned and pending."""
        links, unresolved = self.store.link_counts()
        rows = self.store.notes()
        order = self.store.get_json("phase_order", [])
        learned = self.store.get_json("learned_phases", [])
        return {
            "vault": str(self.vault),
            "notes": len(rows),
            "links": links,
            "unresolved_links": unresolved,
            "phases": order,
            "phase_source": self.store.get_meta("phase_source"),
            "notes_by_phase": {p: sum(r.phase == p for r in rows) for p in order},
            "embedded": self.store.embedded_count(),
            "index_size": len(self.vectors()) if rows else 0,
            "learned_phases": learned,
            "pending_phases": [p for p in order if p not in learned],
            "new_links_by_phase": self.new_links_by_phase(),
            "rank_weights": self.store.get_json("rank_weights"),
            "notes_with_warnings": sum(bool(r.warnings) for r in rows),
        }

    def new_links_by_phase(self) -> dict[str, int]:
        """Per phase, the resolved links from its notes not yet seen by learning."""
        phase_of = {row.id: row.phase for row in self.store.notes()}
        counts: dict[str, int] = {}
        for src, dst, _ in self.store.edges():
            phase = phase_of.get(src)
            if phase is not None:
                counts[phase] = counts.get(phase, 0) + 1
        seen = self.store.get_json("learned_link_counts", {})
        return {p: n - seen.get(p, 0) for p, n in counts.items() if n - seen.get(p, 0) > 0}

    def graph(self):
        """The link graph as a networkx MultiDiGraph keyed by vault path (unresolved targets included)."""
        import networkx as nx

        graph = nx.MultiDiGraph()
        rows = {row.id: row for row in self.store.notes()}
        for row in rows.values():
            graph.add_node(row.path, title=row.title, phase=row.phase or "", tags=" ".join(row.tags),
                           unresolved=False)
        for link in self.store.links():
            if link.attachment:
                continue
            source = rows[link.src].path
            if link.dst is None:
                target = link.target or source
                if target not in graph:
                    graph.add_node(target, title=PurePosixPath(target).name, phase="", tags="", unresolved=True)
            else:
                target = rows[link.dst].path
            graph.add_edge(source, target, kind=link.kind)
        return graph


def _phase_fields(note: Note) -> dict:
    """What phase assignment needs of a note, kept so phases can be recomputed without reparsing."""
    return {
        "frontmatter": {k: v for k, v in note.frontmatter.items() if isinstance(v, (str, int, float))},
        "tags": note.tags,
        "created": note.created.isoformat() if note.created else None,
    }


def _note_for_phases(row: NoteRow) -> Note:
    fields = row.phase_fields
    created = fields.get("created")
    return Note(path=row.path, title=row.title, text="", tags=fields.get("tags", []),
                frontmatter=fields.get("frontmatter", {}),
                created=datetime.fromisoformat(created) if created else None)
