"""Silent problems ``diagnose`` looks for, each with a one-line fix.

Every check is a small pure function over facts gathered elsewhere (environment
record, backend info, engine manifests, folders), so each can be tested alone.
docs/troubleshooting.md has one entry per :class:`Problem` code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.compat import arch_runs, version_runs
from arcface_trt.artifacts.key import same_trt_version, trt_major_minor
from arcface_trt.artifacts.manifest import Manifest
from arcface_trt.backends.providers import CPU, CUDA, DEVICE_PROVIDER
from arcface_trt.collapse import FIX, CollapseCheck
from arcface_trt.diagnose.cuda_stack import CUDA_STACKS, CudaBuild
from arcface_trt.records import Record

#: Problem codes, in the order of docs/troubleshooting.md.
CODES = (
    "backend_fallback",
    "backend_unavailable",
    "gpu_provider_not_applied",
    "onnxruntime_cpu_and_gpu_installed",
    "cuda_major_mismatch",
    "tensorrt_import_failed",
    "engine_mismatch",
    "cache_not_writable",
    "parity_failed",
    "input_collapse",
)


@dataclass(frozen=True)
class Problem(Record):
    """One thing that is wrong without anything failing loudly, and how to fix it."""

    code: str
    message: str
    fix: str


def check_fallback(requested: str, backend: str | None, reason: str | None) -> Problem | None:
    """The pipeline asked for one backend and got another."""
    if backend is None or reason is None or backend == requested:
        return None
    return Problem(
        "backend_fallback",
        # The reason is the record's fallback_reason (shown once, in the table): not repeated here.
        f"embedding.backend asks for {requested} but {backend} on the CPU is running (why: fallback reason)",
        f"fix the cause (see the other problems), or set embedding.backend: {backend} to run it knowingly",
    )


def check_backend_loaded(requested: str, error: str | None) -> Problem | None:
    """The configured backend could not load at all (no fallback allowed): the pipeline would fail."""
    if error is None:
        return None
    return Problem(
        "backend_unavailable",
        f"the configured backend {requested} cannot load here: {error}",
        "fix the cause named in the message, or set embedding.allow_cpu_fallback: true to run the reference instead",
    )


def _onnxruntime_gpu_install() -> str:
    """How to install the onnxruntime-gpu that matches the TensorRT stack, per CUDA major (the newest follows CUDA)."""
    return " or ".join(f"pip install '{stack.onnxruntime_gpu}' (CUDA {major})" for major, stack in CUDA_STACKS.items())


def check_provider_applied(
    requested: str, backend: str | None, device: str, available: list[str], applied: list[str]
) -> Problem | None:
    """A GPU execution provider was asked for (or is there for ``auto``) but ONNX Runtime did not apply it.

    Only for an ONNX Runtime-based backend that is the one requested (a backend
    fallback is :func:`check_fallback`'s to report).
    """
    if backend != requested or backend not in ("onnxruntime", "insightface") or not applied:
        return None
    wanted = (CUDA if CUDA in available else None) if device == "auto" else DEVICE_PROVIDER.get(device)
    if wanted in (None, CPU) or wanted in applied:
        return None
    if wanted == CUDA and CUDA not in available:
        fix = f"pip uninstall -y onnxruntime && {_onnxruntime_gpu_install()} (on a machine with an NVIDIA driver)"
    elif wanted == CUDA:
        fix = (
            "install the CUDA and cuDNN libraries this onnxruntime-gpu needs: pip install 'onnxruntime-gpu[cuda,cudnn]'"
        )
    else:
        fix = f"use an onnxruntime build that offers {wanted}, or set embedding.device: cpu"
    return Problem(
        "gpu_provider_not_applied",
        f"embedding.device is {device}, which wants {wanted}, but ONNX Runtime applied only {', '.join(applied)} "
        f"(available: {', '.join(available) or 'none'})",
        fix,
    )


def check_onnxruntime_twins(packages: dict[str, str | None]) -> Problem | None:
    """``onnxruntime`` and ``onnxruntime-gpu`` installed side by side: whichever was installed last wins."""
    cpu, gpu = packages.get("onnxruntime"), packages.get("onnxruntime-gpu")
    if not (cpu and gpu):
        return None
    return Problem(
        "onnxruntime_cpu_and_gpu_installed",
        f"onnxruntime {cpu} and onnxruntime-gpu {gpu} are both installed; they share the 'onnxruntime' module "
        "and the CPU one can hide CUDAExecutionProvider",
        f"pip uninstall -y onnxruntime onnxruntime-gpu && {_onnxruntime_gpu_install()}; CPU-only machines: onnxruntime",
    )


def _target_major(builds: list[CudaBuild], driver_cuda: str | None) -> int:
    """The CUDA major to settle on: TensorRT's (else cuda-python's), unless the driver cannot run it."""
    first = {}
    for build in builds:
        first.setdefault(build.component, build.cuda_major)
    target = first.get("tensorrt", first.get("cuda-python", builds[0].cuda_major))
    driver_major = int(driver_cuda.split(".")[0]) if driver_cuda else None  # "12.8", from cudaDriverGetVersion
    if driver_major is not None and driver_major < target and driver_major in CUDA_STACKS:
        return driver_major
    return target


def check_cuda_majors(builds: list[CudaBuild], driver_cuda: str | None) -> Problem | None:
    """TensorRT, cuda-python and onnxruntime-gpu built for different CUDA majors (``driver_cuda``: the newest CUDA
    the driver runs, e.g. ``"12.8"``, or None).

    The fix settles on TensorRT's major, or the driver's when the driver cannot run TensorRT's.
    """
    if len({b.cuda_major for b in builds}) < 2:
        return None
    target = _target_major(builds, driver_cuda)
    wrong = [b for b in builds if b.cuda_major != target]
    stack = CUDA_STACKS.get(target)
    if stack is None:
        known = ", ".join(f"CUDA {major}: arcface-trt[{s.extra}]" for major, s in CUDA_STACKS.items())
        fix = f"install TensorRT, cuda-python and onnxruntime-gpu of one CUDA major ({known})"
    else:
        steps = []
        tensorrt = [b.package for b in wrong if b.component == "tensorrt"]
        if tensorrt:
            steps.append(f"pip uninstall -y {' '.join(tensorrt)}")
        if tensorrt or any(b.component == "cuda-python" for b in wrong):
            steps.append(f"pip install 'arcface-trt[{stack.extra}]'")
        if any(b.component == "onnxruntime-gpu" for b in wrong):
            steps.append(f"pip uninstall -y onnxruntime-gpu && pip install '{stack.onnxruntime_gpu}'")
        fix = " && ".join(steps) + f" (CUDA {target} needs NVIDIA driver {stack.driver} or newer)"
    described = ", ".join(f"{b.package} {b.version} (CUDA {b.cuda_major})" for b in builds)
    return Problem(
        "cuda_major_mismatch",
        f"the GPU packages are built for different CUDA majors: {described}; a package of another major fails to "
        "load its CUDA libraries or loads a second CUDA runtime",
        fix,
    )


def check_tensorrt_import(requested: str, tensorrt: dict[str, Any]) -> Problem | None:
    """``import tensorrt`` fails while TensorRT is installed or asked for."""
    if tensorrt.get("importable") or not (tensorrt.get("installed") or requested == "tensorrt"):
        return None
    if tensorrt.get("installed"):
        fix = (
            "reinstall TensorRT and cuda-python for one CUDA major (pip install --force-reinstall tensorrt-cu12 "
            "'cuda-python>=12,<13') and check the driver with nvidia-smi"
        )
    else:
        fix = "pip install 'arcface-trt[gpu]' on a machine with an NVIDIA GPU and driver"
    return Problem("tensorrt_import_failed", f"import tensorrt fails: {tensorrt.get('error')}", fix)


def _matches(manifest: Manifest, trt_version: str | None, sm_arch: str | None) -> list[str]:
    """What makes ``manifest``'s plan unloadable here (empty when it loads, or when nothing is known).

    ``trt_version`` is ``major.minor``: any patch release of it loads the plan, and so does a later
    version NVIDIA supports for a version-compatible plan; an ``sm80+`` plan loads on every GPU of
    compute capability 8.0 or newer.
    """
    out = []
    runs = manifest.version_compatible and version_runs(manifest.trt_version, trt_version or "")
    if trt_version and not (same_trt_version(manifest.trt_version, trt_version) or runs):
        out.append(f"TensorRT {manifest.trt_version} (here {trt_version})")
    if sm_arch and not arch_runs(manifest.sm_arch, sm_arch):
        out.append(f"{manifest.sm_arch} (here {sm_arch})")
    return out


def check_engines(
    entries: Iterable[Manifest],
    model_name: str,
    onnx_sha256: str,
    precision: str,
    trt_version: str | None,
    sm_arch: str | None,
) -> Problem | None:
    """Cached plans for the configured model exist, but none was built for this TensorRT version and GPU arch.

    Plans for other models, other precisions, or other machines beside a usable one are
    normal in a shared cache and are not flagged.
    """
    if trt_version is None and sm_arch is None:
        return None
    relevant = [
        m for m in entries if (m.onnx_sha256 == onnx_sha256 or m.model == model_name) and m.precision == precision
    ]
    if not relevant:
        return None
    here = trt_major_minor(trt_version) if trt_version else None
    mismatched = [(m, _matches(m, here, sm_arch)) for m in relevant]
    if any(not why for _, why in mismatched):
        return None
    described = "; ".join(f"{m.key.relpath} built for {' and '.join(why)}" for m, why in mismatched)
    return Problem(
        "engine_mismatch",
        f"no cached engine for {model_name} ({precision}) loads here: {described}",
        "build one on this machine (arcface-trt build) or fetch the one for this GPU and TensorRT version",
    )


def check_writable(folder: str | Path, what: str) -> Problem | None:
    """``folder`` (or, when absent, the nearest existing folder above it) must be writable; nothing is created."""
    path = Path(folder).expanduser()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        reason = f"{probe} is not a folder"
    elif not os.access(probe, os.W_OK | os.X_OK):
        reason = f"{probe} is not writable by this user"
    else:
        return None
    return Problem(
        "cache_not_writable",
        f"the {what} {path} cannot be written: {reason}",
        "point tensorrt.cache_dir (or $ARCFACE_TRT_CACHE_DIR) at a writable folder, or fix the folder's owner/mode",
    )


def check_parity(regression_test: str, worst_cosine: float | None, tolerance: float, key: str) -> Problem | None:
    """The running backend's embeddings drift from the reference beyond the tolerance (``key`` names it)."""
    if regression_test != "failed":
        return None
    return Problem(
        "parity_failed",
        f"worst-sample cosine vs the reference is {worst_cosine}, below 1 - {tolerance} ({key})",
        "use precision fp32 (or fp16 with the final layers in fp32) and check with arcface-trt compare",
    )


def check_collapse(collapse: CollapseCheck | None) -> Problem | None:
    """Clearly different faces embed nearly alike: the input spec is wrong, and every check agreeing means nothing."""
    if collapse is None or not collapse.collapsed:
        return None
    return Problem(
        "input_collapse",
        f"{collapse.faces} different real faces have mean pairwise cosine {collapse.mean_cosine:.4f} "
        f"(above validation.collapse_cosine {collapse.threshold:g}) with input spec {collapse.input_spec}",
        FIX,
    )
