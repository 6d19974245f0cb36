"""Walk a vault: list its notes and attachments, skipping hidden folders, ignore globs and unsafe symlinks."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Sequence

from vaultlearn.errors import NotAVaultError
from vaultlearn.vault.names import is_note_path


@dataclass(frozen=True)
class ScannedFile:
    """A note file: vault-relative POSIX path, size in bytes, modification time (epoch seconds)."""

    path: str
    size: int
    mtime: float


@dataclass
class ScanResult:
    """What a scan found, sorted by path; problems are (path, human-readable message) pairs."""

    notes: list[ScannedFile] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """The problems as ``"path: message"`` lines."""
        return [f"{path}: {message}" for path, message in self.problems]


def is_ignored(rel_path: str, ignore_globs: Sequence[str] = ()) -> bool:
    """True when a vault-relative POSIX path is hidden (a dot-folder or dot-file) or matches a glob.

    A glob matches the whole path or any of its parent folders (``"Archive"`` and ``"Archive/**"`` both
    ignore the folder); a glob without ``/`` also matches any single name (``"*.tmp"``, ``"drafts"``).
    """
    parts = [p for p in rel_path.strip("/").split("/") if p]
    if any(p.startswith(".") for p in parts):
        return True
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for glob in ignore_globs:
        pattern = glob.strip().rstrip("/")
        if not pattern:
            continue
        candidates = prefixes if "/" in pattern else prefixes + parts
        if any(fnmatchcase(c, pattern) for c in candidates):
            return True
    return False


def scan_vault(root: Path, ignore_globs: Sequence[str] = ()) -> ScanResult:
    """List the notes (``*.md``, any case) and attachments of the vault at ``root``.

    Symlinked folders are not followed (no loops, no duplicates); symlinked files are kept only when
    they resolve inside the vault. Files that vanish while scanning are skipped with a warning.
    """
    root = Path(root)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise NotAVaultError(f"{root} {what}: a vault is a folder of markdown notes")
    real_root = root.resolve()
    result = ScanResult()
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            with os.scandir(root / rel_dir if rel_dir else root) as entries:
                listed = list(entries)
        except OSError as exc:
            result.problems.append((rel_dir or ".", f"cannot list folder ({exc.strerror or exc})"))
            continue
        for entry in listed:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if not _valid_name(rel, result.problems) or is_ignored(rel, ignore_globs):
                continue
            _visit(entry, rel, real_root, result, pending)
    result.notes.sort(key=lambda f: f.path)
    result.attachments.sort()
    return result


def _valid_name(rel: str, problems: list[tuple[str, str]]) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        problems.append((rel.encode("utf-8", "replace").decode(), "skipped, the name is not valid UTF-8"))
        return False
    return True


def _visit(entry: os.DirEntry, rel: str, real_root: Path, result: ScanResult, pending: list[str]) -> None:
    try:
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            if not target.exists():
                result.problems.append((rel, "skipped, broken symlink"))
                return
            if not target.is_relative_to(real_root):
                result.problems.append((rel, "skipped, symlink points outside the vault"))
                return
            if target.is_dir():
                result.problems.append((rel, "skipped, symlinked folders are not followed"))
                return
        if entry.is_dir():
            pending.append(rel)
            return
        if not entry.is_file():
            if is_note_path(rel):
                result.problems.append((rel, f"skipped, {_not_regular(entry.stat().st_mode)}"))
            return
        if is_note_path(rel):
            stat = entry.stat()
            result.notes.append(ScannedFile(rel, stat.st_size, stat.st_mtime))
        else:
            result.attachments.append(rel)
    except (FileNotFoundError, RuntimeError):  # vanished while scanning, or a symlink loop
        result.problems.append((rel, "skipped, the file vanished or is a symlink loop"))
    except OSError as exc:
        result.problems.append((rel, f"skipped ({exc.strerror or exc})"))


class ResolvedRoot:
    """A vault root resolved by ``os.path.realpath`` once, and each folder under it once: reading many notes then
    costs an ``lstat`` per note instead of a ``realpath`` (a pure-Python walk that ``lstat``s every component of
    the path: 0.25–0.36 s of 10k notes, against 0.06 s). Made per batch of reads, as a resolved path is only as
    current as the moment it was resolved."""

    def __init__(self, root: str | Path):
        self.path = os.path.realpath(root)
        self._folders: dict[str, str] = {}

    def note_path(self, rel_path: str) -> str:
        """The real path of ``rel_path`` (a symlink resolved; it may lie outside the root)."""
        folder, _, name = rel_path.rpartition("/")
        real_folder = self._folders.get(folder)
        if real_folder is None:
            real_folder = self._folders[folder] = os.path.realpath(os.path.join(self.path, folder))
        path = os.path.join(real_folder, name)
        if name in ("", ".", "..") or stat.S_ISLNK(os.lstat(path).st_mode):
            path = os.path.realpath(path)
        return path


def read_note_bytes(root: Path, rel_path: str, max_bytes: int, problems: list[str] | None = None) -> bytes | None:
    """At most ``max_bytes`` of a note; None when it vanished, is unreadable, is not a regular file or resolves
    outside ``root``. Why a note that exists was not read is appended to ``problems``.

    Never blocks: only regular files are read, and the open itself is non-blocking, so a FIFO named like a
    note (or one swapped in between the check and the open) is refused at once instead of waiting for a writer.
    """
    try:
        resolved = ResolvedRoot(root)
    except ValueError:  # a NUL in the name
        return None
    return read_note_beneath(resolved, rel_path, max_bytes, problems)


def read_note_beneath(root: ResolvedRoot, rel_path: str, max_bytes: int,
                      problems: list[str] | None = None) -> bytes | None:
    """:func:`read_note_bytes` under a :class:`ResolvedRoot`: reading many notes resolves the root and each
    folder once, not every path."""
    real_root = root.path
    try:
        path = root.note_path(rel_path)
        if path != real_root and not path.startswith(os.path.join(real_root, "")):
            return None
        if not stat.S_ISREG(mode := os.stat(path).st_mode):
            _add(problems, f"skipped, {_not_regular(mode)}")
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, ValueError):  # vanished, a NUL in the name
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink loop
            return None
        _add(problems, f"skipped, cannot be read ({exc.strerror or exc})")
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            status = os.fstat(handle.fileno())
            if not stat.S_ISREG(status.st_mode):
                _add(problems, f"skipped, {_not_regular(status.st_mode)}")
                return None
            # asking for max_bytes at once allocates them (3x the time of a small note's whole read); a file
            # that grew since its stat is read on, up to max_bytes
            data = handle.read(min(max_bytes, status.st_size + 1))
            if len(data) > status.st_size and len(data) < max_bytes:
                data += handle.read(max_bytes - len(data))
            return data
        except OSError as exc:
            _add(problems, f"skipped, cannot be read ({exc.strerror or exc})")
            return None


def _add(problems: list[str] | None, problem: str) -> None:
    if problems is not None:
        problems.append(problem)


def _not_regular(mode: int) -> str:
    """Why a file of this ``st_mode`` is not read as a note."""
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
    return f"not a regular file ({kind})"
