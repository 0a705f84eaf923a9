"""Creating ONNX Runtime sessions the one way this project does it."""

from __future__ import annotations

import os
from typing import Any

from arcface_trt.errors import InputError, first_line
from arcface_trt.lazy import lazy_import

ort = lazy_import("onnxruntime")


def session_options(threads: int | None = None, optimized: bool = True) -> Any:
    """Quiet logs, ``threads`` intra-op threads (default: one per core) and full graph optimisation.

    ``optimized=False`` turns ONNX Runtime's graph optimisations off: the graph runs node by node as
    written (a QDQ model then computes its quantize/dequantize steps in float, as a proxy of TensorRT).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.log_severity_level = 3
    return options


def make_session(model_path: str, providers: list[str], threads: int | None = None, optimized: bool = True) -> Any:
    """An ``InferenceSession`` with :func:`session_options`."""
    options = session_options(threads, optimized)
    try:
        return ort.InferenceSession(model_path, options, providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types for bad models
        raise InputError(f"ONNX Runtime cannot load {model_path}: {first_line(exc)}") from None
