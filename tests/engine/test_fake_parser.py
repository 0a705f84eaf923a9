"""The fake ONNX parser applies onnx-tensorrt's Q/DQ rules (see tests/support/faketrt/qdq.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.fakes import FakeStack


def _qdq_conv(
    weight_axis: int | None = 0,
    scales: int = 8,
    bias: str = "float",
    zero_point: int = 0,
    weight_type: type = np.int8,
    matmul: bool = False,
) -> bytes:
    """A Conv (or MatMul) whose weight is dequantized per channel, with a float or INT32-dequantized bias."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    shape = (4, 8) if matmul else (8, 3, 3, 3)
    inits = [
        numpy_helper.from_array(rng.integers(-100, 100, shape).astype(weight_type), "w_q"),
        numpy_helper.from_array(np.full(scales, 0.01, np.float32), "w_scale"),
        numpy_helper.from_array(np.full(scales, zero_point, weight_type), "w_zero"),
    ]
    attrs = {} if weight_axis is None else {"axis": weight_axis}
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="w_dq", **attrs)]
    if matmul:
        nodes.append(helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"))
        x_shape, y_shape = ["N", 4], ["N", 8]
    else:
        conv_inputs = ["x", "w"]
        if bias == "int32":
            inits += [
                numpy_helper.from_array(np.arange(8, dtype=np.int32), "b_q"),
                numpy_helper.from_array(np.full(8, 1e-4, np.float32), "b_scale"),
            ]
            nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b"], name="b_dq", axis=0))
            conv_inputs.append("b")
        else:
            inits.append(numpy_helper.from_array(np.zeros(8, np.float32), "b"))
            conv_inputs.append("b")
        nodes.append(helper.make_node("Conv", conv_inputs, ["y"], name="conv", kernel_shape=[3, 3]))
        x_shape, y_shape = ["N", 3, 8, 8], ["N", 8, 6, 6]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _parse(stack: FakeStack, onnx_bytes: bytes) -> list[str]:
    trt = stack.trt
    messages: list[str] = []

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, msg) -> None:
            messages.append(f"{severity.name}: {msg}")

    logger = Logger()
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse(onnx_bytes)
    errors = [f"{parser.get_error(i).code().name}: {parser.get_error(i).desc()}" for i in range(parser.num_errors)]
    assert ok is not bool(errors)
    return errors + [m for m in messages if m.startswith("WARNING")]


def test_per_channel_int8_weights_with_float_bias_parse(fake_stack: FakeStack) -> None:
    assert _parse(fake_stack, _qdq_conv()) == []
    assert _parse(fake_stack, _qdq_conv(weight_axis=None)) == []  # no axis: the output channels
    assert _parse(fake_stack, _qdq_conv(matmul=True, weight_axis=1, scales=8)) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"bias": "int32"}, "INVALID_NODE: b_dq: only activation types allowed as input to this layer"),
        ({"zero_point": 3}, "INVALID_NODE: TensorRT only supports symmetric quantization."),
        ({"weight_type": np.uint8}, "UNSUPPORTED_NODE: Found unsupported input type of UINT8"),
        ({"weight_axis": 1}, "Number of output channels = 3, number of scales = 8."),
        ({"matmul": True, "weight_axis": 0}, "Number of output channels = 4, number of scales = 8."),
    ],
)
def test_what_the_parser_refuses(fake_stack: FakeStack, options: dict, expected: str) -> None:
    errors = _parse(fake_stack, _qdq_conv(**options))
    assert any(expected in e for e in errors), errors
