"""The state under ``VAULT/.vaultlearn/``: one sqlite file (notes, links, embeddings, slot postings, metadata),
read and written through :class:`Store` (its tables and migrations: :mod:`store_schema`).

sqlite transactions make every update atomic: a process killed mid-write leaves the previous committed state.
Derived files (the FAISS index, model checkpoints) are written with :mod:`vaultlearn.atomic` and carry the
generation they were built from, so a stale one is detected and rebuilt rather than trusted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import StateError
from .paths import StatePaths
from .store_schema import open_database, transaction
from .vault.dates import epoch_days
from .vault.names import name_key


@dataclass(frozen=True)
class NoteRow:
    """A note as the store knows it."""

    id: int
    path: str
    title: str
    hash: str
    size: int
    mtime: float
    phase: str | None
    phase_fields: dict
    aliases: list[str]
    tags: list[str]
    warnings: list[str]


class NoteStat(NamedTuple):
    """What deciding whether a note changed needs: no JSON columns to decode (a re-index reads every note)."""

    id: int
    path: str
    hash: str
    size: int
    mtime: float


class PhaseRow(NamedTuple):
    """What recomputing phases needs of a note: no aliases, tags or warnings to decode (it reads every note)."""

    id: int
    path: str
    title: str
    mtime: float
    phase: str | None
    phase_fields: dict


@dataclass(frozen=True)
class LinkRow:
    """One stored link: its source note id, the target as typed, its kind, and the resolved note id."""

    src: int
    target: str
    kind: str
    markdown: bool
    dst: int | None
    attachment: bool


class Store:
    """Typed access to the sqlite state. Thread-safe: one connection, serialised by a lock."""

    def __init__(self, vault: Path, *, create: bool = True):
        paths = StatePaths(Path(vault))
        self.dir, db = paths.root, paths.database
        if not db.exists() and not create:
            raise StateError(f"{vault} has not been indexed yet: run `vaultlearn index {vault}`")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._db = open_database(db)
        self._lock = threading.RLock()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all."""
        with self._lock, transaction(self._db):
            yield

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _query_in(self, sql: str, values: Iterable, repeat: int = 1) -> list[tuple]:
        """Run ``sql`` whose ``{marks}`` placeholders take an IN list of ``values``, in chunks sqlite accepts."""
        values = list(values)
        out: list[tuple] = []
        for start in range(0, len(values), 400):
            chunk = values[start : start + 400]
            out += self._query(sql.format(marks=",".join("?" * len(chunk))), chunk * repeat)
        return out

    def _execute(self, sql: str, params: Sequence = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    # metadata ---------------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        self._execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_json(self, key: str, default=None):
        raw = self.get_meta(key)
        return default if raw is None else json.loads(raw)

    def set_json(self, key: str, value) -> None:
        self.set_meta(key, json.dumps(value, sort_keys=True))

    def bump_generation(self) -> int:
        """Mark the embeddings as changed; derived index files of older generations become stale."""
        generation = int(self.get_meta("generation", "0")) + 1
        self.set_meta("generation", str(generation))
        return generation

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation", "0"))

    # notes ------------------------------------------------------------------------------------------------
    _NOTE_COLUMNS = "id, path, title, hash, size, mtime, phase, phase_fields, aliases, tags, warnings"

    @staticmethod
    def _note(row: tuple) -> NoteRow:
        return NoteRow(
            id=row[0], path=row[1], title=row[2], hash=row[3], size=row[4], mtime=row[5], phase=row[6],
            phase_fields=json.loads(row[7]), aliases=json.loads(row[8]), tags=json.loads(row[9]),
            warnings=json.loads(row[10]),
        )

    def notes(self) -> list[NoteRow]:
        return [self._note(r) for r in self._query(f"SELECT {self._NOTE_COLUMNS} FROM notes ORDER BY path")]

    def note_stats(self) -> list[NoteStat]:
        """Id, path, content hash, size and mtime of every note."""
        return [NoteStat(*r) for r in self._query("SELECT id, path, hash, size, mtime FROM notes ORDER BY id")]

    def phase_rows(self) -> list[PhaseRow]:
        """Id, path, title, mtime, phase and phase fields of every note, by path."""
        rows = self._query("SELECT id, path, title, mtime, phase, phase_fields FROM notes ORDER BY path")
        return [PhaseRow(*r[:5], json.loads(r[5])) for r in rows]

    def phase_counts(self) -> dict[str | None, int]:
        """Notes per phase (None: notes without one)."""
        return dict(self._query("SELECT phase, COUNT(*) FROM notes GROUP BY phase"))

    def warned_count(self) -> int:
        """Notes that were indexed with a warning."""
        return int(self._query("SELECT COUNT(*) FROM notes WHERE warnings != '[]'")[0][0])

    def paths(self) -> list[str]:
        """Every stored note's vault-relative path."""
        return [row[0] for row in self._query("SELECT path FROM notes")]

    def note_by_path(self, path: str) -> NoteRow | None:
        rows = self._query(f"SELECT {self._NOTE_COLUMNS} FROM notes WHERE path = ?", (path,))
        return self._note(rows[0]) if rows else None

    def notes_by_ids(self, ids: Iterable[int]) -> dict[int, NoteRow]:
        rows = self._query_in(f"SELECT {self._NOTE_COLUMNS} FROM notes WHERE id IN ({{marks}})", ids)
        return {note.id: note for note in map(self._note, rows)}

    def ranking_rows(self, ids: Iterable[int] | None = None
                     ) -> dict[int, tuple[str, str, list, list, str | None, float | None]]:
        """``id → (path, title, aliases, tags, phase, created)`` of every note (of ``ids``): a light read for the
        ranking; ``created``: the creation date the note states (properties or a body line), in days since the
        epoch, None when it states none."""
        columns = "SELECT id, path, title, aliases, tags, phase, json_extract(phase_fields, '$.created') FROM notes"
        rows = self._query(columns) if ids is None else self._query_in(columns + " WHERE id IN ({marks})", ids)
        empty = "[]"
        return {r[0]: (r[1], r[2], [] if r[3] == empty else json.loads(r[3]), [] if r[4] == empty else json.loads(r[4]),
                       r[5], epoch_days(r[6])) for r in rows}

    def paths_by_ids(self, ids: Iterable[int]) -> dict[int, str]:
        """Vault path per note id (no JSON columns read)."""
        return dict(self._query_in("SELECT id, path FROM notes WHERE id IN ({marks})", ids))

    def ids_by_paths(self, paths: Iterable[str]) -> dict[str, int]:
        """Note id per stored vault path (paths not stored are left out)."""
        return dict(self._query_in("SELECT path, id FROM notes WHERE path IN ({marks})", paths))

    def upsert_note(self, path: str, title: str, hash_: str, size: int, mtime: float, phase_fields: dict,
                    aliases: list[str], tags: list[str], warnings: list[str]) -> int:
        """Insert or update a note's metadata; returns its id (stable across content changes)."""
        return self.upsert_notes([(path, title, hash_, size, mtime, phase_fields, aliases, tags, warnings)])[0]

    def upsert_notes(self, notes: Sequence[tuple]) -> list[int]:
        """:meth:`upsert_note` for many ``(path, title, hash, size, mtime, phase_fields, aliases, tags,
        warnings)`` tuples in one statement; returns their ids in order."""
        rows = [(path, title, hash_, size, mtime, json.dumps(phase_fields, default=str), json.dumps(aliases),
                 json.dumps(tags), json.dumps(warnings))
                for path, title, hash_, size, mtime, phase_fields, aliases, tags, warnings in notes]
        self._db_many(
            "INSERT INTO notes(path, title, hash, size, mtime, phase_fields, aliases, tags, warnings)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET title=excluded.title,"
            " hash=excluded.hash, size=excluded.size, mtime=excluded.mtime, phase_fields=excluded.phase_fields,"
            " aliases=excluded.aliases, tags=excluded.tags, warnings=excluded.warnings", rows)
        id_of = self.ids_by_paths(row[0] for row in rows)
        return [id_of[row[0]] for row in rows]

    def touch_notes(self, stats: Iterable[tuple[int, int, float]]) -> None:
        """Record new ``(id, size, mtime)`` stats of notes whose content did not change."""
        self._db_many("UPDATE notes SET size=?, mtime=? WHERE id=?", [(size, mtime, i) for i, size, mtime in stats])

    def rename_note(self, note_id: int, path: str, title: str) -> None:
        """Move a note to a new path, keeping its id (and so its embedding and postings)."""
        self._execute("UPDATE notes SET path=?, title=? WHERE id=?", (path, title, note_id))

    def delete_notes(self, ids: Iterable[int]) -> None:
        self._db_many("DELETE FROM notes WHERE id = ?", [(i,) for i in ids])

    def set_phases(self, phase_of: dict[int, str | None]) -> None:
        self._db_many("UPDATE notes SET phase = ? WHERE id = ?", [(p, i) for i, p in phase_of.items()])

    def _db_many(self, sql: str, rows: list[tuple]) -> None:
        with self._lock:
            self._db.executemany(sql, rows)

    # links ------------------------------------------------------------------------------------------------
    def replace_links(self, src: int, links: Iterable[tuple]) -> None:
        """Replace a note's outgoing links with ``(target, kind, markdown[, display[, dst, attachment]])`` tuples;
        one without ``dst`` and ``attachment`` is stored unresolved (resolved later)."""
        self.replace_links_of({src: links})

    def replace_links_of(self, links_by_src: Mapping[int, Iterable[tuple]]) -> None:
        """:meth:`replace_links` for many notes in two statements."""
        self._db_many("DELETE FROM links WHERE src = ?", [(src,) for src in links_by_src])
        self._db_many(
            "INSERT INTO links(src, target, target_key, kind, markdown, display, dst, attachment)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [_link_row(src, *link) for src, links in links_by_src.items() for link in links],
        )

    def links(self, where: str = "", params: Sequence = ()) -> list[LinkRow]:
        rows = self._query(f"SELECT src, target, kind, markdown, dst, attachment FROM links {where}", params)
        return [LinkRow(r[0], r[1], r[2], bool(r[3]), r[4], bool(r[5])) for r in rows]

    def links_with_keys(self, keys: Iterable[str]) -> list[tuple[int, LinkRow]]:
        """Links (with their rowid) whose target key is one of ``keys``: the ones a new or gone name can affect."""
        return self._links_in("target_key", keys)

    def links_from(self, src_ids: Iterable[int]) -> list[tuple[int, LinkRow]]:
        """Links (with their rowid) whose source is one of ``src_ids``."""
        return self._links_in("src", src_ids)

    def _links_in(self, column: str, values: Iterable) -> list[tuple[int, LinkRow]]:
        rows = self._query_in(
            f"SELECT rowid, src, target, kind, markdown, dst, attachment FROM links WHERE {column} IN ({{marks}})",
            values)
        return [(r[0], LinkRow(r[1], r[2], r[3], bool(r[4]), r[5], bool(r[6]))) for r in rows]

    def set_resolutions(self, rows: Iterable[tuple[int, int | None, bool]]) -> None:
        """Store ``(link rowid, resolved note id or None, is attachment)``."""
        self._db_many("UPDATE links SET dst = ?, attachment = ? WHERE rowid = ?",
                      [(dst, int(att), rowid) for rowid, dst, att in rows])

    def edges(self) -> list[tuple[int, int, str]]:
        """Resolved note→note links ``(src, dst, kind)``, self links excluded."""
        return self._query("SELECT src, dst, kind FROM links WHERE dst IS NOT NULL AND dst != src")

    def link_texts(self) -> list[tuple[int, int, str]]:
        """``(src, dst, display text)`` of every resolved note→note link written with a display text."""
        return self._query("SELECT src, dst, display FROM links"
                           " WHERE dst IS NOT NULL AND dst != src AND display IS NOT NULL")

    def neighbours(self, note_ids: Iterable[int]) -> list[tuple[int, int]]:
        """Undirected resolved edges touching any of ``note_ids``."""
        return self._query_in(
            "SELECT src, dst FROM links WHERE dst IS NOT NULL AND src != dst"
            " AND (src IN ({marks}) OR dst IN ({marks}))", note_ids, repeat=2)

    def edge_counts_by_phase(self) -> dict[str, int]:
        """Resolved note→note links (self links excluded) per phase of their source note."""
        return dict(self._query(
            "SELECT n.phase, COUNT(*) FROM links l JOIN notes n ON n.id = l.src"
            " WHERE l.dst IS NOT NULL AND l.dst != l.src AND n.phase IS NOT NULL GROUP BY n.phase"))

    def pair_counts_by_phase(self) -> dict[str, int]:
        """Distinct resolved note→note pairs (self links excluded) per phase of their source note: the links
        learning trains on, however many times or kinds a pair is written."""
        return dict(self._query(
            "SELECT n.phase, COUNT(*) FROM (SELECT DISTINCT src, dst FROM links WHERE dst IS NOT NULL AND dst != src)"
            " l JOIN notes n ON n.id = l.src WHERE n.phase IS NOT NULL GROUP BY n.phase"))

    def outgoing(self, note_id: int) -> set[int]:
        """Notes that ``note_id`` already links to (any kind)."""
        return {r[0] for r in self._query("SELECT dst FROM links WHERE src = ? AND dst IS NOT NULL", (note_id,))}

    def link_counts(self) -> tuple[int, int]:
        """(note links, unresolved note links): attachment links and self links are not counted."""
        rows = self._query(
            "SELECT SUM(dst IS NOT NULL AND dst != src), SUM(dst IS NULL AND attachment = 0) FROM links")
        return int(rows[0][0] or 0), int(rows[0][1] or 0)

    def get_array(self, key: str) -> np.ndarray | None:
        """The float32 array stored under ``key``, None when there is none."""
        rows = self._query("SELECT shape, data FROM arrays WHERE key = ?", (key,))
        if not rows:
            return None
        shape, data = rows[0]
        return np.frombuffer(data, dtype=np.float32).reshape(json.loads(shape)).copy()

    def set_array(self, key: str, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array, dtype=np.float32)
        self._execute("INSERT OR REPLACE INTO arrays(key, shape, data) VALUES (?, ?, ?)",
                      (key, json.dumps(list(array.shape)), array.tobytes()))

    # unlinked mentions -----------------------------------------------------------------------------------
    def replace_mentions(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Store every ``(src, dst)`` where note src names note dst in its own words without linking to it
        (all pairs replaced), and count the replacement in ``mentions_version``."""
        self._execute("DELETE FROM mentions")
        self._db_many("INSERT OR IGNORE INTO mentions(src, dst) VALUES (?, ?)", list(pairs))
        self.set_meta("mentions_version", str(self.mentions_version + 1))

    def mentions(self) -> list[tuple[int, int]]:
        return self._query("SELECT src, dst FROM mentions")

    @property
    def mentions_version(self) -> int:
        return int(self.get_meta("mentions_version", "0"))

    # embeddings -------------------------------------------------------------------------------------------
    def put_embeddings(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._db_many("INSERT OR REPLACE INTO embeddings(note_id, vec) VALUES (?, ?)",
                      [(int(i), vectors[n].tobytes()) for n, i in enumerate(ids)])

    def embedding(self, note_id: int) -> np.ndarray | None:
        rows = self._query("SELECT vec FROM embeddings WHERE note_id = ?", (note_id,))
        return np.frombuffer(rows[0][0], dtype=np.float32).copy() if rows else None

    def all_embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, vectors float32) of every embedded note, ordered by id."""
        rows = self._query("SELECT note_id, vec FROM embeddings ORDER BY note_id")
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        return ids, vectors

    def embedding_extent(self) -> tuple[int, int]:
        """How many notes are embedded, and the largest embedded note id (0 for none)."""
        count, last = self._query("SELECT COUNT(*), MAX(note_id) FROM embeddings")[0]
        return int(count), int(last or 0)

    def embedded_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM embeddings")[0][0])

    # memory-slot postings ---------------------------------------------------------------------------------
    def put_postings(self, ids: Sequence[int], slots: Sequence[np.ndarray]) -> None:
        """Replace the memory slots each note's tokens access."""
        self._db_many("DELETE FROM postings WHERE note_id = ?", [(int(i),) for i in ids])
        self._db_many("INSERT INTO postings(note_id, slot) VALUES (?, ?)",
                      [(int(i), int(s)) for i, note_slots in zip(ids, slots) for s in note_slots])

    def notes_touching(self, slots: Iterable[int]) -> set[int]:
        """Ids of notes whose postings meet ``slots``."""
        rows = self._query_in("SELECT DISTINCT note_id FROM postings WHERE slot IN ({marks})", map(int, slots))
        return {r[0] for r in rows}

    def notes_without_postings(self) -> set[int]:
        return {r[0] for r in self._query(
            "SELECT id FROM notes WHERE id NOT IN (SELECT DISTINCT note_id FROM postings)")}


def _link_row(src: int, target: str, kind: str, markdown: bool, display: str | None = None, dst: int | None = None,
              attachment: bool = False) -> tuple:
    """The values of one ``links`` row."""
    return src, target, name_key(target), kind, int(markdown), display, dst, int(attachment)
