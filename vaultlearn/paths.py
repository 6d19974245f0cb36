"""StatePaths: the name of every file and folder vaultlearn keeps under ``VAULT/.vaultlearn/``.

No other module spells one of these names; each asks a :class:`StatePaths` built from the vault root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

STATE_DIR = ".vaultlearn"
# a derived cache of the base model's vectors, named by the store generation it was built from ("index-N.faiss"
# of earlier versions could hold link-mapped vectors: never read, removed by the next save)
_VECTOR_INDEX = "index-base-{generation}.faiss"
_RANK_SNAPSHOT = "rank-{key}"  # a derived cache: the rank context saved under its key (index/snapshot.py)


def vector_index_file(folder: Path, generation: int) -> Path:
    """The vector index file of ``generation`` in ``folder``."""
    return Path(folder) / _VECTOR_INDEX.format(generation=generation)


def vector_index_files(folder: Path) -> list[Path]:
    """Every vector index file in ``folder``, of any generation."""
    return sorted(Path(folder).glob("index-*.faiss"))


def rank_snapshot_folder(folder: Path, key: str) -> Path:
    """The folder of the rank context saved under ``key`` in ``folder``."""
    return Path(folder) / _RANK_SNAPSHOT.format(key=key)


def rank_snapshot_folders(folder: Path) -> list[Path]:
    """Every saved rank context's folder in ``folder``, of any key."""
    return sorted(Path(folder).glob(_RANK_SNAPSHOT.format(key="*")))


@dataclass(frozen=True)
class StatePaths:
    """The state files of the vault at ``vault``; every other field is a path under ``root``."""

    vault: Path
    root: Path = field(init=False)  # VAULT/.vaultlearn
    config: Path = field(init=False)  # the user's settings (`vaultlearn init` writes every one)
    database: Path = field(init=False)  # sqlite: notes, links, embeddings, postings, meta (the fitted reranker too)
    writer_lock: Path = field(init=False)  # held by the one process writing the state (index, rename, learn)
    daemon_lock: Path = field(init=False)  # held by the one `vaultlearn watch` serving the vault, for its life
    daemon_info: Path = field(init=False)  # discovery: the running daemon's host, port, pid and start time
    token: Path = field(init=False)  # discovery: the running daemon's API token
    vector_indexes: Path = field(init=False)  # the folder of the vector index files (vector_index_file)
    rank_snapshots: Path = field(init=False)  # the folder of the saved rank contexts (rank_snapshot_folder)
    model: Path = field(init=False)  # the learner's state: its manifest, learned memory and learner tensors
    overlap_png: Path = field(init=False)  # the default picture of `vaultlearn report overlap`

    def __post_init__(self) -> None:
        root = Path(self.vault) / STATE_DIR
        names = {"config": "config.toml", "database": "state.sqlite", "writer_lock": "writer.lock",
                 "daemon_lock": "daemon.lock", "daemon_info": "daemon.json", "token": "token", "model": "model",
                 "overlap_png": "overlap.png"}
        for attribute, path in {"root": root, "vector_indexes": root, "rank_snapshots": root,
                                **{key: root / name for key, name in names.items()}}.items():
            object.__setattr__(self, attribute, path)
