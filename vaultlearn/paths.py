"""StatePaths: the name of every file and folder vaultlearn keeps under ``VAULT/.vaultlearn/``.

No other module spells one of these names; each asks a :class:`StatePaths` built from the vault root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATE_DIR = ".vaultlearn"
_VECTOR_INDEX = "index-{generation}.faiss"  # a derived cache named by the store generation it was built from


def vector_index_file(folder: Path, generation: int) -> Path:
    """The vector index file of ``generation`` in ``folder``."""
    return Path(folder) / _VECTOR_INDEX.format(generation=generation)


def vector_index_files(folder: Path) -> list[Path]:
    """Every vector index file in ``folder``, of any generation."""
    return sorted(Path(folder).glob(_VECTOR_INDEX.format(generation="*")))


@dataclass(frozen=True)
class StatePaths:
    """The state files of the vault at ``vault``."""

    vault: Path

    @property
    def root(self) -> Path:
        """``VAULT/.vaultlearn``."""
        return Path(self.vault) / STATE_DIR

    @property
    def config(self) -> Path:
        """The user's settings (``vaultlearn init`` writes every one)."""
        return self.root / "config.toml"

    @property
    def database(self) -> Path:
        """The sqlite store: notes, links, embeddings, postings, metadata (the fitted reranker among them)."""
        return self.root / "state.sqlite"

    @property
    def writer_lock(self) -> Path:
        """Held by the one process writing the state (index, rename, learn)."""
        return self.root / "writer.lock"

    @property
    def daemon_lock(self) -> Path:
        """Held by the one ``vaultlearn watch`` serving the vault, for its life."""
        return self.root / "daemon.lock"

    @property
    def daemon_info(self) -> Path:
        """Discovery: the running daemon's host, port, pid and start time."""
        return self.root / "daemon.json"

    @property
    def token(self) -> Path:
        """Discovery: the running daemon's API token."""
        return self.root / "token"

    @property
    def vector_indexes(self) -> Path:
        """The folder of the vector index files (:func:`vector_index_file`)."""
        return self.root

    @property
    def model(self) -> Path:
        """The learner's state: its manifest, learned memory and learner tensors."""
        return self.root / "model"

    @property
    def overlap_png(self) -> Path:
        """The default picture of ``vaultlearn report overlap``."""
        return self.root / "overlap.png"
