"""The sqlite file of the store: its tables, and opening it migrated to this version of vaultlearn.

Migrations run once, on open, each in one transaction: schema 1 → 2 adds the links' display text (filled by
the next index, which ``relink`` asks for); link keys written by an older key rule are computed again with
:func:`vault.names.name_key`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import StateError
from .vault.names import name_key

SCHEMA_VERSION = 2  # 2: links keep their display text
LINK_KEY_RULE = "nfc-lower"  # links.target_key is vault.names.name_key; state keyed by casefold is re-keyed on open

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    phase TEXT,
    phase_fields TEXT NOT NULL DEFAULT '{}',
    aliases TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    warnings TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS links (
    src INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
    target TEXT NOT NULL,
    target_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    markdown INTEGER NOT NULL,
    dst INTEGER REFERENCES notes(id) ON DELETE SET NULL,
    attachment INTEGER NOT NULL DEFAULT 0,
    display TEXT
);
CREATE INDEX IF NOT EXISTS links_src ON links(src);
CREATE INDEX IF NOT EXISTS links_dst ON links(dst);
CREATE INDEX IF NOT EXISTS links_key ON links(target_key);
CREATE TABLE IF NOT EXISTS embeddings (
    note_id INTEGER PRIMARY KEY REFERENCES notes(id) ON DELETE CASCADE,
    vec BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS postings (
    note_id INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
    slot INTEGER NOT NULL,
    PRIMARY KEY (note_id, slot)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS postings_slot ON postings(slot);
CREATE TABLE IF NOT EXISTS mentions (
    src INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
    dst INTEGER NOT NULL REFERENCES notes(id) ON DELETE CASCADE,
    PRIMARY KEY (src, dst)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS arrays (
    key TEXT PRIMARY KEY,
    shape TEXT NOT NULL,
    data BLOB NOT NULL
);
"""  # mentions: which notes name which in their own words, unlinked; arrays: fitted float32 weights (the rank
# adapter). Both added beside schema 2: older versions ignore them


def open_database(db: Path) -> sqlite3.Connection:
    """A connection to the store at ``db`` (created when missing), its tables present and migrated."""
    try:
        conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(_SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise StateError(f"{db} is unreadable ({exc}); remove {db.parent} and index again") from exc
    version = _meta(conn, "schema_version")
    if version == "1":
        with transaction(conn):
            _migrate_from_1(conn)
    elif version is None:
        _set_meta(conn, "schema_version", str(SCHEMA_VERSION))
    elif int(version) != SCHEMA_VERSION:
        raise StateError(f"{db} has schema {version}, this vaultlearn needs {SCHEMA_VERSION}: index again")
    if _meta(conn, "link_key_rule") != LINK_KEY_RULE:
        with transaction(conn):
            _rekey_links(conn)
    return conn


def _migrate_from_1(conn: sqlite3.Connection) -> None:
    """Schema 1 → 2: links gain a display text column, filled by the next index (``relink`` is set)."""
    if "display" not in {row[1] for row in conn.execute("PRAGMA table_info(links)")}:
        conn.execute("ALTER TABLE links ADD COLUMN display TEXT")
    _set_meta(conn, "relink", "1")
    _set_meta(conn, "schema_version", str(SCHEMA_VERSION))


def _rekey_links(conn: sqlite3.Connection) -> None:
    """Store every link's target key as :func:`name_key` makes it (state written with an older key rule)."""
    rows = conn.execute("SELECT rowid, target, target_key FROM links").fetchall()
    keyed = ((name_key(target), rowid, key) for rowid, target, key in rows)
    conn.executemany("UPDATE links SET target_key = ? WHERE rowid = ?",
                     [(new, rowid) for new, rowid, key in keyed if new != key])
    _set_meta(conn, "link_key_rule", LINK_KEY_RULE)


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
