"""The rank context saved beside the state, so that a fresh process maps it from disk instead of building it.

Building the context from sqlite makes every note's Python objects and folds every name (about 2 s at 100k
notes); one `vaultlearn suggest` reads a few hundred notes. A process that writes the state (a full index, the
daemon) saves the committed context as one ``.npy`` per array (embeddings, the learned reading's maps and norms,
links, folders, phases, creation dates, tags, unlinked mentions, the fitted adapter, the links' display texts and
the hashed name phrases of phrases.py) in a folder that is renamed into place when complete (``rank-<key>``; older
ones are removed). A reader maps the arrays (``np.load(mmap_mode="r")``: only the pages a suggestion touches are
read) and reads the notes' rows from the store as it needs them.

The key (:func:`snapshot_key`) is the store's generation and mentions version, which the in-memory context is
cached by, with the embedded notes' count and largest id, so that a state rebuilt from scratch never reads an
older state's snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from vaultlearn.atomic import fsync_dir
from vaultlearn.index.context import NoteInfo, RankContext
from vaultlearn.index.learned import PhaseReading
from vaultlearn.index.mentions import MentionMatcher
from vaultlearn.index.phrases import HashedPhrases
from vaultlearn.paths import rank_snapshot_folder, rank_snapshot_folders
from vaultlearn.store import Store
from vaultlearn.vault.graph import VaultGraph

FORMAT = 4  # bumped when what is saved changes: a snapshot of another format is not read (2: phase maps,
# 3: creation dates, 4: the learned similarity read by the query's phase)
_READING = ("learned_maps", "learned_map_of", "learned_norms")  # the PhaseReading's arrays
_DENSE = ("ids", "vectors", *_READING, "folder", "phase", "created", "shown_links", "adapter")
_OPTIONAL = (*_READING, "adapter")  # None in a context: not saved (a sparse part not saved has no shape listed)
_MAPPED = ("vectors", "learned_norms")  # the large ones: mapped, read where touched; the rest is read whole


def snapshot_key(store: Store) -> str:
    """What a saved context must have been saved under to be this state's."""
    count, last = store.embedding_extent()
    return f"{store.generation}-{store.mentions_version}-{count}-{last}"


def save_snapshot(ctx: RankContext, root: Path, key: str) -> bool:
    """Save ``ctx`` as the snapshot of ``key`` under ``root`` unless one is there; drop other keys' snapshots.
    Returns whether it wrote one."""
    final = rank_snapshot_folder(root, key)
    if final.exists():
        return False
    phrases = ctx.mentions.phrases
    phrases = phrases if isinstance(phrases, HashedPhrases) else HashedPhrases.of(phrases)
    reading = (None,) * len(_READING) if ctx.learned is None else \
        (ctx.learned.maps, ctx.learned.map_of, ctx.learned.norms)
    dense = {"ids": ctx.ids, "vectors": ctx.vectors, **dict(zip(_READING, reading)), "folder": ctx.folder,
             "phase": ctx.phase, "created": ctx.created, "shown_links": ctx.shown_links, "adapter": ctx.fitted_adapter}
    sparse = {"links": ctx.graph.out, "tags": ctx.tags, "unlinked": ctx.unlinked}  # as (data, indices, indptr)
    manifest = {"format": FORMAT, "key": key, "shapes": {}, "texts": list(ctx.shown_texts)}
    tmp = root / f".{final.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir(parents=True)
    try:
        for name, array in {**dense, **{f"phrase_{k}": v for k, v in phrases.arrays().items()}}.items():
            if array is not None:
                _save(tmp / f"{name}.npy", np.asarray(array))
        for name, matrix in sparse.items():
            if matrix is not None:
                manifest["shapes"][name] = list(matrix.shape)
                for part in ("data", "indices", "indptr"):
                    _save(tmp / f"{name}_{part}.npy", getattr(matrix, part))
        with open(tmp / "manifest.json", "w", encoding="utf-8") as handle:
            json.dump(manifest, handle)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(tmp)
        os.replace(tmp, final)
    except OSError:  # another writer renamed the same snapshot into place first, or the disk refused
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    fsync_dir(root)
    for old in rank_snapshot_folders(root):
        if old != final:  # a reader may still map it: removal that fails (Windows) is retried by the next save
            shutil.rmtree(old, ignore_errors=True)
    return True


