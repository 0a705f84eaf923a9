"""Run the benchmark: each backend x each batch size x each timing mode.

Modes (each timed with warm-up excluded, see :mod:`arcface_trt.bench.timing`):

- ``end_to_end``: ``encode(crops)``: preprocessing, inference (with transfers on a
  GPU) and L2 normalisation; what a pipeline calling the embedder sees.
- ``inference``: ``forward(batch)`` on an already preprocessed batch (CPU backends);
  for TensorRT the same with host<->device copies, and H2D, GPU compute and D2H
  timed separately by CUDA events.
- ``gpu_compute`` (TensorRT only): GPU compute alone, no data transfers, as
  trtexec reports it (``--noDataTransfers``).

With ``precisions``, each backend a precision applies to (onnxruntime, tensorrt) is one engine per
precision, and those engines are timed side by side like different backends.

Batch sizes are the outer loop; at one batch size, every mode of every engine is
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
from arcface_trt.bench.memory import GpuMemoryTracker, memory_record, rss_added_mb
from arcface_trt.bench.stats import latency_stats, speedup, throughput
from arcface_trt.bench.timing import Samples, Timed, TimingPlan, ignore_result, run_interleaved
from arcface_trt.bench.trt_timing import trt_functions, trt_mode_names
from arcface_trt.budget.request import budgets_for
from arcface_trt.config import EmbeddingConfig, load_config, with_overrides
from arcface_trt.errors import InputError
from arcface_trt.faces import sample_faces
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.names import PRECISION_BACKENDS, REFERENCE_BACKEND, canonical_backend, check_precision

CPU_MODES = ("end_to_end", "inference")
TRANSFER_PARTS = ("h2d_ms", "compute_ms", "d2h_ms")
#: What the figures of a report mean (copied into every report).
NOTES = {
    "end_to_end": "encode(crops): preprocessing + inference (+ transfers on a GPU) + L2 normalisation, host time",
    "inference": "forward(preprocessed batch), host time; TensorRT: H2D + compute + D2H, parts by CUDA events",
    "gpu_compute": "TensorRT engine alone, no data transfers, CUDA events (trtexec --noDataTransfers)",
    "latency_ms": "time of one batch; throughput_fps = images / total timed time; warm-up excluded",
    "peak_rss_mb": "process peak since start (getrusage), the same for every row: the whole process",
    "rss_added_mb": "this backend's own memory: resident memory (/proc) after loading it and encoding one batch of "
    "the largest size, minus before (freed heap returned to the OS first); each backend is loaded and measured "
    "alone, before any timing",
    "speedup_vs_reference": "throughput over the reference backend's at the same batch size",
    "vs_first_precision": "throughput over the same backend's at the first of --precisions, same batch size",
}


@dataclass(frozen=True)
class BenchmarkRequest:
    """Everything ``arcface-trt benchmark`` needs; None means "from the config"."""

    backends: tuple[str, ...] = ("onnxruntime",)
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    plan: TimingPlan = field(default_factory=TimingPlan)
    onnx_path: str | None = None
    #: The precisions each backend of :data:`PRECISION_BACKENDS` runs at, one engine each, timed side by side
    #: (onnxruntime: the CPU engine; tensorrt: a plan). Empty: the ONNX as it is, and tensorrt.precision.
    precisions: tuple[str, ...] = ()
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
        for name in self.precisions:
            check_precision(name)
        if len(set(self.precisions)) != len(self.precisions):
            raise InputError(f"a precision is named twice: {', '.join(self.precisions)}")
        # Aliases resolve (pytorch -> insightface) and repeats go, so each backend is timed once.
        names = tuple(dict.fromkeys(canonical_backend(b) for b in self.backends))
        object.__setattr__(self, "backends", names)
        if self.precisions and not set(names) & set(PRECISION_BACKENDS):
            raise InputError(
                f"a precision applies to {' and '.join(PRECISION_BACKENDS)}, and no --backend given takes one"
            )

    def variants(self) -> list[tuple[str, str | None]]:
        """(backend, precision) of every engine to time, in table order: a backend of
        :data:`PRECISION_BACKENDS` once per precision, any other backend once (precision None)."""
        return [
            (name, precision)
            for name in self.backends
            for precision in (self.precisions if self.precisions and name in PRECISION_BACKENDS else (None,))
        ]


@dataclass
class LoadedBackend:
    """One engine to time and the memory it added to the process when it was loaded and first run."""

    embedder: Embedder
    rss_added_mb: float | None = None


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
    loaded: LoadedBackend, batch_size: int, modes: dict[str, Any], tracker: GpuMemoryTracker | None
) -> dict[str, Any]:
    embedder = loaded.embedder
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
        "memory": memory_record(tracker is not None, engine_bytes, tracker, loaded.rss_added_mb),
    }


def benchmark_batch(
    backends: Sequence[LoadedBackend],
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
    for index, loaded in enumerate(backends):
        for mode, (fn, host) in timed_functions(loaded.embedder, crops, cuda_graph).items():
            functions[f"{index}/{mode}"] = fn
            timed_on_host[f"{index}/{mode}"] = host
    samples = run_interleaved(functions, plan, on_done=(lambda _: advance(1)) if advance else None)
    rows = []
    for index, loaded in enumerate(backends):
        modes = {
            key.split("/", 1)[1]: mode_record(batch_size, samples[key], timed_on_host[key])
            for key in functions
            if key.startswith(f"{index}/")
        }
        tracker = GpuMemoryTracker() if loaded.embedder.on_gpu else None
        if tracker is not None:
            tracker.sample()
        rows.append(_row(loaded, batch_size, modes, tracker))
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
    return benchmark_batch([LoadedBackend(embedder)], batch_size, plan, seed, cuda_graph, advance)[0]


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


def add_precision_ratios(rows: list[dict[str, Any]], precisions: Sequence[str]) -> None:
    """Add ``vs_first_precision`` to every row: its throughput over the same backend's at ``precisions[0]`` and
    the same batch size (None for backends a precision does not apply to, or with fewer than two precisions)."""
    first = {
        (r["backend"], r["batch_size"]): r
        for r in rows
        if len(precisions) > 1 and r["backend"] in PRECISION_BACKENDS and r["precision"] == precisions[0]
    }
    for row in rows:
        base = first.get((row["backend"], row["batch_size"]))
        row["vs_first_precision"] = {
            "end_to_end": speedup(row["throughput_fps"], base["throughput_fps"] if base else None),
            "inference": speedup(row["inference_throughput_fps"], base["inference_throughput_fps"] if base else None),
        }


def mode_names(embedder: Embedder, batch_size: int, cuda_graph: bool = False) -> list[str]:
    """The modes timed for ``embedder`` at ``batch_size``, in order."""
    timer = embedder.device_timer()
    if timer is None:
        return list(CPU_MODES)
    return ["end_to_end", *trt_mode_names(timer, batch_size, cuda_graph)]


def steps(request: BenchmarkRequest, backends: Sequence[LoadedBackend]) -> int:
    """Number of timed modes the run will go through (for the progress bar)."""
    return sum(len(mode_names(b.embedder, size, request.cuda_graph)) for b in backends for size in request.batch_sizes)


def variant_spec(
    request: BenchmarkRequest,
    cfg: EmbeddingConfig,
    backend: str,
    precision: str | None,
    drift_budget: float | None = None,
) -> BackendSpec:
    """The spec of ``backend`` at ``precision``: which engine a precision means for that backend.

    onnxruntime: the cached CPU engine of the precision; tensorrt: a plan of it (``tensorrt.precision``);
    None: the ONNX as it is, and the configured TensorRT precision. ``drift_budget``: the engine made for it.
    """
    if backend == "tensorrt" and precision is not None:
        cfg = cfg.with_tensorrt_section(with_overrides(cfg.tensorrt.tensorrt, "tensorrt", precision=precision))
    return BackendSpec.resolve(
        backend,
        device=request.device,
        # A benchmark of a fallback would put reference figures under another backend's name.
        allow_cpu_fallback=False,
        onnx_path=request.onnx_path,
        config=cfg,
        batch_size=max(request.batch_sizes),
        precision=precision if backend == "onnxruntime" else None,
        inputs=request.inputs,
        drift_budget=drift_budget,
    )


def backend_specs(request: BenchmarkRequest) -> list[BackendSpec]:
    """The spec of every engine to time, in table order (:meth:`BenchmarkRequest.variants`), drift budget included."""
    cfg = load_config(request.config)
    variants = request.variants()
    # The precision each engine runs at: tensorrt without one runs the configured one; onnxruntime the ONNX as it
    # is (no budget then). Other backends have no engine precision.
    engines = {
        (b, p): cfg.tensorrt.tensorrt.precision if b == "tensorrt" and p is None else p
        for b, p in variants
        if b in PRECISION_BACKENDS
    }
    if request.drift_budget is not None and not engines:
        raise InputError("--drift-budget selects onnxruntime CPU engines and TensorRT plans: add such a --backend")
    budgets = budgets_for(list(engines.values()), request.drift_budget)
    return [
        variant_spec(request, cfg, b, p, budgets.get(engines[b, p]) if (b, p) in engines else None) for b, p in variants
    ]


def load_backends(request: BenchmarkRequest, specs: Sequence[BackendSpec] | None = None) -> list[LoadedBackend]:
    """Load every engine to time (``specs``: from :func:`backend_specs`) before anything is timed (fails fast,
    never falls back silently).

    Each is loaded and run once on a batch of the largest size alone, and the resident memory that
    added is its own memory figure (:func:`~arcface_trt.bench.memory.rss_added_mb`).
    """
    crops = sample_faces(max(request.batch_sizes), request.seed)
    loaded = []
    for spec in specs if specs is not None else backend_specs(request):
        embedder, added = rss_added_mb(lambda spec=spec: _loaded_and_run(spec, crops))
        loaded.append(LoadedBackend(embedder, added))
    return loaded


def _loaded_and_run(spec: BackendSpec, crops: np.ndarray) -> Embedder:
    embedder = create_embedder(spec)
    embedder.encode(crops)
    return embedder


def run_benchmark(
    request: BenchmarkRequest,
    backends: Sequence[LoadedBackend] | None = None,
    advance: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Benchmark every backend (at each precision) at every batch size; returns the JSON-friendly report."""
    backends = list(backends) if backends is not None else load_backends(request)
    rows = []
    for batch_size in request.batch_sizes:
        rows += benchmark_batch(backends, batch_size, request.plan, request.seed, request.cuda_graph, advance)
    reference = add_speedups(rows)
    add_precision_ratios(rows, request.precisions)
    model = backends[0].embedder.model
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"path": model.path, "name": model.name, "sha256": model.sha256, "embedding_dim": model.embedding_dim},
        "inputs": f"sample_faces(batch_size, seed={request.seed}): real-face crops with augmentations",
        "plan": request.plan.describe(),
        "batch_sizes": list(request.batch_sizes),
        "backends": [b.embedder.info().backend for b in backends],
        "precisions": list(request.precisions),
        "precision_applies_to": [b for b in request.backends if b in PRECISION_BACKENDS] if request.precisions else [],
        "reference": reference,
        "results": rows,
        "notes": NOTES,
        "environment": {**collect_environment(), "input_spec": model.input_spec.to_dict()},
    }
