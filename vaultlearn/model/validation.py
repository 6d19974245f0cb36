"""Validated commits: a learned phase is kept only if it measurably helps and hurts no earlier phase.

Each phase's links are split, by a seeded hash of (source path, target path), into training links and a
held-out share (``learn_validation_share``, at least one link when the phase has two or more). The hash keeps a
link on the same side as the vault grows, so an earlier phase's held-out links were never trained on. The
candidate model is compared with the current one by ranking each held-out target among all notes for its
source (filtered ranking, as in ``vaultlearn eval``): Recall@10 and MRR. The rule:

- this phase: candidate Recall@10 and MRR together (their gains summed) above current by more than
  ``learn_min_gain``, and neither below current by more than one of its links can move it (1 / its held-out
  links): on 20 held-out links, one link leaving the top ten while the others rise is a gain, not a verdict
  (measured in docs/RESULTS.md: more of the learning is committed, no vault or protocol lower);
- the earlier phases' held-out links together: neither Recall@10 nor MRR below current by more than
  ``learn_max_drop``;
- each earlier phase: neither below current by more than ``learn_max_drop`` and by more than one of its links
  can move them (1 / its held-out links): a phase of three held-out links that loses one of them is not, by
  itself, evidence of a drop (measured in docs/RESULTS.md), but the pooled check above still counts that link.

The link map's candidate is the phase's own map, by which its notes are compared with every note; the other
phases keep theirs, so it is checked on the phase's links alone. The token-level memory's candidate moves only
some notes' embeddings, so its ranks are counted from the current model's by scoring those notes again; and
one `learn` run carries the ranks from a phase's check to the next (:class:`HeldOutRanks`), where the current
model is the last candidate or the model before it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from vaultlearn.config import Config
from vaultlearn.metrics import moved_ranks, rank_of_targets, recall_mrr, targets_by_source


CHECKING_SHARE = 0.2  # of the training links, those the link map checks with and never fits


def held_out(links: Sequence[tuple[int, int]], names: Sequence[tuple[str, str]], share: float, seed: int) -> set[int]:
    """Indices of the held-out links among one phase's ``links``; ``names`` are their (source, target) paths."""
    if len(links) < 2:
        return set()
    marks = [_held_out_mark(seed, src, dst) for src, dst in names]
    chosen = {i for i, mark in enumerate(marks) if mark < share}
    return chosen or {int(np.argmin(marks))}


def split_held_out(links: Sequence[tuple[int, int]], names: Sequence[tuple[str, str]],
                   config: Config) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """One phase's ``links`` as (held out, training) by :func:`held_out` with ``config``'s share and seed."""
    out = held_out(links, names, config.learn_validation_share, config.seed)
    return [link for i, link in enumerate(links) if i in out], [link for i, link in enumerate(links) if i not in out]


def _held_out_mark(seed: int, source: str, target: str) -> float:
    return unit_hash(f"{seed}|{source}|{target}")


def is_checking_link(seed: int, source: str, target: str, share: float = CHECKING_SHARE) -> bool:
    """Whether the link source → target checks the link map rather than fits it: the same answer in every phase."""
    return unit_hash(f"checking|{seed}|{source}|{target}") < share


def never_fitted(names: Sequence[tuple[str, str]], config: Config) -> np.ndarray:
    """For each link (source, target paths), whether no phase of the link map ever fits it: held out by
    validation, or a checking link (a phase with a single held-out link by the fallback of :func:`held_out` is
    counted as fitted: the mask errs on the side of leaving a link out)."""
    seed, share = config.seed, config.learn_validation_share
    return np.array([_held_out_mark(seed, a, b) < share or is_checking_link(seed, a, b) for a, b in names],
                    dtype=bool)


