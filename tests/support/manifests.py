"""Plan manifests for tests: engines of other GPUs or TensorRT versions in a cache, plans pushed to the store."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.manifest import Manifest
from arcface_trt.model.inspect import inspect_model


def plan_manifest(model: str, precision: str, sm_arch: str, trt_version: str, **fields: Any) -> Manifest:
    """A complete plan manifest with the usual batch profile; ``fields`` set or replace any other field."""
    values: dict[str, Any] = {
        "onnx_sha256": "0" * 64,
        "plan_sha256": "0" * 64,
        "min_batch": 1,
        "opt_batch": 32,
        "max_batch": 32,
        "workspace_mb": 1024,
        "hardware_compatibility": "none",
        "gpu_name": "NVIDIA H100 80GB HBM3",
        "tool_version": "0.1.0",
        **fields,
    }
    return Manifest(model=model, precision=precision, sm_arch=sm_arch, trt_version=trt_version, **values)


def engine_manifest(model: Path, sm_arch: str, trt_version: str, precision: str = "fp16", **fields: Any) -> Manifest:
    """The manifest of an engine built from ``model`` (its name and sha256) on an NVIDIA A10; ``fields`` as above."""
    info = inspect_model(model)
    return plan_manifest(
        info.name, precision, sm_arch, trt_version, onnx_sha256=info.sha256, gpu_name="NVIDIA A10", **fields
    )


def sha256_of(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
