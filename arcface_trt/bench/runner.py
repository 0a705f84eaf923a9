"""Run the benchmark: each backend x each batch size x each timing mode.

Modes (each timed with warm-up excluded, see :mod:`arcface_trt.bench.timing`):

- ``end_to_end``: ``encode(crops)``: preprocessing, inference (with transfers on a
  GPU) and L2 normalisation; what a pipeline calling the embedder sees.
- ``inference``: ``forward(batch)`` on an already preprocessed batch (CPU backends);
  for TensorRT the same with host<->device copies, and H2D, GPU compute and D2H
  timed separately by CUDA events.
- ``gpu_compute`` (TensorRT only): GPU compute alone, no data transfers, as
  trtexec reports it (``--noDataTransfers``).

Batch sizes are the outer loop and backends the inner one, so the figures compared
side by side are measured close together in time on a shared machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from arcface_trt.backends.base import Embedder
from arcface_trt.bench.memory import GpuMemoryTracker, memory_record
from arcface_trt.bench.stats import latency_stats, speedup, throughput
from arcface_trt.bench.timing import Samples, Timed, TimingPlan, run_timed
from arcface_trt.errors import InputError

#: The reference backend the speedup column is computed against.
REFERENCE = "insightface"
CPU_MODES = ("end_to_end", "inference")
TENSORRT_MODES = ("end_to_end", "inference", "gpu_compute")


@dataclass(frozen=True)
class BenchmarkRequest:
    """Everything ``arcface-trt benchmark`` needs; None means "from the config"."""

    backends: tuple[str, ...] = ("onnxruntime",)
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    plan: TimingPlan = field(default_factory=TimingPlan)
    onnx_path: str | None = None
    device: str | None = None
    config: str | None = None
    seed: int = 0
    #: TensorRT: also time GPU compute replayed from a CUDA graph when the runner can.
    cuda_graph: bool = False


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """``"1,8,32"`` -> ``(1, 8, 32)``; InputError for anything that is not positive integers."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"--batch-sizes must be comma-separated integers, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise InputError(f"--batch-sizes must list integers >= 1, got {text!r}")
    return tuple(dict.fromkeys(sizes))


def mode_record(batch_size: int, samples: Samples, host: bool = True) -> dict[str, Any]:
    """Throughput and latency statistics of one mode (plus per-part statistics, if any)."""
    series = samples.host_ms if host else samples.parts["compute_ms"]
    record: dict[str, Any] = {
        "throughput_fps": throughput(batch_size, series),
        "latency_ms": latency_stats(series).to_dict(),
        "iterations": len(series),
        "warmup_iterations": samples.warmup_iterations,
        "timed_by": "host perf_counter" if host else "CUDA events",
    }
    if samples.parts:
        record["parts_ms"] = {name: latency_stats(values).to_dict() for name, values in samples.parts.items()}
    return record


def is_gpu_backend(embedder: Embedder) -> bool:
    """True when the embedder computes on a GPU (TensorRT, or ONNX Runtime with CUDA applied)."""
    if embedder.info().backend == "tensorrt":
        return True
    return "CUDAExecutionProvider" in embedder.providers[:1]


def _trt_runner(embedder: Embedder) -> Any | None:
    return getattr(embedder, "runner", None) if embedder.info().backend == "tensorrt" else None


def timed_functions(embedder: Embedder, crops: np.ndarray, cuda_graph: bool = False) -> dict[str, tuple[Timed, bool]]:
    """The functions each mode times for ``embedder``: name -> (function, timed on the host)."""
    batch = embedder.preprocess(crops)
    functions: dict[str, tuple[Timed, bool]] = {"end_to_end": (lambda: _discard(embedder.encode(crops)), True)}
    runner = _trt_runner(embedder)
    if runner is None:
        functions["inference"] = (lambda: _discard(embedder.forward(batch)), True)
        return functions
    from arcface_trt.bench.trt_timing import trt_functions

    functions.update(trt_functions(runner, batch, cuda_graph))
    return functions


def _discard(_: Any) -> None:
    return None


