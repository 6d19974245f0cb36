"""Graph export: the stored link graph as a networkx graph (``vaultlearn graph`` writes it as JSON or GraphML)."""

from __future__ import annotations

from pathlib import PurePosixPath

from .store import Store


def link_graph(store: Store):
    """The link graph as a networkx MultiDiGraph keyed by vault path (unresolved targets included)."""
    import networkx as nx

    graph = nx.MultiDiGraph()
    rows = {row.id: row for row in store.notes()}
    for row in rows.values():
        graph.add_node(row.path, title=row.title, phase=row.phase or "", tags=" ".join(row.tags),
                       unresolved=False)
    for link in store.links():
        if link.attachment:
            continue
        source = rows[link.src].path
        if link.dst is None:
            target = link.target or source
            if target not in graph:
                graph.add_node(target, title=PurePosixPath(target).name, phase="", tags="", unresolved=True)
        else:
            target = rows[link.dst].path
        graph.add_edge(source, target, kind=link.kind)
    return graph
