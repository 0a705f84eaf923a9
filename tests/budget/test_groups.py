"""Node groups: cut at the tensors all computation flows through, never by name; bounded in number."""

from __future__ import annotations

from onnx import TensorProto, helper

from arcface_trt.budget.groups import cut_positions, node_groups
from arcface_trt.precision.fp16 import name_unnamed_nodes
from tests.support.tiny_models import make_residual_model


def _chain(length: int):
    """A plain chain of ``length`` Relu nodes named n0, n1, ... (every node is a cut)."""
    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name=f"n{i}") for i in range(length)]
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info(f"t{length}", TensorProto.FLOAT, [1])],
    )
    return helper.make_model(graph)


def test_a_residual_model_is_cut_at_its_block_outputs() -> None:
    model = make_residual_model(blocks=3)
    name_unnamed_nodes(model)
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    groups = node_groups(model, convs)
    # The stem (Conv + PRelu) and one group per residual block with both of its convolutions.
    assert [list(g.nodes) for g in groups] == [convs[:1], convs[1:3], convs[3:5], convs[5:7]]
    assert [g.index for g in groups] == [0, 1, 2, 3]
    # A block's label runs from its first node (the BatchNormalization) to its Add.
    assert groups[1].label.startswith("BatchNormalization") and groups[1].label.endswith("Add_6")
    # The shortcut keeps a block's inner tensors from being cuts; its Add output is one.
    nodes = list(model.graph.node)
    cuts = cut_positions(nodes, ["embedding"], {init.name for init in model.graph.initializer})
    assert [nodes[i].op_type for i in cuts if nodes[i].op_type in ("Add", "BatchNormalization")][:2] == ["Add", "Add"]


def test_nodes_without_a_candidate_join_a_group_and_every_candidate_is_in_exactly_one() -> None:
    model = _chain(6)
    groups = node_groups(model, ["n2", "n4"])
    assert [list(g.nodes) for g in groups] == [["n2"], ["n4"]]
    # n0 and n1 lead into the first group; n3 joins the group before it, n5 the last one.
    assert groups[0].label == "n0 .. n3" and groups[1].label == "n4 .. n5"


def test_the_number_of_groups_is_bounded_by_merging_the_smallest_neighbours() -> None:
    model = _chain(10)
    groups = node_groups(model, [f"n{i}" for i in range(10)], max_groups=4)
    assert len(groups) == 4
    assert sorted(n for g in groups for n in g.nodes) == sorted(f"n{i}" for i in range(10))
    sizes = [len(g.nodes) for g in groups]
    assert max(sizes) <= 2 * min(sizes)  # the smallest neighbours merge first: no group swallows the rest
    assert [n for g in groups for n in g.nodes] == [f"n{i}" for i in range(10)]  # in graph order