def benchmark_one(
    embedder: Embedder,
    batch_size: int,
    plan: TimingPlan,
    seed: int = 0,
    cuda_graph: bool = False,
    advance: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """All modes of one backend at one batch size: one result row."""
    from arcface_trt.faces import sample_faces

    crops = sample_faces(batch_size, seed)
    info = embedder.info()
    gpu = is_gpu_backend(embedder)
    tracker = GpuMemoryTracker() if gpu else None
    modes = {}
    for mode, (fn, host) in timed_functions(embedder, crops, cuda_graph).items():
        samples = run_timed(fn, plan)
        modes[mode] = mode_record(batch_size, samples, host)
        if tracker is not None:
            tracker.sample()
        if advance:
            advance(1)
    runner = _trt_runner(embedder)
    engine_bytes = getattr(runner, "device_memory_bytes", None) if runner is not None else None
    return {
        "backend": info.backend,
        "requested_backend": info.requested_backend,
        "fallback_reason": info.fallback_reason,
        "device": info.device,
        "providers": info.providers,
        "precision": info.precision,
        "engine_path": info.engine_path,
        "batch_size": batch_size,
        "throughput_fps": modes["end_to_end"]["throughput_fps"],
        "inference_throughput_fps": modes["inference"]["throughput_fps"],
        "modes": modes,
        "memory": memory_record(gpu, engine_bytes, tracker),
    }


def add_speedups(rows: list[dict[str, Any]]) -> str | None:
    """Add ``speedup_vs_reference`` to every row (None without the reference); returns the reference name."""
    reference = {r["batch_size"]: r for r in rows if r["backend"] == REFERENCE and r["requested_backend"] == REFERENCE}
    for row in rows:
        ref = reference.get(row["batch_size"])
        row["speedup_vs_reference"] = {
            "end_to_end": speedup(row["throughput_fps"], ref["throughput_fps"] if ref else None),
            "inference": speedup(row["inference_throughput_fps"], ref["inference_throughput_fps"] if ref else None),
        }
    return REFERENCE if reference else None


def steps(request: BenchmarkRequest, embedders: Sequence[Embedder]) -> int:
    """Number of timed modes the run will go through (for the progress bar)."""
    per = sum(len(TENSORRT_MODES if _trt_runner(e) is not None else CPU_MODES) for e in embedders)
    return per * len(request.batch_sizes)


def load_backends(request: BenchmarkRequest) -> list[Embedder]:
    """Load every requested backend before anything is timed (fails fast, never falls back silently)."""
    from arcface_trt.backends import canonical_backend, get_embedding_backend
    from arcface_trt.config import load_config

    cfg = load_config(request.config)
    names = [canonical_backend(b) for b in request.backends]
    if not names:
        raise InputError("give at least one --backend")
    # A benchmark of a fallback would put reference figures under another backend's name.
    return [
        get_embedding_backend(
            name,
            device=request.device,
            allow_cpu_fallback=False,
            onnx_path=request.onnx_path,
            config=cfg,
            batch_size=max(request.batch_sizes),
        )
        for name in dict.fromkeys(names)
    ]


def run_benchmark(
    request: BenchmarkRequest,
    embedders: Sequence[Embedder] | None = None,
    advance: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Benchmark every backend at every batch size; returns the JSON-friendly report."""
    from arcface_trt.bench.environment import collect_environment

    if not request.batch_sizes:
        raise InputError("give at least one batch size")
    embedders = list(embedders) if embedders is not None else load_backends(request)
    rows = []
    for batch_size in request.batch_sizes:
        for embedder in embedders:
            rows.append(benchmark_one(embedder, batch_size, request.plan, request.seed, request.cuda_graph, advance))
    reference = add_speedups(rows)
    model = embedders[0].model
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"path": model.path, "name": model.name, "sha256": model.sha256, "embedding_dim": model.embedding_dim},
        "inputs": f"sample_faces(batch_size, seed={request.seed}): real-face crops with augmentations",
        "plan": request.plan.describe(),
        "batch_sizes": list(request.batch_sizes),
        "backends": [e.info().backend for e in embedders],
        "reference": reference,
        "results": rows,
        "environment": collect_environment(),
    }
