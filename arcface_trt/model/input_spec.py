"""The input spec: how face crops become a model's input, resolved once per model.

A spec holds the square side the model declares, the channel order it takes (RGB or BGR), the
mean subtracted and the std divided by (per channel, RGB order), and whether the graph
normalises its input itself. Every backend, the int8 calibration, manifests and reports use it.

Resolution order, first that answers:

1. explicit settings: ``embedding.input_mean`` / ``input_std`` / ``input_color`` in the config, or
   ``--input-mean`` / ``--input-std`` / ``--input-color`` (source ``config``);
2. what the graph shows: the operations on the input's path, by type and constant value, never by
   node name (source ``graph``). Sub/Add/Mul/Div by a constant, a BatchNormalization or a 1x1 Conv
   acting as a per-channel affine on the raw input mean the graph normalises itself: the model
   takes raw pixels (mean 0, std 1). An input that goes straight into a Conv, Gemm or MatMul is not
   normalised in the graph: it takes ``(x - 127.5) / 127.5``;
3. InsightFace's rule (``ArcFaceONNX``): mean 0 / std 1 when a node named ``Sub*``/``_minus*`` and one
   named ``Mul*``/``_mul*`` are among the first eight, else 127.5 / 127.5, RGB (source ``insightface-rule``).

Where the spec differs from InsightFace's rule, one warning line says so, naming both
(:func:`report_difference`, called where a command starts using the model).
Normalisation folded into the first convolution's weights leaves no trace in the graph: such a
model needs an explicit setting.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.lazy import lazy_import
from arcface_trt.records import Record
from arcface_trt.schema import conforms

onnx = lazy_import("onnx")

log = logging.getLogger("arcface_trt")

COLORS = ("RGB", "BGR")
SOURCE_CONFIG = "config"
SOURCE_GRAPH = "graph"
SOURCE_RULE = "insightface-rule"
#: What InsightFace feeds a model whose graph does not normalise: ``(x - 127.5) / 127.5``.
DEFAULT_MEAN = DEFAULT_STD = 127.5
#: Operations that compute on the input: reaching one with nothing before it means "not normalised in the graph".
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
#: Operations the walk looks through: they leave values as they are (Q/DQ: up to rounding).
TRANSPARENT_OPS = ("Identity", "Cast", "QuantizeLinear", "DequantizeLinear")
#: Longest chain of operations followed from the input.
MAX_WALK = 32

Triple = tuple[float, float, float]


def _fmt(values: Sequence[float]) -> str:
    """One number when the channels agree, else ``[a, b, c]``."""
    if len(set(values)) == 1:
        return f"{values[0]:g}"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def channel_values(value: Any, name: str) -> Triple:
    """One number or three (RGB order) as a per-channel triple: ``127.5``, ``[1, 2, 3]`` or ``"1,2,3"``.

    InputError naming ``name`` for anything else (a wrong count, text, NaN or infinity).
    """
    items: list[Any]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        items = [value]
    try:
        if any(isinstance(item, bool) for item in items):
            raise ValueError
        numbers = [float(item) for item in items]
    except (TypeError, ValueError):
        raise InputError(
            f"{name} takes one number or three (RGB order, e.g. 123.7,116.3,103.5), got {value!r}"
        ) from None
    if len(numbers) not in (1, 3) or not all(math.isfinite(n) for n in numbers):
        raise InputError(f"{name} takes one number or three finite numbers (RGB order), got {value!r}")
    return (numbers[0],) * 3 if len(numbers) == 1 else (numbers[0], numbers[1], numbers[2])


def channel_order(value: str, name: str) -> str:
    """``rgb`` / ``bgr`` (any case) as ``RGB`` / ``BGR``; InputError naming ``name`` otherwise."""
    color = str(value).strip().upper()
    if color not in COLORS:
        raise InputError(f"{name} must be rgb or bgr, got {value!r}")
    return color


@dataclass(frozen=True)
class InputSettings:
    """Explicit input settings (config file or command line); None: not given, resolved from the model."""

    mean: Triple | None = None
    std: Triple | None = None
    color: str | None = None

    @classmethod
    def parse(
        cls, mean: Any = None, std: Any = None, color: str | None = None, names: tuple[str, str, str] | None = None
    ) -> InputSettings:
        """Settings from raw values (numbers, lists or ``"a,b,c"`` text), checked; errors name ``names``."""
        mean_name, std_name, color_name = names or ("--input-mean", "--input-std", "--input-color")
        settings = cls(
            mean=None if mean is None else channel_values(mean, mean_name),
            std=None if std is None else channel_values(std, std_name),
            color=None if color is None else channel_order(color, color_name),
        )
        if settings.std is not None and min(settings.std) <= 0:
            raise InputError(f"{std_name} must be above 0, got {std!r}")
        return settings

    def over(self, base: InputSettings) -> InputSettings:
        """These settings where given, ``base``'s elsewhere (the command line over the config file)."""
        return InputSettings(
            mean=self.mean if self.mean is not None else base.mean,
            std=self.std if self.std is not None else base.std,
            color=self.color if self.color is not None else base.color,
        )


