"""Lay out a `policies.pipeline.Graph` left to right in layers, for the inline SVG of
`templates/web/_pipeline.html` (no JavaScript).

Layers: a node's column is the longest chain of promotions leading to it (back edges of cycles
ignored, found by a depth-first walk in name order); remotes sit one column after their source.
Within a column nodes are sorted by name. Edges are cubic curves from the right side of the source
box to the left side of the target box; an edge going back (a cycle) bends below both boxes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from registry_policies.policies.pipeline import MAX_NODES, Edge, Graph, Node, pipeline_graph
from registry_policies.repositories.models import Repository

BOX_W, BOX_H = 200, 36
COL_GAP, ROW_GAP, PAD = 220, 44, 20
LABEL_CHARS = 34  # what fits between two columns at 11px
COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828", "pending": "#b7791f", "skipped": "#5a7d9a",
           "none": "#8a8f98"}


@dataclass(frozen=True)
class PlacedNode:
    node: Node
    x: int
    y: int
    url: str
    w: int = BOX_W
    h: int = BOX_H

    @property
    def text_x(self) -> int:
        return self.x + BOX_W // 2

    @property
    def text_y(self) -> int:
        return self.y + BOX_H // 2 + 5

    @property
    def short_label(self) -> str:
        label = self.node.label
        return label if len(label) <= 28 else label[:27] + "…"


@dataclass(frozen=True)
class PlacedEdge:
    edge: Edge
    path: str
    label_x: int
    label_y: int
    colour: str
    label: str
    marker: int  # 1-based index of the colour in COLOURS (one arrow marker per colour)


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    nodes: list[PlacedNode]
    edges: list[PlacedEdge]
    truncated: bool


def _layers(graph: Graph) -> dict[str, int]:
    order = [node.key for node in graph.sorted_nodes()]
    outgoing: dict[str, list[str]] = {key: [] for key in order}
    for edge in graph.edges:
        outgoing[edge.source].append(edge.target)
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(key: str) -> None:
        state[key] = 1
        for target in outgoing[key]:
            if state.get(target) == 1:
                back.add((key, target))
            elif target not in state:
                visit(target)
        state[key] = 2

    for key in order:
        if key not in state:
            visit(key)
    layer = dict.fromkeys(order, 0)
    forward = [(e.source, e.target) for e in graph.edges if (e.source, e.target) not in back]
    for _ in range(len(order)):
        changed = False
        for source, target in forward:
            if layer[target] < layer[source] + 1:
                layer[target] = layer[source] + 1
                changed = True
        if not changed:
            break
    return layer


def _url(node: Node) -> str:
    if node.is_remote:
        return ""
    return reverse("web:repository", kwargs={"namespace": node.namespace, "name": node.name})


def layout(graph: Graph) -> Layout:
    layer = _layers(graph)
    columns: dict[int, list[Node]] = {}
    for node in graph.sorted_nodes():
        columns.setdefault(layer[node.key], []).append(node)
    placed: dict[str, PlacedNode] = {}
    for column, nodes in columns.items():
        for row, node in enumerate(nodes):
            placed[node.key] = PlacedNode(node, PAD + column * (BOX_W + COL_GAP),
                                          PAD + row * (BOX_H + ROW_GAP), _url(node))
    rows = max((len(nodes) for nodes in columns.values()), default=0)
    height = PAD * 2 + rows * (BOX_H + ROW_GAP)
    width = PAD * 2 + len(columns) * (BOX_W + COL_GAP) - COL_GAP
    edges = []
    seen_pairs: dict[tuple[str, str], int] = {}
    for edge in graph.edges:
        a, b = placed[edge.source], placed[edge.target]
        nth = seen_pairs.get((edge.source, edge.target), 0)
        seen_pairs[(edge.source, edge.target)] = nth + 1
        x1, y1 = a.x + BOX_W, a.y + BOX_H // 2 + nth * 6
        x2, y2 = b.x, b.y + BOX_H // 2 + nth * 6
        if x2 > x1:
            mid = (x1 + x2) // 2
            path = f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"
            label_x, label_y = mid, (y1 + y2) // 2 - 6 + nth * 14
        else:  # back edge of a cycle: under both boxes
            low = max(a.y, b.y) + BOX_H + ROW_GAP // 2 + nth * 10
            x1, x2 = a.x + BOX_W // 2, b.x + BOX_W // 2
            y1, y2 = a.y + BOX_H, b.y + BOX_H
            path = f"M{x1},{y1} C{x1},{low} {x2},{low} {x2},{y2}"
            label_x, label_y = (x1 + x2) // 2, low + 4
        label = "; ".join(edge.rules)
        if len(label) > LABEL_CHARS:
            label = label[:LABEL_CHARS - 1] + "…"
        outcome = edge.outcome if edge.outcome in COLOURS else "none"
        edges.append(PlacedEdge(edge, path, label_x, label_y, COLOURS[outcome], label,
                                list(COLOURS).index(outcome) + 1))
    return Layout(width=max(width, 240), height=height, nodes=list(placed.values()), edges=edges,
                  truncated=graph.truncated)


def pipeline_context(user: Any, *, start: list[Repository], subject: str,
                     current: Repository | None = None) -> dict[str, Any]:
    """What `web/_pipeline.html` needs."""
    return {"pipeline": layout(pipeline_graph(user, start=start)), "pipeline_colours": list(COLOURS.values()),
            "pipeline_subject": subject, "pipeline_max_nodes": MAX_NODES,
            "current_repository_id": current.pk if current is not None else None}
