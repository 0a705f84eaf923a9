"""Engine manifests for tests that need engines of other GPUs or TensorRT versions in a cache."""

from __future__ import annotations

from pathlib import Path

from arcface_trt.artifacts.manifest import Manifest
from arcface_trt.model.inspect import inspect_model


def engine_manifest(model: Path, sm_arch: str, trt_version: str, precision: str = "fp16") -> Manifest:
    """The manifest of an engine built from ``model`` (its name and sha256) on an NVIDIA A10."""
    info = inspect_model(model)
    return Manifest(
        model=info.name,
        precision=precision,
        sm_arch=sm_arch,
        trt_version=trt_version,
        onnx_sha256=info.sha256,
        plan_sha256="0" * 64,
        min_batch=1,
        opt_batch=32,
        max_batch=32,
        workspace_mb=1024,
        hardware_compatibility="none",
        gpu_name="NVIDIA A10",
        tool_version="0.1.0",
    )
