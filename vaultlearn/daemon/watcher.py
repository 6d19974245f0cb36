"""Vault watching: watchdog events → coalesced, settled batches of note changes.

:class:`ChangeCoalescer` holds the logic and no clock or filesystem of its own (time and the file probe are
injected), so it is tested without sleeping. :class:`VaultWatcher` feeds it from a recursive watchdog observer.

A batch never says what a file contains: it names the paths whose final state must be re-read from disk
(created, modified, deleted, both ends of a move) plus the moves, so a storm of events for one path costs one
re-read and no event order can leave a stale state behind. Moves are kept as ``(old, new)`` pairs with
chains collapsed (``A→B→C`` is ``A→C``, ``A→B→A`` is nothing); whether one is a rename of a known note or
just a new file is decided by whoever applies the batch, against the state it has at that moment.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from vaultlearn.vault.names import is_note_path
from vaultlearn.vault.scan import is_ignored

log = logging.getLogger(__name__)

Probe = Callable[[str], "tuple[int, int] | None"]

@dataclass(frozen=True)
class Batch:
    """Changes ready to apply: renames first (in order), then re-read every path (missing = deleted)."""

    moves: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()
    rescan: bool = False  # events were lost (a folder vanished, a kernel queue overflowed): reconcile all


@dataclass
class _Dirty:
    probe: tuple[int, int] | None  # (size, mtime_ns) seen at the last event; None when missing
    since: float  # first event of this round, for the settle limit
    closed: bool  # the last event ended a write (close after writing, rename into place, delete)


class ChangeCoalescer:
    """Per-path coalescing queue with debounce, a storm cap and a settle check against half-written files.

    ``take`` hands a batch out once no event arrived for ``debounce`` seconds, or ``max_delay`` seconds
    after the first pending event under a continuous storm. When every pending path's last event ended a
    write (the writer closed the file, renamed it into place or deleted it), ``quick`` seconds of quiet are
    enough: that is an editor's save, and waiting longer only delays fresh suggestions. A path whose
    (size, mtime) changed since its last event is still being written: it is held back for another
    ``debounce`` (given up after ``settle_limit`` seconds, so a file rewritten forever without events cannot
    starve). Not thread-safe.
    """

    def __init__(self, probe: Probe, *, debounce: float, max_delay: float, quick: float = 0.1,
                 settle_limit: float = 30.0):
        self._probe = probe
        self.debounce = debounce
        self.quick = min(quick, debounce)
        self.max_delay = max(max_delay, debounce)
        self.settle_limit = settle_limit
        self._dirty: dict[str, _Dirty] = {}
        self._open = 0  # dirty paths whose last event did not end a write
        self._moves: dict[str, str] = {}  # new path → original path
        self._rescan = False
        self._first: float | None = None
        self._last: float | None = None

    @property
    def pending(self) -> int:
        """Paths waiting to be handed out."""
        return len(self._dirty)

    def touch(self, path: str, now: float, *, closed: bool = False) -> None:
        """A note was created or written; ``closed`` when the event says the writer closed it."""
        self._mark(path, now, self._probe(path), closed)

    def delete(self, path: str, now: float) -> None:
        """A note was deleted; a pending move onto it is void."""
        self._moves.pop(path, None)
        self._mark(path, now, None, True)

    def move(self, src: str | None, dst: str | None, now: float) -> None:
        """A file moved; ``None`` stands for a side that is not a note (temp file, ignored folder)."""
        origin = self._moves.pop(src, src) if src is not None else None
        if dst is not None:
            self._moves.pop(dst, None)  # whatever was moved onto dst before is overwritten
            if origin is not None and origin != dst:
                self._moves[dst] = origin
            self._mark(dst, now, self._probe(dst), True)
        if src is not None:
            self._mark(src, now, None, True)

    def request_rescan(self, now: float) -> None:
        """Events were lost: the next batch asks for a full reconcile."""
        self._rescan = True
        self._note_event(now)

    def due(self) -> float | None:
        """The time at which :meth:`take` will hand out a batch; None when nothing is pending."""
        if self._last is None:
            return None
        quiet = self.quick if self._open == 0 and not self._rescan else self.debounce
        return min(self._last + quiet, self._first + self.max_delay)

    def take(self, now: float) -> Batch | None:
        """The pending changes when due, settled paths only; None when not due or nothing is settled."""
        due = self.due()
        if due is None or now < due:
            return None
        ready: list[str] = []
        held: dict[str, _Dirty] = {}
        for path, dirty in self._dirty.items():
            current = self._probe(path)
            if current != dirty.probe and now - dirty.since < self.settle_limit:
                held[path] = _Dirty(current, dirty.since, False)
            else:
                if current != dirty.probe:
                    log.warning("%s keeps changing without events; reading it anyway", path)
                ready.append(path)
        batch = Batch(moves=_ordered(self._moves), paths=tuple(sorted(ready)), rescan=self._rescan)
        self._dirty, self._open, self._moves, self._rescan = held, len(held), {}, False
        self._first = self._last = now if held else None
        if not (batch.moves or batch.paths or batch.rescan):
            return None
        return batch

    def _mark(self, path: str, now: float, probe: tuple[int, int] | None, closed: bool) -> None:
        previous = self._dirty.get(path)
        self._open += (not closed) - (previous is not None and not previous.closed)
        self._dirty[path] = _Dirty(probe, previous.since if previous else now, closed)
        self._note_event(now)

    def _note_event(self, now: float) -> None:
        if self._first is None:
            self._first = now
        self._last = now


def _ordered(moves: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """``(old, new)`` pairs ordered so that a move into a path comes after the move that freed it.

    A cycle (two notes swapped through a temp name) cannot be ordered; it is returned as is and the applier
    falls back to re-reading both paths.
    """
    remaining = [(old, new) for new, old in moves.items()]
    ordered: list[tuple[str, str]] = []
    while remaining:
        origins = {old for old, _ in remaining}
        free = [m for m in remaining if m[1] not in origins]
        if not free:
            ordered.extend(remaining)
            break
        ordered.extend(free)
        remaining = [m for m in remaining if m[1] in origins]
    return tuple(ordered)


def file_probe(vault: Path) -> Probe:
    """A probe giving ``(size, mtime_ns)`` of a vault-relative path, None when it is missing."""

    def probe(rel: str) -> tuple[int, int] | None:
        try:
            st = os.stat(vault / rel)
        except (OSError, ValueError):
            return None
        return st.st_size, st.st_mtime_ns

    return probe


class VaultWatcher(FileSystemEventHandler):
    """A recursive watchdog observer on the vault feeding a :class:`ChangeCoalescer`. Thread-safe.

    The watcher is the observer's event handler: watchdog calls its ``on_*`` methods from the observer thread.

    ``on_event`` is called (from the observer thread) after every event that concerns a note, so a consumer
    can wake up and wait until :meth:`due_in` before calling :meth:`take`.
    """

    def __init__(
        self,
        vault: Path,
        *,
        ignore_globs: Sequence[str] = (),
        debounce: float = 0.5,
        max_delay: float | None = None,
        on_event: Callable[[], None] | None = None,
    ):
        self.vault = Path(vault).resolve()
        self._root = str(self.vault)
        self._ignore = tuple(ignore_globs)
        self._on_event = on_event or (lambda: None)
        self._lock = threading.Lock()
        self._coalescer = ChangeCoalescer(
            file_probe(self.vault), debounce=debounce, max_delay=max_delay or max(3.0, 6 * debounce)
        )
        self._last_event = time.monotonic()
        self._observer: Observer | None = None
        self._overflow = _OverflowHook(self._lost_events)

    def quiet_for(self) -> float:
        """Seconds since the last note event (since the watcher was made, before any)."""
        return time.monotonic() - self._last_event

    @property
    def pending(self) -> int:
        """Paths waiting to be handed out."""
        with self._lock:
            return self._coalescer.pending

    def start(self) -> None:
        """Start watching (events before this call are not seen: reconcile after starting)."""
        self._observer = Observer()
        self._observer.schedule(self, self._root, recursive=True)
        logging.getLogger("watchdog.observers.inotify_c").addHandler(self._overflow)
        self._observer.start()

    def stop(self) -> None:
        """Stop the observer and wait for its threads."""
        logging.getLogger("watchdog.observers.inotify_c").removeHandler(self._overflow)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None

    def due_in(self) -> float | None:
        """Seconds until a batch may be ready (0 when it may be now); None when nothing is pending."""
        with self._lock:
            due = self._coalescer.due()
        return None if due is None else max(0.0, due - time.monotonic())

    def take(self) -> Batch | None:
        """The next settled batch, or None when none is due."""
        with self._lock:
            return self._coalescer.take(time.monotonic())

    def _note(self, path: str | bytes) -> str | None:
        rel = self._relative(path)
        if rel is None or not is_note_path(rel) or is_ignored(rel, self._ignore):
            return None
        return rel

    def _relative(self, path: str | bytes) -> str | None:
        path = os.fsdecode(path)
        if not path:
            return None
        rel = os.path.relpath(path, self._root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
            return None
        return Path(rel).as_posix()

    # --- watchdog's callbacks (observer thread); "opened" and "closed_no_write" keep the base no-ops -------
    def on_created(self, event: FileSystemEvent) -> None:
        self._touched(event, closed=False)

    def on_modified(self, event: FileSystemEvent) -> None:
        self._touched(event, closed=False)

    def on_attrib(self, event: FileSystemEvent) -> None:
        """Metadata changed (``touch``, ``chmod``, a sync tool setting mtime): re-read like a write."""
        self._touched(event, closed=False)

    def on_closed(self, event: FileSystemEvent) -> None:
        self._touched(event, closed=True)

    def on_deleted(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            # Moves and creations of folders come with one synthetic event per file inside; a deletion
            # does not when the folder was moved out of the vault, so it costs a reconcile.
            rel = self._relative(event.src_path)
            if rel is not None and not is_ignored(rel, self._ignore):
                self._lost_events()
            return
        src = self._note(event.src_path)
        if src is not None:
            self._changed(lambda now: self._coalescer.delete(src, now))

    def on_moved(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        src, dst = self._note(event.src_path), self._note(event.dest_path)
        if src is not None or dst is not None:
            self._changed(lambda now: self._coalescer.move(src, dst, now))

    def _touched(self, event: FileSystemEvent, *, closed: bool) -> None:
        if event.is_directory:
            return
        src = self._note(event.src_path)
        if src is not None:
            self._changed(lambda now: self._coalescer.touch(src, now, closed=closed))

    def _lost_events(self) -> None:
        self._changed(self._coalescer.request_rescan)

    def _changed(self, record: Callable[[float], None]) -> None:
        """Record a note event in the coalescer (under the lock, at the current time), then wake the consumer."""
        now = time.monotonic()
        with self._lock:
            record(now)
            self._last_event = now
        self._on_event()


class _OverflowHook(logging.Handler):
    """Turns watchdog's "inotify queue overflowed" warning into a reconcile (watchdog reports it no other way)."""

    def __init__(self, callback: Callable[[], None]):
        super().__init__(level=logging.WARNING)
        self._callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._callback()
