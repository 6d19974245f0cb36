"""VaultGraph: each score against its definition on a small hand-made graph with known answers."""

import math
from functools import partial

import networkx as nx
import numpy as np

import vaultlearn.vault.graph as graph_module
from vaultlearn.vault.graph import VaultGraph

close = partial(math.isclose, rel_tol=1e-6)  # float32 sparse products

# 0→1, 0→2, 1→3, 2→3, 2→4 (undirected: 0-1, 0-2, 1-3, 2-3, 2-4); node 5 is isolated
LINKS = np.array([(0, 1), (0, 2), (1, 3), (2, 3), (2, 4)])


def graph() -> VaultGraph:
    return VaultGraph(6, LINKS)


def test_adjacency_degrees_and_neighbours():
    g = graph()
    assert g.degree.tolist() == [2, 2, 3, 2, 1, 0]
    assert g.in_degree.tolist() == [0, 1, 1, 2, 1, 0]
    assert sorted(g.neighbours(2).tolist()) == [0, 3, 4]
    assert g.outgoing(0).tolist() == [1, 2]
    assert g.links().tolist() == LINKS.tolist()


def test_common_neighbour_indices_match_their_definitions():
    g = graph()
    query = np.array([0])
    scores = g.neighbour_scores(query)
    aa, ra, cn = scores.adamic_adar[0], scores.resource_allocation[0], scores.common[0]
    assert close(aa[3], 1 / math.log(2) + 1 / math.log(3))  # via 1 (degree 2) and 2 (degree 3)
    assert close(aa[4], 1 / math.log(3))
    assert close(ra[3], 1 / 2 + 1 / 3) and close(ra[4], 1 / 3)
    assert cn[3] == 2 and cn[4] == 1 and cn[5] == 0
    nx_graph = nx.Graph([tuple(e) for e in LINKS])
    for _, c, value in nx.adamic_adar_index(nx_graph, [(0, 3), (0, 4), (1, 2)]):
        assert close(g.neighbour_scores(np.array([0, 1])).adamic_adar[0 if c != 2 else 1][c], value)


def test_scores_for_many_queries_at_once_equal_one_at_a_time():
    g = graph()
    together = g.neighbour_scores(np.array([0, 3, 4, 5]))  # 5 has no neighbour
    for row, q in enumerate([0, 3, 4, 5]):
        for name, scores in zip(together._fields, g.neighbour_scores(np.array([q]))):
            assert np.allclose(getattr(together, name)[row], scores[0])
    assert not together.common[3].any()


def test_personalised_pagerank_matches_networkx():
    g = graph()
    seeds = np.zeros((1, 6))
    seeds[0, [1, 2]] = 1
    ours = g.personalised_pagerank(seeds, alpha=0.3, steps=300)[0]
    nx_graph = nx.Graph([tuple(e) for e in LINKS])
    theirs = nx.pagerank(nx_graph, alpha=0.7, personalization={1: 1, 2: 1}, tol=1e-12, max_iter=1000)
    assert np.allclose(ours[:5], [theirs[i] for i in range(5)], atol=1e-8)
    assert ours[5] == 0 and close(ours.sum(), 1.0)
    assert not g.personalised_pagerank(np.zeros((1, 6))).any()


def test_a_walk_that_reaches_few_notes_reads_only_their_links_and_gives_the_same_ranks(monkeypatch):
    # ten separate rings of five notes, one chord: a walk from ring 0 or 2 never leaves it (5 of 50 reached)
    rings = np.array([(r * 5 + i, r * 5 + (i + 1) % 5) for r in range(10) for i in range(5)])
    g = VaultGraph(50, np.vstack([rings, [(0, 2)]]))
    seeds = np.zeros((2, 50))
    seeds[0, [1, 2]] = 1
    seeds[1, [11]] = 1
    local = g.personalised_pagerank(seeds, alpha=0.3, steps=300)
    theirs = nx.pagerank(nx.Graph([tuple(e) for e in g.links()]), alpha=0.7, personalization={1: 1, 2: 1},
                         tol=1e-12, max_iter=1000)
    assert np.allclose(local[0, :5], [theirs[i] for i in range(5)], atol=1e-7)
    assert not local[0, 5:].any() and not local[1, np.r_[0:10, 15:50]].any()
    for walked in (seeds, seeds[1:]):  # several queries, and one (the suggest path's own local step)
        walks = {}
        for share in (0.0, 1.0):  # every step over every link; every step over the reached notes' links only
            monkeypatch.setattr(graph_module, "LOCAL_WALK_SHARE", share)
            walks[share] = g.personalised_pagerank(walked, alpha=0.3, steps=8)
        assert np.allclose(walks[0.0], walks[1.0], atol=1e-7) and walks[0.0].any()


def test_linked_from_sums_the_weights_of_the_linking_notes():
    g = graph()
    voters = np.array([[1, 2, 0], [0, 3, 5]])  # note 0's vote weighs nothing in the first row
    weights = np.array([[0.5, 0.25, 0.0], [1.0, 0.5, 0.2]])
    summed, voted = g.linked_from(voters, weights)
    assert summed[0].tolist() == [0, 0, 0, 0.75, 0.25, 0] and voted[0].tolist() == [0, 0, 0, 2, 1, 0]
    votes = np.zeros((2, 6))
    np.put_along_axis(votes, voters, weights, axis=1)
    assert np.allclose(summed, votes @ g.out.toarray()) and np.array_equal(voted, (votes > 0) @ g.out.toarray())


def test_propagate_is_the_normalised_neighbour_mean():
    vectors = np.eye(6, dtype=np.float32)
    g = graph()
    spread = g.propagate(vectors)
    assert np.allclose(spread[0], np.array([0, 1, 1, 0, 0, 0]) / math.sqrt(2))
    assert not spread[5].any()  # no neighbours: zeros
    assert np.allclose(g.propagate(vectors, outgoing=True)[2], np.array([0, 0, 0, 1, 1, 0]) / math.sqrt(2))
    assert not g.propagate(vectors, outgoing=True)[3].any()  # links to nothing
    assert np.allclose(g.propagate(vectors, np.array([5, 0])), spread[[5, 0]])


def test_without_hides_a_link_but_keeps_an_edge_linked_the_other_way():
    g = VaultGraph(3, np.array([(0, 1), (1, 0), (1, 2)]))
    hidden = g.without(np.array([(0, 1), (1, 2)]))
    assert hidden.links().tolist() == [[1, 0]]
    assert hidden.neighbours(0).tolist() == [1] and hidden.degree[2] == 0


def test_from_ids_maps_note_ids_to_positions_and_drops_unknown_ones():
    g = VaultGraph.from_ids(np.array([30, 10, 20]), [(10, 20), (20, 30), (30, 99), (5, 10)])
    assert g.links().tolist() == [[1, 2], [2, 0]]
    assert VaultGraph.from_ids(np.array([], dtype=np.int64), [(1, 2)]).n == 0



def test_the_dense_link_rows_equal_scipys():
    g = graph()
    queries = np.array([2, 0, 5, 2])  # any order, a note without links, a repeat
    assert np.array_equal(g.outgoing_mask(queries), g.out[queries].toarray() > 0)
    assert np.array_equal(g.incoming_mask(queries), g.out.T.tocsr()[queries].toarray() > 0)
    assert np.array_equal(g.indicator(queries), g.adj[queries].toarray())
