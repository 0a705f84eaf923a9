"""Run the benchmark: each backend x each batch size x each timing mode.

Modes (each timed with warm-up excluded, see :mod:`arcface_trt.bench.timing`):

- ``end_to_end``: ``encode(crops)``: preprocessing, inference (with transfers on a
  GPU) and L2 normalisation; what a pipeline calling the embedder sees.
- ``inference``: ``forward(batch)`` on an already preprocessed batch (CPU backends);
  for TensorRT the same with host<->device copies, and H2D, GPU compute and D2H
  timed separately by CUDA events.
- ``gpu_compute`` (TensorRT only): GPU compute alone, no data transfers, as
  trtexec reports it (``--noDataTransfers``).

Batch sizes are the outer loop; at one batch size, every mode of every backend is
timed round-robin (one call each per round, :func:`~arcface_trt.bench.timing.run_interleaved`),
so load that comes and goes on a shared machine hits the figures compared side by
side alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from arcface_trt.backends import create_embedder
from arcface_trt.backends.base import Embedder
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.bench.environment import collect_environment
from arcface_trt.bench.memory import GpuMemoryTracker, memory_record
from arcface_trt.bench.stats import latency_stats, speedup, throughput
from arcface_trt.bench.timing import Samples, Timed, TimingPlan, ignore_result, run_interleaved
from arcface_trt.bench.trt_timing import trt_functions, trt_mode_names
from arcface_trt.budget.request import budgets_for
from arcface_trt.config import load_config, with_overrides
from arcface_trt.errors import InputError
from arcface_trt.faces import sample_faces
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.names import REFERENCE_BACKEND, canonical_backend

CPU_MODES = ("end_to_end", "inference")
TRANSFER_PARTS = ("h2d_ms", "compute_ms", "d2h_ms")
#: What the figures of a report mean (copied into every report).
NOTES = {
    "end_to_end": "encode(crops): preprocessing + inference (+ transfers on a GPU) + L2 normalisation, host time",
    "inference": "forward(preprocessed batch), host time; TensorRT: H2D + compute + D2H, parts by CUDA events",
    "gpu_compute": "TensorRT engine alone, no data transfers, CUDA events (trtexec --noDataTransfers)",
    "latency_ms": "time of one batch; throughput_fps = images / total timed time; warm-up excluded",
    "peak_rss_mb": "process peak since start (getrusage): includes every backend loaded before this row",
    "speedup_vs_reference": "throughput over the reference backend's at the same batch size",
}


@dataclass(frozen=True)
class BenchmarkRequest:
    """Everything ``arcface-trt benchmark`` needs; None means "from the config"."""

    backends: tuple[str, ...] = ("onnxruntime",)
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    plan: TimingPlan = field(default_factory=TimingPlan)
    onnx_path: str | None = None
    #: onnxruntime: the CPU engine of this precision; tensorrt: the plan's precision.
    precision: str | None = None
    device: str | None = None
    config: str | None = None
    seed: int = 0
    #: TensorRT: also time GPU compute replayed from a CUDA graph when the runner can.
    cuda_graph: bool = False
    #: Explicit input settings of the command line (over the config's ``embedding.input_*``).
    inputs: InputSettings | None = None
    #: Time the engines made for this drift budget (onnxruntime CPU engines and TensorRT plans of fp16/int8).
    drift_budget: float | None = None

    def __post_init__(self) -> None:
        if not self.backends:
            raise InputError("give at least one --backend")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise InputError(f"batch sizes must be integers >= 1, got {self.batch_sizes}")
        # Aliases resolve (pytorch -> insightface) and repeats go, so each backend is timed once.
        names = tuple(dict.fromkeys(canonical_backend(b) for b in self.backends))
        object.__setattr__(self, "backends", names)


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
    """Throughput and latency statistics of one mode (plus per-part statistics, if any).

    ``host``: the latency is the host time of each call; otherwise it is the
    ``compute_ms`` the function measured itself (CUDA events).
    """
    series = samples.host_ms if host else samples.parts["compute_ms"]
    record: dict[str, Any] = {
        "throughput_fps": throughput(batch_size, series),
        "latency_ms": latency_stats(series).to_dict(),
        "iterations": len(series),
        "warmup_iterations": samples.warmup_iterations,
        "timed_by": "host perf_counter" if host else "CUDA events",
    }
    if samples.parts and host:
        record["parts_ms"] = {name: latency_stats(values).to_dict() for name, values in samples.parts.items()}
        if set(TRANSFER_PARTS) <= set(samples.parts):
            # trtexec's "Latency": H2D + GPU compute + D2H of each iteration.
            summed = np.sum([samples.parts[p] for p in TRANSFER_PARTS], axis=0)
            record["gpu_latency_ms"] = latency_stats(summed).to_dict()
    return record


def timed_functions(embedder: Embedder, crops: np.ndarray, cuda_graph: bool = False) -> dict[str, tuple[Timed, bool]]:
    """The functions each mode times for ``embedder``: name -> (function, timed on the host)."""
    batch = embedder.preprocess(crops)
    functions: dict[str, tuple[Timed, bool]] = {"end_to_end": (ignore_result(lambda: embedder.encode(crops)), True)}
    timer = embedder.device_timer()
    if timer is None:
        functions["inference"] = (ignore_result(lambda: embedder.forward(batch)), True)
        return functions
    functions.update(trt_functions(timer, batch, cuda_graph))
    return functions


def _row(
    embedder: Embedder, batch_size: int, modes: dict[str, Any], tracker: GpuMemoryTracker | None
) -> dict[str, Any]:
    info = embedder.info()
    timer = embedder.device_timer()
    engine_bytes = timer.device_memory_bytes if timer is not None else None
    return {
        "backend": info.backend,
        "requested_backend": info.requested_backend,
        "fallback_reason": info.fallback_reason,
        "device": info.device,
        "providers": info.providers,
        "precision": info.precision,
        "engine_path": info.engine_path,
        "drift_budget": info.drift_budget,
        "batch_size": batch_size,
        "throughput_fps": modes["end_to_end"]["throughput_fps"],
        "inference_throughput_fps": modes["inference"]["throughput_fps"],
        "modes": modes,
        "memory": memory_record(tracker is not None, engine_bytes, tracker),
    }


def benchmark_batch(
    embedders: Sequence[Embedder],
    batch_size: int,
    plan: TimingPlan,
    seed: int = 0,
    cuda_graph: bool = False,
    advance: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every mode of every backend at one batch size, timed round-robin; one result row per backend."""
    crops = sample_faces(batch_size, seed)
    functions: dict[str, Timed] = {}
    timed_on_host: dict[str, bool] = {}
    for index, embedder in enumerate(embedders):
        for mode, (fn, host) in timed_functions(embedder, crops, cuda_graph).items():
            functions[f"{index}/{mode}"] = fn
            timed_on_host[f"{index}/{mode}"] = host
    samples = run_interleaved(functions, plan, on_done=(lambda _: advance(1)) if advance else None)
    rows = []
    for index, embedder in enumerate(embedders):
        modes = {
            key.split("/", 1)[1]: mode_record(batch_size, samples[key], timed_on_host[key])
            for key in functions
            if key.startswith(f"{index}/")
        }
        tracker = GpuMemoryTracker() if embedder.on_gpu else None
        if tracker is not None:
            tracker.sample()
        rows.append(_row(embedder, batch_size, modes, tracker))
    return rows


