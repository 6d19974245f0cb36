"""TWP-style topology weighting (Liu, Yang & Wang, AAAI 2021), adapted from GNN attention to a note graph.

- Edge weights: how much each link counts in training, from its place in the graph (``degree``: 1/√(deg a·deg b),
  links between hubs count less; ``betweenness``: edge betweenness, bridges between regions count more; ``none``).
- Topology importance: TWP's sensitivity of the graph's neighbourhood structure to each parameter. The structure
  here is the weighted similarity of linked notes, S = Σ_links w_ab·cos(e_a, e_b)², and the importance of a
  parameter is Σ_batches |∂S_batch/∂θ| (TWP uses the gradient magnitude of the squared attention norm).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import networkx as nx
import numpy as np
import torch

EDGE_WEIGHTINGS = ("degree", "betweenness", "none")
BETWEENNESS_SAMPLE = 500  # source nodes sampled for edge betweenness on larger graphs (seeded)


def edge_weights(
    pairs: Sequence[tuple[int, int]], adjacency: Sequence[set[int]], method: str, seed: int = 0
) -> np.ndarray:
    """Weight of each pair (a, b) from the undirected graph ``adjacency`` (one neighbour set per note), mean 1."""
    if method not in EDGE_WEIGHTINGS:
        raise ValueError(f"edge weighting must be one of {EDGE_WEIGHTINGS}, got {method!r}")
    if not pairs:
        return np.zeros(0)
    if method == "none":
        return np.ones(len(pairs))
    if method == "degree":
        deg = np.array([max(len(n), 1) for n in adjacency], dtype=np.float64)
        w = np.array([1.0 / np.sqrt(deg[a] * deg[b]) for a, b in pairs])
    else:
        graph = nx.Graph()
        graph.add_edges_from((a, b) for a, nbrs in enumerate(adjacency) for b in nbrs)
        graph.add_edges_from(pairs)
        k = BETWEENNESS_SAMPLE if graph.number_of_nodes() > BETWEENNESS_SAMPLE else None
        between = nx.edge_betweenness_centrality(graph, k=k, seed=seed)
        w = np.array([between.get((a, b), between.get((b, a), 0.0)) for a, b in pairs])
        w = w + (w[w > 0].min() if (w > 0).any() else 1.0)  # every link keeps some weight
    return w * (len(w) / w.sum())


def topology_importance(
    structure_batches: Iterable[Callable[[], torch.Tensor]], params: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Σ over batches of |∂S_batch/∂θ| for each parameter; each closure returns S for one batch of links."""
    total = [torch.zeros_like(p, dtype=torch.float32) for p in params]
    for batch in structure_batches:
        grads = torch.autograd.grad(batch(), list(params), allow_unused=True)
        for t, g in zip(total, grads):
            if g is not None:
                t.add_(g.detach().float().abs())
    return total


def linked_similarity(anchor: torch.Tensor, positive: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """S = Σ w·cos(a, b)² for L2-normalised embeddings of linked notes (rows of ``anchor`` and ``positive``)."""
    return (weights * (anchor * positive).sum(-1).pow(2)).sum()