@dataclass(frozen=True)
class InputSpec(Record):
    """How crops become this model's input; see the module docstring."""

    #: The model's square input side.
    side: int
    #: Channel order the model takes (crops arrive BGR and are swapped for RGB).
    color: str
    #: Subtracted per channel, RGB order.
    mean: Triple
    #: Divided by per channel, RGB order.
    std: Triple
    #: The graph normalises its input itself (what the graph shows, whatever the source).
    normalized_in_graph: bool
    #: Where mean and std come from: ``config``, ``graph`` or ``insightface-rule``.
    source: str
    #: Where the channel order comes from: ``config``, else ``insightface-rule`` (RGB).
    color_source: str
    #: What the graph shows on the input's path, in words.
    graph: str
    #: What InsightFace's node-name rule would use: (mean, std), RGB.
    insightface_rule: tuple[float, float] = (DEFAULT_MEAN, DEFAULT_STD)

    @classmethod
    def default(cls, side: int) -> InputSpec:
        """InsightFace's spec for a model that does not normalise: RGB, ``(x - 127.5) / 127.5``."""
        return cls(side, "RGB", (DEFAULT_MEAN,) * 3, (DEFAULT_STD,) * 3, False, SOURCE_RULE, SOURCE_RULE, "not read")

    @property
    def differs_from_insightface(self) -> bool:
        """True when InsightFace's own rule would feed this model another input."""
        mean, std = self.insightface_rule
        return (self.mean, self.std, self.color) != ((mean,) * 3, (std,) * 3, "RGB")

    @property
    def expressible_in_insightface(self) -> bool:
        """True when InsightFace's ``get_feat`` can apply this spec: scalar mean and std, RGB input."""
        return self.color == "RGB" and len(set(self.mean)) == 1 and len(set(self.std)) == 1

    @property
    def fed_mean(self) -> Triple:
        """The mean in the order of the channels fed to the model."""
        return self.mean if self.color == "RGB" else self.mean[::-1]  # type: ignore[return-value]

    @property
    def fed_std(self) -> Triple:
        """The std in the order of the channels fed to the model."""
        return self.std if self.color == "RGB" else self.std[::-1]  # type: ignore[return-value]

    @classmethod
    def from_dict(cls, data: Any) -> InputSpec | None:
        """The spec a record (a manifest's ``input_spec``) describes; None when it is not a whole, well-typed one."""
        if not isinstance(data, dict):
            return None
        hints = typing.get_type_hints(cls)
        values = {}
        for item in dataclasses.fields(cls):
            ok, value = conforms(data.get(item.name), hints[item.name])
            if not ok:
                return None
            values[item.name] = value
        if len(values["mean"]) != 3 or len(values["std"]) != 3 or len(values["insightface_rule"]) != 2:
            return None
        if values["color"] not in COLORS:
            return None
        return cls(**values)

    def key(self) -> dict[str, Any]:
        """What an artifact computed through this spec depends on (an int8 calibration): matched on reuse."""
        return {"side": self.side, "color": self.color, "mean": list(self.mean), "std": list(self.std)}

    def describe(self) -> str:
        """One line: ``112x112 RGB, mean 127.5, std 127.5 (insightface-rule)``, plus what the graph does."""
        text = f"{self.side}x{self.side} {self.color}, mean {_fmt(self.mean)}, std {_fmt(self.std)} ({self.source})"
        if self.color_source == SOURCE_CONFIG and self.source != SOURCE_CONFIG:
            text += ", colour order from the config"
        if self.normalized_in_graph:
            text += f"; {self.graph}"
        return text


@dataclass(frozen=True)
class GraphReading:
    """What the operations on the input's path show (see :func:`read_graph`)."""

    #: ``normalises`` (an affine on the raw input), ``raw`` (straight into compute) or ``unknown``.
    kind: str
    #: The in-graph normalisation ``(x - mean) / std`` in the model's channel order (``normalises`` only).
    mean: Triple | None = None
    std: Triple | None = None
    #: The operation types followed (``normalises``), or the one reached (``raw``, ``unknown``).
    ops: tuple[str, ...] = ()

    def describe(self) -> str:
        """The reading in words, for the spec and the warning."""
        if self.kind == "normalises" and self.mean is not None and self.std is not None:
            return f"the graph normalises its input: {', '.join(self.ops)} = (x - {_fmt(self.mean)}) / {_fmt(self.std)}"
        if self.kind == "raw":
            return f"the input goes straight into {self.ops[-1]}: no normalisation in the graph"
        first = f" (first operation: {self.ops[-1]})" if self.ops else ""
        return f"no normalisation recognised on the input's path{first}"


