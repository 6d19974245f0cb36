"""Link target → note path, with Obsidian's rules (research/obsidian.md §3).

Case-insensitive; ``[[Note]]`` = ``[[Note.md]]``; an exact vault path wins, else the notes sharing the
basename (and, when the link has folders, whose path ends with them): the one in the source note's own
folder, else the shortest path, ties broken lexicographically. Aliases are not link targets.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Iterable

from vaultlearn.vault.names import has_attachment_extension, is_note_path, lookup_key, strip_note_suffix
from vaultlearn.vault.note import Link


@dataclass(frozen=True)
class Resolution:
    """Where a link points: a note path, an attachment (path None), or nothing (unresolved)."""

    path: str | None
    attachment: bool = False


class LinkResolver:
    """Resolves links against the vault's current files; ``add``/``remove`` keep it in step with edits."""

    def __init__(self, note_paths: Iterable[str], attachment_paths: Iterable[str] = ()):
        self._note_keys: dict[str, str] = {}  # path → lookup key of the path without ".md"
        self._notes: dict[str, set[str]] = {}  # lookup key → paths (several only on case-sensitive disks)
        self._by_name: dict[str, set[str]] = {}  # lookup key of the basename → paths
        self._attachments: dict[str, set[str]] = {}  # lookup key of the path and of the basename → paths
        for path in note_paths:
            self.add(path)
        for path in attachment_paths:
            self.add(path)

    def add(self, path: str) -> None:
        """Register a vault file (a note when it ends in ``.md``, else an attachment)."""
        if not is_note_path(path):
            for key in _attachment_keys(path):
                self._attachments.setdefault(key, set()).add(path)
            return
        key = lookup_key(strip_note_suffix(path))
        self._note_keys[path] = key
        self._notes.setdefault(key, set()).add(path)
        self._by_name.setdefault(_basename(key), set()).add(path)

    def remove(self, path: str) -> None:
        """Forget a vault file (unknown paths are ignored)."""
        if not is_note_path(path):
            for key in _attachment_keys(path):
                _discard(self._attachments, key, path)
            return
        key = self._note_keys.pop(path, None)
        if key is not None:
            _discard(self._notes, key, path)
            _discard(self._by_name, _basename(key), path)

    def resolve(self, link: Link, source: str) -> Resolution:
        """Resolve ``link`` written in the note at ``source``."""
        target = link.target.strip()
        if not target:
            return Resolution(source)
        if has_attachment_extension(target) or lookup_key(target.lstrip("/")) in self._attachments:
            return Resolution(None, attachment=True)
        relative = link.markdown or target.startswith(("./", "../"))
        return Resolution(self._find_note(target, source, relative))

    def resolve_name(self, name: str, source: str | None = None) -> str | None:
        """A note path for a name typed by a user: a vault path with or without ``.md``, or a link name."""
        name = name.strip().replace("\\", "/")
        if not name or (has_attachment_extension(name) and not is_note_path(name)):
            return None
        return self._find_note(name, source, relative=False)

    def _find_note(self, target: str, source: str | None, relative: bool) -> str | None:
        name = strip_note_suffix(target).lstrip("/")
        if relative and source:
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(source), name))
            if not joined.startswith("../") and (hit := self._notes.get(lookup_key(joined))):
                return _first(hit)
        key = lookup_key(name)
        if hit := self._notes.get(key):
            return _first(hit)
        candidates = self._named(key)
        if len(candidates) > 1 and source:  # the one in the source note's folder, when there is one
            source_dir = posixpath.dirname(source)
            beside = [path for path in candidates if posixpath.dirname(path) == source_dir]
            if beside:
                return _first(beside)
        return _first(candidates) if candidates else None

    def notes_named(self, name: str) -> list[str]:
        """Every note a name typed by a user could mean, in the order :meth:`resolve_name` prefers them (its
        choice first): the note at that exact path, else every note with that basename (and folders)."""
        name = name.strip().replace("\\", "/")
        if not name or (has_attachment_extension(name) and not is_note_path(name)):
            return []
        key = lookup_key(strip_note_suffix(name).lstrip("/"))
        return sorted(self._notes.get(key) or self._named(key), key=_order)

    def _named(self, key: str) -> list[str]:
        """The notes whose basename is ``key``'s and, when ``key`` has folders, whose path ends with it."""
        candidates = self._by_name.get(_basename(key), ())
        if "/" in key:
            return [path for path in candidates if self._note_keys[path].endswith("/" + key)]
        return list(candidates)


def _order(path: str) -> tuple[int, str]:
    return len(path), path


def _first(paths: Iterable[str]) -> str:
    """Shortest path string, ties broken lexicographically."""
    return min(paths, key=_order)


def _basename(key: str) -> str:
    return key.rsplit("/", 1)[-1]


def _attachment_keys(path: str) -> set[str]:
    key = lookup_key(path)
    return {key, _basename(key)}


def _discard(index: dict[str, set[str]], key: str, path: str) -> None:
    paths = index.get(key)
    if paths is not None:
        paths.discard(path)
        if not paths:
            del index[key]
