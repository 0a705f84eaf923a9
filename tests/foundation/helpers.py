"""Small generated ONNX models that are NOT recognition models, for bad-input tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_model(path: Path, input_shape: list, reduce_to_2d: bool = True) -> Path:
    """A tiny conv net with the given input shape; 2-D ``[N, 8]`` output or a 4-D one."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    channels = input_shape[1] if isinstance(input_shape[1], int) else 3
    weight = numpy_helper.from_array(np.ones((8, channels, 3, 3), dtype=np.float32) * 0.01, "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv")]
    if reduce_to_2d:
        nodes += [
            helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
            helper.make_node("Flatten", ["g"], ["y"], name="flat"),
        ]
        out_shape = ["N", 8]
    else:
        nodes += [helper.make_node("Relu", ["c"], ["y"], name="relu")]
        out_shape = ["N", 8, *input_shape[2:]]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
