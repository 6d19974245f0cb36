"""Walk a vault: list its notes and attachments, skipping hidden folders, ignore globs and unsafe symlinks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Sequence

from vaultlearn.errors import NotAVaultError
from vaultlearn.vault.names import is_note_path

# Named for other modules (the watcher filters events with them); is_ignored skips every dot-folder,
# which includes these.
ALWAYS_IGNORED_DIRS = (".obsidian", ".trash", ".vaultlearn", ".git")


@dataclass(frozen=True)
class ScannedFile:
    """A note file: vault-relative POSIX path, size in bytes, modification time (epoch seconds)."""

    path: str
    size: int
    mtime: float


@dataclass
class ScanResult:
    """What a scan found, sorted by path; warnings are human-readable."""

    notes: list[ScannedFile] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


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
            result.warnings.append(f"{rel_dir or '.'}: cannot list folder ({exc.strerror or exc})")
            continue
        for entry in listed:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if not _valid_name(rel, result.warnings) or is_ignored(rel, ignore_globs):
                continue
            _visit(entry, rel, real_root, result, pending)
    result.notes.sort(key=lambda f: f.path)
    result.attachments.sort()
    return result


def _valid_name(rel: str, warnings: list[str]) -> bool:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        warnings.append(f"{rel.encode('utf-8', 'replace').decode()}: skipped, the name is not valid UTF-8")
        return False
    return True


def _visit(entry: os.DirEntry, rel: str, real_root: Path, result: ScanResult, pending: list[str]) -> None:
    try:
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            if not target.exists():
                result.warnings.append(f"{rel}: skipped, broken symlink")
                return
            if not target.is_relative_to(real_root):
                result.warnings.append(f"{rel}: skipped, symlink points outside the vault")
                return
            if target.is_dir():
                result.warnings.append(f"{rel}: skipped, symlinked folders are not followed")
                return
        if entry.is_dir():
            pending.append(rel)
            return
        if not entry.is_file():
            return
        if is_note_path(rel):
            stat = entry.stat()
            result.notes.append(ScannedFile(rel, stat.st_size, stat.st_mtime))
        else:
            result.attachments.append(rel)
    except (FileNotFoundError, RuntimeError):  # vanished while scanning, or a symlink loop
        result.warnings.append(f"{rel}: skipped, the file vanished or is a symlink loop")
    except OSError as exc:
        result.warnings.append(f"{rel}: skipped ({exc.strerror or exc})")


def read_note_bytes(root: Path, rel_path: str, max_bytes: int) -> bytes | None:
    """At most ``max_bytes`` of a note; None when it vanished, is unreadable or resolves outside ``root``."""
    root = Path(root)
    try:
        real_root = root.resolve()
        path = (root / rel_path).resolve()
        if not path.is_relative_to(real_root):
            return None
        with open(path, "rb") as handle:
            return handle.read(max_bytes)
    except (OSError, RuntimeError, ValueError):
        return None