def unit_hash(text: str) -> float:
    """A stable pseudo-random number in [0, 1) for ``text`` (the same in every process and phase)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") / 2**64


class HeldOutRanks:
    """The held-out links' ranks under the vectors last validated, carried from one phase's check to the next
    (one per :class:`~vaultlearn.learning.LearnSplit`): a check then scores again only the notes that moved
    since (:func:`metrics.moved_ranks`), not every held-out link against every note for both models. Vectors
    given to it are compared with the next ones, so they must not be changed in place after a check."""

    def __init__(self):
        self.vectors: np.ndarray | None = None
        self.ranks: dict[str, tuple[list[tuple[int, int]], np.ndarray]] = {}  # phase → (its links, their ranks)

    def under(self, vectors: np.ndarray, links: dict[str, list[tuple[int, int]]],
              targets: dict[int, set[int]]) -> dict[str, np.ndarray]:
        """The ranks of each phase's held-out ``links`` under ``vectors``, remembered with them."""
        out = {}
        for phase, phase_links in links.items():
            known = self.ranks.get(phase)
            if known is not None and known[0] == phase_links and self.vectors.shape == vectors.shape:
                out[phase] = moved_ranks(self.vectors, known[1], vectors, phase_links, targets)
            else:
                out[phase] = rank_of_targets(vectors, phase_links, np.arange(len(vectors)), targets)
        self.vectors, self.ranks = vectors, {phase: (links[phase], out[phase]) for phase in links}
        return out


def nothing_to_validate() -> dict:
    """The verdict on a phase without held-out links: it could never pass."""
    return {"links": 0, "earlier": [], "commit": False,
            "reason": "no held-out links to validate on (a phase needs at least two links)"}


def compare(
    current: np.ndarray,
    candidate: np.ndarray,
    heldout: dict[str, list[tuple[int, int]]],
    phase: str,
    earlier: Sequence[str],
    edges: Sequence[tuple[int, int]],
    config: Config,
    ranks: HeldOutRanks | None = None,
) -> dict:
    """Scores of both models on ``phase``'s held-out links and on each earlier phase's; the verdict and why.
    ``ranks``: the ranks of an earlier check of the same split, left with the candidate's."""
    links = heldout.get(phase, [])
    if not links:
        return nothing_to_validate()
    report: dict = {"links": len(links), "earlier": []}
    targets = targets_by_source(edges)
    ranks = HeldOutRanks() if ranks is None else ranks
    checked = {name: heldout[name] for name in [phase, *earlier] if heldout.get(name)}
    now, new = ranks.under(current, checked, targets), ranks.under(candidate, checked, targets)
    (r0, m0), (r1, m1) = recall_mrr(now[phase]), recall_mrr(new[phase])
    report.update(recall_current=r0, recall_candidate=r1, gain=r1 - r0, mrr_current=m0, mrr_candidate=m1,
                  mrr_gain=m1 - m0)
    drops = []
    for name in list(checked)[1:]:
        (e0, f0), (e1, f1) = recall_mrr(now[name]), recall_mrr(new[name])
        report["earlier"].append({"phase": name, "links": len(heldout[name]), "gain": e1 - e0, "mrr_gain": f1 - f0})
        if min(e1 - e0, f1 - f0) < -max(config.learn_max_drop, 1 / len(heldout[name])) - 1e-9:  # (float sums)
            drops.append(f"{name} (Recall@10 {e1 - e0:+.3f}, MRR {f1 - f0:+.3f})")
    if report["earlier"]:  # all of them as one set: each figure is a mean over links, so the link-weighted mean
        sizes = [e["links"] for e in report["earlier"]]
        gain, mrr_gain = (float(np.average([e[k] for e in report["earlier"]], weights=sizes))
                          for k in ("gain", "mrr_gain"))
        report["earlier_pooled"] = {"links": sum(sizes), "gain": gain, "mrr_gain": mrr_gain}
        if min(gain, mrr_gain) < -config.learn_max_drop:
            names = [e["phase"] for e in report["earlier"]]
            listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            drops.insert(0, f"together ({listed}; Recall@10 {gain:+.3f}, MRR {mrr_gain:+.3f} on {sum(sizes)} links)")
    one_link = 1 / len(links) + 1e-9  # (float sums)
    if (r1 - r0) + (m1 - m0) <= config.learn_min_gain or min(r1 - r0, m1 - m0) < -one_link:
        reason = (f"no gain on the phase's {len(links)} held-out links: Recall@10 {r0:.3f} → {r1:.3f}, "
                  f"MRR {m0:.3f} → {m1:.3f} (needs the two up by more than {config.learn_min_gain} together and "
                  f"neither down by more than one link, {1 / len(links):.3f})")
        return {**report, "commit": False, "reason": reason}
    if drops:
        reason = f"earlier phases drop by more than {config.learn_max_drop}: {'; '.join(drops)}"
        return {**report, "commit": False, "reason": reason}
    return {**report, "commit": True,
            "reason": f"Recall@10 {r0:.3f} → {r1:.3f}, MRR {m0:.3f} → {m1:.3f} on {len(links)} held-out links; "
                      "no earlier phase dropped"}
