"""fp16 transform: fp32 inputs/outputs, the embedding head kept in fp32, tiny drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from arcface_trt.errors import InputError
from arcface_trt.precision.fp16 import convert_to_fp16, default_fp32_nodes, name_unnamed_nodes
from tests.support.embeddings import embed_with_ort


def _io_types(model: onnx.ModelProto) -> list[int]:
    return [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]]


def _weight_types(model: onnx.ModelProto, node_name: str) -> list[int]:
    inits = {i.name: i.data_type for i in model.graph.initializer}
    node = next(n for n in model.graph.node if n.name == node_name)
    return [inits[name] for name in node.input if name in inits]


@pytest.fixture(scope="module")
def fp16_model(r18_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_to_fp16(r18_model, tmp_path_factory.mktemp("fp16") / "r18-fp16.onnx")


def test_default_keeps_head_by_structure(r18_model: Path) -> None:
    model = onnx.load(str(r18_model))
    kept = default_fp32_nodes(model)
    ops = {n.name: n.op_type for n in model.graph.node}
    assert [ops[name] for name in kept] == ["Gemm", "BatchNormalization"]
    # The head ends the graph: the last kept node writes the embedding.
    last = next(n for n in model.graph.node if n.name == kept[-1])
    assert last.output[0] == model.graph.output[0].name


def test_fp16_model_keeps_fp32_io_and_head(r18_model: Path, fp16_model: Path) -> None:
    model = onnx.load(str(fp16_model))
    onnx.checker.check_model(model)
    assert _io_types(model) == [TensorProto.FLOAT, TensorProto.FLOAT]
    head = default_fp32_nodes(onnx.load(str(r18_model)))
    for name in head:
        assert set(_weight_types(model, name)) == {TensorProto.FLOAT}, name
    conv_types = {t for n in model.graph.node if n.op_type == "Conv" for t in _weight_types(model, n.name)}
    assert conv_types == {TensorProto.FLOAT16}


def test_fp16_drift_is_tiny(r18_model: Path, fp16_model: Path, faces: np.ndarray) -> None:
    ref = embed_with_ort(r18_model, faces)
    out = embed_with_ort(fp16_model, faces)
    assert out.dtype == np.float32
    cosine = np.sum(ref * out, axis=1)
    assert cosine.mean() >= 0.9999
    assert not np.array_equal(ref, out)  # really computed in fp16


def test_empty_keep_list_converts_head_and_still_outputs_fp32(r18_model: Path, tmp_path: Path) -> None:
    # onnxconverter-common alone would end this graph in fp16; the output type is restored.
    dst = convert_to_fp16(r18_model, tmp_path / "all-fp16.onnx", keep_fp32_nodes=[])
    model = onnx.load(str(dst))
    assert _io_types(model) == [TensorProto.FLOAT, TensorProto.FLOAT]
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert set(_weight_types(model, gemm.name)) == {TensorProto.FLOAT16}


def test_unknown_keep_node_is_an_input_error(r18_model: Path, tmp_path: Path) -> None:
    dst = tmp_path / "x.onnx"
    with pytest.raises(InputError, match="no node named 'nope'"):
        convert_to_fp16(r18_model, dst, keep_fp32_nodes=["nope"])
    assert list(tmp_path.iterdir()) == []


def _tiny_unnamed_model(with_head: bool) -> onnx.ModelProto:
    """input -> Conv -> Flatten [-> MatMul -> Add -> output; Flatten -> Relu (side)], nodes unnamed."""
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    m = numpy_helper.from_array(np.ones((4 * 6 * 6, 8), np.float32), "m")
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Flatten", ["c"], ["f"])]
    if with_head:
        nodes += [helper.make_node("MatMul", ["f", "m"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["y"])]
    else:
        nodes += [helper.make_node("Relu", ["f"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [w, m, b],
    )
    return helper.make_model(graph)


def test_unnamed_nodes_get_names_and_head_is_found() -> None:
    model = _tiny_unnamed_model(with_head=True)
    name_unnamed_nodes(model)
    names = [n.name for n in model.graph.node]
    assert all(names) and len(set(names)) == len(names)
    assert default_fp32_nodes(model) == ["MatMul_2", "Add_3"]
    assert default_fp32_nodes(_tiny_unnamed_model(with_head=False)) == []


def _casts_to_fp16(model: onnx.ModelProto) -> int:
    return sum(1 for n in model.graph.node if n.op_type == "Cast" and n.attribute[0].i == TensorProto.FLOAT16)


def test_nodes_kept_in_fp32_read_fp32_inputs_not_fp16_round_trips(
    residual_onnx: Path, tmp_path: Path, faces: np.ndarray
) -> None:
    # A residual block's output has two readers; the converter alone rounds it through fp16 between kept nodes.
    model = onnx.load(str(residual_onnx))
    name_unnamed_nodes(model)  # as the conversion names them
    every = [n.name for n in model.graph.node]
    dst = convert_to_fp16(residual_onnx, tmp_path / "all-kept.onnx", keep_fp32_nodes=every)
    kept = onnx.load(str(dst))
    assert _casts_to_fp16(kept) == 0
    onnx.checker.check_model(kept)
    reference, converted = embed_with_ort(residual_onnx, faces[:8]), embed_with_ort(dst, faces[:8])
    assert np.abs(reference - converted).max() < 1e-6  # every node kept: the fp32 model

    # Some blocks kept: fp16 nodes still get their Cast to fp16, kept ones read fp32.
    second_block = every[len(every) // 2 :]
    mixed = onnx.load(str(convert_to_fp16(residual_onnx, tmp_path / "mixed.onnx", keep_fp32_nodes=second_block)))
    assert _casts_to_fp16(mixed) >= 1
    onnx.checker.check_model(mixed)
    assert (
        np.abs(embed_with_ort(residual_onnx, faces[:8]) - embed_with_ort(tmp_path / "mixed.onnx", faces[:8])).max()
        < 1e-2
    )
