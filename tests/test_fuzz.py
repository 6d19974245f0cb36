"""Seeded fuzzing of the parser and the resolver: hostile markdown, YAML, bytes and file names.

Thousands of generated notes go through ``parse_note`` and a ``LinkResolver`` built from their names: none may
raise, take long or grow the process much. ``VAULTLEARN_FUZZ_SEED`` and ``VAULTLEARN_FUZZ_CASES`` replay or
widen a run; a failure names the seed and the case.
"""

from __future__ import annotations

import os
import random
import resource
import time

from vaultlearn.vault.parse import parse_note
from vaultlearn.vault.resolve import LinkResolver

SEED = int(os.environ.get("VAULTLEARN_FUZZ_SEED", "20261130"))
CASES = int(os.environ.get("VAULTLEARN_FUZZ_CASES", "3000"))
SECONDS_PER_NOTE = 1.5  # the slowest bounded case (64 KiB of YAML with aliases, read in Python) takes about 0.6 s
GROWTH_LIMIT_KB = 200_000  # peak resident memory the whole run may add

MARKDOWN = ["[[", "]]", "[", "]", "(", ")", "![[", "|", "#", "#tag", "#a/b", "#1", "^block", "`", "``", "```",
            "```ad-note", "~~~", "%%", "<!--", "-->", "<div>", "</span>", "\n", "\n\n", "---\n", " ", "\t", "\r",
            "\r\n", "\x00", "\x07", "\x1b[31m", "\x7f", "\x85", "\ufeff", "\u200b", "\u2028", "é", "漢字", "🙂",
            "\\", "/", "../", "./", "%20", "%", "%zz", "http://x.org/a", "mailto:a@b", "<My Note.md>",
            "Note.md", "pic.png", "Dr. Who", "Date Created: 31/02/2022", "created on: yesterday", "*", "_", ">"]
YAML = ["a", "b: ", "- ", "[", "]", "{", "}", ", ", ": ", "\n", "\n  ", "'", '"', "\\a", "\\x07", "&x ", "*x",
        "<<: *x", "? ", "!!binary", "!!python/object:os.system", "!!str", "!!timestamp", "tags: ", "aliases: ",
        "created: ", "2023-02-30", "99999-01-01", "1e999", ".nan", "~", "null", "|", ">-", "#", "%YAML 1.1",
        "\t", "\x00", "\x07", "[[Note]]", '"[[Note|x]]"', "項目", "🙂"]
NAME_PIECES = ["Note", "note", "NOTE", "Über", "e\u0301", "é", " ", "  ", ".", "..", "-", "#", "^", "|", "[",
               "]", "%20", "\x07", "\x1b", "\u200b", "\ufeff", "🙂", "a" * 200, "Overview", "Dr. Who", "v1.2",
               "pic.png"]


def _pieces(rng: random.Random, pool: list[str], n: int) -> str:
    return "".join(rng.choice(pool) if rng.random() < 0.7 else rng.choice(["word ", "text ", "Overview "])
                   for _ in range(n))


def _alias_bomb(rng: random.Random) -> str:
    """Anchors, each a list of references to the one before: fan-out ** depth values once expanded."""
    fan, depth = rng.randint(2, 12), rng.randint(2, 10)
    lines = [f"x0: &x0 [{', '.join(['lol'] * fan)}]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * fan)}]" for i in range(1, depth)]
    key = rng.choice(["tags", "aliases", "other", "created"])
    return "\n".join(lines + [f"{key}: *x{depth - 1}"])


def _frontmatter(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.15:
        return _alias_bomb(rng)
    if kind < 0.17:
        depth = rng.randint(10, 3000)
        return "deep: " + "[" * depth + ("*x" if rng.random() < 0.1 else "") + "]" * depth
    if kind < 0.2:
        return "tags: [" + ", ".join(_pieces(rng, MARKDOWN, 3).replace(",", "") for _ in range(20)) + "]"
    return _pieces(rng, YAML, rng.randint(1, 60))


def _note(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.1:
        return rng.randbytes(rng.randint(0, 3000))
    text = ""
    if kind < 0.7:
        text += "---\n" + _frontmatter(rng) + ("\n---\n" if rng.random() < 0.9 else "\n")
    text += _pieces(rng, MARKDOWN, rng.randint(0, 400))
    if rng.random() < 0.05:
        text += rng.choice(["[[", "`", "#", "[", "<!--", "%%"]) * rng.randint(1000, 20000)
    raw = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:  # a few bytes flipped: broken UTF-8 in the middle of markup
        raw = bytearray(raw)
        for _ in range(rng.randint(1, 5)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.randrange(256)
        raw = bytes(raw)
    return raw


def _path(rng: random.Random) -> str:
    folders = [_pieces(rng, NAME_PIECES, rng.randint(1, 3)).strip("/") or "f" for _ in range(rng.randint(0, 3))]
    name = _pieces(rng, NAME_PIECES, rng.randint(1, 4)).replace("/", "_") or "n"
    return "/".join([*folders, name + rng.choice([".md", ".md", ".MD", ".Md"])])


def test_fuzz_parser_and_resolver():
    rng = random.Random(SEED)
    grown_from = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    notes = []
    slowest = (0.0, -1)
    for case in range(CASES):
        path, raw = _path(rng), _note(rng)
        started = time.perf_counter()
        try:
            note = parse_note(path, raw, max_embed_chars=rng.choice([50, 4000]))
        except Exception as exc:  # noqa: BLE001 - the failure message is the point
            raise AssertionError(f"seed {SEED} case {case}: parse_note({path!r}, {raw[:200]!r}…) raised {exc!r}")
        slowest = max(slowest, (time.perf_counter() - started, case))
        assert len(note.text) <= max(50, 4000), (SEED, case)
        for tag in note.tags:
            assert tag and not any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in tag), (SEED, case, tag)
        assert all(isinstance(w, str) and w for w in note.warnings), (SEED, case)
        notes.append(note)
    assert slowest[0] < SECONDS_PER_NOTE, f"seed {SEED} case {slowest[1]} took {slowest[0]:.2f} s"

    resolver = LinkResolver([n.path for n in notes], ["pic.png", "a/b/diagram.PNG"])
    known = {n.path for n in notes}
    for case, note in enumerate(notes):
        try:
            for link in note.links:
                resolution = resolver.resolve(link, note.path)
                assert resolution.path is None or resolution.path in known, (SEED, case, link)
            for name in (note.title, note.path, *note.aliases[:3], _pieces(rng, NAME_PIECES, 3)):
                chosen = resolver.resolve_name(name)
                named = resolver.notes_named(name)
                assert chosen is None or chosen in known, (SEED, case, name)
                assert not named or named[0] == chosen, (SEED, case, name, named, chosen)
        except AssertionError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"seed {SEED} case {case}: resolving in {note.path!r} raised {exc!r}")
    for note in notes[::3]:
        resolver.remove(note.path)
    for note in notes[::3]:
        resolver.add(note.path)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - grown_from
    assert grown < GROWTH_LIMIT_KB, f"seed {SEED}: the run grew the process by {grown} KB"
