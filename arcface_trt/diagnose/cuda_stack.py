"""The CUDA major each installed GPU package is built for, and the tested install of each major.

TensorRT, cuda-python and onnxruntime-gpu each ship builds per CUDA major; one process loads
one CUDA runtime per major, and a package built for another major fails to load its libraries
or drags a second runtime in. Everything here is read from installed package metadata and
files, never by importing the packages (a mismatched one may not import at all):

- TensorRT: its wheels say the major in their names (``tensorrt-cu12``, ``tensorrt_cu13_libs``);
- cuda-python: the major of its version (``cuda-bindings`` 12.9.4 is CUDA 12);
- onnxruntime-gpu: ``cuda_version`` in its ``onnxruntime/capi/build_and_package_info.py``.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass

from arcface_trt.errors import InputError
from arcface_trt.fileio import read_regular_file
from arcface_trt.records import Record


@dataclass(frozen=True)
class CudaStack:
    """The tested install of one CUDA major."""

    #: The arcface-trt extra (TensorRT, cuda-python and NVML bindings of this major; pyproject.toml).
    extra: str
    #: The onnxruntime-gpu releases on PyPI built for this major (their metadata names its runtime).
    onnxruntime_gpu: str
    #: The oldest NVIDIA driver branch that runs it (Linux).
    driver: str


#: The tested install per CUDA major (a test keeps it in step with pyproject.toml's extras).
CUDA_STACKS = {
    12: CudaStack(extra="gpu-cu12", onnxruntime_gpu="onnxruntime-gpu>=1.21,<1.27", driver="R535"),
    13: CudaStack(extra="gpu-cu13", onnxruntime_gpu="onnxruntime-gpu>=1.27", driver="R580"),
}

#: A TensorRT wheel's name: ``tensorrt-cu12``, ``tensorrt_cu13_libs``, ``tensorrt-cu12-bindings``.
_TENSORRT_WHEEL = re.compile(r"tensorrt[-_]cu(\d+)(?:[-_](?:libs|bindings))?", re.IGNORECASE)
#: The line of onnxruntime's build record that names its CUDA version: ``cuda_version = '12.8'``.
_ORT_CUDA = re.compile(r"""^cuda_version\s*=\s*['"](\d+)\.""", re.MULTILINE)
_ORT_BUILD_INFO = "onnxruntime/capi/build_and_package_info.py"
#: Bound on that file (a few lines when genuine).
_MAX_BUILD_INFO_BYTES = 64 * 1024


@dataclass(frozen=True)
class CudaBuild(Record):
    """One installed package and the CUDA major it is built for."""

    #: ``tensorrt``, ``cuda-python`` or ``onnxruntime-gpu``.
    component: str
    package: str
    version: str
    cuda_major: int


def _tensorrt_builds() -> list[CudaBuild]:
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or ""
        match = _TENSORRT_WHEEL.fullmatch(name)
        if match:
            found[name.lower().replace("_", "-")] = CudaBuild("tensorrt", name, dist.version, int(match.group(1)))
    return [found[key] for key in sorted(found)]


def _cuda_python_build() -> CudaBuild | None:
    # cuda-bindings is what imports as cuda.bindings; cuda-python alone is the monolithic 12.x before 12.6.
    for name in ("cuda-bindings", "cuda-python"):
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        major = version.split(".", 1)[0]
        if major.isdigit():
            return CudaBuild("cuda-python", name, version, int(major))
    return None


def _onnxruntime_gpu_build() -> CudaBuild | None:
    try:
        dist = importlib.metadata.distribution("onnxruntime-gpu")
    except importlib.metadata.PackageNotFoundError:
        return None
    try:
        text = read_regular_file(dist.locate_file(_ORT_BUILD_INFO), _MAX_BUILD_INFO_BYTES, "onnxruntime build info")
    except InputError:  # absent (a very old build), or overwritten by a CPU onnxruntime installed beside it
        return None
    match = _ORT_CUDA.search(text.decode("utf-8", errors="replace"))
    return CudaBuild("onnxruntime-gpu", "onnxruntime-gpu", dist.version, int(match.group(1))) if match else None


def installed_cuda_builds() -> list[CudaBuild]:
    """Every installed TensorRT wheel, cuda-python and onnxruntime-gpu whose CUDA major is known."""
    builds = [*_tensorrt_builds(), _cuda_python_build(), _onnxruntime_gpu_build()]
    return [build for build in builds if build is not None]
