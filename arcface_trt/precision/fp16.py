"""fp32 ONNX -> mixed-precision fp16 ONNX with fp32 inputs and outputs.

The converter is onnxconverter-common's ``convert_float_to_float16`` (maintained by
the ONNX project); NVIDIA ModelOpt's AutoCast is used instead when asked for and
importable. By default the final embedding layers (the last Gemm/MatMul and every
node downstream of it, i.e. InsightFace's ``fc`` + ``features`` BatchNorm) stay in
fp32: they are few, cheap, and where fp16 rounding would reach the embedding directly.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError
from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.lazy import lazy_import
from arcface_trt.model.inspect import load_onnx

onnx = lazy_import("onnx")
float16 = lazy_import("onnxconverter_common.float16")
autocast = lazy_import("modelopt.onnx.autocast")

#: Ops that mark the start of the embedding head.
_HEAD_OPS = ("Gemm", "MatMul")
CONVERTERS = ("onnxconverter", "autocast")


def name_unnamed_nodes(model: Any) -> None:
    """Give every unnamed node a stable name (``{op}_{index}``), so nodes can be referred to.

    Exported models (mxnet2onnx, some torch exports) leave node names empty, and the
    converters select nodes by name.
    """
    taken = {node.name for node in model.graph.node if node.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{index}"
            while candidate in taken:
                candidate += "_"
            node.name = candidate
            taken.add(candidate)


def default_fp32_nodes(model: Any) -> list[str]:
    """Names of the last Gemm/MatMul node and every node downstream of it.

    Found by graph structure, not by name, so it works on InsightFace models
    (``fc`` Gemm -> ``features`` BatchNormalization) and on the built-in ones alike.
    Returns an empty list for a graph without Gemm/MatMul.
    """
    nodes = list(model.graph.node)
    head = next((i for i in range(len(nodes) - 1, -1, -1) if nodes[i].op_type in _HEAD_OPS), None)
    if head is None:
        return []
    kept = [nodes[head].name]
    live = set(nodes[head].output)
    # ONNX requires topological order, so one forward pass finds all descendants.
    for node in nodes[head + 1 :]:
        if live.intersection(node.input):
            kept.append(node.name)
            live.update(node.output)
    return kept


def kept_fp32_nodes(model: Any, keep_fp32_nodes: Sequence[str] | None) -> list[str]:
    """The node names a conversion keeps in fp32: ``keep_fp32_nodes``, or the embedding head when None.

    Unnamed nodes are named first (:func:`name_unnamed_nodes`), as the conversion names them.
    """
    name_unnamed_nodes(model)
    return default_fp32_nodes(model) if keep_fp32_nodes is None else list(keep_fp32_nodes)


def _check_nodes(model: Any, names: Sequence[str], src: Path) -> None:
    known = {node.name for node in model.graph.node}
    missing = [n for n in names if n not in known]
    if missing:
        names_text = ", ".join(repr(m) for m in missing)
        raise InputError(f"{src}: no node named {names_text} to keep in fp32")


def convert_to_fp16(
    src: Path,
    dst: Path,
    keep_fp32_nodes: Sequence[str] | None = None,
    *,
    converter: str = "onnxconverter",
) -> Path:
    """Convert the fp32 ONNX ``src`` to mixed precision and write it atomically to ``dst``.

    Inputs and outputs stay fp32 (Cast nodes are inserted), so callers feed and read
    the same arrays as for the fp32 model. ``keep_fp32_nodes``: node names kept in
    fp32; ``None`` keeps the embedding head (:func:`default_fp32_nodes`), ``[]`` keeps
    none. ``converter``: ``"onnxconverter"`` (default) or ``"autocast"`` (NVIDIA
    ModelOpt, only where installed). Returns ``dst``.
    """
    if converter not in CONVERTERS:
        choices = ", ".join(CONVERTERS)
        raise InputError(f"unknown fp16 converter '{converter}' (choose one of {choices})")
    src, dst = Path(src), Path(dst)
    model = load_onnx(src)
    keep = kept_fp32_nodes(model, keep_fp32_nodes)
    _check_nodes(model, keep, src)
    convert = _autocast if converter == "autocast" else _onnxconverter
    converted = convert(model, keep)
    write_bytes_atomic(dst, converted.SerializeToString())
    return dst


def _onnxconverter(model: Any, keep: list[str]) -> Any:
    graph = model.graph
    io_types = {v.name: v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]}
    with warnings.catch_warnings():
        # It warns once per weight clamped to fp16's range (thousands of lines, no action possible).
        warnings.simplefilter("ignore", UserWarning)
        # keep_io_types: fp32 in, fp32 out; node_block_list: Cast nodes around the kept nodes.
        converted = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=keep or None)
    restore_io_types(converted, io_types)
    drop_fp16_round_trips(converted, keep)
    return converted


def restore_io_types(model: Any, io_types: dict[str, int]) -> None:
    """Make graph outputs carry their original (fp32) type again.

    onnxconverter-common 1.16 with ``keep_io_types=True`` still ends the graph with a
    Cast to fp16 when the node that produces an output is in ``node_block_list`` (so
    the embedding came out fp16). Such a trailing Cast is retargeted to the original
    type (correct whatever its input type is); any other output whose type changed
    gets a Cast back to its original type.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    for value in graph.output:
        original = io_types.get(value.name)
        tensor_type = value.type.tensor_type
        if original is None or tensor_type.elem_type == original:
            continue
        producer = producers.get(value.name)
        if producer is not None and producer.op_type == "Cast":
            for attribute in producer.attribute:
                if attribute.name == "to":
                    attribute.i = original
        else:
            renamed = f"{value.name}_lowp"
            for node in graph.node:
                node.output[:] = [renamed if o == value.name else o for o in node.output]
            cast_name = f"{value.name}_restore_cast"
            graph.node.append(onnx.helper.make_node("Cast", [renamed], [value.name], name=cast_name, to=original))
        tensor_type.elem_type = original


