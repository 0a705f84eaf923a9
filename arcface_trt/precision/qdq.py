"""Recognise and inspect QDQ (explicitly quantized) ONNX models.

A QDQ model carries QuantizeLinear/DequantizeLinear pairs around the tensors it
quantizes; TensorRT builds it as an explicitly quantized int8 network and ONNX
Runtime fuses the pairs into integer kernels on the CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.lazy import lazy_import
from arcface_trt.model.inspect import is_quantized, load_onnx

onnx = lazy_import("onnx")

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def _as_model(path_or_model: str | Path | Any) -> Any:
    return load_onnx(path_or_model) if isinstance(path_or_model, str | Path) else path_or_model


def is_qdq_model(path_or_model: str | Path | Any) -> bool:
    """True when the model (a path or an ``onnx.ModelProto``) holds a DequantizeLinear node.

    DequantizeLinear is what makes a graph explicitly quantized: weight-only
    quantized models hold DQ nodes without Q nodes.
    """
    return is_quantized(_as_model(path_or_model).graph)


@dataclass(frozen=True)
class QdqSummary:
    """What a QDQ model quantizes: counts of Q/DQ nodes and how weights are scaled."""

    quantize_nodes: int
    dequantize_nodes: int
    #: Initializer-fed DequantizeLinear nodes (quantized weights), by their weight name.
    weight_scales: dict[str, int] = field(default_factory=dict)
    #: Element types (onnx.TensorProto enum names) of the quantized activations.
    activation_types: tuple[str, ...] = ()
    weight_types: tuple[str, ...] = ()

    @property
    def per_channel_weights(self) -> int:
        """Number of quantized weights with more than one scale (per output channel)."""
        return sum(1 for n in self.weight_scales.values() if n > 1)

    @property
    def per_tensor_weights(self) -> int:
        """Number of quantized weights with a single scale."""
        return sum(1 for n in self.weight_scales.values() if n == 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record (weight_scales summarised by count)."""
        data = asdict(self)
        data["weight_scales"] = len(self.weight_scales)
        data["per_channel_weights"] = self.per_channel_weights
        data["per_tensor_weights"] = self.per_tensor_weights
        return data


def summarize_qdq(path_or_model: str | Path | Any) -> QdqSummary:
    """Count Q/DQ nodes and read each quantized weight's scale count and types."""
    model = _as_model(path_or_model)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    weight_scales: dict[str, int] = {}
    weight_types: set[str] = set()
    activation_types: set[str] = set()
    for node in graph.node:
        zero_point_name = node.input[2] if len(node.input) > 2 else ""
        if node.op_type == "QuantizeLinear" and zero_point_name in initializers:
            zero_point = initializers[zero_point_name]
            activation_types.add(onnx.TensorProto.DataType.Name(zero_point.data_type))
        if node.op_type != "DequantizeLinear" or node.input[0] not in initializers:
            continue
        quantized = initializers[node.input[0]]
        if quantized.data_type not in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
            continue  # int32 biases are quantized too; they carry no scale of their own.
        scale = initializers.get(node.input[1])
        count = int(np.prod(onnx.numpy_helper.to_array(scale).shape)) if scale is not None else 0
        weight_scales[node.input[0]] = max(count, 1)
        weight_types.add(onnx.TensorProto.DataType.Name(quantized.data_type))
    return QdqSummary(
        quantize_nodes=sum(1 for n in graph.node if n.op_type == "QuantizeLinear"),
        dequantize_nodes=sum(1 for n in graph.node if n.op_type == "DequantizeLinear"),
        weight_scales=weight_scales,
        activation_types=tuple(sorted(activation_types)),
        weight_types=tuple(sorted(weight_types)),
    )


def check_tensorrt_qdq(onnx_path: Path) -> None:
    """TensorRT builds int8 engines only from a QDQ model with symmetric INT8 Q/DQ: say so up front.

    A model without Q/DQ nodes, or one quantized with UINT8 (ONNX Runtime's CPU-friendly
    U8S8), is an :class:`InputError` naming the fix.
    """
    model = load_onnx(onnx_path)
    if not is_qdq_model(model):
        raise InputError(
            f"{onnx_path}: int8 engines are built only from a QDQ (explicitly quantized) ONNX model; "
            "this model has no QuantizeLinear/DequantizeLinear nodes: quantize it first with "
            f"arcface-trt quantize --onnx-path {onnx_path} --out <model>-int8-qdq.onnx"
        )
    summary = summarize_qdq(model)
    if "UINT8" in {*summary.activation_types, *summary.weight_types}:
        raise InputError(
            f"{onnx_path}: TensorRT builds int8 engines only from symmetric INT8 Q/DQ (zero point 0); this model "
            "quantizes with UINT8 (ONNX Runtime's CPU default): quantize it again with int8 activations "
            "(--activation-type int8)"
        )
