"""Node groups: the units a drift-budget search keeps in full precision, found by graph structure.

A group ends where the whole computation flows through one tensor (a *cut*: after that node,
exactly one tensor produced so far is still needed). In a residual network the cuts are the
block outputs (the residual ``Add``), so a group is a residual block with its shortcut; in a
plain chain every node is a cut, and neighbouring pieces are merged. Names are never read, so
any exporter's graph works. Each group lists its *candidates*: the nodes the precision
transform would change (int8: the quantized Conv/Gemm/MatMul; fp16: every node), leaving out
the nodes the default recipe keeps in full precision anyway (the embedding head). Pieces
without a candidate join their neighbour, and the count is bounded (:data:`MAX_GROUPS`) by
merging the smallest neighbours, so the search's cost is bounded whatever the model.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from arcface_trt.records import Record

#: Most groups a search measures (each one costs a quantization and an evaluation).
MAX_GROUPS = 32


@dataclass(frozen=True)
class NodeGroup(Record):
    """One group: its position, a readable label (first and last node) and its candidate nodes."""

    index: int
    label: str
    nodes: tuple[str, ...]


def cut_positions(nodes: Sequence[Any], graph_outputs: Collection[str], constants: Collection[str]) -> list[int]:
    """Indices ``i`` of the (topologically ordered) ``nodes`` after which exactly one produced tensor is still needed.

    ``constants``: tensors that are not activations (initializers), never counted as live.
    """
    last_use: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            if name and name not in constants:
                last_use[name] = index
    end = len(nodes)
    for name in graph_outputs:
        last_use[name] = end
    live: set[str] = set()
    cuts = []
    for index, node in enumerate(nodes):
        live.update(name for name in node.output if name and last_use.get(name, -1) > index)
        live = {name for name in live if last_use.get(name, -1) > index}
        if len(live) == 1:
            cuts.append(index)
    return cuts


def _segments(nodes: Sequence[Any], cuts: Sequence[int]) -> list[list[Any]]:
    out, start = [], 0
    for cut in cuts:
        out.append(list(nodes[start : cut + 1]))
        start = cut + 1
    if start < len(nodes):
        out.append(list(nodes[start:]))
    return [segment for segment in out if segment]


def _merge_smallest(pieces: list[list[Any]], weight: Callable[[list[Any]], int], limit: int) -> list[list[Any]]:
    """Merge neighbouring pieces, smallest combined weight first, until at most ``limit`` remain."""
    while len(pieces) > limit:
        sizes = [weight(pieces[i]) + weight(pieces[i + 1]) for i in range(len(pieces) - 1)]
        at = sizes.index(min(sizes))
        pieces[at : at + 2] = [pieces[at] + pieces[at + 1]]
    return pieces


def node_groups(model: Any, candidates: Collection[str], max_groups: int = MAX_GROUPS) -> list[NodeGroup]:
    """The groups of ``model`` (an ``onnx.ModelProto`` whose nodes all have names) over the ``candidates`` node names.

    Every candidate falls in exactly one group; groups follow the graph's order.
    """
    graph = model.graph
    nodes = list(graph.node)
    constants = {init.name for init in graph.initializer}
    cuts = cut_positions(nodes, [value.name for value in graph.output], constants)
    wanted = set(candidates)

    def weight(piece: list[Any]) -> int:
        return sum(1 for node in piece if node.name in wanted)

    pieces: list[list[Any]] = []
    pending: list[Any] = []  # leading nodes without a candidate join the first group
    for segment in _segments(nodes, cuts):
        if weight(segment) == 0:
            if pieces:
                pieces[-1] += segment
            else:
                pending += segment
            continue
        pieces.append(pending + segment)
        pending = []
    pieces = _merge_smallest(pieces, weight, max(1, max_groups))
    return [
        NodeGroup(index, f"{piece[0].name} .. {piece[-1].name}", tuple(n.name for n in piece if n.name in wanted))
        for index, piece in enumerate(pieces)
    ]
