"""Creating ONNX Runtime sessions the one way this project does it."""

from __future__ import annotations

import os
from typing import Any

from arcface_trt.errors import InputError, first_line
from arcface_trt.lazy import lazy_import

ort = lazy_import("onnxruntime")


def session_options(threads: int | None = None) -> Any:
    """Full graph optimisation, quiet logs, and ``threads`` intra-op threads (default: one per core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.log_severity_level = 3
    return options


def make_session(model_path: str, providers: list[str], threads: int | None = None) -> Any:
    """An ``InferenceSession`` with :func:`session_options`."""
    options = session_options(threads)
    try:
        return ort.InferenceSession(model_path, options, providers=providers)
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types for bad models
        raise InputError(f"ONNX Runtime cannot load {model_path}: {first_line(exc)}") from None
