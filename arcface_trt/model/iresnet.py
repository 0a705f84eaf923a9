"""Generate an ArcFace-architecture ONNX model (InsightFace IResNet) with seeded weights.

No weights can be downloaded where this project is built, so demos and tests use a
model generated here, with onnx and numpy alone. The graph is what an exported
InsightFace model looks like with batch-norm folded: stem Conv(+BN) -> PReLU; each
block BN -> Conv(+BN) -> PReLU -> Conv(+BN), plus a 1x1 Conv(+BN) shortcut where it
downsamples; final BN -> Flatten -> Gemm (FC 25088->512) -> BN ("features").

The weights are random, so the embeddings carry no identity knowledge. The init
keeps activations finite (residual branches scaled down) and makes different faces
give clearly different embeddings: the final BN's statistics are measured on the
seven sample faces, as a trained model's running statistics would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.faces import sample_faces
from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSpec
from arcface_trt.preprocess import preprocess

onnx = lazy_import("onnx")
ort = lazy_import("onnxruntime")

LAYERS = {"r18": (2, 2, 2, 2), "r34": (3, 4, 6, 3), "r50": (3, 4, 14, 3), "r100": (3, 13, 30, 3)}
#: Channels of the first stage; each later stage doubles them (InsightFace: 64, 128, 256, 512).
DEFAULT_WIDTH = 64
INPUT_NAME = "input.1"
OUTPUT_NAME = "embedding"
EMBEDDING_DIM = 512
OPSET = 13
#: Scale of each residual branch; keeps the variance growth over 49 blocks (r100) bounded.
RESIDUAL_SCALE = 0.2
BN_EPS = 1e-5


@dataclass
class _GraphBuilder:
    rng: np.random.Generator
    nodes: list
    initializers: list
    counter: int = 0

    def _name(self, op: str) -> str:
        self.counter += 1
        return f"{op}_{self.counter}"

    def _const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(onnx.numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: object) -> str:
        name = self._name(op)
        self.nodes.append(onnx.helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int, gain: float = 1.0) -> str:
        """Conv with BN folded into its weight and bias."""
        std = gain * np.sqrt(2.0 / (cin * k * k))
        w = self.rng.normal(0.0, std, size=(cout, cin, k, k))
        b = self.rng.normal(0.0, 0.01, size=(cout,))
        name = self._name("conv")
        return self.node(
            "Conv",
            [x, self._const(f"{name}.weight", w), self._const(f"{name}.bias", b)],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
        )

    def bn(self, x: str, c: int, mean: np.ndarray | None = None, var: np.ndarray | None = None) -> str:
        name = self._name("bn")
        scale = 1.0 + self.rng.normal(0.0, 0.05, size=(c,))
        bias = self.rng.normal(0.0, 0.05, size=(c,))
        mean = self.rng.normal(0.0, 0.05, size=(c,)) if mean is None else mean
        var = 1.0 + np.abs(self.rng.normal(0.0, 0.05, size=(c,))) if var is None else var
        inputs = [
            x,
            self._const(f"{name}.weight", scale),
            self._const(f"{name}.bias", bias),
            self._const(f"{name}.running_mean", mean),
            self._const(f"{name}.running_var", var),
        ]
        return self.node("BatchNormalization", inputs, epsilon=BN_EPS)

    def prelu(self, x: str, c: int) -> str:
        slope = np.full((c, 1, 1), 0.25)
        return self.node("PRelu", [x, self._const(f"{self._name('prelu')}.slope", slope)])


def _block(g: _GraphBuilder, x: str, cin: int, cout: int, stride: int) -> str:
    y = g.bn(x, cin)
    y = g.conv(y, cin, cout, 3, 1)
    y = g.prelu(y, cout)
    y = g.conv(y, cout, cout, 3, stride, gain=RESIDUAL_SCALE)
    shortcut = x
    if stride != 1 or cin != cout:
        shortcut = g.conv(x, cin, cout, 1, stride, gain=np.sqrt(0.5))
    return g.node("Add", [y, shortcut])


def _build_graph(arch: str, seed: int, width: int, features_mean: np.ndarray | None, features_var: np.ndarray | None):
    helper, float_type = onnx.helper, onnx.TensorProto.FLOAT
    g = _GraphBuilder(rng=np.random.default_rng(seed), nodes=[], initializers=[])
    widths = [width * 2**stage for stage in range(len(LAYERS[arch]))]
    x = g.conv(INPUT_NAME, 3, widths[0], 3, 1)
    x = g.prelu(x, widths[0])
    cin = widths[0]
    for blocks, stage_width in zip(LAYERS[arch], widths, strict=True):
        for i in range(blocks):
            x = _block(g, x, cin, stage_width, 2 if i == 0 else 1)
            cin = stage_width
    x = g.bn(x, cin)
    x = g.node("Flatten", [x], axis=1)
    fan_in = cin * 7 * 7
    fc = g._name("fc")
    fc_w = g.rng.normal(0.0, np.sqrt(1.0 / fan_in), size=(EMBEDDING_DIM, fan_in))
    x = g.node("Gemm", [x, g._const(f"{fc}.weight", fc_w), g._const(f"{fc}.bias", np.zeros(EMBEDDING_DIM))], transB=1)
    if features_mean is not None:
        x = g.bn(x, EMBEDDING_DIM, mean=features_mean, var=features_var)
    g.nodes[-1].output[0] = OUTPUT_NAME
    graph = helper.make_graph(
        g.nodes,
        f"arcface_iresnet{arch[1:]}",
        [helper.make_tensor_value_info(INPUT_NAME, float_type, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info(OUTPUT_NAME, float_type, ["N", EMBEDDING_DIM])],
        g.initializers,
    )
    name = f"IResNet-{arch[1:]}" + ("" if width == DEFAULT_WIDTH else f" (width {width})")
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="arcface-trt",
        doc_string=f"{name} ArcFace architecture, RANDOM weights (seed {seed}); not a trained model",
    )
    model.ir_version = 8
    return model


def _features_statistics(model_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the FC output over the sample faces (the final BN's running stats)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    batch = preprocess(sample_faces(21, seed=1234), InputSpec.default(112))
    out = session.run(None, {INPUT_NAME: batch})[0].astype(np.float64)
    return out.mean(axis=0), out.var(axis=0) + 1e-3


def make_model(arch: str = "r50", seed: int = 0, width: int = DEFAULT_WIDTH):
    """Return the ONNX ``ModelProto`` of IResNet ``arch`` with weights drawn from ``seed``.

    ``width``: channels of the first stage (each later stage doubles them); a narrow model (8, 16)
    is a fast one, for measuring what the pipeline around a model costs.
    """
    if arch not in LAYERS:
        raise InputError(f"unknown architecture '{arch}' (choose one of {', '.join(LAYERS)})")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    if width < 1:
        raise InputError(f"--width must be at least 1, got {width}")
    draft = _build_graph(arch, seed, width, None, None)
    mean, var = _features_statistics(draft.SerializeToString())
    return _build_graph(arch, seed, width, mean, var)


def write_model(path: Path, arch: str = "r50", seed: int = 0, width: int = DEFAULT_WIDTH) -> Path:
    """Generate the model and write it atomically to ``path``; returns the path."""
    model = make_model(arch, seed, width)
    onnx.checker.check_model(model)
    write_bytes_atomic(Path(path), model.SerializeToString())
    return Path(path)
