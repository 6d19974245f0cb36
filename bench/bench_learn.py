"""Learning one phase, and the memory layer's cost at encode time.

Data: a SYNTHETIC vault generated here (clusters of notes of ~60 pseudo-words with a cluster vocabulary, links
inside clusters); its only job is to give the learner realistic sizes, not realistic quality.
1. ``learn_phase`` on 1k and 10k links with the default config (steps from --steps): wall time of the whole
   phase (block-L states, key init, hard negatives, IDF, the steps, Fisher + TWP) and steps/s of the step loop.
2. Encode throughput on the same texts: sentence-transformers ``encode`` (baseline), NoteEncoder with the
   memory inactive (all zero), NoteEncoder with the learned memory active, the median of ``--encode-repeat``
   passes each, taken in turn; printed as ratios.
3. The link map (``--learner linkmap``): two phases on the base model's embeddings of the same notes (half the
   links, then all of them with the first half replayed), the links split into fitting and checking links:
   wall time per phase (embedding excluded: the map works on stored embeddings), the checked step kept and
   where it started, loss start → end and the checking links' MRR before → after. ``--vault-notes N``: the
   same phase inside a vault of N notes (unit vectors in clusters, two links per note; the phase is the last
   notes, the earlier phase the others, learned first and replayed), with `learn`'s validation (the phase's
   held-out links, every note read by the phase's map before and after): what the size costs.
Runs on CPU, and on CUDA too when present (``--device`` picks one).

    python bench/bench_learn.py [--links 1000 10000] [--steps 50] [--encode-notes 512] [--encode-repeat 5] [--device cpu]
        [--learner memory|linkmap|both] [--vault-notes 10000] [--cpu-precision float32]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from vaultlearn.config import Config
from vaultlearn.model.continual import ContinualLearner
from vaultlearn.model.linkfit import LinkMapLearner, link_task
from vaultlearn.index.learned import map_vectors
from vaultlearn.model.validation import compare, split_held_out
from vaultlearn.model.pairs import PhaseData
from vaultlearn.model.encoder import NoteEncoder

CLUSTER = 20  # notes per cluster
WORDS = 60  # words per note


def synthetic_phase(n_links: int, seed: int = 0) -> PhaseData:
    """Notes in clusters of 20 (half the words from the cluster's own vocabulary); 2 links per note in-cluster."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "pa", "gu", "re", "zo", "bi"]
    vocab = np.array(["".join(rng.choice(syllables, size=rng.integers(2, 4))) for _ in range(4000)])
    n_notes = max(CLUSTER, n_links // 2)
    n_background = n_notes // 4
    texts = []
    for i in range(n_notes + n_background):
        topic = vocab[(i // CLUSTER) * 30 % len(vocab) :][:30]
        words = np.concatenate([rng.choice(topic, WORDS // 2), rng.choice(vocab, WORDS // 2)])
        texts.append(" ".join(rng.permutation(words)))
    pairs = set()
    while len(pairs) < n_links:
        a = int(rng.integers(n_notes))
        b = (a // CLUSTER) * CLUSTER + int(rng.integers(CLUSTER))
        if a != b and b < n_notes:
            pairs.add((a, b))
    adjacency: list[set[int]] = [set() for _ in texts]
    for a, b in pairs:
        adjacency[a].add(b)
        adjacency[b].add(a)
    return PhaseData(
        texts=texts,
        phase_notes=np.arange(n_notes),
        pairs=sorted(pairs),
        background=np.arange(n_notes, n_notes + n_background),
        adjacency=adjacency,
    )


def bench_learning(device: str, n_links: int, steps: int, cpu_precision: str) -> tuple[NoteEncoder, PhaseData]:
    config = Config(learn_steps=steps, cpu_precision=cpu_precision)
    encoder = NoteEncoder(config, device)
    data = synthetic_phase(n_links)
    learner = ContinualLearner(encoder, config)
    marks: list[float] = []
    start = time.perf_counter()
    result = learner.learn_phase("bench", data, progress=lambda _: marks.append(time.perf_counter()))
    wall = time.perf_counter() - start
    rate = (len(marks) - 1) / (marks[-1] - marks[0]) if len(marks) > 1 else float("nan")
    print(
        f"  {n_links:>6} links, {len(data.texts)} notes: learn_phase {wall:7.1f} s wall "
        f"({result['steps']} steps at {rate:5.2f} steps/s; loss {result['loss_start']:.3f} → {result['loss_end']:.3f}; "
        f"{len(result['updated_slots'])} slots updated)"
    )
    return encoder, data


def bench_link_map(device: str, n_links: int) -> None:
    """Two phases, as `learn` runs them: the first half of the links, then all of them (the first half replayed,
    with the first phase's EWC importance: the Fisher-held ridge maps run only from the second phase on)."""
    config = Config()
    data = synthetic_phase(n_links)
    embeddings = NoteEncoder(config, device).encode(data.texts)
    learner = LinkMapLearner(embeddings.shape[1], config)
    paths = [f"n{i}" for i in range(len(data.texts))]
    half = len(data.pairs) // 2
    for name, links in (("first", [data.pairs[:half]]), ("second", [data.pairs[:half], data.pairs[half:]])):
        task = link_task(embeddings, links, paths, data.adjacency, config)  # as `learn` makes it
        start = time.perf_counter()
        report = learner.learn(name, task, config.seed)
        wall = time.perf_counter() - start
        print(
            f"  {sum(map(len, links)):>6} links ({name} phase), {len(data.texts)} notes: link map {wall:6.1f} s wall "
            f"(step {report.steps} from the {report.start} map kept, loss {report.loss_start:.3f} → "
            f"{report.loss_end:.3f}; checking MRR {report.check_mrr_before:.3f} → {report.check_mrr_after:.3f} "
            f"on {report.checking_links} links)"
        )


def vault_vectors(n_notes: int, n_links: int, seed: int = 0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Unit vectors in clusters of CLUSTER notes and ``n_links`` links, four in five inside a cluster: the map
    works on stored embeddings, so a vault's size is all this stands in for."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(n_notes) // CLUSTER
    vectors = rng.normal(size=(cluster[-1] + 1, 384))[cluster] + 1.5 * rng.normal(size=(n_notes, 384))
    links: set[tuple[int, int]] = set()
    while len(links) < n_links:
        a = int(rng.integers(n_notes))
        b = int(cluster[a] * CLUSTER + rng.integers(CLUSTER)) if rng.random() < 0.8 else int(rng.integers(n_notes))
        if a != b and b < n_notes:
            links.add((a, b))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), sorted(links)


def bench_link_map_in_vault(n_links: int, vault_notes: int) -> None:
    """A phase of about ``n_links`` links in a vault of ``vault_notes`` notes with two links per note, as `learn`
    runs it: the phases are sets of notes (a link belongs to its source's phase), the last notes are the new
    phase, the earlier phase is learned first and replayed; each phase is validated on its held-out links (the
    targets ranked among every note, all read by the phase's map before and after; no other phase's map moves)."""
    config = Config()
    vectors, links = vault_vectors(vault_notes, 2 * vault_notes)
    paths = [f"n{i}.md" for i in range(vault_notes)]
    phase_of = ["new" if i >= vault_notes - n_links // 2 else "earlier" for i in range(vault_notes)]
    phases: dict[str, list[tuple[int, int]]] = {"earlier": [], "new": []}
    for a, b in links:
        phases[phase_of[a]].append((a, b))
    heldout, train = {}, {}
    for name, phase_links in phases.items():
        heldout[name], train[name] = split_held_out(phase_links, [(paths[a], paths[b]) for a, b in phase_links], config)
    adjacency: list[set[int]] = [set() for _ in paths]
    for a, b in train["earlier"] + train["new"]:
        adjacency[a].add(b)
        adjacency[b].add(a)
    learner = LinkMapLearner(vectors.shape[1], config)
    for done, name in enumerate(phases):
        task = link_task(vectors, [train[p] for p in list(phases)[: done + 1]], paths, adjacency, config)
        start = time.perf_counter()
        report = learner.learn(name, task, config.seed)
        learned = time.perf_counter() - start
        begin = time.perf_counter()
        candidate = map_vectors(vectors, learner.phase_maps[name].numpy())
        check = compare(vectors, candidate, heldout, name, [], links, config)
        validated = time.perf_counter() - begin
        print(f"  {len(phases[name]):>6} links ({name} phase; {len(task.fitting) + len(task.checking)} training links with "
              f"the replayed ones), {vault_notes} notes: link map {learned:6.1f} s wall (step {report.steps} kept; "
              f"checking MRR {report.check_mrr_before:.3f} → {report.check_mrr_after:.3f}); validation on "
              f"{len(heldout[name])} held-out links {validated:5.1f} s ({'passes' if check['commit'] else 'declined'})")


def bench_encode(encoder: NoteEncoder, texts: list[str], repeat: int) -> None:
    """Notes per second of plain sentence-transformers and of the encoder with its memory off and on: the median
    of ``repeat`` timed passes each, the three taken in turn so that a slow spell of the machine hits all three."""
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(encoder.model_path, device=str(encoder.device), local_files_only=True)
    plain.max_seq_length = encoder.config.max_seq_length
    if encoder.device.type == "cuda":
        plain.half()
    memory = encoder.memory

    def with_memory(on: bool) -> None:
        encoder.memory = memory if on else None
        encoder.encode(texts)

    runs = {
        "base": lambda: plain.encode(texts, batch_size=encoder.config.batch_size, normalize_embeddings=True),
        "inactive": lambda: with_memory(False),
        "active": lambda: with_memory(True),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for name, fn in runs.items():
        fn()  # warm-up
    for _ in range(repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    encoder.memory = memory
    base, inactive, active = (len(texts) / float(np.median(times[name])) for name in runs)
    print(f"  encode {len(texts)} notes (median of {repeat}): sentence-transformers {base:7.1f} notes/s")
    print(f"    NoteEncoder, memory inactive {inactive:7.1f} notes/s = {inactive / base:.2f}x sentence-transformers")
    print(
        f"    NoteEncoder, memory active   {active:7.1f} notes/s = {active / base:.2f}x sentence-transformers, "
        f"{active / inactive:.3f}x inactive (overhead {100 * (inactive / active - 1):.1f}%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--links", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--encode-notes", type=int, default=512)
    parser.add_argument("--encode-repeat", type=int, default=5, help="timed encode passes (the median is reported)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="only this device")
    parser.add_argument("--cpu-precision", choices=["auto", "float32", "bfloat16"], default=Config().cpu_precision,
                        help="the memory learner's encoder on a CPU (the encode overhead is against this)")
    parser.add_argument("--learner", choices=["memory", "linkmap", "both"], default="both")
    parser.add_argument("--vault-notes", type=int, default=None,
                        help="linkmap: also a phase of each --links size in a vault of this many notes (CPU)")
    args = parser.parse_args()
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    c = Config()
    print(f"bench_learn: synthetic vault; {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"config: memory after block {c.memory_layer}, {c.memory_slots} slots, top-{c.memory_topk} × "
          f"{c.memory_heads} heads, t={c.learn_top_t}, lr={c.learn_lr}, batch {c.learn_batch_size}, "
          f"{c.learn_max_tokens} training tokens")
    for device in devices:
        print(f"[{device}]")
        if args.learner in ("linkmap", "both"):
            for n_links in args.links:
                bench_link_map(device, n_links)
                if args.vault_notes and device == "cpu":
                    bench_link_map_in_vault(n_links, args.vault_notes)
        if args.learner in ("memory", "both"):
            encoder = data = None
            for n_links in args.links:
                encoder, data = bench_learning(device, n_links, args.steps, args.cpu_precision)
            bench_encode(encoder, data.texts[: args.encode_notes], args.encode_repeat)


if __name__ == "__main__":
    main()
