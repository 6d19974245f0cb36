"""Read, hash and parse many notes: in worker processes when there are enough to pay for starting them.

Results come back in chunks, in order, while the workers go on with the next ones, so the caller can embed
one chunk while the next is parsed. Workers are forked on Linux when the caller runs no other thread (cheap,
and safe for a script without a ``__main__`` guard); otherwise, as in the daemon, they are spawned, because
forking a process whose other threads may hold locks can leave the child deadlocked.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from vaultlearn.config import Config
from vaultlearn.vault.note import Note
from vaultlearn.vault.parse import parse_note
from vaultlearn.vault.scan import ResolvedRoot, read_note_beneath, read_note_bytes

PARALLEL_ABOVE = 2000  # notes to read; below this, starting workers (~0.3 s each) costs more than it saves
CHUNK = 256  # notes per task sent to a worker
MAX_WORKERS = 8


def read_note_text(vault: Path, path: str, config: Config, edit: Callable[[str], str] | None = None) -> str | None:
    """The text the index embeds for the note at ``path`` (read and parsed, its markdown first passed through
    ``edit`` when given); None when the file cannot be read."""
    raw = read_note_bytes(Path(vault), path, config.max_note_bytes)
    if raw is None:
        return None
    if edit is not None:
        raw = edit(raw.decode("utf-8", errors="replace")).encode("utf-8")
    return parse_note(path, raw, config.max_embed_chars).text


def content_hash(raw: bytes) -> str:
    """The identity of a note's content."""
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class ReadNote:
    """One note read: ``digest`` None when it was not read (``problems`` says why, when it exists); ``note`` None
    when its content equals the known hash."""

    path: str
    digest: str | None
    note: Note | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReadJob:
    """What to read, and how: the vault, the limits, and per path the content hash already known (or None)."""

    vault: str
    max_note_bytes: int
    max_embed_chars: int
    paths: tuple[tuple[str, str | None], ...]


def read_chunk(job: ReadJob) -> list[ReadNote]:
    """Read, hash and (when the content is new) parse every path of ``job``."""
    out = []
    root = ResolvedRoot(job.vault)
    for path, known in job.paths:
        problems: list[str] = []
        raw = read_note_beneath(root, path, job.max_note_bytes, problems)
        if raw is None:
            out.append(ReadNote(path, None, None, tuple(problems)))
            continue
        digest = content_hash(raw)
        note = None if digest == known else parse_note(path, raw, job.max_embed_chars)
        out.append(ReadNote(path, digest, note))
    return out


def read_notes(vault: Path, paths: Sequence[tuple[str, str | None]], max_note_bytes: int, max_embed_chars: int,
               workers: int | None = None) -> Iterator[list[ReadNote]]:
    """Chunks of :class:`ReadNote`, in the order of ``paths`` (``(path, known hash or None)`` pairs)."""
    jobs = [ReadJob(str(vault), max_note_bytes, max_embed_chars, tuple(paths[s : s + CHUNK]))
            for s in range(0, len(paths), CHUNK)]
    workers = min(MAX_WORKERS, (os.cpu_count() or 1) - 1) if workers is None else workers  # a core to embed
    if len(paths) <= PARALLEL_ABOVE or workers < 2:
        yield from map(read_chunk, jobs)
        return
    import multiprocessing  # here: a process that reads few notes (suggest, status) does not import them
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if sys.platform == "linux" and not _other_threads() else "spawn"
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
    try:
        yield from pool.map(read_chunk, jobs)
    finally:  # a caller that stops early (an embedding error) does not wait for the rest to be parsed
        pool.shutdown(cancel_futures=True)


def _other_threads() -> list[threading.Thread]:
    """Threads besides this one that a forked child could inherit a held lock from (tqdm's progress-bar
    monitor only takes tqdm's own locks, which the workers never use)."""
    return [t for t in threading.enumerate() if t is not threading.current_thread() and t.name != "tqdm_monitor"]
