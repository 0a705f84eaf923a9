"""Tiny recognition-shaped ONNX models (112x112 in, [N, D] out) that keep the TensorRT tests fast.

Same head as the real ArcFace models (Gemm "fc" then BatchNormalization "features"),
so the fp16 converter's default of keeping the head in fp32 applies to them too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def tiny_model(
    seed: int = 0,
    dim: int = 64,
    fixed_batch: int | None = None,
    qdq: bool = False,
    custom_op: bool = False,
    qdq_uint8: bool = False,
):
    """An ``onnx.ModelProto``: Conv(8x8, stride 8) -> Relu -> Flatten/Reshape -> Gemm -> BatchNormalization."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    batch = fixed_batch if fixed_batch is not None else "N"
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.05, (8, 3, 8, 8)).astype(np.float32), "conv.w"),
        numpy_helper.from_array(rng.normal(0, 0.01, (8,)).astype(np.float32), "conv.b"),
        numpy_helper.from_array(rng.normal(0, 0.03, (dim, 8 * 14 * 14)).astype(np.float32), "fc.w"),
        numpy_helper.from_array(rng.normal(0, 0.01, (dim,)).astype(np.float32), "fc.b"),
        numpy_helper.from_array((1 + rng.normal(0, 0.05, (dim,))).astype(np.float32), "bn.scale"),
        numpy_helper.from_array(rng.normal(0, 0.05, (dim,)).astype(np.float32), "bn.bias"),
        numpy_helper.from_array(np.zeros(dim, np.float32), "bn.mean"),
        numpy_helper.from_array(np.ones(dim, np.float32), "bn.var"),
    ]
    nodes = []
    x = "input.1"
    if qdq:
        inits += [
            numpy_helper.from_array(np.array(1 / 127.0, np.float32), "q.scale"),
            numpy_helper.from_array(np.array(128 if qdq_uint8 else 0, np.uint8 if qdq_uint8 else np.int8), "q.zero"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", [x, "q.scale", "q.zero"], ["x_q"], name="quant_in"),
            helper.make_node("DequantizeLinear", ["x_q", "q.scale", "q.zero"], ["x_dq"], name="dequant_in"),
        ]
        x = "x_dq"
    nodes += [
        helper.make_node("Conv", [x, "conv.w", "conv.b"], ["c"], name="conv", kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
    ]
    if custom_op:
        nodes.append(helper.make_node("Mystery", ["r"], ["r2"], name="mystery", domain="com.example"))
        nodes[-1].output[0] = "r2"
        nodes.append(helper.make_node("Identity", ["r2"], ["r3"], name="ident"))
        flat_in = "r3"
    else:
        flat_in = "r"
    if fixed_batch is not None:
        inits.append(numpy_helper.from_array(np.array([fixed_batch, 8 * 14 * 14], np.int64), "flat.shape"))
        nodes.append(helper.make_node("Reshape", [flat_in, "flat.shape"], ["f"], name="flat"))
    else:
        nodes.append(helper.make_node("Flatten", [flat_in], ["f"], name="flat", axis=1))
    nodes += [
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["fc"], name="fc", transB=1),
        helper.make_node(
            "BatchNormalization", ["fc", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["embedding"], name="features"
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, dim])],
        inits,
    )
    opsets = [helper.make_opsetid("", 13)]
    if custom_op:
        opsets.append(helper.make_opsetid("com.example", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def write_tiny_model(path: Path, **kwargs) -> Path:
    """Write :func:`tiny_model` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiny_model(**kwargs).SerializeToString())
    return path