def _cast_to(node: Any) -> int | None:
    return next((attribute.i for attribute in node.attribute if attribute.name == "to"), None)


def drop_fp16_round_trips(model: Any, keep: Sequence[str]) -> int:
    """Let consumers of a kept node's fp32 output read it directly, not rounded through fp16 and back.

    onnxconverter-common 1.16 sends a tensor with several consumers (a residual block's output feeds
    the next block and the shortcut) through a Cast to fp16 and then a Cast back to fp32, even when
    every node around it is kept in fp32: kept nodes still saw fp16-rounded inputs, so keeping every
    node left a drift. Each ``Cast(fp16) -> Cast(fp32)`` pair whose start is fp32 (a kept node's
    output, a Cast to fp32, an fp32 graph input) is bypassed; a Cast to fp16 nothing reads any more
    goes. Returns how many round trips were bypassed.
    """
    graph = model.graph
    kept = set(keep)
    producers = {out: node for node in graph.node for out in node.output}
    fp32_inputs = {v.name for v in graph.input if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    graph_outputs = {v.name for v in graph.output}

    def is_fp32(tensor: str) -> bool:
        producer = producers.get(tensor)
        if producer is None:
            return tensor in fp32_inputs
        return producer.name in kept or (producer.op_type == "Cast" and _cast_to(producer) == onnx.TensorProto.FLOAT)

    bypass: dict[str, str] = {}  # output of the Cast back to fp32 -> the fp32 tensor it came from
    pairs = []
    for node in graph.node:
        if node.op_type != "Cast" or _cast_to(node) != onnx.TensorProto.FLOAT or node.output[0] in graph_outputs:
            continue
        first = producers.get(node.input[0])
        if (
            first is not None
            and first.op_type == "Cast"
            and _cast_to(first) == onnx.TensorProto.FLOAT16
            and is_fp32(first.input[0])
        ):
            bypass[node.output[0]] = first.input[0]
            pairs.append((first, node))
    gone = {id(second): second for _, second in pairs}
    for node in graph.node:
        node.input[:] = [bypass.get(name, name) for name in node.input]
    read = {name for node in graph.node if id(node) not in gone for name in node.input} | graph_outputs
    gone.update({id(first): first for first, _ in pairs if first.output[0] not in read})
    removed = {node.output[0] for node in gone.values()}
    for node in gone.values():
        graph.node.remove(node)
    for info in [v for v in graph.value_info if v.name in removed]:
        graph.value_info.remove(info)
    return len(bypass)


def _autocast(model: Any, keep: list[str]) -> Any:
    """ModelOpt AutoCast (untested here: modelopt is not installed on the build machine)."""
    # AutoCast takes name patterns (regular expressions); anchor them to match exact names.
    patterns = [f"^{re.escape(name)}$" for name in keep]
    with tempfile.TemporaryDirectory() as tmp:
        # It reads a path; save the copy whose nodes now all have names.
        named = Path(tmp) / "named.onnx"
        onnx.save(model, str(named))
        return autocast.convert_to_mixed_precision(
            onnx_path=str(named),
            low_precision_type="fp16",
            nodes_to_exclude=patterns,
            keep_io_types=True,
        )
