"""One note file's bytes → a Note: decoding, properties, body links and tags, and the text to embed."""

from __future__ import annotations

import codecs
import re
from datetime import datetime

from vaultlearn.vault import properties
from vaultlearn.vault.body import read_body
from vaultlearn.vault.dates import to_datetime
from vaultlearn.vault.names import strip_note_suffix
from vaultlearn.vault.note import Note

# "Date Created: 31/01/2022 12:34:56" and similar template lines in the body.
_CREATED_LINE = re.compile(
    r"^[ \t>*_-]*(?:date created|created(?: on| at)?|creation date)[*_]*[ \t]*:[*_]*[ \t]*(?P<value>[^\n]+)",
    re.IGNORECASE | re.MULTILINE,
)
_BLANK_RUNS = re.compile(r"\n\n\n+")  # not \n{3,}: a literal start lets re skip ahead instead of trying every position


def parse_note(path: str, raw: bytes, max_embed_chars: int = 4000) -> Note:
    """Parse a note's bytes. Never raises on bad content: problems are recorded in ``note.warnings``."""
    warnings: list[str] = []
    meta, body_text = properties.split_frontmatter(_text(raw, warnings), warnings)
    body = read_body(body_text)
    title = strip_note_suffix(path.rsplit("/", 1)[-1])
    readable = _tidy(f"{title}\n{body.text.strip()}")
    truncated = len(readable) > max_embed_chars
    if truncated:
        warnings.append(f"text capped at {max_embed_chars} of {len(readable)} characters for embedding")
        readable = readable[:max_embed_chars]
    return Note(
        path=path,
        title=title,
        text=readable,
        aliases=properties.aliases_of(meta, warnings),
        tags=_unique(properties.tags_of(meta) + body.tags),
        frontmatter=properties.json_safe(meta),
        links=properties.links_of(meta) + body.links,
        created=properties.created_of(meta) or _created_in_body(body_text),
        warnings=warnings,
        truncated=truncated,
    )


def readable_body(raw: bytes) -> str:
    """The readable text of a note's body, as :func:`parse_note` embeds it after the title line (uncapped),
    without reading its properties."""
    return _tidy(read_body(properties.without_frontmatter(_text(raw, []))).text)


def _text(raw: bytes, warnings: list[str]) -> str:
    return _decode(raw, warnings).replace("\r\n", "\n").replace("\r", "\n")


def _decode(raw: bytes, warnings: list[str]) -> str:
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        warnings.append(f"not valid UTF-8 (first bad byte at offset {exc.start}); bad bytes were replaced")
        return raw.decode("utf-8", errors="replace")


def _created_in_body(body: str) -> datetime | None:
    for match in _CREATED_LINE.finditer(body):
        if (when := to_datetime(match.group("value").strip(" *_"))) is not None:
            return when
    return None


def _tidy(text: str) -> str:
    """Strip trailing spaces and collapse runs of blank lines into one."""
    return _BLANK_RUNS.sub("\n\n", "\n".join(line.rstrip() for line in text.split("\n"))).strip()


def _unique(tags: list[str]) -> list[str]:
    """Tags without repeats (Obsidian compares tags case-insensitively); the first spelling is kept."""
    seen: set[str] = set()
    kept = []
    for tag in tags:
        if tag.lower() not in seen:
            seen.add(tag.lower())
            kept.append(tag)
    return kept