class _Constants:
    """Constant values of a graph by tensor name: initializers and Constant nodes, read on demand."""

    def __init__(self, graph: Any) -> None:
        self._tensors = {init.name: init for init in graph.initializer}
        self._nodes = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and n.output}

    def get(self, name: str) -> np.ndarray | None:
        if name in self._tensors:
            return np.asarray(onnx.numpy_helper.to_array(self._tensors[name]), dtype=np.float64)
        node = self._nodes.get(name)
        if node is None:
            return None
        for attribute in node.attribute:
            if attribute.name == "value":
                return np.asarray(onnx.numpy_helper.to_array(attribute.t), dtype=np.float64)
            if attribute.name == "value_float":
                return np.asarray(attribute.f, dtype=np.float64)
            if attribute.name == "value_floats":
                return np.asarray(list(attribute.floats), dtype=np.float64)
        return None


def _per_channel(value: np.ndarray | None) -> np.ndarray | None:
    """A constant that broadcasts over an NCHW input by channel only, as 3 values; None otherwise.

    A shape ``(3,)`` broadcasts over the width, not the channels: it is not per channel.
    """
    if value is None or value.ndim > 4 or not np.isfinite(value).all():
        return None
    n, c, h, w = (1,) * (4 - value.ndim) + value.shape
    if (n, h, w) != (1, 1, 1) or c not in (1, 3):
        return None
    return np.broadcast_to(value.reshape(c), (3,)).astype(np.float64)


def _attribute(node: Any, name: str, default: Any) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _affine(node: Any, x: str, constants: _Constants) -> tuple[np.ndarray, np.ndarray] | None:
    """``(scale, shift)`` per channel when ``node`` maps ``x`` to ``scale * x + shift``; None otherwise."""
    op, inputs = node.op_type, list(node.input)
    if op in ("Sub", "Add", "Mul", "Div") and len(inputs) == 2:
        other = inputs[1] if inputs[0] == x else inputs[0]
        k = _per_channel(constants.get(other))
        if k is None or inputs[0] == inputs[1]:
            return None
        one, zero = np.ones(3), np.zeros(3)
        if op == "Add":
            return one, k
        if op == "Mul":
            return k, zero
        if op == "Sub":
            return (one, -k) if inputs[0] == x else (-one, k)
        return (1.0 / k, zero) if inputs[0] == x and np.all(k != 0) else None
    if op == "BatchNormalization" and len(inputs) >= 5 and inputs[0] == x:
        scale, bias, mean, var = (constants.get(name) for name in inputs[1:5])
        if any(v is None or v.shape != (3,) for v in (scale, bias, mean, var)):
            return None
        factor = scale / np.sqrt(var + float(_attribute(node, "epsilon", 1e-5)))  # type: ignore[operator]
        return factor, bias - mean * factor  # type: ignore[operator]
    if op == "Conv" and len(inputs) >= 2 and inputs[0] == x:
        return _conv_affine(node, constants.get(inputs[1]), constants.get(inputs[2]) if len(inputs) > 2 else None)
    return None


