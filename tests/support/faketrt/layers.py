"""What the fake builder makes of a network: its layers, as the engine inspector describes them.

Each record has the shape of the per-layer JSON in NVIDIA's TensorRT Engine Explorer examples
(``tools/experimental/trt-engine-explorer/examples/pytorch/resnet/A100/{fp32,fp16,qat}/*.graph.json``
in github.com/NVIDIA/TensorRT): ``Name``, ``LayerType``, ``ParameterType``, ``Inputs`` and
``Outputs`` (``Name``, ``Location``, ``Dimensions``, ``Format/Datatype``), convolutions'
``Weights`` / ``Bias`` (``Type``: ``Float`` | ``Half`` | ``Int8``, ``Count``), reformats'
``Origin`` and a ``TacticValue``. Every format string is one of those examples'. The rules:

- One record per ONNX node or fused group. A Conv, Gemm or MatMul (TensorRT 8's examples run
  both as ``CaskConvolution`` with ``ParameterType`` ``Convolution``) absorbs the chain of
  BatchNormalization / Relu / PRelu / LeakyRelu / Clip / Add nodes that alone consume its output,
  and the fused name joins the ONNX node names with ``" + "`` ("Conv_5 + Add_6 + Relu_7"; a fused
  Add brings its other operand as a second input). Flatten/Reshape/Squeeze/Unsqueeze are
  ``Shuffle``, Identity/Dropout ``NoOp``, pooling ``CaskPooling``; other ops are ``PointWiseV2``
  layers of ``ParameterType`` ``PointWise`` (the names the engine explorer's code gives pointwise
  layers; the examples have none).
- Precision is what the build decided. A network built without precision flags and not strongly
  typed runs in FP32. With 10.x's FP16 flag on a weakly typed network every layer runs in FP16,
  except the layers the test named in ``Env.fp32_tactics`` (the builder may keep an fp32 tactic
  where it is faster); the fp32 input and output get "Reformatting CopyNode for Input/Output
  Tensor 0 to ..." records, as in the fp16 example. A strongly typed network runs each layer in
  the type its ONNX input has (a mixed-precision ONNX: FP16 where the graph is, FP32 in the kept
  nodes); a Cast node is its own Reformat record (the examples show no cast, so the fake records
  no ``Origin`` for it).
- Q/DQ, as in the QAT example: a Conv/Gemm/MatMul whose data and weights both come through
  DequantizeLinear runs in Int8 (Int8 input format, ``Int8`` weights, ``Float`` bias), named
  "{weight} + {weight QuantizeLinear, if any} + {conv} ..."; a QuantizeLinear that alone consumes
  its output is fused (Int8 output), otherwise the output is FP32. An activation QuantizeLinear,
  and a DequantizeLinear not fused into a quantized convolution, is a ``Reformat`` with ``Origin``
  ``QDQ``.

Dimensions hold -1 for the dynamic batch; the inspector fills in the execution context's batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.support.faketrt.qdq import types_and_shapes

ANCHORS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
FUSED_AFTER = ("BatchNormalization", "Relu", "PRelu", "LeakyRelu", "Clip", "Add")
SHUFFLES = ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose")
NO_OPS = ("Identity", "Dropout")
POOLING = ("GlobalAveragePool", "AveragePool", "MaxPool", "GlobalMaxPool")

#: ONNX element type name -> the precision word of the examples' format strings.
PRECISIONS = {"FLOAT": "FP32", "FLOAT16": "FP16", "INT8": "Int8"}
#: Weights ``Type`` per precision (the examples' words).
WEIGHT_TYPES = {"FP32": "Float", "FP16": "Half", "Int8": "Int8"}
#: (precision, 4-D tensor) -> format string, each copied from the examples.
FORMATS = {
    ("FP32", True): "Channel major FP32 format where channel % 4 == 0",
    ("FP32", False): "Row major linear FP32",
    ("FP16", True): "Channel major FP16 format where channel % 8 == 0",
    ("FP16", False): "Row major linear FP16 format",
    ("Int8", True): "Thirty-two wide channel vectorized row major Int8 format",
    ("Int8", False): "Row major Int8 format",
}
#: Network inputs and outputs (bindings) are linear, as in every example.
BINDING_FORMATS = {"FP32": "Row major linear FP32", "FP16": "Row major linear FP16 format"}


@dataclass
class _Graph:
    """The ONNX graph with what the layer rules ask of it."""

    nodes: list[Any]
    types: dict[str, str]
    shapes: dict[str, tuple]
    constants: dict[str, Any]
    #: The network's inputs, then its outputs.
    bindings: list[str]
    outputs: list[str]
    producer: dict[str, Any] = field(default_factory=dict)
    consumers: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.nodes:
            for out in node.output:
                self.producer[out] = node
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def precision(self, tensor: str) -> str:
        return PRECISIONS.get(self.types.get(tensor, "FLOAT"), "FP32")

    def made_by(self, tensor: str, op: str) -> Any:
        node = self.producer.get(tensor)
        return node if node is not None and node.op_type == op else None

    def only_consumer(self, tensor: str) -> Any:
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 and tensor not in self.bindings else None

    def quantized_anchor(self, node: Any) -> bool:
        """A Conv/Gemm/MatMul whose data and weights both come through DequantizeLinear: it runs in int8."""
        return (
            node.op_type in ANCHORS
            and len(node.input) > 1
            and self.made_by(node.input[0], "DequantizeLinear") is not None
            and self.weight_source(node.input[1]) is not None
        )

    def weight_source(self, tensor: str) -> tuple[str, list[str]] | None:
        """``(initializer, [weight QuantizeLinear])`` when ``tensor`` is a dequantized constant, else None."""
        dq = self.made_by(tensor, "DequantizeLinear")
        if dq is None:
            return None
        if dq.input[0] in self.constants:
            return dq.input[0], []
        q = self.made_by(dq.input[0], "QuantizeLinear")
        if q is not None and q.input[0] in self.constants:
            return q.input[0], [q.name]
        return None


def _graph(onnx_bytes: bytes) -> _Graph:
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    types, shapes = types_and_shapes(model)
    constants = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = node
    nodes = [n for n in model.graph.node if n.op_type != "Constant"]
    outputs = [v.name for v in model.graph.output]
    bindings = [v.name for v in model.graph.input if v.name not in constants] + outputs
    return _Graph(nodes, types, shapes, constants, bindings, outputs)


def _count(constant: Any) -> int:
    dims = list(getattr(constant, "dims", []))
    total = 1
    for d in dims:
        total *= int(d)
    return total


@dataclass
class _Layer:
    name: str
    layer_type: str
    parameter_type: str | None
    precision: str
    #: (tensor name, precision) read and written.
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    extra: dict[str, Any] = field(default_factory=dict)


class _Builder:
    """Turns the graph into layers for one build decision (``mode``: fp32 | fp16-flag | typed)."""

    def __init__(self, graph: _Graph, mode: str, fp32_tactics: frozenset[str]) -> None:
        self.g, self.mode, self.fp32_tactics = graph, mode, fp32_tactics
        self.layers: list[_Layer] = []
        self.done: set[int] = set()
        #: tensor -> (precision it is stored in, name of the layer output that holds it)
        self.held: dict[str, str] = {name: graph.precision(name) for name in graph.bindings}

    # -- precision decisions ---------------------------------------------------------------
    def chosen(self, members: Iterable[str], typed_input: str) -> str:
        if self.mode == "typed":
            return self.g.precision(typed_input)
        if self.mode == "fp16-flag":
            return "FP32" if self.fp32_tactics.intersection(members) else "FP16"
        return "FP32"

    def copy_node(self, role: str, layer_name: str, source: tuple[str, str], target: tuple[str, str]) -> None:
        """A "Reformatting CopyNode for {role} Tensor 0 to {layer}" (``role``: "Input Tensor 1", ...)."""
        self.layers.append(
            _Layer(
                f"Reformatting CopyNode for {role} to {layer_name}",
                "Reformat",
                "Reformat",
                source[1],
                [source],
                [target],
                {"Origin": "REFORMAT"},
            )
        )

    def read(self, tensor: str, precision: str, layer_name: str, index: int) -> tuple[str, str]:
        """The tensor as the layer reads it: through a reformat when it is held in another precision."""
        held = self.held.get(tensor, precision)
        if held == precision:
            return tensor, precision
        copy = f"Reformatted Input Tensor {index} to {layer_name}"
        self.g.shapes[copy] = self.g.shapes.get(tensor, ())
        self.copy_node(f"Input Tensor {index}", layer_name, (tensor, held), (copy, precision))
        return copy, precision

    def emit(self, layer: _Layer, reads: list[tuple[str, str]]) -> None:
        layer.inputs = [self.read(t, p, layer.name, i) for i, (t, p) in enumerate(reads)]
        for tensor, precision in layer.outputs:
            self.held[tensor] = precision
        self.layers.append(layer)

    # -- node kinds --------------------------------------------------------------------------
    def anchor(self, node: Any) -> None:
        g = self.g
        data = node.input[0]
        source = g.weight_source(node.input[1]) if len(node.input) > 1 else None
        data_dq = g.made_by(data, "DequantizeLinear")
        quantized = g.quantized_anchor(node)
        members = ([source[0], *source[1]] if source else []) + [node.name]
        if quantized:
            self.done.add(id(data_dq))
            precision, reads = "Int8", [(data_dq.input[0], "Int8")]
        else:
            precision = self.chosen([node.name], data)
            reads = [(data, precision)]
        out, out_precision = node.output[0], precision
        while (user := g.only_consumer(out)) is not None:
            if quantized and user.op_type == "QuantizeLinear":
                self.done.add(id(user))
                out, out_precision = user.output[0], "Int8"
                break
            if user.op_type not in FUSED_AFTER or id(user) in self.done:
                break
            others = [x for x in user.input if x != out and x not in g.constants]
            if any(x not in self.held for x in others):
                break  # a residual Add fuses into the branch computed last, when its other operand exists
            self.done.add(id(user))
            members.append(user.name)
            reads += [(t, precision) for t in user.input[1:] if t not in g.constants and user.op_type == "Add"]
            out = user.output[0]
        if quantized and out_precision != "Int8":
            out_precision = "FP32"
        elif not quantized and self.mode == "typed":
            out_precision = g.precision(out)
        weights = g.constants.get(source[0] if source else node.input[1]) if len(node.input) > 1 else None
        extra: dict[str, Any] = {}
        if weights is not None:
            extra["Weights"] = {"Type": WEIGHT_TYPES[precision], "Count": _count(weights)}
        if len(node.input) > 2 and node.input[2] in g.constants:
            bias_type = "Float" if precision != "FP16" else "Half"
            extra["Bias"] = {"Type": bias_type, "Count": _count(g.constants[node.input[2]])}
        name = " + ".join(members)
        self.emit(_Layer(name, "CaskConvolution", "Convolution", precision, [], [(out, out_precision)], extra), reads)

    def qdq(self, node: Any) -> None:
        g = self.g
        if node.input[0] in g.constants or g.weight_source(node.output[0]) is not None:
            return  # a weight's Q/DQ: folded into the convolution that reads it
        if node.op_type == "QuantizeLinear":
            inp, out = self.held.get(node.input[0], g.precision(node.input[0])), "Int8"
        else:
            users = g.consumers.get(node.output[0], [])
            if users and all(self.g.quantized_anchor(u) and u.input[0] == node.output[0] for u in users):
                return  # read as int8 by the quantized convolutions it feeds
            inp, out = "Int8", g.precision(node.output[0])
        layer = _Layer(node.name, "Reformat", "Reformat", inp, [], [(node.output[0], out)], {"Origin": "QDQ"})
        self.emit(layer, [(node.input[0], inp)])

    def other(self, node: Any) -> None:
        g = self.g
        activations = [t for t in node.input if t and t not in g.constants]
        first = activations[0] if activations else node.output[0]
        if node.op_type == "Cast":
            inp = self.held.get(first, g.precision(first))
            layer = _Layer(node.name, "Reformat", "Reformat", inp, [], [(node.output[0], g.precision(node.output[0]))])
            self.emit(layer, [(first, inp)])
            return
        precision = self.chosen([node.name], first)
        if node.op_type in SHUFFLES:
            kind = ("Shuffle", "Shuffle")
        elif node.op_type in NO_OPS:
            kind = ("NoOp", None)
        elif node.op_type in POOLING:
            kind = ("CaskPooling", "Pooling")
        else:
            kind = ("PointWiseV2", "PointWise")
        out_precision = g.precision(node.output[0]) if self.mode == "typed" else precision
        layer = _Layer(node.name, kind[0], kind[1], precision, [], [(node.output[0], out_precision)])
        self.emit(layer, [(t, precision) for t in activations])

    def run(self) -> list[_Layer]:
        for node in self.g.nodes:
            if id(node) in self.done:
                continue
            self.done.add(id(node))
            if node.op_type in ANCHORS:
                self.anchor(node)
            elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                self.qdq(node)
            else:
                self.other(node)
        self._outputs()
        return self.layers

    def _outputs(self) -> None:
        """Outputs held in another precision than the network declares get an output reformat."""
        for output in self.g.outputs:
            want, held = self.g.precision(output), self.held.get(output)
            if held is None or held == want:
                continue
            producer = next(layer for layer in self.layers if any(t == output for t, _ in layer.outputs))
            staged = f"Reformatted Output Tensor 0 to {producer.name}"
            producer.outputs = [(staged if t == output else t, p) for t, p in producer.outputs]
            self.g.shapes[staged] = self.g.shapes.get(output, ())
            self.copy_node("Output Tensor 0", producer.name, (staged, held), (output, want))


def _tensor(graph: _Graph, name: str, precision: str) -> dict[str, Any]:
    shape = list(graph.shapes.get(name, ()))
    table = BINDING_FORMATS if name in graph.bindings else None
    fmt = table[precision] if table and precision in table else FORMATS[(precision, len(shape) == 4)]
    return {"Name": name, "Location": "Device", "Dimensions": shape, "Format/Datatype": fmt}


def engine_layers(
    onnx_bytes: bytes, *, fp16_flag: bool, strongly_typed: bool, fp32_tactics: frozenset[str] = frozenset()
) -> tuple[list[dict[str, Any]], list[str]]:
    """The layer records of a build of ``onnx_bytes`` (dynamic batch as -1), and the binding names."""
    graph = _graph(onnx_bytes)
    mode = "typed" if strongly_typed else "fp16-flag" if fp16_flag else "fp32"
    records = []
    for layer in _Builder(graph, mode, fp32_tactics).run():
        record: dict[str, Any] = {
            "Name": layer.name,
            "LayerType": layer.layer_type,
            "Inputs": [_tensor(graph, t, p) for t, p in layer.inputs],
            "Outputs": [_tensor(graph, t, p) for t, p in layer.outputs],
        }
        if layer.parameter_type is not None:
            record["ParameterType"] = layer.parameter_type
        record.update(layer.extra)
        record["TacticValue"] = "0x" + hashlib.sha256(layer.name.encode()).hexdigest()[:16]
        records.append(record)
    return records, graph.bindings
