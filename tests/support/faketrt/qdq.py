"""The ONNX parser's rules for QuantizeLinear / DequantizeLinear, as onnx-tensorrt applies them.

From onnx-tensorrt's ``QuantDequantLinearHelper`` (onnxOpImporters.cpp, 10.x) and its
operators table (``x_zero_point`` / ``y_zero_point`` must be zero; INT8, FP8, INT4 only), plus
TensorRT's own refusal of a DequantizeLinear whose input is not an activation type (an INT32
bias), reported in onnx-tensorrt #850 and onnxruntime #14229. The exact words of TensorRT 10.16
and 11.4 are not verified here; the rules are:

- a UINT8 input to either op, or a UINT8 QuantizeLinear zero point: UNSUPPORTED_NODE;
- fewer than two inputs; a scale with no coefficients or a non-positive one: INVALID_NODE;
- a zero point other than all zeros (TensorRT quantizes symmetrically): INVALID_NODE; a zero
  point of another type than INT8/FP8/INT4 is only warned about (TensorRT uses INT8);
- per-channel scales: their count must equal the input's size along ``axis`` (the output
  channels of a weight: axis 0 for Conv and for Gemm with transB=1, 1 for MatMul weights);
- a DequantizeLinear of an INT32 tensor (a quantized bias): INVALID_NODE, "only activation
  types allowed as input to this layer".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
ALLOWED_ZERO_POINT_TYPES = ("INT8", "FLOAT8E4M3FN", "INT4")


@dataclass(frozen=True)
class Finding:
    """One rule broken (``code`` is an ErrorCode name) or, with ``code`` None, a warning."""

    code: str | None
    message: str
    node: int
    node_name: str
    op: str


def types_and_shapes(model: Any) -> tuple[dict[str, str], dict[str, tuple]]:
    """Element type name and shape of every tensor the model names (after ONNX shape inference)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types: dict[str, str] = {}
    shapes: dict[str, tuple] = {}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        tensor = value.type.tensor_type
        types[value.name] = onnx.TensorProto.DataType.Name(tensor.elem_type)
        shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
    for init in graph.initializer:
        types[init.name] = onnx.TensorProto.DataType.Name(init.data_type)
        shapes[init.name] = tuple(init.dims)
    return types, shapes


def check(model: Any) -> list[Finding]:
    """Every Q/DQ rule ``model`` breaks, in node order (warnings included, with ``code`` None)."""
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    types, shapes = types_and_shapes(model)
    found: list[Finding] = []
    for index, node in enumerate(model.graph.node):
        if node.op_type not in QDQ_OPS:
            continue

        def finding(code: str | None, message: str, node: Any = node, index: int = index) -> None:
            found.append(Finding(code, message, index, node.name, node.op_type))

        data_type = types.get(node.input[0], "UNDEFINED")
        if data_type == "UINT8" or (
            node.op_type == "QuantizeLinear" and len(node.input) > 2 and types.get(node.input[2]) == "UINT8"
        ):
            finding("UNSUPPORTED_NODE", "Found unsupported input type of UINT8")
            continue
        if len(node.input) < 2:
            finding(
                "INVALID_NODE",
                "This version of TensorRT requires at least 2 inputs for the QuantizeLinear/DequantizeLinear operator.",
            )
            continue
        if node.op_type == "DequantizeLinear" and data_type == "INT32":
            finding("INVALID_NODE", f"{node.name}: only activation types allowed as input to this layer")
            continue
        scale = numpy_helper.to_array(inits[node.input[1]]) if node.input[1] in inits else None
        if scale is not None and scale.size == 0:
            finding("INVALID_NODE", "Cannot have scale with no coefficients.")
            continue
        if scale is not None and not (scale > 0).all():
            finding("INVALID_NODE", "Scale coefficients must all be positive")
            continue
        zero_name = node.input[2] if len(node.input) > 2 else ""
        if zero_name in inits:
            if types[zero_name] not in ALLOWED_ZERO_POINT_TYPES:
                finding(
                    None,
                    "TensorRT doesn't support QuantizeLinear/DequantizeLinear with UINT8 zero_point. "
                    "TensorRT will use INT8 instead.",
                )
            if np.any(numpy_helper.to_array(inits[zero_name]) != 0):
                finding(
                    "INVALID_NODE",
                    "TensorRT only supports symmetric quantization. The zero point for the "
                    "QuantizeLinear/DequantizeLinear operator must be all zeros.",
                )
                continue
        count = 1 if scale is None else int(scale.size)
        if count != 1:
            dims = shapes.get(node.input[0], ())
            axis = next((a.i for a in node.attribute if a.name == "axis"), len(dims))
            axis = 0 if axis == len(dims) else axis % max(len(dims), 1)
            channels = dims[axis] if axis < len(dims) else -1
            if channels != count:
                finding(
                    "INVALID_NODE",
                    "The number of scales is not equal to the number of output channels. "
                    f"Number of output channels = {channels}, number of scales = {count}.",
                )
    return found
