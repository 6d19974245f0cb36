"""Which kind of vector index a note count calls for, decided without loading FAISS.

The index (vectors.py) is exact up to ``approximate_above`` notes and turns into an inverted-file index above
it; an IVF index stays one until the count falls below half the threshold (no flapping around it). Below
that half, every index is exact whatever its history, so a process ranking a vault of that size needs
neither the index nor FAISS (an import of 0.07 s on the 2-core CPU) to know that it compares with every note.
"""

from __future__ import annotations


def becomes_approximate(notes: int, approximate_above: int) -> bool:
    """Whether an exact index of ``notes`` vectors turns into an IVF one."""
    return notes > approximate_above


def stays_approximate(notes: int, approximate_above: int) -> bool:
    """Whether an IVF index of ``notes`` vectors stays one (below this it turns exact)."""
    return notes > approximate_above / 2


def always_exact(notes: int, approximate_above: int) -> bool:
    """Whether an index of ``notes`` vectors is exact whatever its history."""
    return not stays_approximate(notes, approximate_above)
