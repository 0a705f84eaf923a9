"""Tiny generated ONNX models that keep the tests fast: recognition-shaped, or deliberately not.

By default :func:`make_tiny_model` is shaped like the real ArcFace models: ``[N, 3, 112, 112]``
in, ``[N, D]`` out, with the same head (Gemm "fc" then BatchNormalization "features"), so the
fp16 converter's default of keeping the head in fp32 applies to it too. Its options give the
variants the tests need: other weights (``seed``), a fixed batch, a QDQ model (quantized input
and conv weights, which TensorRT runs in int8; ``qdq_weights=False`` leaves the weights float),
an op TensorRT
cannot parse, and, for the bad-input tests, models that are *not* recognition models: another
``input_shape`` (wrong size or channel count) or ``feature_map_output`` (a 4-D output instead
of ``[N, D]`` embeddings).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Width of the ``r18_model`` fixture: IResNet-18 at a quarter of the built-in 64 channels.
R18_WIDTH = 16


def make_tiny_model(
    seed: int = 0,
    dim: int = 64,
    fixed_batch: int | None = None,
    qdq: bool = False,
    custom_op: bool = False,
    qdq_uint8: bool = False,
    qdq_weights: bool = True,
    input_shape: Sequence[int | str] | None = None,
    feature_map_output: bool = False,
    input_dtype: str = "float",
    dynamic_embedding: bool = False,
):
    """An ``onnx.ModelProto``: Conv(8x8, stride 8) -> Relu -> Flatten/Reshape -> Gemm -> BatchNormalization.

    ``input_shape`` replaces ``[batch, 3, 112, 112]`` (batch: ``fixed_batch`` or ``"N"``);
    ``feature_map_output`` ends the graph after the Relu, with the ``[N, 8, H/8, W/8]`` map as output;
    ``input_dtype="bfloat16"`` takes a BF16 input (cast to float first); ``dynamic_embedding``
    declares the embedding size symbolic (``[N, "D"]``).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    batch = fixed_batch if fixed_batch is not None else "N"
    shape = list(input_shape) if input_shape is not None else [batch, 3, 112, 112]
    batch, channels, height, width = shape
    grid = (height // 8, width // 8)
    features = 8 * grid[0] * grid[1]
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.05, (8, channels, 8, 8)).astype(np.float32), "conv.w"),
        numpy_helper.from_array(rng.normal(0, 0.01, (8,)).astype(np.float32), "conv.b"),
    ]
    if not feature_map_output:
        inits += [
            numpy_helper.from_array(rng.normal(0, 0.03, (dim, features)).astype(np.float32), "fc.w"),
            numpy_helper.from_array(rng.normal(0, 0.01, (dim,)).astype(np.float32), "fc.b"),
            numpy_helper.from_array((1 + rng.normal(0, 0.05, (dim,))).astype(np.float32), "bn.scale"),
            numpy_helper.from_array(rng.normal(0, 0.05, (dim,)).astype(np.float32), "bn.bias"),
            numpy_helper.from_array(np.zeros(dim, np.float32), "bn.mean"),
            numpy_helper.from_array(np.ones(dim, np.float32), "bn.var"),
        ]
    nodes = []
    x = "input.1"
    if input_dtype == "bfloat16":
        nodes.append(helper.make_node("Cast", [x], ["x_float"], name="to_float", to=TensorProto.FLOAT))
        x = "x_float"
    weight = "conv.w"
    if qdq and qdq_weights:
        # The input and the conv weights quantized (symmetric, per-channel weights): what TensorRT runs in int8.
        conv_w = numpy_helper.to_array(inits[0])
        w_scale = (np.abs(conv_w).reshape(8, -1).max(axis=1) / 127.0).astype(np.float32)
        w_int8 = np.clip(np.round(conv_w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
        inits[0] = numpy_helper.from_array(w_int8, "conv.w_q")
        inits += [
            numpy_helper.from_array(w_scale, "w.scale"),
            numpy_helper.from_array(np.zeros(8, np.int8), "w.zero"),
        ]
        nodes.append(
            helper.make_node("DequantizeLinear", ["conv.w_q", "w.scale", "w.zero"], ["conv.w_dq"], name="dequant_w")
        )
        weight = "conv.w_dq"
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
        helper.make_node("Conv", [x, weight, "conv.b"], ["c"], name="conv", kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Relu", ["c"], ["embedding" if feature_map_output else "r"], name="relu"),
    ]
    if feature_map_output:
        output_shape = [batch, 8, *grid]
    else:
        if custom_op:
            nodes.append(helper.make_node("Mystery", ["r"], ["r2"], name="mystery", domain="com.example"))
            nodes[-1].output[0] = "r2"
            nodes.append(helper.make_node("Identity", ["r2"], ["r3"], name="ident"))
            flat_in = "r3"
        else:
            flat_in = "r"
        if fixed_batch is not None:
            inits.append(numpy_helper.from_array(np.array([fixed_batch, features], np.int64), "flat.shape"))
            nodes.append(helper.make_node("Reshape", [flat_in, "flat.shape"], ["f"], name="flat"))
        else:
            nodes.append(helper.make_node("Flatten", [flat_in], ["f"], name="flat", axis=1))
        nodes += [
            helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["fc"], name="fc", transB=1),
            helper.make_node(
                "BatchNormalization",
                ["fc", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
                ["embedding"],
                name="features",
            ),
        ]
        output_shape = [batch, "D" if dynamic_embedding else dim]
    input_type = TensorProto.BFLOAT16 if input_dtype == "bfloat16" else TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input.1", input_type, shape)],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, output_shape)],
        inits,
    )
    opsets = [helper.make_opsetid("", 13)]
    if custom_op:
        opsets.append(helper.make_opsetid("com.example", 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def write_tiny_model(path: Path, **options) -> Path:
    """Write :func:`make_tiny_model` (with ``options``) to ``path``, checked by the ONNX checker; returns ``path``."""
    return _write_checked(path, make_tiny_model(**options))


def _write_checked(path: Path, model) -> Path:
    """Write ``model`` to ``path`` (folders made) after the ONNX checker passed it; returns ``path``."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def write_external_data_model(path: Path, location: str = "legit.bin", **options) -> Path:
    """Write :func:`make_tiny_model` as ``path`` plus one external data file ``location`` beside it (every weight).

    The layout ``onnx.save(..., save_as_external_data=True)`` gives exporters of models over 2 GiB.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(
        make_tiny_model(**options),
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=0,
    )
    return path


def make_residual_model(blocks: int = 3, channels: int = 4, dim: int = 32, seed: int = 0):
    """A tiny residual recognition model (``[N, 3, 112, 112]`` in, ``[N, dim]`` out), like IResNet in miniature.

    Stem Conv(8x8, stride 8) -> PRelu, then ``blocks`` residual blocks (BN -> Conv -> PRelu -> Conv, plus the
    shortcut, joined by an Add), then Flatten -> Gemm "fc" -> BatchNormalization "features" (the embedding
    head). Nodes are unnamed, as some exporters leave them. Big enough to have groups and int8 drift, small
    enough that a drift-budget search on it takes seconds.
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = []

    def weight(name: str, shape: tuple[int, ...], scale: float) -> str:
        inits.append(numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name))
        return name

    def constant(name: str, values: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(values.astype(np.float32), name))
        return name

    nodes = [
        helper.make_node(
            "Conv",
            ["input.1", weight("stem.w", (channels, 3, 8, 8), 0.05), weight("stem.b", (channels,), 0.01)],
            ["s"],
            kernel_shape=[8, 8],
            strides=[8, 8],
        ),
        helper.make_node("PRelu", ["s", constant("stem.slope", np.full((channels, 1, 1), 0.25))], ["x0"]),
    ]
    x = "x0"
    for b in range(blocks):
        ones, zeros = np.ones(channels), np.zeros(channels)
        bn = [constant(f"b{b}.{n}", v) for n, v in (("g", ones), ("beta", zeros), ("m", zeros), ("v", ones))]
        conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
        nodes += [
            helper.make_node("BatchNormalization", [x, *bn], [f"b{b}.n"]),
            helper.make_node(
                "Conv", [f"b{b}.n", weight(f"b{b}.w1", (channels, channels, 3, 3), 0.2)], [f"b{b}.c1"], **conv
            ),
            helper.make_node(
                "PRelu", [f"b{b}.c1", constant(f"b{b}.slope", np.full((channels, 1, 1), 0.25))], [f"b{b}.p"]
            ),
            helper.make_node(
                "Conv", [f"b{b}.p", weight(f"b{b}.w2", (channels, channels, 3, 3), 0.2)], [f"b{b}.c2"], **conv
            ),
            helper.make_node("Add", [f"b{b}.c2", x], [f"b{b}.out"]),
        ]
        x = f"b{b}.out"
    features = channels * 14 * 14
    nodes += [
        helper.make_node("Flatten", [x], ["f"], axis=1),
        helper.make_node(
            "Gemm", ["f", weight("fc.w", (dim, features), 0.03), weight("fc.b", (dim,), 0.01)], ["fc"], transB=1
        ),
        helper.make_node(
            "BatchNormalization",
            [
                "fc",
                constant("bn.g", np.ones(dim)),
                constant("bn.b", np.zeros(dim)),
                constant("bn.m", np.zeros(dim)),
                constant("bn.v", np.ones(dim)),
            ],
            ["embedding"],
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dim])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def write_residual_model(path: Path, **options) -> Path:
    """Write :func:`make_residual_model` (with ``options``) to ``path``, checked by the ONNX checker."""
    return _write_checked(path, make_residual_model(**options))