def _conv_affine(node: Any, weight: np.ndarray | None, bias: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """A 1x1 Conv that scales each of 3 channels on its own (diagonal, or depthwise), as ``(scale, shift)``."""
    if weight is None or weight.shape[:1] != (3,) or weight.shape[2:] != (1, 1):
        return None
    if any(p != 0 for p in _attribute(node, "pads", [])) or any(s != 1 for s in _attribute(node, "strides", [])):
        return None
    group = int(_attribute(node, "group", 1))
    if group == 3 and weight.shape[1] == 1:
        scale = weight[:, 0, 0, 0]
    elif group == 1 and weight.shape[1] == 3:
        matrix = weight[:, :, 0, 0]
        if np.any(matrix[~np.eye(3, dtype=bool)] != 0):
            return None  # mixes channels: not a normalisation
        scale = np.diag(matrix).copy()
    else:
        return None
    shift = np.zeros(3) if bias is None else bias
    return (scale, shift) if shift.shape == (3,) else None


def _consumers(graph: Any, name: str) -> list[Any]:
    return [node for node in graph.node if name in node.input]


def _walk(graph: Any, start: str) -> Iterator[Any]:
    """The nodes on the input's path, each the only consumer of the one before (stops where it branches)."""
    current = start
    for _ in range(MAX_WALK):
        consumers = _consumers(graph, current)
        if len(consumers) != 1 or not consumers[0].output:
            return
        yield consumers[0]
        current = consumers[0].output[0]


def read_graph(graph: Any, input_name: str) -> GraphReading:
    """What the graph does to its input before computing on it, by operation type and constant value."""
    constants = _Constants(graph)
    scale, shift = np.ones(3), np.zeros(3)
    followed: list[str] = []
    reached: str | None = None
    current = input_name
    for node in _walk(graph, input_name):
        if node.op_type in TRANSPARENT_OPS:
            current = node.output[0]
            continue
        step = _affine(node, current, constants)
        if step is None:
            reached = node.op_type
            break
        scale, shift = scale * step[0], shift * step[0] + step[1]
        followed.append(node.op_type)
        current = node.output[0]
    if followed and not (np.allclose(scale, 1.0) and np.allclose(shift, 0.0)):
        if np.any(scale <= 0):
            return GraphReading("unknown", ops=tuple(followed))
        mean, std = -shift / scale, 1.0 / scale
        as_triple = lambda v: tuple(float(x) for x in np.round(v, 6))  # noqa: E731
        return GraphReading("normalises", as_triple(mean), as_triple(std), tuple(followed))  # type: ignore[arg-type]
    if reached in COMPUTE_OPS:
        return GraphReading("raw", ops=(reached,))
    return GraphReading("unknown", ops=(reached,) if reached else ())


def insightface_rule(graph: Any) -> tuple[float, float]:
    """InsightFace ``ArcFaceONNX``'s mean and std: (0, 1) when a ``Sub*``/``_minus*`` and a ``Mul*``/``_mul*``
    node are among the first eight nodes (by name), else (127.5, 127.5)."""
    names = [node.name for node in graph.node[:8]]
    has_sub = any(n.startswith(("Sub", "_minus")) for n in names)
    has_mul = any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if has_sub and has_mul else (DEFAULT_MEAN, DEFAULT_STD)


#: (model sha256, spec) pairs whose difference from InsightFace's rule was already reported in this process.
_reported: set[tuple[str, InputSpec]] = set()


def resolve_input_spec(graph: Any, input_name: str, side: int, settings: InputSettings) -> InputSpec:
    """The spec of a model (see the module docstring)."""
    if (settings.mean is None) != (settings.std is None):
        raise InputError(
            "give the input mean and std together (embedding.input_mean and input_std, or --input-mean and "
            "--input-std): one of them alone would mix an explicit setting with a guess"
        )
    reading = read_graph(graph, input_name)
    rule = insightface_rule(graph)
    if settings.mean is not None and settings.std is not None:
        mean, std, source = settings.mean, settings.std, SOURCE_CONFIG
    elif reading.kind == "normalises":
        mean, std, source = (0.0,) * 3, (1.0,) * 3, SOURCE_GRAPH
    elif reading.kind == "raw" and rule != (DEFAULT_MEAN, DEFAULT_STD):
        # Names say Sub/Mul, but the input enters a convolution untouched: the names do not normalise.
        mean, std, source = (DEFAULT_MEAN,) * 3, (DEFAULT_STD,) * 3, SOURCE_GRAPH
    else:
        mean, std, source = (rule[0],) * 3, (rule[1],) * 3, SOURCE_RULE
    return InputSpec(
        side=side,
        color=settings.color or "RGB",
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        normalized_in_graph=reading.kind == "normalises",
        source=source,
        color_source=SOURCE_CONFIG if settings.color else SOURCE_RULE,
        graph=reading.describe(),
        insightface_rule=rule,
    )


def report_difference(spec: InputSpec, model: str, sha256: str) -> None:
    """One warning line (once per model and spec in a process) when ``spec`` is not InsightFace's rule."""
    if not spec.differs_from_insightface or (sha256, spec) in _reported:
        return
    _reported.add((sha256, spec))
    why = spec.graph if spec.source == SOURCE_GRAPH else "set in the config or on the command line"
    log.warning(
        "%s: input spec mean %s, std %s, %s (%s) differs from InsightFace's node-name rule (mean %g, std %g, RGB); "
        "arcface-trt and its InsightFace reference use the input spec",
        model,
        _fmt(spec.mean),
        _fmt(spec.std),
        spec.color,
        why,
        *spec.insightface_rule,
    )


def describe_spec(record: Any) -> str:
    """:meth:`InputSpec.describe` of a spec's record (a manifest's), or ``unreadable`` when it is not one."""
    spec = InputSpec.from_dict(record)
    return spec.describe() if spec is not None else "unreadable"