def load_snapshot(root: Path, key: str, store: Store) -> RankContext | None:
    """The context saved under ``key``, its arrays memory-mapped and its notes read from ``store`` when needed;
    None when there is none or it cannot be read (the caller builds the context)."""
    folder = rank_snapshot_folder(root, key)
    try:
        with open(folder / "manifest.json", encoding="utf-8") as handle:
            manifest = json.load(handle)
        if manifest.get("format") != FORMAT or manifest.get("key") != key:
            return None
        dense = {name: _load(folder / f"{name}.npy", name in _MAPPED, name in _OPTIONAL) for name in _DENSE}
        sparse = {name: sp.csr_matrix(tuple(_load(folder / f"{name}_{part}.npy")
                                            for part in ("data", "indices", "indptr")), shape=tuple(shape))
                  for name, shape in manifest["shapes"].items()}
        phrases = HashedPhrases(*(_load(folder / f"phrase_{name}.npy") for name in HashedPhrases.FIELDS))
        links, tags = sparse["links"], sparse["tags"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    notes = StoredNotes(store, dense["ids"])
    return RankContext(
        ids=dense["ids"], vectors=dense["vectors"], graph=VaultGraph.from_matrix(links),
        folder=dense["folder"], phase=dense["phase"], created=dense["created"], tags=tags, notes=notes,
        mentions=MentionMatcher(NoteNames(notes), phrases=phrases, prefetch=notes.prefetch),
        shown_links=dense["shown_links"],
        shown_texts=tuple(manifest["texts"]), learned=_reading(dense), unlinked=sparse.get("unlinked"),
        fitted_adapter=dense["adapter"])


class StaleSnapshotError(LookupError):
    """A saved context's note is gone from the state: another process changed it after the context was loaded."""


class StoredNotes(Sequence[NoteInfo]):
    """The notes of ``ids`` by position, each read from the store when first asked for; iterating reads them
    all in one query."""

    def __init__(self, store: Store, ids: np.ndarray):
        self._store, self._ids = store, ids
        self._read: dict[int, NoteInfo] = {}
        self._all: list[NoteInfo] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[p] for p in range(len(self))[position]]
        position = range(len(self))[int(position)]
        if self._all is not None:
            return self._all[position]
        if position not in self._read:
            self.prefetch([position])
        return self._read[position]

    def prefetch(self, positions: Sequence[int]) -> None:
        """Read the rows of the notes at ``positions`` not read yet, in one query."""
        if self._all is not None:
            return
        missing = {int(self._ids[p]): p for p in positions if p not in self._read}
        rows = self._store.ranking_rows(missing) if missing else {}
        for note_id, position in missing.items():
            if note_id not in rows:
                raise StaleSnapshotError(f"note {note_id} is in the saved rank context but no longer in the state")
            self._read[position] = NoteInfo(*rows[note_id])

    def __iter__(self) -> Iterator[NoteInfo]:
        if self._all is None:
            rows = self._store.ranking_rows()
            self._all = [NoteInfo(*rows[i]) for i in self._ids.tolist()]
        return iter(self._all)


class NoteNames(Sequence[list[str]]):
    """Each note's names (title, then aliases) by position, read from ``notes`` when asked for."""

    def __init__(self, notes: Sequence[NoteInfo]):
        self._notes = notes

    def __len__(self) -> int:
        return len(self._notes)

    def __getitem__(self, position):
        note = self._notes[position]
        return [note.title, *note.aliases]


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def _reading(dense: dict[str, np.ndarray | None]) -> PhaseReading | None:
    """The learned reading saved with a context, None when none was."""
    if dense[_READING[0]] is None:
        return None
    return PhaseReading(*(dense[name] for name in _READING))


def _load(path: Path, mapped: bool = False, optional: bool = False) -> np.ndarray | None:
    """The array at ``path``, read whole or ``mapped`` read-only; None for an ``optional`` part not saved."""
    if optional and not path.exists():
        return None
    return np.load(path, mmap_mode="r" if mapped else None, allow_pickle=False)
