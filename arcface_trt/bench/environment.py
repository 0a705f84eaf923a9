"""What this machine runs: CPU, GPU, driver, and the versions of every package that matters.

Shared by ``benchmark`` (the report's ``environment``) and ``diagnose``. Each probe
catches its own failure and records it as text, so one missing piece never hides
the others. Versions of installed distributions come from package metadata (no
import); ``onnxruntime`` and ``tensorrt`` are imported to read what they really
offer (providers, the version that loads).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any

from arcface_trt.engine import gpu, trt_api
from arcface_trt.errors import describe
from arcface_trt.lazy import require
from arcface_trt.version import __version__

#: Distributions whose installed versions are reported (metadata names).
DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "tensorrt",
    "tensorrt-cu12",
    "tensorrt-cu13",
    "cuda-python",
    "cuda-bindings",
    "nvidia-ml-py",
    "insightface",
    "numpy",
    "onnx",
    "opencv-python",
    "opencv-python-headless",
)


def distribution_version(name: str) -> str | None:
    """Installed version of distribution ``name`` (from metadata, no import), or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_versions() -> dict[str, str | None]:
    """Version of each of :data:`DISTRIBUTIONS` (None when not installed)."""
    return {name: distribution_version(name) for name in DISTRIBUTIONS}


def cpu_info() -> dict[str, Any]:
    """CPU model and core counts (logical, and usable by this process)."""
    model = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": model or platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "machine": platform.machine(),
    }


def onnxruntime_info() -> dict[str, Any]:
    """onnxruntime's version and available execution providers (or why it does not import)."""
    try:
        ort = require("onnxruntime")
    except Exception as exc:  # not installed, or a broken install raising anything at import
        return {"importable": False, "error": describe(exc), "version": None, "providers_available": []}
    return {
        "importable": True,
        "error": None,
        "version": getattr(ort, "__version__", None),
        "providers_available": list(ort.get_available_providers()),
    }


def tensorrt_info() -> dict[str, Any]:
    """Whether ``import tensorrt`` works here, its version, or the error it raises."""
    installed = (
        distribution_version("tensorrt")
        or distribution_version("tensorrt-cu12")
        or distribution_version("tensorrt-cu13")
    )
    try:
        version = trt_api.version()
    except Exception as exc:  # ImportError via require, OSError (missing libnvinfer) and others from the wheels
        return {"installed": installed, "importable": False, "version": None, "error": describe(exc)}
    return {"installed": installed, "importable": True, "version": version, "error": None}


def collect_environment() -> dict[str, Any]:
    """One record of the machine and software stack (for reports and ``diagnose``)."""
    return {
        "tool_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "gpu": gpu.describe_gpus(),
        "onnxruntime": onnxruntime_info(),
        "tensorrt": tensorrt_info(),
        "packages": installed_versions(),
    }


def current_sm_arch(environment: dict[str, Any]) -> str | None:
    """Compute capability of GPU 0 from a :func:`collect_environment` record, or None."""
    gpus = environment.get("gpu", {}).get("gpus") or []
    return gpus[0]["sm_arch"] if gpus else None
