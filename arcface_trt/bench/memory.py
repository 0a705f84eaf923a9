"""Memory figures: the RSS each backend added (and the process's), device memory for GPU backends.

GPU numbers come from NVML (``pynvml``, shipped by ``nvidia-ml-py``) when it is
importable: the memory this process holds on the GPU. Without NVML, cuda-python's
``cudaMemGetInfo`` gives the memory used on the whole device (labelled as such).
Every reader returns None where the figure cannot be had; nothing is estimated.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from arcface_trt.engine import gpu
from arcface_trt.engine.gpu import MIB

T = TypeVar("T")


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


def release_freed_heap() -> None:
    """Return the heap pages this process has freed to the OS (glibc's ``malloc_trim``; elsewhere nothing).

    Without it, a backend loaded after others were freed (a second backend, a long-lived process)
    reuses resident pages and its RSS delta reads near 0: measured here, 0.0 and 0.6 MiB for two
    backends that add 72 and 31 MiB in a fresh process.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return
    trim(0)


def rss_added_mb(make: Callable[[], T]) -> tuple[T, float | None]:
    """``make()`` and the resident memory it added to the process (MiB, /proc; None where unreadable).

    What a backend allocates and keeps when it is loaded and run once is its own memory; the
    process's peak RSS counts every backend loaded before it. Freed heap is returned to the OS
    first (:func:`release_freed_heap`), so that reused pages do not hide what ``make()`` allocates.
    """
    release_freed_heap()
    before = current_rss_mb()
    made = make()
    after = current_rss_mb()
    return made, None if before is None or after is None else max(after - before, 0.0)


def memory_record(
    gpu: bool,
    engine_device_bytes: int | None = None,
    tracker: GpuMemoryTracker | None = None,
    rss_added: float | None = None,
) -> dict[str, Any]:
    """The memory part of a benchmark row: the backend's own RSS and the process's, GPU figures for GPU backends."""
    record: dict[str, Any] = {"rss_added_mb": rss_added, "peak_rss_mb": peak_rss_mb(), "rss_mb": current_rss_mb()}
    if gpu:
        record["engine_device_memory_mb"] = None if engine_device_bytes is None else engine_device_bytes / MIB
        record["gpu_peak_mb"] = tracker.peak_mb if tracker else None
        record["gpu_memory_source"] = tracker.source if tracker else None
    return record
