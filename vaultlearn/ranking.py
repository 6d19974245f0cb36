"""Ranking: the reranker of one vault, its rank context (cached per committed generation) and its fit on the
vault's own links (hide-and-rank), with the hidden links' source texts read from the vault."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from pathlib import Path

import numpy as np

from .config import Config
from .errors import NotIndexedError
from .eval.traces import remove_traces
from .index.context import NoteInfo, RankContext
from .index.features import BASE_FEATURES, FEATURES, PairFeatures, Search
from .index.fit import COSINE, LinearRanker, add_learned, fit_ranker
from .index.holdout import hidden_cases, sample_hidden, unseen_by_map
from .index.index_kind import always_exact, becomes_approximate
from .index.mentions import plain_text
from .index.snapshot import StaleSnapshotError, load_snapshot, save_snapshot, snapshot_key
from .index.suggest import Suggestion, suggest_for
from .indexer import Indexer
from .paths import rank_snapshot_folder
from .store import Store
from .vault.scan import ResolvedRoot, read_note_beneath, read_note_bytes

FIT_SAMPLE = 800  # visible links hidden (one per source note, all at once) to fit the reranker
KEEP_WORDS_SHARE = 0.75  # hidden links whose words stay in the source text while fitting (the rest lose every trace)
ADAPTER = "rank_adapter"  # the stored link adapter, fitted with the reranker (a suggestion does not refit it)
REFIT_SHARE = 0.02  # a full index refits the rank weights when the link count moved by more than this share
MENTION_SCAN_NOTES = 4096  # notes whose own words are matched against every name at once (memory: their words)


class Ranking:
    """Rank weights and rank context of one vault's committed state."""

    def __init__(self, vault: Path, config: Config, store: Store, indexer: Indexer, read_snapshot: bool = True):
        """``indexer`` gives the committed phase maps (the rank context's learned similarity) and searches the
        vector index; ``read_snapshot``: load a saved rank context (index/snapshot.py) instead of
        building one, as a short-lived process does (a daemon builds its own: its writer changes the notes whose
        rows a saved context reads when needed)."""
        self.vault, self.config, self.store, self.indexer = vault, config, store, indexer
        self.paths = indexer.paths
        self.read_snapshot = read_snapshot
        self._rank_context: tuple[tuple[int, int], RankContext] | None = None
        self._snapshot_key = ""  # the saved context's key the cached one is the state of (index/snapshot.py)
        self._loaded = False  # whether the cached context was read from a snapshot (not a base for a rebuild)
        self._context_lock = threading.Lock()  # one build at a time: concurrent readers wait and share it

    def ranker(self) -> LinearRanker:
        """The vault's fitted reranker (plain cosine before the first fit or when the fit did not beat it)."""
        stored = self._stored_model()
        return COSINE if stored is None else LinearRanker.from_json(stored)

    def _stored_model(self) -> dict | None:
        """The stored reranker, None when not fitted or fitted by a version with other features."""
        stored = self.store.get_json("rank_model")
        return stored if stored and set(stored["features"]) <= set(FEATURES) else None

    def suggest(self, path: str, k: int) -> list[Suggestion]:
        """The ``k`` best notes the indexed note ``path`` should link to and does not yet."""
        try:
            return self._suggest(path, k)
        except StaleSnapshotError:  # another process changed the state while the saved context was read: build it
            with self._context_lock:
                self._rank_context, self.read_snapshot = None, False
            return self._suggest(path, k)

    def _suggest(self, path: str, k: int) -> list[Suggestion]:
        row = self.store.note_by_path(path)
        ctx = self.rank_context()
        position = ctx.position.get(row.id) if row else None
        if position is None:
            raise NotIndexedError(f"{path} is not indexed yet: run `vaultlearn index`")
        raw = read_note_bytes(self.vault, path, self.config.max_note_bytes)
        text = self.own_words(raw) if raw is not None else None
        return suggest_for(ctx, self.ranker(), position, ctx.vectors[position], text, k, self.config.candidate_pool,
                           self.approximate_search(ctx))

    def approximate_search(self, ctx: RankContext) -> Search | None:
        """Nearest notes (as ``ctx`` positions) by the vector index once it is approximate (a vault above
        ``config.approximate_index_above`` notes), so one suggestion does not compare the note with every
        note; None below that size. The index holds the base model's vectors, as the exact similarity uses."""
        if always_exact(len(ctx.ids), self.config.approximate_index_above) or not self.indexer.vectors().approximate:
            return None

        def search(queries: np.ndarray, k: int) -> np.ndarray:
            _, ids = self.indexer.nearest(queries, k)
            return ctx.positions(ids)

        return search

    def rank_context(self) -> RankContext:
        """Embeddings (and the learned similarity), link graph, names, folders, tags, phases and unlinked mentions
        of the committed state (cached per generation and mentions version)."""
        with self._context_lock:
            return self._current_context()

    def _current_context(self) -> RankContext:
        key = (self.store.generation, self.store.mentions_version)
        if self._rank_context is None or self._rank_context[0] != key:
            saved_as = snapshot_key(self.store)  # read before the data: a write meanwhile makes it stale, not wrong
            ctx = load_snapshot(self.paths.rank_snapshots, saved_as, self.store) if self.read_snapshot else None
            loaded = ctx is not None
            if ctx is None:
                ids, vectors = self.store.all_embeddings()
                rows = self.store.ranking_rows()
                notes = [NoteInfo(*rows[i]) for i in ids.tolist()]
                edges = [(a, b) for a, b, _ in self.store.edges()]
                previous = self._rank_context[1] if self._rank_context and not self._loaded else None
                ctx = RankContext.build(ids, vectors, edges, notes, self.store.link_texts(), self.indexer.phase_maps(),
                                        self.store.mentions(), self.store.get_array(ADAPTER), previous)
                if not self.read_snapshot and not becomes_approximate(len(ids), self.config.approximate_index_above):
                    ctx = ctx.with_vectors_by_dimension()  # a long-lived service answers many suggestions
            self._rank_context, self._snapshot_key, self._loaded = (key, ctx), saved_as, loaded
        return self._rank_context[1]

    def save_snapshot(self) -> bool:
        """Save the committed state's rank context for fresh processes (index/snapshot.py) unless it is saved
        already; builds the context when needed. Returns whether it wrote one."""
        with self._context_lock:
            if self.store.embedding_extent()[0] == 0 or \
                    rank_snapshot_folder(self.paths.rank_snapshots, snapshot_key(self.store)).exists():
                return False
            ctx = self._current_context()
            return save_snapshot(ctx, self.paths.rank_snapshots, self._snapshot_key)

    def own_words(self, raw: bytes, hidden_names: list[str] | None = None,
                  keep_words: bool = False) -> str:
        """The note's own words for the mention feature (:func:`index.mentions.plain_text` of its markdown);
        ``hidden_names``: a hidden link's target, whose words stay as plain text (``keep_words``) or are removed
        with every other trace of it."""
        markdown = raw.decode("utf-8", errors="replace")
        if hidden_names and not keep_words:
            markdown = remove_traces(markdown, hidden_names)
        return plain_text(markdown, hidden_names if keep_words else ())

    def hidden_texts(self, ctx: RankContext, hidden, keep_words) -> list[str | None]:
        """The own words of each hidden link's source, the link's words kept or removed per ``keep_words``."""
        texts, root = [], ResolvedRoot(self.vault)
        for (a, b), keep in zip(hidden, keep_words):
            raw = read_note_beneath(root, ctx.notes[a].path, self.config.max_note_bytes)
            target = ctx.notes[b]
            names = [target.path, *target.aliases]
            texts.append(None if raw is None else self.own_words(raw, names, bool(keep)))
        return texts

    def fit(self, exclude_sources: Collection[int] = ()) -> dict:
        """Fit the reranker on the vault's own visible links (hide-and-rank) and store it.

        Most hidden links keep their words in the source's text (a plain mention), the others lose every
        trace (KEEP_WORDS_SHARE), so the model learns both the mention and what finds a link with no words
        (measured on both dev vaults: a share of 0.75 kept the no-trace figures of 0.5 and lifted the
        standard ones). Sources in ``exclude_sources`` (note ids) are not used. Once a link map is learned, the
        learned similarity is weighed in a second stage (:func:`index.fit.add_learned`) on links the map never
        fitted (:func:`index.holdout.unseen_by_map`): on the links it learned, it looks better than it is on
        the links a writer has not made yet. The link adapter (a rank feature) is fitted on the visible links
        and stored with the weights, so a suggestion reads it instead of fitting it.
        """
        started, cpu = time.perf_counter(), time.process_time()
        stored = self.rank_context()
        if self._loaded:  # a saved context's names are hashed for one text; the fit matches every note's
            stored = stored.with_graph(stored.graph)  # (the same context, its names matched in memory)
        mentions = self.unlinked_mentions(stored)
        ctx = stored.with_mentions(mentions).with_fresh_adapter()
        skip = [ctx.position[i] for i in exclude_sources if i in ctx.position]
        pairs, targets = self.fit_cases(ctx, skip, self.config.seed)
        ranker, report = fit_ranker(pairs, targets, BASE_FEATURES, seed=self.config.seed)
        if ctx.learned is not None:
            unseen = unseen_by_map(ctx, self.config)
            cases = self.fit_cases(ctx, skip, self.config.seed + 1, unseen)
            ranker, report["learned"] = add_learned(ranker, *cases, seed=self.config.seed)
        report = {**report, "links": self.store.link_counts()[0], "features": list(BASE_FEATURES),
                  "model": self.indexer.model_key(),
                  "unlinked_mentions": len(mentions), "seconds": round(time.perf_counter() - started, 3),
                  "cpu_seconds": round(time.process_time() - cpu, 3)}
        with self.store.transaction():
            self.store.set_json("rank_model", ranker.to_json())
            self.store.set_json("rank_fit", report)
            self.store.replace_mentions(mentions)
            self.store.set_array(ADAPTER, ctx.adapter)
        with self._context_lock:  # what a rebuild would read
            self._rank_context = ((self.store.generation, self.store.mentions_version), ctx)
            self._snapshot_key, self._loaded = snapshot_key(self.store), False
        return report

    def unlinked_mentions(self, ctx: RankContext) -> list[tuple[int, int]]:
        """``(src id, dst id)`` of every note that names another in its own words and does not link to it, read
        from the vault's notes (the reranker's link rate: how often the notes that name a note link it)."""
        pairs, root = [], ResolvedRoot(self.vault)
        for begin in range(0, len(ctx.notes), MENTION_SCAN_NOTES):
            positions, texts = [], []
            for p in range(begin, min(begin + MENTION_SCAN_NOTES, len(ctx.notes))):
                raw = read_note_beneath(root, ctx.notes[p].path, self.config.max_note_bytes)
                if raw is not None:
                    positions.append(p)
                    texts.append(self.own_words(raw))
            for p, named in zip(positions, ctx.mentions.named_in_texts(texts)):
                linked = set(ctx.graph.outgoing(p).tolist()) | {p}
                pairs.extend((int(ctx.ids[p]), int(ctx.ids[q])) for q in named.tolist() if q not in linked)
        return pairs

    def fit_cases(self, ctx: RankContext, skip: Collection[int], seed: int, eligible: np.ndarray | None = None,
                  keep_seed: int | None = None) -> tuple[PairFeatures, np.ndarray]:
        """Hide-and-rank cases of ``FIT_SAMPLE`` sources but ``skip`` (positions), ``eligible`` the links that may
        be hidden; which keep their words is drawn with ``keep_seed`` (default ``seed``)."""
        hidden = sample_hidden(ctx, FIT_SAMPLE, seed, skip, eligible)
        keep_words = np.random.default_rng(seed if keep_seed is None else keep_seed).random(len(hidden)) \
            < KEEP_WORDS_SHARE
        return hidden_cases(ctx, hidden, self.hidden_texts(ctx, hidden, keep_words), self.config.candidate_pool)

    def refit_due(self) -> bool:
        """Whether the reranker was never fitted (with this version's features, on this base model's embeddings,
        with its adapter stored) or the link count moved by more than REFIT_SHARE. The stored count and the
        current one are the same quantity: ``Store.link_counts()[0]``.
        """
        fit = self.store.get_json("rank_fit")
        if (fit is None or self._stored_model() is None or fit.get("features") != list(BASE_FEATURES)
                or fit.get("model") != self.indexer.model_key() or self.store.get_array(ADAPTER) is None):
            return True
        links = self.store.link_counts()[0]
        return abs(links - fit.get("links", 0)) > REFIT_SHARE * max(1, fit.get("links", 0))
