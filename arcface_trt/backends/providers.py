"""ONNX Runtime execution-provider choice for a requested device."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from arcface_trt.errors import BackendUnavailableError

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
COREML = "CoreMLExecutionProvider"
DEVICE_PROVIDER = {"cpu": CPU, "cuda": CUDA, "coreml": COREML}


@dataclass(frozen=True)
class ProviderChoice:
    """Providers to pass to ONNX Runtime, and why the wanted one is missing (if it is)."""

    providers: list[str]
    wanted: str
    fallback_reason: str | None = None


def choose_providers(device: str, available: list[str], allow_cpu_fallback: bool) -> ProviderChoice:
    """Pick providers for ``device`` (``auto``, ``cpu``, ``cuda``, ``coreml``).

    ``auto`` prefers CUDA, then CoreML on macOS, then CPU, and is never a fallback.
    An explicit device whose provider is not available raises
    :class:`BackendUnavailableError`, or falls back to CPU with a recorded reason
    when ``allow_cpu_fallback`` is true.
    """
    if device == "auto":
        if CUDA in available:
            return ProviderChoice([CUDA, CPU], CUDA)
        if COREML in available and platform.system() == "Darwin":
            return ProviderChoice([COREML, CPU], COREML)
        return ProviderChoice([CPU], CPU)
    if device not in DEVICE_PROVIDER:
        raise BackendUnavailableError(f"unknown device '{device}' (choose auto, cpu, cuda or coreml)")
    wanted = DEVICE_PROVIDER[device]
    if wanted == CPU:
        return ProviderChoice([CPU], CPU)
    if wanted in available:
        return ProviderChoice([wanted, CPU], wanted)
    reason = f"{wanted} is not available in this onnxruntime (available: {', '.join(available)}); " + (
        "install onnxruntime-gpu instead of onnxruntime" if wanted == CUDA else "use a build that has it"
    )
    if not allow_cpu_fallback:
        raise BackendUnavailableError(f"device '{device}' requested but {reason}")
    return ProviderChoice([CPU], wanted, fallback_reason=reason)


def check_applied(choice: ProviderChoice, applied: list[str], allow_cpu_fallback: bool) -> str | None:
    """Catch ONNX Runtime silently dropping the wanted provider (e.g. CUDA libraries missing)."""
    if choice.fallback_reason or choice.wanted in applied:
        return choice.fallback_reason
    reason = f"{choice.wanted} was requested but ONNX Runtime applied only {', '.join(applied)}"
    if not allow_cpu_fallback:
        raise BackendUnavailableError(reason)
    return reason
