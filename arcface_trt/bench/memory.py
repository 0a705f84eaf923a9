"""Memory figures: the process's RSS for CPU backends, device memory for GPU backends.

GPU numbers come from NVML (``pynvml``, shipped by ``nvidia-ml-py``) when it is
importable: the memory this process holds on the GPU. Without NVML, cuda-python's
``cudaMemGetInfo`` gives the memory used on the whole device (labelled as such).
Every reader returns None where the figure cannot be had; nothing is estimated.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from arcface_trt.engine import gpu
from arcface_trt.engine.gpu import MIB


def peak_rss_mb() -> float | None:
    """The process's peak resident set size so far (MiB), from ``getrusage``."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    """The process's resident set size now (MiB), from /proc (Linux only)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def nvml_process_memory_mb(device_index: int = 0) -> float | None:
    """GPU memory held by this process on ``device_index`` (MiB), via NVML; None without NVML."""
    nvml = gpu.nvml()
    if nvml is None:
        return None
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(device_index)
        processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
    except Exception:  # NVMLError subclasses: not supported, no permission
        return None
    pid = os.getpid()
    used = [p.usedGpuMemory for p in processes if p.pid == pid and p.usedGpuMemory is not None]
    return sum(used) / MIB if used else 0.0


@dataclass
class GpuMemoryTracker:
    """Samples GPU memory and keeps the peak seen; ``source`` says what was measured."""

    device_index: int = 0
    peak_mb: float | None = None
    source: str | None = None

    def sample(self) -> float | None:
        """Read the memory now (NVML per process, else cudaMemGetInfo per device) and update the peak."""
        value = nvml_process_memory_mb(self.device_index)
        source = "nvml_process"
        if value is None:
            value, source = gpu.device_memory_used_mb(), "cuda_device_used"
        if value is None:
            return None
        self.source = source
        self.peak_mb = value if self.peak_mb is None else max(self.peak_mb, value)
        return value


def memory_record(
    gpu: bool, engine_device_bytes: int | None = None, tracker: GpuMemoryTracker | None = None
) -> dict[str, Any]:
    """The memory part of a benchmark row: RSS always, GPU figures for GPU backends."""
    record: dict[str, Any] = {"peak_rss_mb": peak_rss_mb(), "rss_mb": current_rss_mb()}
    if gpu:
        record["engine_device_memory_mb"] = None if engine_device_bytes is None else engine_device_bytes / MIB
        record["gpu_peak_mb"] = tracker.peak_mb if tracker else None
        record["gpu_memory_source"] = tracker.source if tracker else None
    return record
