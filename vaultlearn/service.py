"""VaultService: the one place that knows the order of work. The CLI and the daemon call it; the work itself
is done by :mod:`indexer` (the index path), :mod:`learning` (learning commits) and :mod:`ranking` (rank
weights and suggestions).

files → scan/parse → store (notes, links) → resolve → phases → embed (changed notes only) → vector index → rank
weights. Learning: phase links → the link map (fit on stored embeddings, validated) → the phase's notes compared
with every note by its map (the reranker's learned similarity); or, with ``learner = "memory"``, →
ContinualLearner → changed memory slots → affected notes → re-embed.

Thread model: one writer at a time (``index``, ``rename``, ``learn`` take the write lock, which is also the
vault's writer lock across processes: another ``vaultlearn index`` or daemon waits for it); readers
(``suggest``, ``search``, ``status``) may run concurrently and see the last committed state: sqlite
transactions are serialised by the store's lock and the vector index is swapped under its own lock.
Nothing here imports torch until a note has to be embedded or a phase learned.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config
from .export import link_graph
from .errors import NotAVaultError, NoteNotFoundError, VaultlearnError
from .index.learned import LINKMAP_KIND
from .index.context import RankContext
from .index.fit import LinearRanker
from .index.suggest import Suggestion
from .indexer import Indexer
from .learning import Learning
from .lock import WriterLock
from .model.manifest import read_manifest
from .ranking import Ranking
from .reports import IndexReport, LearnReport, Status
from .paths import StatePaths
from .store import Store

if TYPE_CHECKING:  # FAISS is imported where the index is first read, not by every process
    from .index.vectors import VectorIndex

log = logging.getLogger(__name__)


class VaultService:
    """Index, suggest, learn and report on one vault. Owns ``VAULT/.vaultlearn/``."""

    def __init__(self, vault: Path | str, config: Config | None = None, *, create: bool = True,
                 on_wait: Callable[[str], None] | None = None, long_lived: bool = False):
        """``on_wait`` is told (once per wait) that another process holds the vault's writer lock; default: a
        logged warning. A ``long_lived`` service (the daemon's) builds its rank context instead of reading the
        saved one (:class:`Ranking`)."""
        vault = Path(vault).expanduser()
        if not vault.is_dir():
            raise NotAVaultError(f"{vault} is not a folder: give the path of an Obsidian vault")
        self.vault = vault.resolve()
        self.paths = StatePaths(self.vault)
        self.config = config or Config.load(self.vault)
        self.store = Store(self.vault, create=create)
        say = on_wait or log.warning
        self._write_lock = WriterLock(
            self.paths.writer_lock,
            lambda holder: say(f"waiting for {holder}, which is writing to {self.paths.root}"))
        self._index_lock = threading.RLock()
        self._model_lock = threading.Lock()  # one load, however many threads ask at once (the daemon preloads)
        self._encoder = None
        self._learner = None
        self.indexer = Indexer(self.vault, self.config, self.store, self.paths, self.encoder,
                               self._index_lock)
        self.learning = Learning(self.vault, self.config, self.store, self.indexer, self.encoder, self.learner)
        self.ranking = Ranking(self.vault, self.config, self.store, self.indexer, read_snapshot=not long_lived)

    def close(self) -> None:
        """Release the state files."""
        self.store.close()

    # ------------------------------------------------------------------------------------------------------
    # model and index access (lazy)
    def encoder(self):
        """The NoteEncoder with the last committed learned memory, loaded on first use (imports torch)."""
        if self._encoder is None:
            self._load_model()
        return self._encoder

    def learner(self):
        """The learner holding the committed learned state, loaded with the encoder: a LinkMapLearner or a
        ContinualLearner, as the state on disk (or, before any, ``config.learner``) says."""
        if self._learner is None:
            self._load_model()
        return self._learner

    def _load_model(self) -> None:
        with self._model_lock:
            if self._encoder is not None and self._learner is not None:
                return  # another thread loaded it while this one waited
            from .model.encoder import NoteEncoder

            encoder = NoteEncoder(self.config)
            if self.learned_kind() == LINKMAP_KIND:
                from .model.linkfit import LinkMapLearner

                self._learner = LinkMapLearner.load(self.paths.model, encoder.dim, self.config)
            else:
                from .model.continual import ContinualLearner

                self._learner = ContinualLearner.load(self.paths.model, encoder, self.config)
            encoder.encode(["warm-up"])  # the first forward pass sets up the kernels: not on a user's note
            self._encoder = encoder

    def learned_kind(self) -> str:
        """The learner of the committed learned state (``config.learner`` before anything is learned)."""
        manifest = read_manifest(self.paths.model)
        return self.config.learner if manifest is None else manifest.get("kind", "memory")

    def model_key(self) -> str:
        """Identifies the base model without loading it; a change means every note is embedded again."""
        return self.indexer.model_key()

    def vectors(self) -> VectorIndex:
        """The vector index of the last committed generation (loaded from its file, rebuilt when stale)."""
        return self.indexer.vectors()

    # ------------------------------------------------------------------------------------------------------
    # writing: indexing, renaming, learning
    def index(self, paths: Iterable[str] | None = None, *, progress: bool = False) -> IndexReport:
        """Bring the state up to date with the vault: all of it (``paths=None``) or just ``paths``.

        Unchanged notes (same size and mtime, else same content hash) are neither parsed nor embedded; a path
        that no longer exists is deleted. Returns counts of what changed and the seconds it took.
        """
        started = time.perf_counter()
        with self._write_lock:
            report = self.indexer.update(paths, progress)
            if paths is None:
                if self.ranking.refit_due():
                    report.rank_fit = self.fit_ranker()
                self.ranking.save_snapshot()
        report.seconds = round(time.perf_counter() - started, 3)
        report.peak_memory_mb = _peak_memory_mb()
        return report

    def rename(self, old: str, new: str) -> None:
        """Move a note, keeping its identity (id, embedding, postings); links are resolved again."""
        with self._write_lock:
            self.index(self.indexer.rename(old, new))

    def learn(self, phase: str | None = None, *, force: bool = False,
              progress: Callable[[dict], None] | None = None) -> LearnReport:
        """Learn the pending phases in order (or just ``phase``); commit each only if validation passes.

        A seeded share of each phase's links is held out (:mod:`model.validation`); the candidate is compared
        with the current model on them and on the earlier phases' held-out links. A phase that does not gain,
        or costs an earlier phase, is declined: the current model stays, the reason is reported and recorded,
        and the phase is not tried again until its links change (``force`` commits anyway). A committed phase
        commits twice, model first: the learner's manifest swap, then one sqlite transaction with the
        re-embedded notes. A crash between the two is repaired by the next ``index`` (the memory generation on
        disk differs from the one the embeddings were made with, so every note is re-embedded).
        """
        kind = self.learned_kind()
        if kind != self.config.learner:
            raise VaultlearnError(
                f"{self.paths.model} holds what the {kind} learner learned, but config.toml says "
                f"learner = {self.config.learner!r}: set it back, or remove {self.paths.model} to learn anew")
        with self._write_lock:
            self.index()
            order = self.phases()
            todo = self.learning.todo(order, phase, force)
            split = self.learning.split()
            reports = []
            for name in todo:
                if name in self.learner().learned_phases:
                    continue
                try:
                    report = self.learning.learn_phase(name, order, split, force, progress)
                except BaseException:
                    self._encoder = self._learner = None  # the next use reloads the last committed state
                    raise
                if not report.committed:
                    self._encoder = self._learner = None  # back to the committed model
                self.learning.record_validation(report)
                reports.append(report)
            if any(report.committed for report in reports):
                self.fit_ranker()  # the rank features are similarities of the vectors that just changed
                self.ranking.save_snapshot()  # a fresh process (`suggest`) reads the new state's context
            return LearnReport(reports, self.store.get_json("learned_phases", []))

    # ------------------------------------------------------------------------------------------------------
    # reading: suggestions and ranking
    def resolve_note(self, note: str) -> str:
        """The vault-relative path of ``note`` (a path or a link-style name); never outside the vault."""
        return self.indexer.resolve_note(note)

    def notes_named(self, note: str) -> list[str]:
        """Every indexed note a link-style name could mean, the one :meth:`resolve_note` picks first; more than
        one when the name is ambiguous (Obsidian then picks the shortest path, and so does vaultlearn)."""
        return self.indexer.resolver().notes_named(note)

    def is_current(self, path: str) -> bool:
        """Whether the stored state of ``path`` matches the file (same size and mtime)."""
        return self.indexer.is_current(path)

    def update_if_stale(self, path: str, on_update: Callable[[str], None]) -> None:
        """Index the note ``path`` again first when its file changed since it was indexed (``on_update`` is told
        why); a note whose file is gone is an error, answered before anything is written."""
        if self.is_current(path):
            return
        if not (self.vault / path).is_file():
            raise NoteNotFoundError(f"{path} is no longer in the vault (deleted or moved since it was indexed); "
                                    "run `vaultlearn index`")
        on_update(f"{path} changed since it was indexed; updating it first")
        self.index([path])

    def suggest(self, note: str, k: int | None = None) -> list[Suggestion]:
        """Notes that ``note`` should link to and does not yet, best first. Uses no model."""
        k = k or self.config.suggest_k
        return self.ranking.suggest(self.resolve_note(note), k)

    def search(self, text: str, k: int | None = None) -> list[Suggestion]:
        """Notes nearest to a free text (loads the model)."""
        scores, ids = self.indexer.nearest(self.encoder().encode([text]), k or self.config.suggest_k)
        rows = self.store.notes_by_ids(int(i) for i in ids[0] if i >= 0)
        return [Suggestion(rows[int(i)].path, rows[int(i)].title, float(s), f"similar text ({s:.2f})", float(s), 0,
                           False, rows[int(i)].phase) for s, i in zip(scores[0], ids[0]) if int(i) in rows]

    def ranker(self) -> LinearRanker:
        """The vault's fitted reranker (plain cosine before the first fit or when the fit did not beat it)."""
        return self.ranking.ranker()

    def rank_context(self) -> RankContext:
        """Embeddings, link graph, names, folders, tags and phases of the committed state (cached per generation)."""
        return self.ranking.rank_context()

    def save_rank_snapshot(self) -> bool:
        """Save the rank context for fresh processes unless it is saved already (:meth:`Ranking.save_snapshot`)."""
        return self.ranking.save_snapshot()

    def hidden_texts(self, ctx: RankContext, hidden, keep_words) -> list[str | None]:
        """The own words of each hidden link's source, the link's words kept or removed per ``keep_words``."""
        return self.ranking.hidden_texts(ctx, hidden, keep_words)

    def fit_ranker(self, exclude_sources: Collection[int] = ()) -> dict:
        """Fit the reranker on the vault's own visible links (hide-and-rank) and store it (:meth:`Ranking.fit`)."""
        return self.ranking.fit(exclude_sources)

    # ------------------------------------------------------------------------------------------------------
    # reporting
    def phases(self) -> list[str]:
        """The vault's phases in learning order, as last indexed."""
        return self.store.get_json("phase_order", [])

    def status(self) -> Status:
        """Counts of what is indexed, the phases, and what is learned, declined and pending."""
        links, unresolved = self.store.link_counts()
        by_phase = self.store.phase_counts()
        notes = sum(by_phase.values())
        order = self.store.get_json("phase_order", [])
        learned = self.store.get_json("learned_phases", [])
        declined = self.learning.declined_now()
        ranker = self.ranker()
        return Status(
            vault=str(self.vault),
            notes=notes,
            links=links,
            unresolved_links=unresolved,
            phases=order,
            phase_source=self.store.get_meta("phase_source"),
            notes_by_phase={p: by_phase.get(p, 0) for p in order},
            embedded=self.store.embedded_count(),
            index_size=len(self.vectors()) if notes else 0,
            learned_phases=learned,
            pending_phases=[p for p in order if p not in learned and p not in declined],
            declined_phases=declined,
            learn_validation=self.store.get_json("learn_validation", {}),
            new_links_by_phase=self.new_links_by_phase(),
            rank_weights=dict(zip(ranker.features, ranker.coef)),
            notes_with_warnings=self.store.warned_count(),
            repair_due=notes > 0 and (self.indexer.memory_generation_on_disk()
                                      != int(self.store.get_meta("memory_generation", "0"))),
            learner=self.learned_kind(),
        )

    def new_links_by_phase(self) -> dict[str, int]:
        """Per phase, the resolved links from its notes not yet seen by learning."""
        counts = self.store.edge_counts_by_phase()
        seen = self.store.get_json("learned_link_counts", {})
        return {p: n - seen.get(p, 0) for p, n in counts.items() if n - seen.get(p, 0) > 0}

    def graph(self):
        """The link graph as a networkx MultiDiGraph keyed by vault path (unresolved targets included)."""
        return link_graph(self.store)


def _peak_memory_mb() -> int | None:
    """This process's peak resident memory so far, in MiB (None where the OS does not say: Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10))  # bytes on macOS, KiB on Linux
