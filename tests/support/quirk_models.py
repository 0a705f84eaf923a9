"""Tiny generated models with the input quirks exporters produce, and the embeddings they should give.

Each model is :func:`~tests.support.tiny_models.make_tiny_model`'s conv + gemm net (any square
side, any embedding width) whose core takes a normalised input, preceded by what an exporter
puts in front of it:

- ``sub_mul``: ``Sub 127.5`` then ``Mul 1/128`` named ``sub`` / ``mul`` (lower case, as tf2onnx
  names them: InsightFace's name rule misses them);
- ``div``: ``Sub`` then ``Div`` by per-channel ``Constant`` nodes of shape ``[1, 3, 1, 1]`` (ImageNet
  mean and std, the PyTorch exporter's way);
- ``add_negative``: ``Add -127.5`` then ``Mul 1/128``;
- ``batchnorm``: a per-channel BatchNormalization on the raw input (MXNet's ``bn_data``);
- ``conv1x1``: a 1x1 Conv scaling and shifting each channel;
- ``folded``: the normalisation folded into the first convolution's weights: nothing left to see;
- ``none``: no normalisation: the model takes ``(x - 127.5) / 127.5`` from outside.

Every model but ``none`` takes raw pixels (0..255, RGB): :func:`raw_pixel_embeddings` is the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.support.tiny_models import make_tiny_model

#: Scalar normalisation of the sub_mul, add_negative and folded quirks: ``(x - 127.5) / 128``.
MEAN, STD = 127.5, 128.0
#: Per-channel normalisation (RGB) of the div, batchnorm and conv1x1 quirks: ImageNet's, on 0..255.
CHANNEL_MEAN = (123.675, 116.28, 103.53)
CHANNEL_STD = (58.395, 57.12, 57.375)
QUIRKS = ("none", "sub_mul", "div", "add_negative", "batchnorm", "conv1x1", "folded")
#: What the graph shows for each quirk's input (InputSpec.normalized_in_graph).
NORMALISES_IN_GRAPH = {"sub_mul", "div", "add_negative", "batchnorm", "conv1x1"}


def _const(name: str, value: Sequence[float] | float, shape: Sequence[int] = ()):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, np.float32).reshape(shape), name)


def _prefix(quirk: str, x: str) -> tuple[list, list, str]:
    """Nodes and initializers normalising ``x`` the quirk's way; the normalised tensor's name."""
    from onnx import helper

    per_channel = (1, 3, 1, 1)
    if quirk == "sub_mul":
        nodes = [
            helper.make_node("Sub", [x, "sub_y"], ["sub_out"], name="sub"),
            helper.make_node("Mul", ["sub_out", "mul_y"], ["normed"], name="mul"),
        ]
        return nodes, [_const("sub_y", MEAN), _const("mul_y", 1 / STD)], "normed"
    if quirk == "div":
        nodes = [
            helper.make_node("Constant", [], ["mean_c"], value=_const("mean_v", CHANNEL_MEAN, per_channel)),
            helper.make_node("Constant", [], ["std_c"], value=_const("std_v", CHANNEL_STD, per_channel)),
            helper.make_node("Sub", [x, "mean_c"], ["centred"], name="normalize/sub"),
            helper.make_node("Div", ["centred", "std_c"], ["normed"], name="normalize/truediv"),
        ]
        return nodes, [], "normed"
    if quirk == "add_negative":
        nodes = [
            helper.make_node("Add", [x, "neg_mean"], ["shifted"], name="add"),
            helper.make_node("Mul", ["shifted", "scale"], ["normed"], name="mul"),
        ]
        return nodes, [_const("neg_mean", -MEAN), _const("scale", 1 / STD)], "normed"
    if quirk == "batchnorm":
        std = np.asarray(CHANNEL_STD, np.float64)
        inits = [
            _const("bn_data.gamma", np.ones(3), (3,)),
            _const("bn_data.beta", np.zeros(3), (3,)),
            _const("bn_data.mean", CHANNEL_MEAN, (3,)),
            _const("bn_data.var", std**2 - 2e-5, (3,)),
        ]
        names = [x, "bn_data.gamma", "bn_data.beta", "bn_data.mean", "bn_data.var"]
        node = helper.make_node("BatchNormalization", names, ["normed"], name="bn_data", epsilon=2e-5)
        return [node], inits, "normed"
    if quirk == "conv1x1":
        scale = 1 / np.asarray(CHANNEL_STD)
        weight = np.diag(scale).reshape(3, 3, 1, 1)
        inits = [_const("pre.w", weight, (3, 3, 1, 1)), _const("pre.b", -np.asarray(CHANNEL_MEAN) * scale, (3,))]
        node = helper.make_node("Conv", [x, "pre.w", "pre.b"], ["normed"], name="pre_conv", kernel_shape=[1, 1])
        return [node], inits, "normed"
    raise ValueError(f"no prefix for quirk {quirk!r}")


def _fold_into_first_conv(model) -> None:
    """Rewrite the first Conv to take raw pixels: ``W (x - m) / s + b == (W / s) x + (b - m / s * sum W)``."""
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    weight = numpy_helper.to_array(inits["conv.w"]).astype(np.float64)
    bias = numpy_helper.to_array(inits["conv.b"]).astype(np.float64)
    folded_bias = bias - MEAN / STD * weight.sum(axis=(1, 2, 3))
    inits["conv.w"].CopyFrom(numpy_helper.from_array((weight / STD).astype(np.float32), "conv.w"))
    inits["conv.b"].CopyFrom(numpy_helper.from_array(folded_bias.astype(np.float32), "conv.b"))


def make_quirk_model(quirk: str, side: int = 112, dim: int = 128, seed: int = 0, qdq: bool = False):
    """An ``onnx.ModelProto`` with ``quirk`` (module docstring), input ``[N, 3, side, side]``, output ``[N, dim]``.

    ``qdq``: a QuantizeLinear/DequantizeLinear pair on the core's input (after the prefix).
    """
    model = make_tiny_model(seed=seed, dim=dim, input_shape=["N", 3, side, side], qdq=qdq)
    if quirk == "none":
        return model
    if quirk == "folded":
        _fold_into_first_conv(model)
        return model
    graph = model.graph
    nodes, inits, normed = _prefix(quirk, "input.1")
    for node in graph.node:
        node.input[:] = [normed if name == "input.1" else name for name in node.input]
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *rest])
    graph.initializer.extend(inits)
    return model


def write_quirk_model(path: Path, quirk: str, **options) -> Path:
    """Write :func:`make_quirk_model` to ``path`` (checked by the ONNX checker); returns ``path``."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = make_quirk_model(quirk, **options)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def raw_pixel_embeddings(path: Path, crops: Sequence[np.ndarray], bgr: bool = False) -> np.ndarray:
    """The model fed raw pixels (0..255, RGB unless ``bgr``) by ONNX Runtime directly: L2-normalised ``(N, D)``."""
    import cv2
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    side = session.get_inputs()[0].shape[2]
    blob = cv2.dnn.blobFromImages(list(crops), 1.0, (side, side), (0, 0, 0), swapRB=not bgr)
    out = session.run(None, {session.get_inputs()[0].name: blob.astype(np.float32)})[0].astype(np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)
