"""YAML frontmatter (Obsidian "properties"): split it from the body and read aliases, tags, links, dates."""

from __future__ import annotations

import re
from datetime import date, datetime

import yaml
from frontmatter.default_handlers import YAMLHandler

from vaultlearn.vault.body import wikilinks_in
from vaultlearn.vault.dates import to_datetime
from vaultlearn.vault.note import Link

_HANDLER = YAMLHandler()
# Control characters end a tag as whitespace does (they are invisible and not valid in XML exports).
_TAG_SEPARATORS = re.compile(r"[,\s\x00-\x1f\x7f-\x9f]+")
DATE_KEYS = ("created", "date")
_MAX_DEPTH = 32
MAX_FRONTMATTER_CHARS = 65_536  # a larger block is not parsed
MAX_YAML_SIZE = 200_000  # values + characters of a frontmatter with its aliases expanded ("billion laughs")
MAX_YAML_DEPTH = 64  # nesting in a block with aliases (PyYAML's Python scanner is quadratic in the depth)
# libyaml's loader where PyYAML has it: about ten times faster, and it caps nesting itself (1000 levels)
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TooLarge(yaml.YAMLError):
    """The frontmatter would expand past MAX_YAML_SIZE, or an alias refers to the value holding it."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that measures every value as readers will walk it, aliases expanded.

    A YAML alias is a reference: nine anchors of nine references each parse into a few hundred nodes that
    expand to 9**9 values once walked. Each node's size (1 per value plus the length of a scalar) is summed
    bottom-up as it is composed, counting an aliased node once per reference, so composing stops as soon as
    the expanded size passes MAX_YAML_SIZE, after work bounded by the (already capped) text length. Values
    nested deeper than MAX_YAML_DEPTH stop it too.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._sizes: dict[int, int] = {}
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            anchored = self.anchors.get(self.peek_event().anchor)
            if anchored is not None and id(anchored) not in self._sizes:
                raise _TooLarge("has an alias inside the value it refers to")
        if self._depth >= MAX_YAML_DEPTH:
            raise _TooLarge(f"nests values deeper than {MAX_YAML_DEPTH} levels")
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if id(node) not in self._sizes:
            if isinstance(node, yaml.ScalarNode):
                size = 1 + len(node.value)
            elif isinstance(node, yaml.SequenceNode):
                size = 1 + sum(self._sizes[id(item)] for item in node.value)
            else:
                size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
            if size > MAX_YAML_SIZE:
                raise _TooLarge(f"expands past {MAX_YAML_SIZE} values and characters through its aliases")
            self._sizes[id(node)] = size
        return node


def split_frontmatter(text: str, warnings: list[str]) -> tuple[dict, str]:
    """(properties, body). A leading ``---`` block (split off by python-frontmatter) is read with PyYAML's safe
    loader; a block with aliases with :class:`_BoundedLoader`.

    Malformed YAML, YAML that is not a mapping, a block over MAX_FRONTMATTER_CHARS or one that expands
    past MAX_YAML_SIZE gives a warning and no properties; the block is still removed from the body. A
    ``---`` line with no closing line is a rule, not frontmatter.
    """
    block, body = _split_block(text)
    if block is None:
        return {}, body
    if len(block) > MAX_FRONTMATTER_CHARS:
        warnings.append(f"frontmatter is too large ({len(block)} characters, over {MAX_FRONTMATTER_CHARS}); "
                        "its properties were ignored")
        return {}, body
    try:
        # without an alias ("*") a block expands to no more than its own length: the fast loader is safe
        meta = yaml.load(block, Loader=_BoundedLoader if "*" in block else _FAST_LOADER)
    except _TooLarge as exc:
        warnings.append(f"frontmatter {exc}; its properties were ignored")
        return {}, body
    # besides YAMLError, PyYAML's constructors raise ValueError on impossible dates (2023-02-30) and
    # AttributeError on an explicit tag they cannot read ("!!timestamp text"): no YAML may stop indexing
    except Exception as exc:  # noqa: BLE001
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        warnings.append(f"frontmatter is not valid YAML ({problem}); its properties were ignored")
        return {}, body
    if meta is None:
        return {}, body
    if not isinstance(meta, dict):
        warnings.append("frontmatter is not a key: value mapping; its properties were ignored")
        return {}, body
    return meta, body


def without_frontmatter(text: str) -> str:
    """The body of ``text``: what :func:`split_frontmatter` returns beside the properties, none of them read."""
    return _split_block(text)[1]


def _split_block(text: str) -> tuple[str | None, str]:
    """(frontmatter block or None, body)."""
    if not _HANDLER.detect(text):
        return None, text
    try:
        return _HANDLER.split(text)
    except ValueError:  # no closing "---"
        return None, text


def aliases_of(meta: dict, warnings: list[str]) -> list[str]:
    """The ``aliases`` list. A single string is ignored, as Obsidian does (it wants a YAML list)."""
    value = meta.get("aliases")
    if value is None:
        return []
    if isinstance(value, list):
        return [str(alias).strip() for alias in value if alias is not None and str(alias).strip()]
    warnings.append("'aliases' is not a YAML list; Obsidian ignores it, and so does vaultlearn")
    return []


def tags_of(meta: dict) -> list[str]:
    """The ``tags`` property: a list or a comma/space separated string, with or without ``#``."""
    value = meta.get("tags")
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    tags = []
    for item in items:
        if item is None:
            continue
        for part in _TAG_SEPARATORS.split(str(item)):
            tag = part.lstrip("#").strip("/")
            if tag:
                tags.append(tag)
    return tags


def links_of(meta: dict) -> list[Link]:
    """Wikilinks written in property values (quoted ``"[[Note]]"`` strings, in lists and maps too)."""
    return [link for text in _strings(meta, 0) if "[[" in text for link in wikilinks_in(text, "frontmatter")]


def _strings(value: object, depth: int):
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _strings(item, depth + 1)


def created_of(meta: dict) -> datetime | None:
    """The first of the ``created`` / ``date`` properties that reads as a date."""
    for key in DATE_KEYS:
        if (when := to_datetime(meta.get(key))) is not None:
            return when
    return None


def json_safe(value: object, depth: int = 0) -> object:
    """The properties with JSON-compatible values (dates as ISO strings), so they can be stored as JSON."""
    if depth > _MAX_DEPTH:  # YAML anchors can build self-referencing lists
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v, depth + 1) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
