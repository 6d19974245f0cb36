"""A synthetic vault generator for scale benchmarks (1k–100k notes): topical word mixtures and links.

The notes are made-up text, not real writing; benchmarks that use it say so in their output.
"""

from __future__ import annotations

import random
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
