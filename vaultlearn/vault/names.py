"""Name rules shared by the parser, the resolver and the store: note suffix, attachment extensions, lookup keys."""

from __future__ import annotations

import unicodedata

NOTE_SUFFIX = ".md"

# File types Obsidian opens or embeds, plus common documents kept as attachments. A link whose last path
# component ends in one of these is an attachment link; other dots ("Dr. Who", "v1.2", "Node.js") stay
# note names. Source-code extensions are left out on purpose: notes are often named after tools.
ATTACHMENT_EXTENSIONS = frozenset(
    "avif bmp gif jpeg jpg png svg webp tif tiff ico heic "
    "flac m4a mp3 ogg wav webm 3gp opus aac "
    "mkv mov mp4 ogv avi "
    "pdf canvas base excalidraw "
    "txt csv tsv json xml yaml yml html htm "
    "doc docx xls xlsx ppt pptx odt ods odp epub zip".split()
)


def is_note_path(path: str) -> bool:
    """True for a markdown note path (``.md``, any case)."""
    return path.lower().endswith(NOTE_SUFFIX)


def strip_note_suffix(name: str) -> str:
    """``"folder/Note.md"`` → ``"folder/Note"``; names without ``.md`` are returned unchanged."""
    return name[: -len(NOTE_SUFFIX)] if is_note_path(name) else name


def extension(name: str) -> str:
    """Lower-case extension of the last path component without the dot (``""`` when there is none)."""
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot + 1 :].lower() if dot > 0 else ""


def has_attachment_extension(target: str) -> bool:
    """True when a link target names a non-markdown file type (``diagram.png``, ``paper.pdf``)."""
    return extension(target) in ATTACHMENT_EXTENSIONS


def lookup_key(name: str) -> str:
    """Case- and Unicode-normalised form used to compare link text with file paths (Obsidian ignores case)."""
    return unicodedata.normalize("NFC", name).lower()


def name_key(target: str) -> str:
    """The :func:`lookup_key` of the note name a link target or note path ends in (last component, no ``.md``):
    a note that appears or goes can change how the links with its name key resolve."""
    return lookup_key(strip_note_suffix(target.rsplit("/", 1)[-1]))


def links_to(target: str, keys: set[str]) -> bool:
    """True when a link target as typed (``B``, ``B.md``, ``folder/B``) names one of ``keys`` (lookup keys).

    A bare name matches a name's last component; a path matches a name that ends with it (Obsidian
    resolves partial paths).
    """
    key = lookup_key(strip_note_suffix(target.strip()))
    if not key:
        return False
    if "/" not in key:
        return any(k.rsplit("/", 1)[-1] == key for k in keys)
    return any(k == key or k.endswith("/" + key) for k in keys)
