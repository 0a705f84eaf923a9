"""Build orchestration: request -> engine key + expected manifest -> cache -> reuse or (re)build.

``build_engine`` reuses a cached plan only when its manifest matches the request
(model hash, precision, arch, TensorRT version, batch profile, compatibility level)
and the plan's sha256 checks out; otherwise it rebuilds under the key's file lock
and says why. ``dry_run`` reports the same decisions without needing a GPU or
TensorRT. ``ensure_engine`` is the backend's entry: cache, then the S3 store (when
configured), then a build.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from arcface_trt.config import TensorrtSection
from arcface_trt.engine.cache import EngineCache
from arcface_trt.engine.key import EngineKey, Manifest, normalize_arch, trt_major_minor
from arcface_trt.errors import BackendUnavailableError, InputError, StoreError
from arcface_trt.model.inspect import ModelInfo, inspect_model

log = logging.getLogger("arcface_trt.engine")

Status = Callable[[str], None]


@dataclass(frozen=True)
class BuildRequest:
    """One engine to build or reuse: the model, the TensorRT settings and the CLI's extras."""

    onnx_path: Path
    settings: TensorrtSection
    #: Compute capability override (``90``, ``sm86``); default: the GPU's.
    arch: str | None = None
    #: Cache folder override; default ``settings.cache_dir``, else the user cache.
    cache_dir: Path | None = None
    force: bool = False


