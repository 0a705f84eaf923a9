"""Make a fixed-batch ONNX model's batch dimension dynamic (TensorRT profiles need it).

Some exports fix the batch at 1. The graph input/output get a symbolic first
dimension, stale intermediate shape annotations are dropped (ONNX Runtime and
TensorRT infer them again), and a ``Reshape`` whose constant target shape starts with
the fixed batch 1 gets ``0`` there ("copy this dimension from the input"). The result
is written atomically and cached by the source's sha256, so it is made once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.lazy import lazy_import
from arcface_trt.model.inspect import ModelInfo, load_onnx, serialize_model

onnx = lazy_import("onnx")

BATCH_DIM = "batch"


def _set_batch_symbolic(value_info: Any, name: str) -> None:
    dims = value_info.type.tensor_type.shape.dim
    if len(dims):
        dims[0].ClearField("dim_value")
        dims[0].dim_param = name


def _fix_reshapes(graph: Any) -> int:
    """Rewrite constant Reshape targets ``[1, ...]`` to ``[0, ...]``; returns how many changed."""
    inits = {init.name: init for init in graph.initializer}
    changed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in inits:
            continue
        init = inits[node.input[1]]
        shape = onnx.numpy_helper.to_array(init).copy()
        if shape.ndim == 1 and shape.size > 1 and shape[0] == 1:
            shape[0] = 0
            init.CopyFrom(onnx.numpy_helper.from_array(shape, init.name))
            changed += 1
    return changed


def make_batch_dynamic(src: str | Path, dst: str | Path, dim_name: str = BATCH_DIM) -> Path:
    """Write ``src`` to ``dst`` with a symbolic batch dimension on every graph input and output."""
    model = load_onnx(src)
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    for value_info in graph.input:
        if value_info.name not in initializers:
            _set_batch_symbolic(value_info, dim_name)
    for value_info in graph.output:
        _set_batch_symbolic(value_info, dim_name)
    # Intermediate shapes recorded for batch 1 would contradict the new inputs.
    del graph.value_info[:]
    _fix_reshapes(graph)
    dst = Path(dst)
    write_bytes_atomic(dst, serialize_model(model, src, "rewrite the batch dimension"))
    return dst


def ensure_dynamic_batch(model: ModelInfo, work_dir: Path) -> Path:
    """The model itself when its batch is dynamic, else a cached dynamic-batch copy in ``work_dir``."""
    if model.dynamic_batch:
        return Path(model.path)
    dst = Path(work_dir) / f"{model.name}-dynbatch-{model.sha256[:16]}.onnx"
    if dst.exists():
        return dst
    return make_batch_dynamic(model.path, dst)
