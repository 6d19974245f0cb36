"""A synthetic vault generator for scale benchmarks (1k–100k notes): topical word mixtures and links.

The notes are made-up text, not real writing; benchmarks that use it say so in their output. As a script it
writes one into an empty folder, e.g. the hub-structured case the learning evaluation also runs on:
``python bench/synth_vault.py /tmp/hub --notes 1000 --hub`` (then ``vaultlearn index`` and ``vaultlearn eval``).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

_SYLLABLES = ["ka", "lo", "mi", "ten", "ra", "vo", "shi", "del", "an", "por", "gu", "fe", "lin", "dor", "sa"]


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def write_vault(root: Path, notes: int, *, topics: int = 40, links_per_note: int = 3, seed: int = 0) -> Path:
    """Write ``notes`` markdown notes under ``root`` (one folder per topic) and return ``root``."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, 3000)
    topic_words = [rng.sample(vocab, 60) for _ in range(topics)]
    titles = [f"{' '.join(rng.sample(vocab, 2)).title()} {i}" for i in range(notes)]
    topic_of = [rng.randrange(topics) for _ in range(notes)]
    by_topic: dict[int, list[int]] = {}
    for i, t in enumerate(topic_of):
        by_topic.setdefault(t, []).append(i)
    (root / ".obsidian").mkdir(parents=True, exist_ok=True)
    for i, title in enumerate(titles):
        topic = topic_of[i]
        words = [rng.choice(topic_words[topic]) if rng.random() < 0.7 else rng.choice(vocab) for _ in range(120)]
        targets = {rng.choice(by_topic[topic]) for _ in range(links_per_note)} - {i}
        links = " ".join(f"[[{titles[j]}]]" for j in sorted(targets))
        folder = root / f"topic-{topic:02d}"
        folder.mkdir(exist_ok=True)
        text = f"---\nphase_id: topic-{topic % 4}\n---\n# {title}\n\n{' '.join(words)}\n\nSee {links}\n"
        (folder / f"{title}.md").write_text(text, encoding="utf-8")
    return root


def write_hub_vault(root: Path, notes: int, *, kinds: int = 8, hubs_per_kind: int = 12, listed: float = 0.3,
                    seed: int = 0) -> Path:
    """A hub-structured vault: templated notes of a few kinds that share their link targets.

    Each kind (a plugin list, a recipe box …) has a template, a vocabulary, a map of content (MOC) that links
    to a share ``listed`` of its notes, and a few hub notes (support pages, shared references) linked by its
    notes with Zipf popularity; each note links to its author, whose note lists a share ``listed`` of them.
    Hub and people notes share no words with the notes that link to them, so only the links tell which ones
    fit (and, for most links, no link back).
    """
    rng = random.Random(seed)
    vocab = _vocabulary(rng, 3000)
    kind_words = [rng.sample(vocab, 50) for _ in range(kinds)]
    templates = [" ".join(rng.sample(vocab, 25)) for _ in range(kinds)]
    hub_titles = [[f"{' '.join(rng.sample(vocab, 2)).title()} Hub {k}-{h}" for h in range(hubs_per_kind)]
                  for k in range(kinds)]
    shared_hub = "Buy Me A Coffee"
    people = [f"{' '.join(rng.sample(vocab, 2)).title()} (person {p})" for p in range(max(1, notes // 10))]
    people_kind = [rng.randrange(kinds) for _ in people]
    items = [(f"{' '.join(rng.sample(vocab, 2)).title()} {i}", rng.randrange(kinds)) for i in range(notes)]
    by_kind: dict[int, list[int]] = {}
    for p, k in enumerate(people_kind):
        by_kind.setdefault(k, []).append(p)
    zipf = [1.0 / (h + 1) for h in range(hubs_per_kind)]
    written: dict[int, list[str]] = {}
    (root / ".obsidian").mkdir(parents=True, exist_ok=True)
    for i, (title, kind) in enumerate(items):
        author = rng.choice(by_kind.get(kind) or range(len(people)))
        written.setdefault(author, []).append(title)
        hubs = {hub_titles[kind][h] for h in rng.choices(range(hubs_per_kind), weights=zipf, k=2)}
        if kind < kinds // 2:
            hubs.add(shared_hub)
        words = [rng.choice(kind_words[kind]) if rng.random() < 0.6 else rng.choice(vocab) for _ in range(60)]
        links = " ".join(f"[[{t}]]" for t in [f"Kind {kind} MOC", people[author], *sorted(hubs)])
        body = f"# {title}\n\n{templates[kind]}\n\n{' '.join(words)}\n\n{links}\n"
        _write(root / f"kind-{kind}" / f"{title}.md", body)
    for kind in range(kinds):
        members = " ".join(f"[[{t}]]" for t, k in items if k == kind and rng.random() < listed)
        body = f"# Kind {kind}\n\n{' '.join(rng.sample(vocab, 20))}\n\n{members}\n"
        _write(root / "maps" / f"Kind {kind} MOC.md", body)
        for hub in hub_titles[kind]:
            _write(root / "hubs" / f"{hub}.md", f"# {hub}\n\n{' '.join(rng.sample(vocab, 40))}\n")
    _write(root / "hubs" / f"{shared_hub}.md", f"# {shared_hub}\n\n{' '.join(rng.sample(vocab, 40))}\n")
    for p, person in enumerate(people):
        works = " ".join(f"[[{t}]]" for t in written.get(p, []) if rng.random() < listed)
        _write(root / "people" / f"{person}.md", f"# {person}\n\n{' '.join(rng.sample(vocab, 30))}\n\n{works}\n")
    return root


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic vault into an empty (or new) folder.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--hub", action="store_true", help="the hub-structured vault (write_hub_vault)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.folder.exists() and any(args.folder.iterdir()):
        sys.exit(f"error: {args.folder} is not empty; the generator writes only into an empty folder")
    write = write_hub_vault if args.hub else write_vault
    write(args.folder, args.notes, seed=args.seed)
    print(f"wrote {sum(1 for _ in args.folder.rglob('*.md'))} notes under {args.folder}")


if __name__ == "__main__":
    main()