def benchmark_one(
    embedder: Embedder,
    batch_size: int,
    plan: TimingPlan,
    seed: int = 0,
    cuda_graph: bool = False,
    advance: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """All modes of one backend at one batch size: one result row."""
    return benchmark_batch([embedder], batch_size, plan, seed, cuda_graph, advance)[0]


def add_speedups(rows: list[dict[str, Any]]) -> str | None:
    """Add ``speedup_vs_reference`` to every row (None without the reference); returns the reference name."""
    reference = {
        r["batch_size"]: r
        for r in rows
        if r["backend"] == REFERENCE_BACKEND and r["requested_backend"] == REFERENCE_BACKEND
    }
    for row in rows:
        ref = reference.get(row["batch_size"])
        row["speedup_vs_reference"] = {
            "end_to_end": speedup(row["throughput_fps"], ref["throughput_fps"] if ref else None),
            "inference": speedup(row["inference_throughput_fps"], ref["inference_throughput_fps"] if ref else None),
        }
    return REFERENCE_BACKEND if reference else None


def mode_names(embedder: Embedder, batch_size: int, cuda_graph: bool = False) -> list[str]:
    """The modes timed for ``embedder`` at ``batch_size``, in order."""
    timer = embedder.device_timer()
    if timer is None:
        return list(CPU_MODES)
    return ["end_to_end", *trt_mode_names(timer, batch_size, cuda_graph)]


def steps(request: BenchmarkRequest, embedders: Sequence[Embedder]) -> int:
    """Number of timed modes the run will go through (for the progress bar)."""
    return sum(len(mode_names(e, b, request.cuda_graph)) for e in embedders for b in request.batch_sizes)


def backend_specs(request: BenchmarkRequest) -> list[BackendSpec]:
    """The spec of every requested backend: precision, drift budget and config resolved once."""
    cfg = load_config(request.config)
    if request.precision is not None:
        cfg = cfg.with_tensorrt_section(with_overrides(cfg.tensorrt.tensorrt, "tensorrt", precision=request.precision))
    # The precision of each backend's engine: onnxruntime's CPU engine, TensorRT's plan; the reference has none.
    precisions = {"onnxruntime": request.precision, "tensorrt": cfg.tensorrt.tensorrt.precision}
    engines = [precisions[name] for name in request.backends if name in precisions]
    budgets = budgets_for(engines, request.drift_budget) if request.drift_budget is not None else {}
    if request.drift_budget is not None and not engines:
        raise InputError("--drift-budget selects onnxruntime CPU engines and TensorRT plans: add such a --backend")
    # A benchmark of a fallback would put reference figures under another backend's name.
    return [
        BackendSpec.resolve(
            name,
            device=request.device,
            allow_cpu_fallback=False,
            onnx_path=request.onnx_path,
            config=cfg,
            batch_size=max(request.batch_sizes),
            precision=request.precision if name == "onnxruntime" else None,
            inputs=request.inputs,
            drift_budget=budgets.get(precisions.get(name)) if name in precisions else None,
        )
        for name in request.backends
    ]


def load_backends(request: BenchmarkRequest, specs: Sequence[BackendSpec] | None = None) -> list[Embedder]:
    """Load every requested backend (``specs``: from :func:`backend_specs`) before anything is timed."""
    return [create_embedder(spec) for spec in (specs if specs is not None else backend_specs(request))]


def run_benchmark(
    request: BenchmarkRequest,
    embedders: Sequence[Embedder] | None = None,
    advance: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Benchmark every backend at every batch size; returns the JSON-friendly report."""
    embedders = list(embedders) if embedders is not None else load_backends(request)
    rows = []
    for batch_size in request.batch_sizes:
        rows += benchmark_batch(embedders, batch_size, request.plan, request.seed, request.cuda_graph, advance)
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
        "notes": NOTES,
        "environment": {**collect_environment(), "input_spec": model.input_spec.to_dict()},
    }
