"""The daemon's single writer thread: watcher batches, queued jobs and background learning, applied in order.

Every state change (``index``, ``rename``, ``learn``) runs on this one thread, so the API reads the last
consistent state concurrently while nothing writes twice at once. :class:`LearnPolicy` decides when the vault
has been quiet long enough, with enough new links, to learn a phase in the background.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager

from vaultlearn.daemon.watcher import Batch, VaultWatcher
from vaultlearn.errors import VaultlearnError
from vaultlearn.notices import summarise
from vaultlearn.reports import IndexReport

log = logging.getLogger("vaultlearn.daemon")

SHUTDOWN_WAIT_SECONDS = 10.0  # then the job is abandoned: every state change is crash-safe
_COUNTS = ("added", "updated", "deleted", "embedded", "seconds")  # of an index pass, in last_change and the log


class LearningAbandoned(Exception):
    """Raised from the learning progress callback to stop a learning job at shutdown."""


class LearnPolicy:
    """When to learn in the background: a pending phase has ``min_new_links`` new links and the vault was quiet.

    Phases are learned in their order, so the phase proposed is always the first pending one (learning it
    may be what a later, ready phase waits for). A phase that was just tried is not proposed again until its
    count of new links changes, so a failing learning job does not loop.
    """

    def __init__(self, min_new_links: int, quiet_seconds: float):
        self.min_new_links = max(1, min_new_links)
        self.quiet_seconds = quiet_seconds
        self._tried: dict[str, int] = {}

    def ready_phase(self, pending: list[str], new: dict[str, int]) -> str | None:
        """The phase to learn now given the pending phases in order and their new-link counts, or None."""
        if not any(new.get(p, 0) >= self.min_new_links for p in pending):
            return None
        first = pending[0]
        return None if self._tried.get(first) == new.get(first, 0) else first

    def tried(self, phase: str, new: dict[str, int]) -> None:
        """Remember the new-link count (``new``: per phase) a phase had when it was learned (or failed to be)."""
        self._tried[phase] = new.get(phase, 0)


class Writer:
    """The single writer thread: applies watcher batches, runs queued jobs, learns when the policy says so.

    Implements the API's ``DaemonControl``: ``snapshot``, ``learning``, ``request_reindex``, ``request_learn``.
    """

    def __init__(self, service, watcher: VaultWatcher, policy: LearnPolicy, wake: threading.Event, *,
                 recheck_seconds: float = 2.0):
        self.service = service
        self.watcher = watcher
        self.policy = policy
        self.recheck_seconds = recheck_seconds
        self._wake = wake
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._jobs: deque[tuple[str, str | None]] = deque([("reindex", None)])  # startup reconcile first
        self._state = "indexing"
        self._learning: dict = {"running": False, "phase": None, "progress": None, "result": None,
                                "error": None}
        self._applied = 0
        self._policy_checked: int | None = None  # the batch count at the last policy check
        self._last_change: dict | None = None
        self._last_error: str | None = None
        self._model = "loading"
        self._preload_started = False
        self._thread = threading.Thread(target=self._run, name="vaultlearn-writer", daemon=True)

    # --- control (any thread) --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def preload_model(self) -> None:
        """Load the model in a background thread (once), so the first saved note does not wait for it."""
        with self._lock:
            if self._preload_started:
                return
            self._preload_started = True
        threading.Thread(target=self._preload_model, name="vaultlearn-model", daemon=True).start()

    def _preload_model(self) -> None:
        try:
            self.service.encoder()
            state = "loaded"
        except Exception as exc:  # the first note to embed loads it again and reports the error
            log.warning("loading the model failed: %s", exc)
            state = f"failed: {type(exc).__name__}: {exc}"
        with self._lock:
            self._model = state

    def stop(self, timeout: float = SHUTDOWN_WAIT_SECONDS) -> bool:
        """Stop after the current job (learning is abandoned at its next progress step); True when stopped."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def request_reindex(self) -> None:
        self._queue(("reindex", None))

    def request_learn(self, phase: str | None) -> None:
        self._queue(("learn", phase))

    def snapshot(self) -> dict:
        with self._lock:
            learning = {k: self._learning[k] for k in ("phase", "progress")} if self._learning["running"] else None
            return {
                "state": self._state,
                "model": self._model,
                "learning": learning,
                "pending_changes": self.watcher.pending,
                "queued_jobs": [kind for kind, _ in self._jobs],
                "applied_batches": self._applied,
                "last_change": self._last_change,
                "last_error": self._last_error,
            }

    def learning(self) -> dict:
        with self._lock:
            return dict(self._learning)

    # --- the writer thread -----------------------------------------------------------------------------
    def _queue(self, job: tuple[str, str | None]) -> None:
        with self._lock:
            if job not in self._jobs:
                self._jobs.append(job)
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                worked = self._step()
            except Exception as exc:  # a failed job must not kill the daemon
                log.exception("job failed")
                with self._lock:
                    self._last_error = f"{type(exc).__name__}: {exc}"
                worked = False
            if not worked:
                due = self.watcher.due_in()
                self._wake.wait(self.recheck_seconds if due is None else min(due, self.recheck_seconds))

    def _step(self) -> bool:
        batch = self.watcher.take()
        if batch is not None:
            self._apply(batch)
            return True
        with self._lock:
            job = self._jobs.popleft() if self._jobs else None
        if job is not None:
            kind, phase = job
            if kind == "reindex":
                self._reconcile()
            else:
                self._learn(phase)
            return True
        phase = self._background_phase()
        if phase is not None:
            log.info("phase %s has enough new links and the vault is quiet: learning it", phase)
            self._learn(phase)
            return True
        return False

    def _apply(self, batch: Batch) -> None:
        try:
            with self._busy("indexing"):
                for old, new in batch.moves:
                    self.service.rename(old, new)
                if batch.rescan:
                    report = self.service.index()
                else:
                    report = self.service.index(batch.paths) if batch.paths else None
        except Exception:
            self.request_reindex()  # these changes are not applied: a reconcile will pick them up
            raise
        self._record(report, batch)
        if batch.rescan or batch.paths or batch.moves:
            log.info("applied %d move(s), %s: %s", len(batch.moves),
                     "full reconcile" if batch.rescan else f"{len(batch.paths)} path(s)", _summary(report))

    def _reconcile(self) -> None:
        with self._busy("indexing"):
            report = self.service.index()
        self._record(report, Batch(rescan=True))
        log.info("reconciled the vault: %s", _summary(report))
        threading.Thread(target=self._warm_ranking, name="vaultlearn-ranking", daemon=True).start()

    def _warm_ranking(self) -> None:
        """Build the rank context of the reconciled state now, beside the writer, so that the first suggestion
        after a start does not build it (seconds at 100k notes; a request meanwhile waits for this build), and
        save it for fresh processes (a CLI `suggest` once the daemon is stopped)."""
        started = time.perf_counter()
        try:
            self.service.rank_context()
        except Exception as exc:  # the first suggestion builds it again and reports the error
            log.warning("building the rank context failed: %s", exc)
            return
        log.info("rank context ready in %.2f s", time.perf_counter() - started)
        try:
            if self.service.save_rank_snapshot():
                log.info("rank context saved for fresh processes")
        except Exception as exc:  # a fresh process builds its own
            log.warning("saving the rank context failed: %s", exc)

    def _record(self, report: IndexReport | None, batch: Batch) -> None:
        for line in summarise(report.warnings if report else []):
            log.warning("%s", line)
        with self._lock:
            self._applied += 1
            self._last_error = None
            self._last_change = {
                "moves": len(batch.moves), "paths": len(batch.paths), "rescan": batch.rescan,
                **{k: getattr(report, k) if report else 0 for k in _COUNTS},
            }

    def _background_phase(self) -> str | None:
        """A phase to learn now; the service is asked only when something was applied since it last was."""
        if self.watcher.quiet_for() < self.policy.quiet_seconds or self.watcher.pending:
            return None
        if self._policy_checked == self._applied:
            return None
        self._policy_checked = self._applied
        status = self.service.status()
        return self.policy.ready_phase(status.pending_phases, status.new_links_by_phase)

    def _learn(self, phase: str | None) -> None:
        with self._lock:
            self._learning = {"running": True, "phase": phase, "progress": None, "result": None, "error": None}
        result, error = None, None
        try:
            with self._busy("learning"):
                result = self.service.learn(phase, progress=self._progress)
            for report in result.phases:
                if report.committed:
                    log.info("learned %s: %s", report.phase, report.reason)
                else:
                    log.info("kept the current model for %s: %s", report.phase, report.reason)
            log.info("learned phases now: %s", ", ".join(result.learned_phases) or "none")
        except LearningAbandoned:
            error = "abandoned at shutdown; the previous model stays in use"
            log.info("learning abandoned at shutdown")
        except Exception as exc:  # reported over the API; the daemon keeps serving the previous model
            expected = isinstance(exc, VaultlearnError)
            error = str(exc) if expected else f"{type(exc).__name__}: {exc}"
            log.warning("learning %s failed: %s", phase or "the pending phases", error, exc_info=not expected)
        finally:
            if phase is not None:
                self.policy.tried(phase, self.service.status().new_links_by_phase)
            self._policy_checked = None  # other phases may be ready now
            with self._lock:
                self._learning.update(running=False, result=result.to_json() if result else None, error=error)

    def _progress(self, info: dict) -> None:
        """The service's progress callback: ``{"phase": name, "progress": fraction}``."""
        if self._stop.is_set():
            raise LearningAbandoned()
        with self._lock:
            self._learning.update(phase=info.get("phase", self._learning["phase"]), progress=info.get("progress"))

    @contextmanager
    def _busy(self, state: str):
        with self._lock:
            self._state = state
        try:
            yield
        finally:
            with self._lock:
                self._state = "idle"


def _summary(report: IndexReport | None) -> str:
    return ", ".join(f"{k} {getattr(report, k)}" for k in _COUNTS) if report else ""
