"""Learning commits: learn one phase, gate the candidate on held-out links, and commit it with its drift, or
decline it.

Two learners (``config.learner``). The link map (the default) learns a map on the stored embeddings from every
learned phase's training links: a candidate is the phase's new map, which the phase's notes are compared with
every note by (the other phases keep theirs), a commit saves the maps (no note is re-encoded). The token-level
memory re-embeds the notes whose memory slots changed, and a commit writes the model first, then those
embeddings.

Validation and declined phases are recorded in the store, so a declined phase is not tried again until its
links change. The service holds the writer lock and drops its loaded model after a decline or a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .config import Config
from .errors import StateError, VaultlearnError, require_finite
from .index.learned import LINKMAP_KIND, map_vectors
from .metrics import changed_share, neighbour_sets
from .model.validation import HeldOutRanks, compare, nothing_to_validate, split_held_out
from .indexer import Indexer
from .reports import PhaseReport
from .store import NoteRow, Store
from .vault.read import read_note_text


@dataclass(frozen=True)
class LearnSplit:
    """The notes (in store order, ``position``: note id → index), their resolved links by position, and each
    phase's links split into training and held-out links; ``adjacency`` holds the links learning may see;
    ``ranks``: the held-out links' ranks at the last phase's check, which the next check starts from."""

    rows: list[NoteRow]
    position: dict[int, int]
    edges: list[tuple[int, int]]
    by_phase: dict[str, list[tuple[int, int]]]
    heldout: dict[str, list[tuple[int, int]]]
    train: dict[str, list[tuple[int, int]]]
    adjacency: list[set[int]]
    read_text: Callable[[NoteRow], str]  # a note's embedded text
    ranks: HeldOutRanks = field(default_factory=HeldOutRanks, compare=False)

    @cached_property
    def texts(self) -> list[str]:
        """Every note's embedded text, read once when first asked for: only the token-level memory encodes text
        (the link map works on the stored embeddings; at 10k notes the reading took 1.9 s)."""
        return [self.read_text(row) for row in self.rows]


class Learning:
    """Learning commits for one vault; ``encoder`` and ``learner`` return the service's loaded model."""

    def __init__(self, vault: Path, config: Config, store: Store, indexer: Indexer,
                 encoder: Callable[[], object], learner: Callable[[], object]):
        self.vault, self.config, self.store, self.indexer = vault, config, store, indexer
        self._encoder, self._learner = encoder, learner

    def todo(self, order: list[str], phase: str | None, force: bool) -> list[str]:
        """The phases to learn, in order: just ``phase``, or the learnable ones."""
        if phase is not None and phase not in order:
            raise VaultlearnError(f"no phase {phase!r}; the phases are: {', '.join(order) or 'none'}")
        return [phase] if phase else self._learnable(order, force)

    def split(self, hidden: set[tuple[int, int]] = frozenset()) -> LearnSplit:
        """Every note and link of the committed state, each phase's links split by :func:`held_out`; links in
        ``hidden`` (note ids) are left out altogether (an evaluation's held-out links)."""
        rows = self.store.notes()
        position = {row.id: i for i, row in enumerate(rows)}
        edges = sorted({(position[a], position[b]) for a, b, _ in self.store.edges() if (a, b) not in hidden})
        phase_of = [row.phase for row in rows]
        by_phase: dict[str, list[tuple[int, int]]] = {}
        for a, b in edges:
            if phase_of[a] is not None:
                by_phase.setdefault(phase_of[a], []).append((a, b))
        heldout, train = {}, {}
        for name, links in by_phase.items():
            names = [(rows[a].path, rows[b].path) for a, b in links]
            heldout[name], train[name] = split_held_out(links, names, self.config)
        hidden = {link for links in heldout.values() for link in links}
        adjacency: list[set[int]] = [set() for _ in rows]
        for a, b in edges:
            if (a, b) not in hidden:
                adjacency[a].add(b)
                adjacency[b].add(a)
        return LearnSplit(rows, position, edges, by_phase, heldout, train, adjacency, self._text)

    def learn_phase(self, name: str, order: list[str], split: LearnSplit, force: bool,
                    progress: Callable[[dict], None] | None) -> PhaseReport:
        """Learn phase ``name``, validate the candidate and commit it if it passes (or ``force``); the report
        says whether it was committed and why. A phase with no held-out links could never pass: it is not
        trained (unless ``force``)."""
        if not split.heldout.get(name) and not force:
            untried = PhaseReport(name, len(split.by_phase.get(name, [])), 0, 0.0, None, None, updated_slots=0,
                                  reembedded=0, reembedded_share=0.0, drift_cosine=0.0, top10_changed=0.0,
                                  vectors_changed=0.0)
            return _verdict(untried, nothing_to_validate(), force)
        if self._learner().kind == LINKMAP_KIND:
            return self._learn_map_phase(name, order, split, force, progress)
        from .model.pairs import PhaseData

        learner, rows = self._learner(), split.rows
        in_phase = {i for i, row in enumerate(rows) if row.phase == name}
        learned = set(learner.learned_phases)
        background = [i for i, row in enumerate(rows) if (row.phase in learned if learned else i not in in_phase)]
        data = PhaseData(split.texts, np.array(sorted(in_phase), dtype=np.int64), split.train.get(name, []),
                         np.array(background, dtype=np.int64), split.adjacency)
        report_progress = (lambda f: progress({"phase": name, "progress": f})) if progress else None
        links = len(split.by_phase.get(name, []))
        result = learner.learn_phase(name, data, progress=report_progress)
        candidate = self._candidate(name, result, split)
        check = self._validate(name, order, candidate, split)
        if check["commit"] or force:
            report = self._commit_learned(name, result, split, in_phase, links, candidate)
        else:
            report = self._decline(name, result, links)
        return _verdict(report, check, force)

    def _learn_map_phase(self, name: str, order: list[str], split: LearnSplit, force: bool,
                         progress: Callable[[dict], None] | None) -> PhaseReport:
        """The link map's phase: :meth:`map_candidate`, then commit the map (or keep the current one). No other
        phase's map changes, so no old note's learned similarity moves (drift and top-10 changes 0); the notes
        whose similarity changes are the phase's own."""
        if progress:
            progress({"phase": name, "progress": 0.0})
        result, check = self.map_candidate(self._learner(), name, order, split)
        committed = check["commit"] or force
        in_phase = sum(row.phase == name for row in split.rows)
        report = PhaseReport(
            name, len(split.by_phase.get(name, [])), result.steps, round(result.seconds, 2), result.loss_start,
            result.loss_end, updated_slots=0, reembedded=0, reembedded_share=0.0, drift_cosine=0.0,
            top10_changed=0.0, vectors_changed=in_phase / max(1, len(split.rows)) if committed else 0.0,
            start=result.start)
        if progress:
            progress({"phase": name, "progress": 1.0})  # before the commit: a stop asked for now commits nothing
        if committed:
            self._commit_map(name, report.links)
        return _verdict(report, check, force)

    def map_candidate(self, learner, name: str, order: list[str], split: LearnSplit) -> tuple:
        """Fit ``learner`` (a LinkMapLearner, changed in place) on the training links of phase ``name`` and every
        earlier one (replay: the vault keeps them) and validate the phase's new map against the reading it had
        (its map, or the base embeddings) on the phase's held-out links, every note read by the map
        (:class:`~vaultlearn.index.learned.PhaseReading`). An earlier phase keeps its map, so it cannot drop.
        Returns the learner's report and the validation."""
        from .model.linkfit import link_task

        base = self._stored_embeddings(split)
        links = [split.train.get(p, []) for p in order[: order.index(name) + 1]]
        task = link_task(base, links, [row.path for row in split.rows], split.adjacency, self.config)
        had = learner.phase_maps.get(name)
        current = base if had is None else map_vectors(base, had.numpy())
        result = learner.learn(name, task, self.config.seed)
        candidate = map_vectors(base, learner.phase_maps[name].numpy())
        check = compare(current, candidate, split.heldout, name, [], split.edges, self.config)
        if not result.moved_notes:
            check = {**check, "commit": False, "reason": (
                f"its notes keep the map they are read by: {result.own_links} links of its own to fit (a phase "
                f"moves its notes with at least {self.config.map_min_phase_links} and links to check on)")}
        return result, check

    def _stored_embeddings(self, split: LearnSplit) -> np.ndarray:
        """The stored embedding of every note, in split order (every note is embedded after an index)."""
        ids, vectors = self.store.all_embeddings()
        out = np.zeros((len(split.rows), vectors.shape[1] if len(vectors) else 1), dtype=np.float32)
        seen = np.zeros(len(split.rows), dtype=bool)
        for i, v in zip(ids.tolist(), vectors):
            if i in split.position:
                out[split.position[i]], seen[split.position[i]] = v, True
        if not seen.all():
            missing = split.rows[int(np.argmin(seen))].path
            raise StateError(f"{missing} has no embedding: run `vaultlearn index` before learning")
        return out

    def _commit_map(self, phase: str, links: int) -> None:
        """Save the learner (its manifest swap is the commit point) and record it with the embeddings (a new
        generation: the rank context is made again with the new learned similarity)."""
        self._learner().save(self.indexer.paths.model)
        with self.store.transaction():
            self.indexer.sync_learned_state()
            counts = self.store.get_json("learned_link_counts", {})
            self.store.set_json("learned_link_counts", {**counts, phase: links})
            self.store.bump_generation()
        none = np.zeros(0, dtype=np.int64)  # the vector index holds base vectors: only its generation moves
        self.indexer.update_vectors(none, None, none, self.store.generation)

    def _learnable(self, order: list[str], force: bool) -> list[str]:
        """Phases to learn: not learned, and (unless ``force``) not declined with the links they still have."""
        learned = set(self.store.get_json("learned_phases", []))
        declined = {} if force else self.declined_now()
        return [p for p in order if p not in learned and p not in declined]

    def declined_now(self) -> dict[str, str]:
        """Phases whose last learning was declined and whose link count has not changed since: the reason."""
        records = self.store.get_json("learn_validation", {})
        if all(r["committed"] for r in records.values()):
            return {}
        counts = self.store.pair_counts_by_phase()
        return {p: r["reason"] for p, r in records.items()
                if not r["committed"] and r["links"] == counts.get(p, 0)}

    def record_validation(self, report: PhaseReport) -> None:
        """Record a phase's validation outcome (a declined phase is skipped until its links change)."""
        records = self.store.get_json("learn_validation", {})
        keep = ("links", "committed", "forced", "reason", "validation")
        with self.store.transaction():
            self.store.set_json("learn_validation", {**records, report.phase: {k: getattr(report, k) for k in keep}})

    def _candidate(self, phase: str, result: dict, split: LearnSplit) -> dict:
        """The learned model's embeddings of the notes whose memory slots changed (and of unposted notes)."""
        encoder, position, texts = self._encoder(), split.position, split.texts
        affected = self.store.notes_touching(result["updated_slots"]) | self.store.notes_without_postings()
        ids = np.array(sorted(i for i in affected if i in position), dtype=np.int64)
        vectors, slots = encoder.encode_with_slots([texts[position[i]] for i in ids])
        require_finite(vectors, f"embeddings after learning phase {phase!r}")
        return {"ids": ids, "vectors": vectors, "slots": slots}

    def _validate(self, phase: str, order: list[str], candidate: dict, split: LearnSplit) -> dict:
        """:func:`model.validation.compare` of the committed embeddings against the candidate's."""
        current = self._stored_embeddings(split)
        changed = current.copy()
        for i, v in zip(candidate["ids"], candidate["vectors"]):
            changed[split.position[int(i)]] = v
        earlier = order[: order.index(phase)]
        return compare(current, changed, split.heldout, phase, earlier, split.edges, self.config, split.ranks)

    def _decline(self, phase: str, result: dict, links: int) -> PhaseReport:
        """What a declined phase reports: what was tried; nothing is saved or re-embedded."""
        return PhaseReport(phase, links, result["steps"], round(result["seconds"], 2), result["loss_start"],
                           result["loss_end"], int(len(result["updated_slots"])), reembedded=0, reembedded_share=0.0,
                           drift_cosine=0.0, top10_changed=0.0, vectors_changed=0.0)

    def _text(self, row: NoteRow) -> str:
        """A note's embedded text (re-read and parsed; a vanished file leaves its title)."""
        text = read_note_text(self.vault, row.path, self.config)
        return row.title if text is None else text

    def _commit_learned(self, phase: str, result: dict, split: LearnSplit, in_phase: set[int], links: int,
                        candidate: dict) -> PhaseReport:
        """Save the learner and the re-embedded notes (``candidate``), measure drift, commit."""
        ids, vectors, slots = candidate["ids"], candidate["vectors"], candidate["slots"]
        rows, position = split.rows, split.position
        old_ids = np.array([row.id for i, row in enumerate(rows) if i not in in_phase], dtype=np.int64)
        before = {int(i): self.store.embedding(int(i)) for i in ids}
        cosine_change = sum(1.0 - float(before[int(i)] @ v) for i, v in zip(ids, vectors)
                            if before[int(i)] is not None and position[int(i)] not in in_phase)
        probe = old_ids[np.random.default_rng(self.config.seed).permutation(len(old_ids))[:300]]
        top_before = self._top10(probe)
        self._learner().save(self.indexer.paths.model)
        with self.store.transaction():
            self.store.put_embeddings(ids, vectors)
            self.store.put_postings(ids, slots)
            self.indexer.sync_learned_state()
            counts = self.store.get_json("learned_link_counts", {})
            self.store.set_json("learned_link_counts", {**counts, phase: links})
            generation = self.store.bump_generation()
        self.indexer.update_vectors(ids, vectors, np.zeros(0, dtype=np.int64), generation)
        top_after = self._top10(probe)
        return PhaseReport(phase, links, result["steps"], round(result["seconds"], 2), result["loss_start"],
                           result["loss_end"], int(len(result["updated_slots"])), reembedded=int(len(ids)),
                           reembedded_share=len(ids) / max(1, len(rows)),
                           drift_cosine=cosine_change / max(1, len(old_ids)),
                           top10_changed=changed_share([top_before[i] for i in top_before],
                                                        [top_after.get(i, frozenset()) for i in top_before]),
                           vectors_changed=len(ids) / max(1, len(rows)))

    def _top10(self, ids: np.ndarray) -> dict[int, frozenset[int]]:
        """The ten nearest notes (ids) of each of ``ids`` by the stored embeddings, itself excluded
        (:func:`metrics.neighbour_sets`)."""
        all_ids, all_vectors = self.store.all_embeddings()
        row_of = {int(i): n for n, i in enumerate(all_ids)}
        probe = [int(i) for i in ids if int(i) in row_of]
        if not probe:
            return {}
        sets = neighbour_sets(all_vectors, np.array([row_of[i] for i in probe], dtype=np.int64))
        return {i: frozenset(int(all_ids[h]) for h in hits) for i, hits in zip(probe, sets)}


def _verdict(report: PhaseReport, check: dict, force: bool) -> PhaseReport:
    """``report`` with the validation's verdict, its reason and its figures."""
    report.committed, report.forced = check["commit"] or force, force and not check["commit"]
    report.reason = check["reason"]
    report.validation = {k: v for k, v in check.items() if k not in ("commit", "reason")}
    return report
