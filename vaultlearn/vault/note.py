"""The parsed form of a note, shared by the parser, the graph, the store and the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

LINK_KINDS = ("link", "embed", "frontmatter")


@dataclass(frozen=True)
class Link:
    """One outgoing link as written in a note.

    ``target`` is the link target as typed, without subpath and display text (``"folder/Note"``,
    ``"Note.md"``, percent-decoded for markdown links); ``""`` for a same-note link ``[[#Heading]]``.
    """

    target: str
    kind: str = "link"  # one of LINK_KINDS
    subpath: str | None = None  # "Heading", "H1#H2" or "^block-id"
    display: str | None = None
    markdown: bool = False  # written as [text](target) rather than [[target]]


@dataclass
class Note:
    """A note as a reader sees it: identity, metadata, links and the text that is embedded."""

    path: str  # vault-relative POSIX path with ".md"
    title: str  # basename without ".md"
    text: str  # what is embedded: title line + readable body, capped; see parse.py
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # without '#', nested kept as "a/b", original case
    frontmatter: dict = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    created: datetime | None = None  # frontmatter created/date, or a "Date Created:" body line
    warnings: list[str] = field(default_factory=list)  # human-readable parse problems
    truncated: bool = False  # the embedded text was capped
