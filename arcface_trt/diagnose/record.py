"""Build the ``diagnose`` record: backend, its input spec, measured speed and drift, collapse, environment, problems."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.cache import ArtifactCache
from arcface_trt.artifacts.compat import kind_of
from arcface_trt.artifacts.manifest import Manifest
from arcface_trt.backends import create_embedder
from arcface_trt.backends.base import BackendInfo, Embedder
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.bench.environment import collect_environment, current_sm_arch
from arcface_trt.bench.memory import GpuMemoryTracker
from arcface_trt.bench.stats import latency_stats, throughput
from arcface_trt.bench.timing import TimingPlan, ignore_result, run_timed
from arcface_trt.collapse import CollapseCheck, check_collapse
from arcface_trt.config import EmbeddingConfig, load_config
from arcface_trt.diagnose import checks
from arcface_trt.diagnose.cuda_stack import CudaBuild, installed_cuda_builds
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.faces import sample_faces
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.model.inspect import inspect_model
from arcface_trt.names import REFERENCE_BACKEND
from arcface_trt.parity import compare_embedders, drift_tolerance
from arcface_trt.paths import engine_cache_root, models_dir


@dataclass(frozen=True)
class DiagnoseRequest:
    """Options of ``arcface-trt diagnose``; None means "from the config"."""

    config: str | None = None
    onnx_path: str | None = None
    #: Crops in the parity check (short on purpose; ``compare`` does the full check).
    n_samples: int = 16
    #: Timed ``encode`` calls of one configured batch in the short benchmark.
    iterations: int = 3
    warmup_s: float = 0.2
    #: Explicit input settings of the command line (over the config's ``embedding.input_*``).
    inputs: InputSettings | None = None


def engine_cache_dir(cfg: EmbeddingConfig) -> Path:
    """The engine cache folder the TensorRT backend uses for this config."""
    return engine_cache_root(cfg.tensorrt.tensorrt.cache_dir)


def _load(spec: BackendSpec) -> tuple[Embedder | None, str | None]:
    """The backend as the pipeline gets it, or the reason it cannot load."""
    try:
        return create_embedder(spec), None
    except BackendUnavailableError as exc:
        return None, str(exc)


def short_benchmark(embedder: Embedder, request: DiagnoseRequest) -> dict[str, Any]:
    """Time ``encode`` on one configured batch of sample faces (warm-up excluded)."""
    batch = embedder.batch_size
    crops = sample_faces(batch, seed=0)
    plan = TimingPlan(iterations=request.iterations, warmup_s=request.warmup_s)
    samples = run_timed(ignore_result(lambda: embedder.encode(crops)), plan)
    vram_mb, vram_source = None, None
    if embedder.on_gpu:
        tracker = GpuMemoryTracker()
        tracker.sample()
        timer = embedder.device_timer()
        engine_bytes = timer.device_memory_bytes if timer is not None else None
        if tracker.peak_mb is not None:
            vram_mb, vram_source = tracker.peak_mb, tracker.source
        elif engine_bytes is not None:
            vram_mb, vram_source = engine_bytes / 2**20, "engine_device_memory"
    return {
        "batch_size": batch,
        # One backend: nothing to interleave with; warm-up is what keeps the first call out.
        "measured": f"encode() of one batch of {batch} sample crops, {plan.sentence()}, host perf_counter",
        "throughput_fps": throughput(batch, samples.host_ms),
        "latency_ms": latency_stats(samples.host_ms).to_dict(),
        "iterations": len(samples.host_ms),
        "vram_mb": vram_mb,
        "vram_source": vram_source,
    }


#: The fields of ``info()`` that say what computes the embeddings (not what was asked for).
COMPUTATION_FIELDS = ("backend", "model_path", "precision", "providers", "engine_path", "input_spec", "reference")


def same_computation(a: BackendInfo, b: BackendInfo) -> bool:
    """True when ``a`` and ``b`` compute embeddings the same way: same backend, model, precision, providers,
    engine, input spec and reference path (a parity check of one against the other then measures nothing)."""
    return all(getattr(a, name) == getattr(b, name) for name in COMPUTATION_FIELDS)


def parity(embedder: Embedder, spec: BackendSpec, cfg: EmbeddingConfig, request: DiagnoseRequest) -> dict[str, Any]:
    """Short parity check of ``embedder`` (made from ``spec``) against the InsightFace reference on the CPU.

    The tolerance is the one of the embedder's precision (``validation.max_drift_cosine_fp16``, ...).
    """
    tolerance = drift_tolerance(cfg.validation, [embedder.info()])
    out: dict[str, Any] = {
        "worst_cosine": None,
        "regression_test": "not run",
        "reference": f"{REFERENCE_BACKEND} (cpu)",
        "n_samples": request.n_samples,
        "max_drift_cosine": tolerance.value,
        "tolerance_key": tolerance.key,
        "metric": "worst_cosine: the lowest cosine similarity to the reference over the crops (1 = identical); "
        "max_drift = 1 - worst_cosine, checked against max_drift_cosine",
    }
    try:
        reference = create_embedder(
            dataclasses.replace(spec, backend=REFERENCE_BACKEND, device="cpu", allow_cpu_fallback=False, precision=None)
        )
    except (BackendUnavailableError, InputError) as exc:
        out["error"] = f"the reference cannot load: {exc}"
        return out
    crops = sample_faces(request.n_samples, cfg.validation.seed)
    result = compare_embedders(reference, embedder, crops, cfg.validation)
    out.update(
        worst_cosine=result.cosine["min"],
        regression_test="passed" if result.passed else "failed",
        cosine_mean=result.cosine["mean"],
        max_drift=result.max_drift,
        nn_agreement=result.nn_agreement,
    )
    if same_computation(embedder.info(), reference.info()):
        out["note"] = "the running backend computes as the reference itself: this check cannot find drift"
    return out


def running_plan(info: Any, environment: dict[str, Any]) -> dict[str, Any] | None:
    """Where the running TensorRT plan travels (its manifest's options) and how it relates to this machine."""
    if info is None or info.backend != "tensorrt" or not info.engine_path:
        return None
    try:
        manifest = Manifest.read(Path(info.engine_path).with_suffix(".json"))
    except InputError as exc:
        return {"manifest_problem": str(exc)}
    version, arch = environment["tensorrt"]["version"], current_sm_arch(environment)
    return {
        "weights": manifest.weights,
        "hardware_compatibility": manifest.hardware_compatibility,
        "sm_arch": manifest.sm_arch,
        "version_compatible": manifest.version_compatible,
        "lean_runtime": manifest.lean_runtime,
        "built_by": manifest.trt_version,
        "match": kind_of(manifest.key, arch, version) if version and arch else None,
    }


def _engines(cfg: EmbeddingConfig) -> list[Any]:
    folder = engine_cache_dir(cfg)
    return list(ArtifactCache(folder).entries()) if folder.is_dir() else []


def _model_facts(spec: BackendSpec, embedder: Embedder | None) -> tuple[str, str]:
    """(model name, onnx sha256) of the configured model, to find its cached engines."""
    if embedder is not None:
        return embedder.model.name, embedder.model.sha256
    try:
        model = inspect_model(spec.model_file())
    except InputError:
        return Path(spec.model_path or "").stem, ""
    return model.name, model.sha256


def find_problems(
    cfg: EmbeddingConfig,
    spec: BackendSpec,
    environment: dict[str, Any],
    embedder: Embedder | None,
    load_error: str | None,
    validation: dict[str, Any],
    collapse: CollapseCheck | None = None,
) -> list[checks.Problem]:
    """Run every check; the problems found, in :data:`checks.CODES` order."""
    requested = spec.backend
    info = embedder.info() if embedder is not None else None
    ort = environment["onnxruntime"]
    model_name, model_sha = _model_facts(spec, embedder)
    found = [
        checks.check_fallback(requested, info and info.backend, info and info.fallback_reason),
        checks.check_backend_loaded(requested, load_error),
        checks.check_provider_applied(
            requested,
            info and info.backend,
            spec.device,
            ort["providers_available"],
            info.providers if info else [],
        ),
        checks.check_onnxruntime_twins(environment["packages"]),
        checks.check_cuda_majors(
            [CudaBuild(**build) for build in environment["cuda_builds"]], environment["gpu"]["cuda_driver"]
        ),
        checks.check_tensorrt_import(requested, environment["tensorrt"]),
        checks.check_engines(
            _engines(cfg),
            model_name,
            model_sha,
            cfg.tensorrt.tensorrt.precision,
            environment["tensorrt"]["version"],
            current_sm_arch(environment),
        ),
        checks.check_writable(engine_cache_dir(cfg), "engine cache folder"),
        checks.check_writable(models_dir(), "model cache folder"),
        checks.check_parity(
            validation["regression_test"],
            validation["worst_cosine"],
            validation["max_drift_cosine"],
            validation["tolerance_key"],
        ),
        checks.check_collapse(collapse),
    ]
    return [p for p in found if p is not None]


def run_diagnose(request: DiagnoseRequest) -> dict[str, Any]:
    """The full record (see the module docstring); never raises for the backend failing to load."""
    if request.n_samples < 1:
        raise InputError(f"--n-samples must be at least 1, got {request.n_samples}")
    cfg = load_config(request.config)
    environment = collect_environment()
    environment["cuda_builds"] = [build.to_dict() for build in installed_cuda_builds()]
    spec = BackendSpec.resolve(config=cfg, onnx_path=request.onnx_path, inputs=request.inputs)
    embedder, load_error = _load(spec)
    info = embedder.info() if embedder is not None else None
    bench = short_benchmark(embedder, request) if embedder is not None else None
    collapse = check_collapse(embedder, cfg.validation.collapse_cosine) if embedder is not None else None
    validation = (
        parity(embedder, spec, cfg, request)
        if embedder is not None
        else {"worst_cosine": None, "regression_test": "not run", "max_drift_cosine": None, "tolerance_key": None}
    )
    environment["device_requested"] = cfg.embedding.device
    environment["providers_applied"] = info.providers if info else []
    problems = find_problems(cfg, spec, environment, embedder, load_error, validation, collapse)
    return {
        "backend": info.backend if info else None,
        "requested_backend": spec.backend,
        "fallback_reason": info.fallback_reason if info else None,
        "engine_path": info.engine_path if info else None,
        "engine": running_plan(info, environment),
        "precision": info.precision if info else None,
        "batch_size": info.batch_size if info else cfg.embedding.batch_size,
        "embedding_dim": info.embedding_dim if info else None,
        "input_spec": info.input_spec if info else None,
        "collapse": collapse.to_dict() if collapse is not None else None,
        "throughput_fps": bench["throughput_fps"] if bench else None,
        "latency_ms": bench["latency_ms"]["mean"] if bench else None,
        "vram_mb": bench["vram_mb"] if bench else None,
        "validation": validation,
        "environment": environment,
        "device": info.device if info else None,
        "model": {"path": info.model_path, "name": embedder.model.name, "sha256": embedder.model.sha256}
        if embedder is not None
        else None,
        "config": {
            "source": cfg.source,
            "backend": cfg.embedding.backend,
            "device": cfg.embedding.device,
            "allow_cpu_fallback": cfg.embedding.allow_cpu_fallback,
            "tensorrt_config": cfg.tensorrt.source,
            "engine_cache_dir": str(engine_cache_dir(cfg)),
        },
        "benchmark": bench,
        "error": load_error,
        "problems": [p.to_dict() for p in problems],
    }
