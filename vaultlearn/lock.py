"""Per-vault locks: an exclusive ``flock`` on a file under ``VAULT/.vaultlearn/``, freed by the kernel on death.

Two are used, both through :class:`FileLock`: ``daemon.lock`` (one ``vaultlearn watch`` per vault, held for the
daemon's life) and ``writer.lock`` (one process writing the state at a time, held for each index, rename or
learn: :class:`WriterLock`). A killed holder never blocks the next process.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path


class FileLock:
    """An exclusive ``flock`` on ``path``; the holder writes its pid and command line into the file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, wait: bool = False, on_wait: Callable[[str], None] | None = None) -> bool:
        """Take the lock; when another process holds it, False at once, or (``wait``) block until it is free,
        first calling ``on_wait`` with a description of the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    os.close(fd)
                    return False
                if on_wait is not None:
                    on_wait(self.holder())
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {' '.join([Path(sys.argv[0]).name, *sys.argv[1:2]])}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def holder(self) -> str:
        """``"pid N (command)"`` as the holder wrote it, or ``"another process"`` when unreadable."""
        try:
            pid, _, command = self.path.read_text(encoding="utf-8", errors="replace").strip().partition(" ")
        except OSError:
            pid = ""
        if not pid.isdigit():
            return "another process"
        return f"pid {pid} ({command})" if command else f"pid {pid}"


class WriterLock:
    """The vault's writer lock as a context manager: re-entrant within a process, exclusive across processes.

    Threads of one process queue on an in-process lock; the file lock is taken by the outermost ``with`` and
    held until it ends, so a second process waits (``on_wait`` says so once) instead of doing the same work.
    """

    def __init__(self, path: Path, on_wait: Callable[[str], None]):
        self._file = FileLock(path)
        self._on_wait = on_wait
        self._thread_lock = threading.RLock()
        self._depth = 0

    def __enter__(self) -> WriterLock:
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                self._file.acquire(wait=True, on_wait=self._on_wait)
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._file.release()
        self._thread_lock.release()
