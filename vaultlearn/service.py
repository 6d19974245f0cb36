"""VaultService: the one place that knows the order of work. The CLI and the daemon call it.

files → scan/parse → store (notes, links) → resolve → phases → embed (changed notes only) → vector index
→ rank weights. Learning: phase links → ContinualLearner → changed memory slots → affected notes → re-embed.

Thread model: one writer at a time (``index``, ``rename``, ``learn`` take the write lock, which is also the
vault's writer lock across processes: another ``vaultlearn index`` or daemon waits for it); readers
(``suggest``, ``search``, ``status``) may run concurrently and see the last committed state: sqlite
transactions are serialised by the store's lock and the vector index is swapped under its own lock.
Nothing here imports torch until a note has to be embedded or a phase learned.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from .config import Config
from .errors import NotAVaultError, NoteNotFoundError, NotIndexedError, VaultlearnError, require_finite
from .eval.traces import remove_traces
from .index.context import NoteInfo, RankContext
from .index.features import FEATURES
from .index.fit import COSINE, LinearRanker, fit_ranker
from .index.holdout import hidden_cases, sample_hidden
from .index.knn import nearest
from .index.mentions import plain_text
from .index.suggest import Suggestion, suggest_for
from .index.vectors import VectorIndex
from .lock import WriterLock
from .store import NoteRow, NoteStat, Store, state_dir, target_key
from .model.manifest import read_manifest
from .vault.note import Link, Note
from .vault.parse import parse_note
from .vault.phases import assign_phases
from .vault.read import read_notes
from .vault.resolve import LinkResolver
from .vault.scan import ScannedFile, is_ignored, read_note_bytes, scan_vault

log = logging.getLogger(__name__)

WRITER_LOCK = "writer.lock"  # one process writes the state at a time (vaultlearn.lock)
FIT_SAMPLE = 800  # visible links hidden (one per source note, all at once) to fit the reranker
KEEP_WORDS_SHARE = 0.75  # hidden links whose words stay in the source text while fitting (the rest lose every trace)
EMBED_CHUNK = 1024  # notes embedded at a time while worker processes parse the next ones
REFIT_SHARE = 0.02  # a full index refits the rank weights when the link count moved by more than this share


class VaultService:
    """Index, suggest, learn and report on one vault. Owns ``VAULT/.vaultlearn/``."""

    def __init__(self, vault: Path | str, config: Config | None = None, *, create: bool = True,
                 on_wait: Callable[[str], None] | None = None):
        """``on_wait`` is told (once per wait) that another process holds the vault's writer lock; default: a
        logged warning."""
        vault = Path(vault).expanduser()
        if not vault.is_dir():
            raise NotAVaultError(f"{vault} is not a folder: give the path of an Obsidian vault")
        self.vault = vault.resolve()
        self.config = config or Config.load(self.vault)
        self.store = Store(self.vault, create=create)
        say = on_wait or log.warning
        self._write_lock = WriterLock(
            self.state_dir / WRITER_LOCK,
            lambda holder: say(f"waiting for {holder}, which is writing to {self.state_dir}"))
        self._index_lock = threading.RLock()
        self._model_lock = threading.Lock()  # one load, however many threads ask at once (the daemon preloads)
        self._vectors: VectorIndex | None = None
        self._vectors_generation: int | None = None
        self._encoder = None
        self._learner = None
        self._resolver: LinkResolver | None = None
        self._rank_context: tuple[int, RankContext] | None = None

    def close(self) -> None:
        """Release the state files."""
        self.store.close()

    @property
    def state_dir(self) -> Path:
        return state_dir(self.vault)

    # ------------------------------------------------------------------------------------------------------
    # model and index access (lazy)
    def encoder(self):
        """The NoteEncoder with the last committed learned memory, loaded on first use (imports torch)."""
        if self._encoder is None:
            self._load_model()
        return self._encoder

    def learner(self):
        """The ContinualLearner holding the learned state (loaded with the encoder)."""
        if self._learner is None:
            self._load_model()
        return self._learner

    def _load_model(self) -> None:
        with self._model_lock:
            if self._encoder is not None and self._learner is not None:
                return  # another thread loaded it while this one waited
            from .model.continual import ContinualLearner
            from .model.encoder import NoteEncoder

            encoder = NoteEncoder(self.config)
            self._learner = ContinualLearner.load(self.model_dir, encoder, self.config)
            encoder.encode(["warm-up"])  # the first forward pass sets up the kernels: not on a user's note
            self._encoder = encoder

    @property
    def model_dir(self) -> Path:
        return self.state_dir / "model"

    def model_key(self) -> str:
        """Identifies the base model without loading it; a change means every note is embedded again."""
        key = f"{os.environ.get('VAULTLEARN_MODEL') or self.config.model}|{self.config.max_seq_length}"
        return key + ("|cpu-bfloat16" if self.config.cpu_precision == "bfloat16" else "")

    def vectors(self) -> VectorIndex:
        """The vector index of the last committed generation (loaded from its file, rebuilt when stale)."""
        with self._index_lock:
            generation = self.store.generation
            if self._vectors is None:
                shape = (self.config.approximate_index_above, self.config.approximate_probe_share)
                self._vectors = VectorIndex.load(self.state_dir, generation, *shape)
                if self._vectors is None:
                    ids, vecs = self.store.all_embeddings()
                    self._vectors = VectorIndex.build(ids, vecs, *shape)
                    if len(ids):
                        self._vectors.save(self.state_dir, generation)
                self._vectors_generation = generation
            return self._vectors

    def _resolver_now(self) -> LinkResolver:
        if self._resolver is None:
            self._resolver = LinkResolver(self.store.paths())
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
            stored = {row.path: row for row in self.store.note_stats()}
            warnings: list[tuple[str, str]] = []  # (path, message)
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
            force = (self.store.get_meta("model_key") not in (None, self.model_key())
                     or self._memory_generation_on_disk() != int(self.store.get_meta("memory_generation", "0")))
            changed, touched, vanished, embedded = self._read_and_embed(present, stored, force, progress, warnings)
            gone |= vanished & set(stored)
            report = self._commit(stored, changed, touched, gone, embedded, force)
            if paths is None and self._links_changed_since_fit():
                report["rank_fit"] = self.fit_ranker()
        report["warnings"] = warnings + [(note.path, w) for note, _, _ in changed for w in note.warnings]
        report["seconds"] = round(time.perf_counter() - started, 3)
        report["peak_memory_mb"] = _peak_memory_mb()
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

    def _memory_generation_on_disk(self) -> int:
        manifest = read_manifest(self.model_dir)
        return manifest["generation"] if manifest else 0

    def _sync_learned_state(self) -> None:
        """Record, with the embeddings just written, which learned memory produced them."""
        manifest = read_manifest(self.model_dir) or {"generation": 0, "learned_phases": []}
        self.store.set_meta("memory_generation", str(manifest["generation"]))
        self.store.set_json("learned_phases", manifest["learned_phases"])

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

    def _read_and_embed(self, present: dict[str, ScannedFile], stored: dict[str, NoteStat], force: bool,
                        progress: bool, warnings: list[tuple[str, str]],
                        ) -> tuple[list[tuple[Note, ScannedFile, str]], list[tuple[int, ScannedFile]],
                                   set[str], tuple[np.ndarray, list[np.ndarray] | None] | None]:
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
        return changed, touched, vanished, _concatenate(parts)

    def _embed(self, notes: list[Note]) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Embeddings of ``notes`` and, once a memory exists, the memory slots each note reads."""
        encoder = self.encoder()
        texts = [n.text for n in notes]
        if encoder.memory is None:
            return encoder.encode(texts), None
        return encoder.encode_with_slots(texts)

    def _commit(self, stored: dict[str, NoteStat], changed, touched, gone: set[str], embedded,
                force: bool) -> dict:
        """Write one consistent new state: notes, links, resolutions, phases, embeddings, index."""
        vectors, slots = embedded if embedded is not None else (None, None)
        resolver = self._resolver_now()
        added = [note.path for note, _, _ in changed if note.path not in stored]
        with self.store.transaction():
            gone_ids = [stored[p].id for p in gone]
            self.store.delete_notes(gone_ids)
            ids = self.store.upsert_notes([
                (note.path, note.title, digest, scanned.size, scanned.mtime, _phase_fields(note), note.aliases,
                 note.tags, note.warnings) for note, scanned, digest in changed])
            self.store.replace_links_of({i: _link_rows(note)
                                         for i, (note, _, _) in zip(ids, changed)})
            self.store.touch_notes((note_id, scanned.size, scanned.mtime) for note_id, scanned in touched)
            for path in gone:
                resolver.remove(path)
            for path in added:
                resolver.add(path)
            self._resolve_links(ids, {target_key(p) for p in [*gone, *added]})
            if changed or gone:
                self._assign_phases()
            if vectors is not None:
                self.store.put_embeddings(ids, vectors, [digest for _, _, digest in changed])
            if slots is not None:
                self.store.put_postings(ids, slots)
            self.store.set_meta("model_key", self.model_key())
            if force or self.store.get_meta("memory_generation") is None:
                self._sync_learned_state()
            generation = self.store.bump_generation() if (changed or gone) else self.store.generation
        self._update_vectors(np.array(ids, dtype=np.int64), vectors, np.array(gone_ids, dtype=np.int64),
                             generation)
        return {"added": len(added), "updated": len(changed) - len(added), "deleted": len(gone),
                "embedded": 0 if vectors is None else len(vectors)}

    def _update_vectors(self, ids: np.ndarray, vectors: np.ndarray | None, removed: np.ndarray,
                        generation: int) -> None:
        with self._index_lock:
            if self._vectors is None:
                if len(ids) or len(removed):  # else nothing to update: the next vectors() loads the file
                    self.vectors()  # loads the file of this generation, or builds and saves it from the store
                return
            self._vectors.remove(removed)
            if vectors is not None and len(ids):
                self._vectors.upsert(ids, vectors)
            if generation != self._vectors_generation:
                self._vectors.save(self.state_dir, generation)
                self._vectors_generation = generation

    def _resolve_links(self, source_ids: list[int], keys: set[str]) -> None:
        """Re-resolve the links of ``source_ids`` and every link whose target name is in ``keys``."""
        resolver = self._resolver_now()
        rows = dict(self.store.links_from(source_ids))
        rows.update(self.store.links_with_keys(keys))
        if not rows:
            return
        sources = self.store.paths_by_ids({link.src for link in rows.values()})
        resolved = {
            rowid: resolver.resolve(Link(link.target, link.kind, markdown=link.markdown), sources[link.src])
            for rowid, link in rows.items()
        }
        id_of = self.store.ids_by_paths({res.path for res in resolved.values() if res.path})
        self.store.set_resolutions(
            (rowid, id_of.get(res.path) if res.path else None, res.attachment) for rowid, res in resolved.items())

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
    # learning
    def learn(self, phase: str | None = None, *, force: bool = False,
              progress: Callable[[dict], None] | None = None) -> dict:
        """Learn the pending phases in order (or just ``phase``); commit each only if validation passes.

        A seeded share of each phase's links is held out (:mod:`model.validation`); the candidate is compared
        with the current model on them and on the earlier phases' held-out links. A phase that does not gain,
        or costs an earlier phase, is declined: the current model stays, the reason is reported and recorded,
        and the phase is not tried again until its links change (``force`` commits anyway). A committed phase
        commits twice, model first: the learner's manifest swap, then one sqlite transaction with the
        re-embedded notes. A crash between the two is repaired by the next ``index`` (the memory generation on
        disk differs from the one the embeddings were made with, so every note is re-embedded).
        """
        from .model.continual import PhaseData
        from .model.validation import held_out

        with self._write_lock:
            self.index()
            order = self.phases()
            if phase is not None and phase not in order:
                raise VaultlearnError(f"no phase {phase!r}; the phases are: {', '.join(order) or 'none'}")
            todo = [phase] if phase else self._learnable(order, force)
            rows = self.store.notes()
            texts = self._texts(rows)
            position = {row.id: i for i, row in enumerate(rows)}
            edges = sorted({(position[a], position[b]) for a, b, _ in self.store.edges()})
            phase_of = [row.phase for row in rows]
            by_phase: dict[str, list[tuple[int, int]]] = {}
            for a, b in edges:
                if phase_of[a] is not None:
                    by_phase.setdefault(phase_of[a], []).append((a, b))
            heldout, train = {}, {}
            for name, links in by_phase.items():
                names = [(rows[a].path, rows[b].path) for a, b in links]
                out = held_out(links, names, self.config.learn_validation_share, self.config.seed)
                heldout[name] = [link for i, link in enumerate(links) if i in out]
                train[name] = [link for i, link in enumerate(links) if i not in out]
            hidden = {link for links in heldout.values() for link in links}
            adjacency: list[set[int]] = [set() for _ in rows]
            for a, b in edges:
                if (a, b) not in hidden:
                    adjacency[a].add(b)
                    adjacency[b].add(a)
            reports = []
            for name in todo:
                learner = self.learner()
                if name in learner.learned_phases:
                    continue
                in_phase = {i for i, row in enumerate(rows) if row.phase == name}
                learned = set(learner.learned_phases)
                background = [i for i, row in enumerate(rows)
                              if (row.phase in learned if learned else i not in in_phase)]
                data = PhaseData(texts, np.array(sorted(in_phase), dtype=np.int64), train.get(name, []),
                                 np.array(background, dtype=np.int64), adjacency)
                report_progress = (lambda f, name=name: progress({"phase": name, "progress": f})) if progress else None
                links = len(by_phase.get(name, []))
                try:
                    result = learner.learn_phase(name, data, progress=report_progress)
                    candidate = self._candidate(name, result, rows, texts)
                    check = self._validate(name, order, candidate, rows, heldout, edges)
                    if check["commit"] or force:
                        report = self._commit_learned(name, result, rows, texts, in_phase, links, candidate)
                    else:
                        self._encoder = self._learner = None  # back to the committed model
                        report = self._decline(name, result, links)
                except BaseException:
                    self._encoder = self._learner = None  # the next use reloads the last committed state
                    raise
                report.update(committed=check["commit"] or force, forced=force and not check["commit"],
                              reason=check["reason"], validation={k: v for k, v in check.items()
                                                                  if k not in ("commit", "reason")})
                self._record_validation(report)
                reports.append(report)
            return {"phases": reports, "learned_phases": self.store.get_json("learned_phases", [])}

    def _learnable(self, order: list[str], force: bool) -> list[str]:
        """Phases to learn: not learned, and (unless ``force``) not declined with the links they still have."""
        learned = set(self.store.get_json("learned_phases", []))
        declined = {} if force else self._declined_now()
        return [p for p in order if p not in learned and p not in declined]

    def _declined_now(self) -> dict[str, str]:
        """Phases whose last learning was declined and whose link count has not changed since: the reason."""
        records = self.store.get_json("learn_validation", {})
        if all(r["committed"] for r in records.values()):
            return {}
        counts: dict[str, int] = {}
        phase_of = {row.id: row.phase for row in self.store.notes()}
        for src, _ in {(src, dst) for src, dst, _ in self.store.edges()}:
            if phase_of.get(src) is not None:
                counts[phase_of[src]] = counts.get(phase_of[src], 0) + 1
        return {p: r["reason"] for p, r in records.items()
                if not r["committed"] and r["links"] == counts.get(p, 0)}

    def _record_validation(self, report: dict) -> None:
        records = self.store.get_json("learn_validation", {})
        keep = ("links", "committed", "forced", "reason", "validation")
        with self.store.transaction():
            self.store.set_json("learn_validation", {**records, report["phase"]: {k: report[k] for k in keep}})

    def _candidate(self, phase: str, result: dict, rows: list[NoteRow], texts: list[str]) -> dict:
        """The learned model's embeddings of the notes whose memory slots changed (and of unposted notes)."""
        encoder = self.encoder()
        position = {row.id: i for i, row in enumerate(rows)}
        affected = self.store.notes_touching(result["updated_slots"]) | self.store.notes_without_postings()
        ids = np.array(sorted(i for i in affected if i in position), dtype=np.int64)
        vectors, slots = encoder.encode_with_slots([texts[position[i]] for i in ids])
        require_finite(vectors, f"embeddings after learning phase {phase!r}")
        return {"ids": ids, "vectors": vectors, "slots": slots}

    def _validate(self, phase: str, order: list[str], candidate: dict, rows: list[NoteRow],
                  heldout: dict[str, list[tuple[int, int]]], edges: list[tuple[int, int]]) -> dict:
        """:func:`model.validation.compare` of the committed embeddings against the candidate's."""
        from .model.validation import compare

        ids, vectors = self.store.all_embeddings()
        position = {row.id: i for i, row in enumerate(rows)}
        current = np.zeros((len(rows), vectors.shape[1] if len(vectors) else 1), dtype=np.float32)
        for i, v in zip(ids, vectors):
            if int(i) in position:
                current[position[int(i)]] = v
        changed = current.copy()
        for i, v in zip(candidate["ids"], candidate["vectors"]):
            changed[position[int(i)]] = v
        earlier = order[: order.index(phase)]
        return compare(current, changed, heldout, phase, earlier, edges, self.config)

    def _decline(self, phase: str, result: dict, links: int) -> dict:
        """What a declined phase reports: what was tried; nothing is saved or re-embedded."""
        return {"phase": phase, "links": links, "steps": result["steps"], "seconds": round(result["seconds"], 2),
                "loss_start": result["loss_start"], "loss_end": result["loss_end"],
                "updated_slots": int(len(result["updated_slots"])), "reembedded": 0, "reembedded_share": 0.0,
                "drift_cosine": 0.0, "top10_changed": 0.0}

    def _texts(self, rows: list[NoteRow]) -> list[str]:
        """The embedded text of every note (re-read and parsed; a vanished file leaves its title)."""
        texts = []
        for row in rows:
            raw = read_note_bytes(self.vault, row.path, self.config.max_note_bytes)
            texts.append(parse_note(row.path, raw, self.config.max_embed_chars).text if raw else row.title)
        return texts

    def _commit_learned(self, phase: str, result: dict, rows: list[NoteRow], texts: list[str],
                        in_phase: set[int], links: int, candidate: dict) -> dict:
        """Save the learner and the re-embedded notes (``candidate``), measure drift, commit."""
        ids, vectors, slots = candidate["ids"], candidate["vectors"], candidate["slots"]
        position = {row.id: i for i, row in enumerate(rows)}
        old_ids = np.array([row.id for i, row in enumerate(rows) if i not in in_phase], dtype=np.int64)
        before = {int(i): self.store.embedding(int(i)) for i in ids}
        cosine_change = sum(1.0 - float(before[int(i)] @ v) for i, v in zip(ids, vectors)
                            if before[int(i)] is not None and position[int(i)] not in in_phase)
        probe = old_ids[np.random.default_rng(self.config.seed).permutation(len(old_ids))[:300]]
        top_before = self._top10(probe)
        self.learner().save(self.model_dir)
        with self.store.transaction():
            self.store.put_embeddings(ids, vectors, [rows[position[int(i)]].hash for i in ids])
            self.store.put_postings(ids, slots)
            self._sync_learned_state()
            counts = self.store.get_json("learned_link_counts", {})
            self.store.set_json("learned_link_counts", {**counts, phase: links})
            generation = self.store.bump_generation()
        self._update_vectors(ids, vectors, np.zeros(0, dtype=np.int64), generation)
        top_after = self._top10(probe)
        changed = sum(top_before[i] != top_after[i] for i in top_before)
        return {
            "phase": phase, "links": links, "steps": result["steps"], "seconds": round(result["seconds"], 2),
            "loss_start": result["loss_start"], "loss_end": result["loss_end"],
            "updated_slots": int(len(result["updated_slots"])), "reembedded": int(len(ids)),
            "reembedded_share": len(ids) / max(1, len(rows)),
            "drift_cosine": cosine_change / max(1, len(old_ids)),
            "top10_changed": changed / max(1, len(top_before)),
        }

    def _top10(self, ids: np.ndarray) -> dict[int, tuple[int, ...]]:
        """The ten nearest notes of each of ``ids`` by the stored embeddings (itself excluded), in one exact
        batched search (on a GPU when FAISS has one)."""
        all_ids, all_vectors = self.store.all_embeddings()
        row_of = {int(i): n for n, i in enumerate(all_ids)}
        probe = [int(i) for i in ids if int(i) in row_of]
        if not probe:
            return {}
        _, hits = nearest(all_vectors, 11, all_vectors[[row_of[i] for i in probe]])
        return {i: tuple(int(all_ids[h]) for h in row if h >= 0 and all_ids[h] != i)[:10]
                for i, row in zip(probe, hits)}

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
        path = self._stored_path(text) or self._resolver_now().resolve_name(text)
        if path is None:
            raise NoteNotFoundError(f"no note named {note!r} in {self.vault} (is it indexed? run `vaultlearn index`)")
        real = (self.vault / path).resolve()
        if real != self.vault and self.vault not in real.parents:
            raise NoteNotFoundError(f"{note} resolves outside the vault")
        return path

    def notes_named(self, note: str) -> list[str]:
        """Every indexed note a link-style name could mean, the one :meth:`resolve_note` picks first; more than
        one when the name is ambiguous (Obsidian then picks the shortest path, and so does vaultlearn)."""
        return self._resolver_now().notes_named(note)

    def _stored_path(self, text: str) -> str | None:
        """``text`` itself, or with ``.md`` added, when that is an indexed note's exact path (no resolver needed)."""
        for path in (text, f"{text}.md"):
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

    def suggest(self, note: str, k: int | None = None) -> list[Suggestion]:
        """Notes that ``note`` should link to and does not yet, best first. Uses no model."""
        k = k or self.config.suggest_k
        path = self.resolve_note(note)
        row = self.store.note_by_path(path)
        ctx = self.rank_context()
        position = ctx.position.get(row.id) if row else None
        if position is None:
            raise NotIndexedError(f"{path} is not indexed yet: run `vaultlearn index`")
        raw = read_note_bytes(self.vault, path, self.config.max_note_bytes)
        text = self._plain_text(path, raw) if raw is not None else None
        return suggest_for(ctx, self.ranker(), position, ctx.vectors[position], text, k, self.config.candidate_pool)

    def search(self, text: str, k: int | None = None) -> list[Suggestion]:
        """Notes nearest to a free text (loads the model)."""
        query = self.encoder().encode([text])[0]
        vectors = self.vectors()
        with self._index_lock:
            scores, ids = vectors.search(query, k or self.config.suggest_k)
        rows = self.store.notes_by_ids(int(i) for i in ids[0] if i >= 0)
        return [Suggestion(rows[int(i)].path, rows[int(i)].title, float(s), f"similar text ({s:.2f})", float(s), 0,
                           False, rows[int(i)].phase) for s, i in zip(scores[0], ids[0]) if int(i) in rows]

    def ranker(self) -> LinearRanker:
        """The vault's fitted reranker (plain cosine before the first fit or when the fit did not beat it)."""
        stored = self.store.get_json("rank_model")
        if not stored or not set(stored["features"]) <= set(FEATURES):  # not fitted, or by another version
            return COSINE
        return LinearRanker.from_json(stored)

    def rank_context(self) -> RankContext:
        """Embeddings, link graph, names, folders, tags and phases of the committed state (cached per generation)."""
        generation = self.store.generation
        if self._rank_context is None or self._rank_context[0] != generation:
            ids, vectors = self.store.all_embeddings()
            rows = self.store.ranking_rows()
            notes = [NoteInfo(*rows[i]) for i in ids.tolist()]
            edges = [(a, b) for a, b, _ in self.store.edges()]
            self._rank_context = (generation, RankContext.build(ids, vectors, edges, notes, self.store.link_texts()))
        return self._rank_context[1]

    def _plain_text(self, path: str, raw: bytes, hidden_names: list[str] | None = None,
                    keep_words: bool = False) -> str:
        """The note's own words for the mention feature; ``hidden_names``: a hidden link's target, whose
        words stay as plain text (``keep_words``) or are removed with every other trace of it."""
        markdown = raw.decode("utf-8", errors="replace")
        if hidden_names and not keep_words:
            markdown = remove_traces(markdown, hidden_names)
        return plain_text(path, markdown, hidden_names if keep_words else ())

    def hidden_texts(self, ctx: RankContext, hidden, keep_words) -> list[str | None]:
        """The own words of each hidden link's source, the link's words kept or removed per ``keep_words``."""
        texts = []
        for (a, b), keep in zip(hidden, keep_words):
            raw = read_note_bytes(self.vault, ctx.notes[a].path, self.config.max_note_bytes)
            target = ctx.notes[b]
            names = [target.path, *target.aliases]
            texts.append(None if raw is None else self._plain_text(ctx.notes[a].path, raw, names, bool(keep)))
        return texts

    def fit_ranker(self, exclude_sources: Collection[int] = ()) -> dict:
        """Fit the reranker on the vault's own visible links (hide-and-rank) and store it.

        Most hidden links keep their words in the source's text (a plain mention), the others lose every
        trace (KEEP_WORDS_SHARE), so the model learns both the mention and what finds a link with no words
        (measured on both dev vaults: a share of 0.75 kept the no-trace figures of 0.5 and lifted the
        standard ones). Sources in ``exclude_sources`` (note ids) are not used.
        """
        started, cpu = time.perf_counter(), time.process_time()
        ctx = self.rank_context()
        skip = [ctx.position[i] for i in exclude_sources if i in ctx.position]
        hidden = sample_hidden(ctx, FIT_SAMPLE, self.config.seed, skip)
        keep_words = np.random.default_rng(self.config.seed).random(len(hidden)) < KEEP_WORDS_SHARE
        pairs, targets = hidden_cases(ctx, hidden, self.hidden_texts(ctx, hidden, keep_words),
                                      self.config.candidate_pool)
        ranker, report = fit_ranker(pairs, targets, seed=self.config.seed)
        report = {**report, "links": self.store.link_counts()[0], "seconds": round(time.perf_counter() - started, 3),
                  "cpu_seconds": round(time.process_time() - cpu, 3)}
        with self.store.transaction():
            self.store.set_json("rank_model", ranker.to_json())
            self.store.set_json("rank_fit", report)
        return report

    def _links_changed_since_fit(self) -> bool:
        """Whether the reranker was never fitted (by this version) or the link count moved by more than
        REFIT_SHARE. The stored count and the current one are the same quantity: ``Store.link_counts()[0]``.
        """
        fit, model = self.store.get_json("rank_fit"), self.store.get_json("rank_model")
        if fit is None or model is None or not set(model["features"]) <= set(FEATURES):
            return True
        links = self.store.link_counts()[0]
        return abs(links - fit.get("links", 0)) > REFIT_SHARE * max(1, fit.get("links", 0))

    # ------------------------------------------------------------------------------------------------------
    # reporting
    def phases(self) -> list[str]:
        """The vault's phases in learning order, as last indexed."""
        return self.store.get_json("phase_order", [])

    def status(self) -> dict:
        """Counts of what is indexed, the phases, and what is learned and pending.

        ``repair_due``: the learned model on disk is not the one the stored embeddings were made with (a
        process was killed between learning's two commits); the next ``index`` or ``learn`` re-embeds every note.
        """
        links, unresolved = self.store.link_counts()
        by_phase = self.store.phase_counts()
        notes = sum(by_phase.values())
        order = self.store.get_json("phase_order", [])
        learned = self.store.get_json("learned_phases", [])
        declined = self._declined_now()
        return {
            "vault": str(self.vault),
            "notes": notes,
            "links": links,
            "unresolved_links": unresolved,
            "phases": order,
            "phase_source": self.store.get_meta("phase_source"),
            "notes_by_phase": {p: by_phase.get(p, 0) for p in order},
            "embedded": self.store.embedded_count(),
            "index_size": len(self.vectors()) if notes else 0,
            "learned_phases": learned,
            "pending_phases": [p for p in order if p not in learned and p not in declined],
            "declined_phases": declined,
            "learn_validation": self.store.get_json("learn_validation", {}),
            "new_links_by_phase": self.new_links_by_phase(),
            "rank_weights": dict(zip(self.ranker().features, self.ranker().coef)),
            "notes_with_warnings": self.store.warned_count(),
            "repair_due": notes > 0 and (self._memory_generation_on_disk()
                                         != int(self.store.get_meta("memory_generation", "0"))),
        }

    def new_links_by_phase(self) -> dict[str, int]:
        """Per phase, the resolved links from its notes not yet seen by learning."""
        counts = self.store.edge_counts_by_phase()
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


def _link_rows(note: Note) -> list[tuple[str, str, bool, str | None]]:
    return [(link.target, link.kind, link.markdown, link.display) for link in note.links]


def _peak_memory_mb() -> int | None:
    """This process's peak resident memory so far, in MiB (None where the OS does not say: Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10))  # bytes on macOS, KiB on Linux


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


def _note_for_phases(row: NoteRow) -> Note:
    fields = row.phase_fields
    created = fields.get("created")
    return Note(path=row.path, title=row.title, text="", tags=fields.get("tags", []),
                frontmatter=fields.get("frontmatter", {}),
                created=datetime.fromisoformat(created) if created else None)