@dataclass
class BuildResult:
    """What ``build_engine`` did: where the plan is and whether it was built now."""

    key: EngineKey
    plan_path: Path
    manifest: Manifest
    #: ``cache`` (reused), ``store`` (fetched from S3) or ``built``.
    source: str
    #: Why a build happened (empty when reused).
    reasons: list[str] = field(default_factory=list)
    build_seconds: float = 0.0

    @property
    def from_cache(self) -> bool:
        """True when no build happened."""
        return self.source != "built"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record for ``arcface-trt build --json``."""
        return {
            "engine_name": self.key.plan_name,
            "plan_path": str(self.plan_path),
            "manifest_path": str(self.plan_path.with_suffix(".json")),
            "plan_bytes": self.plan_path.stat().st_size if self.plan_path.exists() else None,
            "from_cache": self.from_cache,
            "source": self.source,
            "rebuild_reasons": list(self.reasons),
            "build_seconds": round(self.build_seconds, 3),
            "manifest": self.manifest.to_dict(),
        }


def engine_cache(settings: TensorrtSection, cache_dir: str | Path | None = None) -> EngineCache:
    """The local engine cache chosen by the override, the config, or the user cache."""
    from arcface_trt.paths import engines_dir

    return EngineCache(Path(cache_dir or settings.cache_dir or engines_dir()))


def timing_cache_path(cache: EngineCache, key: EngineKey) -> Path:
    """``{cache}/trt{major}.{minor}/timing-sm{arch}.cache``: keyed like the engines."""
    return cache.root / key.folder / f"timing-{key.sm_arch}.cache"


def expected_fields(model: ModelInfo, settings: TensorrtSection, sm_arch: str, trt_version: str) -> dict[str, Any]:
    """The manifest values a cached plan must have to be reused for this request."""
    return {
        "onnx_sha256": model.sha256,
        "precision": settings.precision,
        "sm_arch": sm_arch,
        "trt_version": trt_version,
        "min_batch": settings.min_batch_size,
        "opt_batch": settings.opt_batch_size,
        "max_batch": settings.max_batch_size,
        "hardware_compatibility": settings.hardware_compatibility,
    }


def _check_settings(settings: TensorrtSection) -> None:
    if not settings.min_batch_size <= settings.opt_batch_size <= settings.max_batch_size:
        raise InputError(
            "batch sizes must satisfy min <= opt <= max, got "
            f"{settings.min_batch_size} <= {settings.opt_batch_size} <= {settings.max_batch_size}"
        )


def _input_chw(model: ModelInfo) -> tuple[int, int, int]:
    _, c, h, w = model.input_shape
    return int(c), int(h), int(w)


def _require_trt_and_gpu() -> tuple[ModuleType, Any]:
    """TensorRT and a GPU, or one error line naming everything that is missing."""
    from arcface_trt.engine import gpu, trt_api

    problems = []
    trt = None
    try:
        trt = trt_api.load()
    except BackendUnavailableError as exc:
        problems.append(str(exc))
    info, reason = gpu.try_gpu_info()
    if reason:
        problems.append(reason)
    if problems:
        raise BackendUnavailableError("cannot build or run a TensorRT engine here: " + "; ".join(problems))
    return trt, info


def dry_run(request: BuildRequest) -> dict[str, Any]:
    """What a build would do (name, paths, manifest fields, settings); needs neither GPU nor TensorRT."""
    from arcface_trt import __version__
    from arcface_trt.engine import gpu, trt_api

    settings = request.settings
    _check_settings(settings)
    model = inspect_model(request.onnx_path)
    trt = trt_api.installed()
    caps = trt_api.capabilities(trt) if trt is not None else None
    trt_version = caps.version if caps else None
    info, gpu_reason = gpu.try_gpu_info()
    sm_arch = normalize_arch(request.arch) if request.arch else (info.sm_arch if info else None)
    notes = []
    if trt_version is None:
        notes.append("TensorRT is not installed here: the trt<major>.<minor> folder is filled in at build time")
    if sm_arch is None:
        notes.append(f"no GPU detected ({gpu_reason}): pass --arch to name the engine")
    elif info and sm_arch != info.sm_arch:
        notes.append(f"--arch {sm_arch} differs from this GPU ({info.sm_arch}): a build here would be refused")

    cache = engine_cache(settings, request.cache_dir)
    folder = f"trt{trt_major_minor(trt_version)}" if trt_version else "trt<major>.<minor>"
    name = f"{model.name}-{settings.precision}-{sm_arch or 'sm<arch>'}.plan"
    cache_state: dict[str, Any] = {"status": "unknown", "reasons": ["TensorRT version or GPU arch unknown"]}
    if trt_version and sm_arch:
        key = EngineKey(model.name, settings.precision, sm_arch, trt_version)
        lookup = cache.lookup(key, expected_fields(model, settings, sm_arch, trt_version))
        cache_state = {"status": "hit" if lookup.hit else "miss", "reasons": list(lookup.reasons)}
        if request.force:
            cache_state["reasons"].append("--force: would rebuild")
    if caps is None:
        precision_path = {
            "fp32": "fp32-onnx",
            "fp16": "fp16-builder-flag on TensorRT 10.x; fp16-mixed-precision-onnx on 11.x",
            "int8": "int8-qdq-onnx (needs a QDQ model)",
        }[settings.precision]
    else:
        precision_path = {"fp32": "fp32-onnx", "fp16": f"fp16-{caps.fp16_path}", "int8": "int8-qdq-onnx"}[
            settings.precision
        ]
    manifest = {
        "model": model.name,
        **expected_fields(model, settings, sm_arch or None, trt_version),  # type: ignore[arg-type]
        "workspace_mb": settings.workspace_size_mb,
        "gpu_name": info.name if info else None,
        "tool_version": __version__,
        "input_name": model.input_name,
        "embedding_dim": model.embedding_dim,
    }
    return {
        "dry_run": True,
        "engine_name": name,
        "folder": folder,
        "cache_dir": str(cache.root),
        "plan_path": str(cache.root / folder / name),
        "manifest_path": str(cache.root / folder / (name[: -len(".plan")] + ".json")),
        "trt_version": trt_version,
        "trt_capabilities": caps.to_dict() if caps else None,
        "gpu": info.to_dict() if info else None,
        "sm_arch": sm_arch,
        "manifest": manifest,
        "build_settings": {
            "precision": settings.precision,
            "precision_path": precision_path,
            "min_batch": settings.min_batch_size,
            "opt_batch": settings.opt_batch_size,
            "max_batch": settings.max_batch_size,
            "workspace_mb": settings.workspace_size_mb,
            "hardware_compatibility": settings.hardware_compatibility,
            "timing_cache": (
                str(cache.root / folder / f"timing-{sm_arch or 'sm<arch>'}.cache") if settings.timing_cache else None
            ),
            "fp16_keep_fp32_nodes": list(settings.fp16_keep_fp32_nodes) if settings.fp16_keep_fp32_nodes else None,
            "dynamic_batch": model.dynamic_batch,
            "force": request.force,
        },
        "cache": cache_state,
        "notes": notes,
    }


def _try_fetch(settings: TensorrtSection, key: EngineKey, cache: EngineCache, status: Status) -> bool:
    """Ask the S3 store for the plan; False (logged) when it cannot help."""
    try:
        from arcface_trt.store import fetch_into_cache
    except ImportError as exc:
        log.warning("engine store not available (%s); building instead", exc)
        return False
    try:
        fetch_into_cache(settings, key, cache)
    except StoreError as exc:
        log.warning("could not fetch %s from the engine store: %s; building instead", key.plan_relpath, exc)
        return False
    status(f"fetched {key.plan_relpath} from s3://{settings.engine_s3_bucket}/{settings.engine_s3_prefix}")
    return True


def build_engine(request: BuildRequest, on_status: Status | None = None, allow_fetch: bool = False) -> BuildResult:
    """Reuse the cached plan when its manifest matches, else fetch (``allow_fetch``) or build it."""
    from arcface_trt import __version__
    from arcface_trt.engine import builder, trt_api
    from arcface_trt.model.dynamic_batch import ensure_dynamic_batch

    status = on_status or (lambda message: log.info("%s", message))
    settings = request.settings
    _check_settings(settings)
    model = inspect_model(request.onnx_path)
    trt, info = _require_trt_and_gpu()
    trt_version = trt_api.version(trt)
    sm_arch = info.sm_arch
    if request.arch and normalize_arch(request.arch) != sm_arch:
        raise InputError(
            f"--arch {normalize_arch(request.arch)} differs from this GPU ({info.name}, {sm_arch}): "
            "TensorRT builds for the GPU it runs on; build on such a GPU, or use --dry-run"
        )
    key = EngineKey(model.name, settings.precision, sm_arch, trt_version)
    expected = expected_fields(model, settings, sm_arch, trt_version)
    cache = engine_cache(settings, request.cache_dir)

    lookup = cache.lookup(key, expected)
    if lookup.hit and not request.force:
        return BuildResult(key, lookup.plan_path, lookup.manifest, "cache")  # type: ignore[arg-type]
    if allow_fetch and settings.engine_s3_bucket and not request.force and _try_fetch(settings, key, cache, status):
        lookup = cache.lookup(key, expected)
        if lookup.hit:
            return BuildResult(key, lookup.plan_path, lookup.manifest, "store")  # type: ignore[arg-type]
        log.warning("the fetched %s does not match this request: %s", key.plan_name, "; ".join(lookup.reasons))

    with cache.lock(key):
        # Another process may have built it while this one waited for the lock.
        lookup = cache.lookup(key, expected)
        if lookup.hit and not request.force:
            return BuildResult(key, lookup.plan_path, lookup.manifest, "cache")  # type: ignore[arg-type]
        reasons = ["--force"] if request.force else list(lookup.reasons)
        status(f"building {key.plan_relpath}: {'; '.join(reasons)}")

        work_dir = cache.root / "onnx"
        source = ensure_dynamic_batch(model, work_dir)
        prepared = builder.prepare_onnx(
            trt, source, settings.precision, work_dir, model.sha256, settings.fp16_keep_fp32_nodes
        )
        build_settings = builder.BuildSettings(
            precision=settings.precision,
            min_batch=settings.min_batch_size,
            opt_batch=settings.opt_batch_size,
            max_batch=settings.max_batch_size,
            workspace_mb=settings.workspace_size_mb,
            hardware_compatibility=settings.hardware_compatibility,
            timing_cache_path=timing_cache_path(cache, key) if settings.timing_cache else None,
        )
        trt_log = trt_api.TrtLog(trt)
        start = time.perf_counter()
        plan = builder.build_serialized_plan(trt, prepared, _input_chw(model), build_settings, trt_log, status)
        seconds = time.perf_counter() - start
        manifest = Manifest(
            model=model.name,
            precision=settings.precision,
            sm_arch=sm_arch,
            trt_version=trt_version,
            onnx_sha256=model.sha256,
            plan_sha256=hashlib.sha256(plan).hexdigest(),
            min_batch=settings.min_batch_size,
            opt_batch=settings.opt_batch_size,
            max_batch=settings.max_batch_size,
            workspace_mb=settings.workspace_size_mb,
            hardware_compatibility=settings.hardware_compatibility,
            gpu_name=info.name,
            tool_version=__version__,
            plan_bytes=len(plan),
            build_seconds=round(seconds, 3),
            input_name=model.input_name,
            embedding_dim=model.embedding_dim,
            extra={
                "precision_path": prepared.precision_path,
                "fp16_keep_fp32_nodes": list(settings.fp16_keep_fp32_nodes) if settings.fp16_keep_fp32_nodes else None,
                "timing_cache": settings.timing_cache,
                "dynamic_batch_rewritten": not model.dynamic_batch,
                "compute_capability": info.compute_capability,
            },
        )
        path = cache.store(key, plan, manifest)
    status(f"stored {path} ({len(plan) / 1e6:.1f} MB, built in {seconds:.1f} s)")
    return BuildResult(key, path, manifest, "built", reasons, seconds)


def request_for_model(model_path: str | Path, settings: TensorrtSection) -> BuildRequest:
    """The request the ``tensorrt`` backend makes for its configured model."""
    return BuildRequest(onnx_path=Path(model_path), settings=settings)


def ensure_engine(model_path: str | Path, settings: TensorrtSection, on_status: Status | None = None) -> BuildResult:
    """Cached plan, else fetched from the store (when configured), else built."""
    return build_engine(request_for_model(model_path, settings), on_status, allow_fetch=True)
