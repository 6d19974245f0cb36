"""Warnings about notes, as people read them: each names its file; many of one kind become one summary line."""

from __future__ import annotations

import re
from collections.abc import Iterable

SHOWN_PER_KIND = 3  # a kind with more notes than this is summarised with a count and the first paths
_DETAILS = re.compile(r"\([^()]*\)|\d+")


def kind_of(message: str) -> str:
    """What a warning says without its particulars (numbers and parenthesised details become ``…``)."""
    return _DETAILS.sub("…", message)


def summarise(warnings: Iterable[tuple[str, str]], shown: int = SHOWN_PER_KIND) -> list[str]:
    """Lines for ``(path, message)`` warnings, in order of first appearance of each kind.

    A kind with at most ``shown`` notes gets one ``"path: message"`` line per note; a larger one gets one
    line: ``"N files: kind: first paths, … and M more"``.
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for path, message in warnings:
        groups.setdefault(kind_of(message), []).append((path, message))
    lines = []
    for kind, items in groups.items():
        if len(items) <= shown:
            lines += [f"{path}: {message}" for path, message in items]
        else:
            paths = ", ".join(path for path, _ in items[:shown])
            lines.append(f"{len(items)} files: {kind}: {paths} and {len(items) - shown} more")
    return lines
