"""Build orchestration as a chain of small steps: resolve -> look up -> obtain (fetch | build) -> record.

- :func:`resolve`: what a request means here (the precision plan, the engine key, the
  manifest values a cached plan must have).
- look up: :meth:`ArtifactCache.lookup` reuses a cached plan only when its manifest matches
  (model hash, precision, arch, TensorRT version, batch profile, compatibility options) and
  the plan's sha256 checks out. For the backend (``accept_compatible``) a compatible plan of
  the cache or the store serves too, exact first (:meth:`~arcface_trt.artifacts.compat.PlanRequest.candidates`).
- obtain: an injected :class:`PlanSource` (the S3 engine store, when configured) or a build
  under the key's file lock, whose engine must then prove its precision (:func:`check_precision`:
  the engine inspector's layers against the label; a mislabelled plan is never stored);
  :func:`record` writes the manifest of a built plan.
- load: :func:`load_options` says how the plan found is loaded (refit a stripped plan from the ONNX
  it was parsed from, re-derived here; host code or the lean runtime of a version-compatible one).

:func:`dry_run` reports the same decisions without needing a GPU or TensorRT.
:func:`ensure_engine` is the tensorrt backend's entry; :func:`find_engine` only looks up and
fetches. This module never imports the store (it is handed in as a plan source), nor the drift-budget
search: a budget's plan is built from the search's answer, handed in as :class:`SearchedSource`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from arcface_trt.artifacts.cache import ArtifactCache, CacheLookup
from arcface_trt.artifacts.compat import EXACT, Match, PlanRequest, runtimes_text
from arcface_trt.artifacts.key import EngineKey, Variant, engine_stem, normalize_arch, trt_major_minor
from arcface_trt.artifacts.manifest import Manifest
from arcface_trt.artifacts.portability import AMPERE_PLUS, Portability
from arcface_trt.config import TensorrtSection
from arcface_trt.engine import builder, gpu, inspection, precision_check, trt_api
from arcface_trt.engine.progress import OnProgress
from arcface_trt.engine.runtime import LoadOptions
from arcface_trt.errors import BackendUnavailableError, CheckFailedError, InputError, StoreError
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.model.inspect import ModelInfo, inspect_model, load_onnx
from arcface_trt.paths import engine_cache_root
from arcface_trt.precision import fp16
from arcface_trt.precision.plan import PrecisionPlan, describe_known_paths, plans_for_known_tensorrt
from arcface_trt.version import __version__

log = logging.getLogger("arcface_trt.engine")

Status = Callable[[str], None]


class PlanSource(Protocol):
    """Where plans come from besides the local cache (the S3 engine store); failures are :class:`StoreError`."""

    def available(self) -> Iterable[EngineKey]:
        """The keys of the complete plans (plan and manifest) it holds."""

    def fetch(self, key: EngineKey, cache: ArtifactCache, expected: dict[str, Any]) -> str:
        """Put the plan of ``key`` into ``cache`` when its manifest has the ``expected`` fields; say where from."""


@dataclass(frozen=True)
class SearchedSource:
    """What a drift-budget search (:mod:`arcface_trt.budget`, which runs it) chose for a TensorRT build."""

    #: int8: the QDQ model to build; None: the model itself (fp16 converts it, keeping ``keep_fp32_nodes``).
    onnx_path: Path | None
    #: fp16: every node kept in fp32 (the embedding head and the search's nodes); None for int8.
    keep_fp32_nodes: tuple[str, ...] | None
    #: The manifest's ``drift_budget`` record: what was searched for and what was found.
    record: dict[str, Any]


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
    #: ``precision.keep_fp32_nodes`` (fp16 from a mixed-precision ONNX); None keeps the embedding head.
    keep_fp32_nodes: tuple[str, ...] | None = None
    #: Explicit input settings; the input spec is recorded in the manifest (the host preprocesses, the plan
    #: does not depend on it).
    inputs: InputSettings = field(default_factory=InputSettings)
    #: Take a compatible plan (another weights form, ``sm80+``, version-compatible) when the exact one is
    #: missing (the backend); ``build`` asks for the exact plan.
    accept_compatible: bool = False
    #: The plan of a drift budget (its name carries the budget): served from the cache or the store, or
    #: built from ``searched``. None: no budget.
    drift_budget: float | None = None
    #: What a cached budgeted plan's ``drift_budget`` record must hold (the crop sets searched on).
    budget_match: dict[str, Any] = field(default_factory=dict)
    #: The search's answer, when the plan is to be built.
    searched: SearchedSource | None = None


@dataclass
class BuildResult:
    """What ``build_engine`` did: where the plan is, whether it was built now, and how it is loaded."""

    key: EngineKey
    plan_path: Path
    manifest: Manifest
    #: ``cache`` (reused), ``store`` (fetched from S3) or ``built``.
    source: str
    #: Why a build happened (empty when reused).
    reasons: list[str] = field(default_factory=list)
    build_seconds: float = 0.0
    #: ``exact``, ``hardware-compatible`` or ``version-compatible`` (:mod:`arcface_trt.artifacts.compat`).
    match: str = EXACT
    #: The plan taken and why it serves, when it is not the very plan asked for.
    match_note: str | None = None
    load: LoadOptions = field(default_factory=LoadOptions)

    @property
    def from_cache(self) -> bool:
        """True when no build happened."""
        return self.source != "built"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record for ``arcface-trt build --json``."""
        return {
            "engine_name": self.key.name,
            "plan_path": str(self.plan_path),
            "manifest_path": str(self.plan_path.with_suffix(".json")),
            "plan_bytes": self.plan_path.stat().st_size if self.plan_path.exists() else None,
            "from_cache": self.from_cache,
            "source": self.source,
            "match": self.match,
            "match_note": self.match_note,
            "rebuild_reasons": list(self.reasons),
            "build_seconds": round(self.build_seconds, 3),
            "manifest": self.manifest.to_dict(),
        }


def engine_cache(settings: TensorrtSection, cache_dir: str | Path | None = None) -> ArtifactCache:
    """The local engine cache chosen by the override, the config, or the user cache."""
    return ArtifactCache(engine_cache_root(settings.cache_dir, cache_dir))


def timing_cache_name(gpu_name: str | None, trt_version: str | None) -> str:
    """``timing-{gpu}-{TensorRT version}.cache``: one file per GPU model and full TensorRT version.

    Kernel timings are specific to the device and the TensorRT (and CUDA) version: GPUs of
    one compute capability (A10, A40, RTX 3090) or two patch releases must not share a file.
    """
    gpu = re.sub(r"[^a-z0-9]+", "-", (gpu_name or "<gpu>").lower()).strip("-") or "gpu"
    return f"timing-{gpu}-{trt_version or '<version>'}.cache"


def _model_fields(model: ModelInfo, settings: TensorrtSection) -> dict[str, Any]:
    """What any plan serving this request must have been built from and for: the model, precision, batch profile."""
    return {
        "onnx_sha256": model.sha256,
        "precision": settings.precision,
        "min_batch": settings.min_batch_size,
        "opt_batch": settings.opt_batch_size,
        "max_batch": settings.max_batch_size,
    }


def expected_fields(
    model: ModelInfo, settings: TensorrtSection, sm_arch: str | None, trt_version: str | None
) -> dict[str, Any]:
    """The manifest values a cached plan must have to be reused for this request (``sm_arch``: the plan's name)."""
    fields = _model_fields(model, settings)
    return {
        "onnx_sha256": fields.pop("onnx_sha256"),
        "precision": fields.pop("precision"),
        "sm_arch": sm_arch,
        "trt_version": trt_version,
        **fields,
        **Portability.from_settings(settings).manifest_fields(),
    }


@dataclass(frozen=True)
class ResolvedBuild:
    """What a request means on this machine: the plan of its precision, its key, the manifest it needs."""

    request: BuildRequest
    model: ModelInfo
    plan: PrecisionPlan
    key: EngineKey
    expected: dict[str, Any]
    #: The request as the compatibility rules see it (its candidates, exact first).
    wanted: PlanRequest

    def expected_of(self, match: Match) -> dict[str, Any]:
        """The manifest values a plan taken for ``match`` must have: the exact plan's, or the compatible one's."""
        if match.key == self.key:
            return self.expected
        return {**_model_fields(self.model, self.request.settings), **match.expected()}


def plan_request(
    model: ModelInfo, settings: TensorrtSection, plan: PrecisionPlan, gpu_arch: str, trt_version: str
) -> PlanRequest:
    """The plan ``settings`` ask for, built by ``plan``'s recipe, for a GPU arch and a TensorRT version."""
    portability = Portability.from_settings(settings)
    return PlanRequest(model.name, settings.precision, plan.recipe, portability, gpu_arch, trt_version)


def resolve(
    request: BuildRequest, model: ModelInfo, plan: PrecisionPlan, sm_arch: str, trt_version: str
) -> ResolvedBuild:
    """The key and the expected manifest of ``request`` for this GPU's arch and a full TensorRT version."""
    wanted = plan_request(model, request.settings, plan, sm_arch, trt_version)
    key = wanted.key
    expected = expected_fields(model, request.settings, key.sm_arch, trt_version)
    if request.drift_budget is not None:
        expected["drift_budget"] = {"budget": request.drift_budget, **request.budget_match}
    return ResolvedBuild(request, model, plan, key, expected, wanted)


def _input_chw(model: ModelInfo) -> tuple[int, int, int]:
    _, c, h, w = model.input_shape
    return int(c), int(h), int(w)


def _require_trt_and_gpu() -> gpu.GpuInfo:
    """The GPU when TensorRT and a GPU are both here, or one error line naming everything that is missing."""
    problems = []
    try:
        trt_api.version()
    except BackendUnavailableError as exc:
        problems.append(str(exc))
    info, reason = gpu.try_gpu_info()
    if reason:
        problems.append(reason)
    if problems or info is None:
        raise BackendUnavailableError("cannot build or run a TensorRT engine here: " + "; ".join(problems))
    return info


def detect_sm_arch() -> str:
    """This machine's GPU arch, or an :class:`InputError` asking for ``--arch``."""
    info, reason = gpu.try_gpu_info()
    if info is None:
        raise InputError(
            f"cannot detect this machine's GPU arch ({' '.join(str(reason).split())}); "
            "pass --arch (e.g. 90 for H100, 89 for L4)"
        )
    return info.sm_arch


def detect_trt_version() -> str:
    """The installed TensorRT's version, or an :class:`InputError` asking for ``--trt-version``."""
    try:
        return trt_api.version()
    except BackendUnavailableError as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"cannot detect the TensorRT version ({reason}); pass --trt-version (e.g. 10.16)") from None


def _quantized_source(model: ModelInfo) -> str | None:
    """The model's path when it is already quantized (the precision plan treats it as its own int8 model)."""
    return model.path if model.quantized else None


def dry_run(request: BuildRequest) -> dict[str, Any]:
    """What a build would do (name, paths, manifest fields, settings); needs neither GPU nor TensorRT."""
    settings = request.settings
    model = inspect_model(request.onnx_path, request.inputs)
    caps = trt_api.capabilities() if trt_api.installed() else None
    trt_version = caps.version if caps else None
    quantized = _quantized_source(model)
    if caps is not None:
        plans = {
            caps.version: PrecisionPlan.for_target(
                settings.precision, "gpu", caps, request.keep_fp32_nodes, quantized, request.drift_budget
            )
        }
    else:
        plans = plans_for_known_tensorrt(settings.precision, request.keep_fp32_nodes, quantized, request.drift_budget)
    model.report_input_spec()
    info, gpu_reason = gpu.try_gpu_info()
    sm_arch = normalize_arch(request.arch) if request.arch else (info.sm_arch if info else None)
    notes = []
    if trt_version is None:
        notes.append("TensorRT is not installed here: the trt<major>.<minor> folder is filled in at build time")
    if sm_arch is None:
        notes.append(f"no GPU detected ({gpu_reason}): pass --arch to name the engine")
    elif info and sm_arch != info.sm_arch:
        notes.append(f"--arch {sm_arch} differs from this GPU ({info.sm_arch}): a build here would be refused")
    for plan in plans.values():
        notes += [n for n in plan.notes if n not in notes]
    portability = Portability.from_settings(settings)
    notes += portability_notes(portability, sm_arch, trt_version)
    plan_arch = portability.plan_arch(sm_arch)

    cache = engine_cache(settings, request.cache_dir)
    folder = f"trt{trt_major_minor(trt_version)}" if trt_version else "trt<major>.<minor>"
    names = {
        engine_stem(
            model.name, settings.precision, Variant.of({**plan.recipe, **portability.recipe}), plan_arch or "sm<arch>"
        )
        for plan in plans.values()
    }
    stem = names.pop() if len(names) == 1 else " | ".join(sorted(names))
    cache_state: dict[str, Any] = {"status": "unknown", "reasons": ["TensorRT version or GPU arch unknown"]}
    if trt_version and sm_arch:
        resolved = resolve(request, model, next(iter(plans.values())), sm_arch, trt_version)
        lookup = cache.lookup(resolved.key, resolved.expected)
        cache_state = {"status": "hit" if lookup.hit else "miss", "reasons": list(lookup.reasons)}
        if request.force:
            cache_state["reasons"].append("--force: would rebuild")
    manifest = {
        "model": model.name,
        **expected_fields(model, settings, plan_arch, trt_version),
        "workspace_mb": settings.workspace_size_mb,
        "gpu_name": info.name if info else None,
        "tool_version": __version__,
        "input_name": model.input_name,
        "embedding_dim": model.embedding_dim,
        "input_spec": model.input_spec.to_dict(),
    }
    return {
        "dry_run": True,
        "engine_name": f"{stem}.plan",
        "folder": folder,
        "cache_dir": str(cache.root),
        "plan_path": str(cache.root / folder / f"{stem}.plan"),
        "manifest_path": str(cache.root / folder / f"{stem}.json"),
        "trt_version": trt_version,
        "trt_capabilities": caps.to_dict() if caps else None,
        "gpu": info.to_dict() if info else None,
        "sm_arch": sm_arch,
        "manifest": manifest,
        "build_settings": {
            "precision": settings.precision,
            "precision_path": describe_known_paths(plans),
            "precision_plan": {shape: plan.to_dict() for shape, plan in plans.items()},
            "min_batch": settings.min_batch_size,
            "opt_batch": settings.opt_batch_size,
            "max_batch": settings.max_batch_size,
            "workspace_mb": settings.workspace_size_mb,
            "hardware_compatibility": settings.hardware_compatibility,
            "portability": portability.to_dict(),
            "timing_cache": (
                str(cache.root / folder / timing_cache_name(info.name if info else None, trt_version))
                if settings.timing_cache
                else None
            ),
            "dynamic_batch": model.dynamic_batch,
            "precision_check": precision_check.rule(settings.precision, settings.min_fp16_share),
            "force": request.force,
        },
        "cache": cache_state,
        "notes": notes,
    }


def portability_notes(portability: Portability, sm_arch: str | None, trt_version: str | None) -> list[str]:
    """What a dry run says of the options: where the plan will load, and what loading it takes."""
    notes = []
    if portability.hardware_compatibility == AMPERE_PLUS:
        notes.append("hardware_compatibility ampere_plus: named sm80+, loads on every GPU of compute capability 8.0+")
        if sm_arch:
            try:
                portability.check_gpu(sm_arch)
            except InputError as exc:
                notes.append(str(exc))
    if portability.strip_weights:
        notes.append(
            "weights stripped: the plan keeps what TensorRT needs for speed (smaller, not weightless) and is "
            "refit at load from the ONNX it was parsed from, re-derived from this model"
        )
    if portability.version_compatible:
        loads_on = (
            runtimes_text(trt_version)
            if trt_version
            else "the TensorRT that builds it and the later versions NVIDIA supports (a 10.x plan: later 10.x "
            "and 11.x; an 11.x plan: later 11.x)"
        )
        notes.append(f"version-compatible: loads on {loads_on}")
        if portability.exclude_lean_runtime:
            notes.append(
                "lean runtime excluded: loading needs tensorrt.lean_runtime_library, the libnvinfer_lean.so of the "
                "TensorRT that builds it (Runtime.load_runtime)"
            )
    return notes


def _try_fetch(
    source: PlanSource, key: EngineKey, cache: ArtifactCache, expected: dict[str, Any], status: Status
) -> bool:
    """Ask the plan source (the engine store) for the plan of ``key``; False (logged) when it cannot help."""
    try:
        where = source.fetch(key, cache, expected)
    except StoreError as exc:
        log.warning("could not fetch %s from the engine store: %s", key.relpath, exc)
        return False
    status(f"fetched {key.relpath} from {where}")
    return True


@dataclass(frozen=True)
class CheckedPrecision:
    """What the engine inspector says a built plan's layers run in, and the gate's verdict."""

    summary: precision_check.PrecisionSummary
    verdict: precision_check.PrecisionVerdict


def check_precision(
    resolved: ResolvedBuild, prepared: builder.PreparedOnnx, data: bytes, load: LoadOptions
) -> CheckedPrecision:
    """Load the plan just built (as ``load`` says), summarise its layers' precisions, and fail (CheckFailedError)
    a mislabelled one."""
    settings = resolved.request.settings
    facts = inspection.engine_facts(data, trt_api.TrtLog(), "the engine just built", settings.opt_batch_size, load)
    summary = precision_check.summarize(facts.layers, settings.precision, prepared.kept_fp32_nodes)
    verdict = precision_check.judge(summary, settings.min_fp16_share)
    if not verdict.passed:
        head = fp16.kept_fp32_nodes(load_onnx(resolved.model.path), None)
        advice = precision_check.advice(resolved.plan, summary, head)
        message = precision_check.failure_message(summary, verdict, advice)
        raise CheckFailedError(f"{message}. The plan {resolved.key.name} was discarded (not cached, not uploaded)")
    return CheckedPrecision(summary, verdict)


def lean_runtime_library(settings: TensorrtSection, builder_version: str) -> Path:
    """The lean runtime library a plan built without its lean runtime is loaded through; InputError when none is set."""
    if not settings.lean_runtime_library:
        raise InputError(
            f"a version-compatible plan built without its lean runtime (exclude_lean_runtime) is loaded through "
            f"the lean runtime library of the TensorRT that built it ({builder_version}): set "
            "tensorrt.lean_runtime_library (--lean-runtime-library) to its libnvinfer_lean.so"
        )
    path = Path(settings.lean_runtime_library).expanduser()
    if not path.is_file():
        raise InputError(f"tensorrt.lean_runtime_library {path} is not a file")
    return path


def load_options(
    portability: Portability,
    settings: TensorrtSection,
    builder_version: str,
    refit_onnx: Path | None = None,
    parsed_sha256: str | None = None,
) -> LoadOptions:
    """How a plan built with ``portability`` by TensorRT ``builder_version`` is loaded here.

    A stripped plan is refit from ``refit_onnx`` (the ONNX it was parsed from, re-derived here), which must
    have ``parsed_sha256``; a version-compatible one runs its embedded lean runtime (host code from the
    plan) or, built without it, the configured lean runtime library.
    """
    if portability.strip_weights and refit_onnx is None:
        raise InputError("a weight-stripped plan is loaded with the ONNX it is refit from")
    lean = lean_runtime_library(settings, builder_version) if portability.exclude_lean_runtime else None
    host_code = portability.version_compatible and lean is None
    return LoadOptions(refit_onnx, parsed_sha256 if refit_onnx else None, host_code, lean)


def manifest_load_options(
    manifest: Manifest, onnx_path: str | Path | None, settings: TensorrtSection, cache: ArtifactCache
) -> LoadOptions:
    """How the plan of ``manifest`` is loaded here (``inspect``); a stripped one is refit from the ONNX derived
    from ``onnx_path``, which must be the model it was built from."""
    portability = Portability.of_key(manifest.key)
    refit = None
    if portability.strip_weights:
        if onnx_path is None:
            raise InputError("a weight-stripped plan is loaded with the model it was built from")
        model = inspect_model(onnx_path)
        if model.sha256 != manifest.onnx_sha256:
            raise InputError(
                f"{onnx_path} (sha256 {model.sha256[:16]}...) is not the model the plan was built from "
                f"(sha256 {manifest.onnx_sha256[:16]}...): a stripped plan is refit only from its own model"
            )
        recipe = manifest.recipe if isinstance(manifest.recipe, dict) else {}
        keep = recipe.get("keep")
        plan = PrecisionPlan.for_target(
            manifest.precision, "gpu", trt_api.capabilities(), tuple(map(str, keep)) if isinstance(keep, list) else None
        )
        refit = builder.parsed_onnx(plan, model, cache.root / "onnx").path
    return load_options(portability, settings, manifest.trt_version, refit, manifest.parsed_onnx_sha256)


def _io_record(model: ModelInfo) -> dict[str, Any]:
    """The model's input and output as the engine has them (batch -1: dynamic)."""
    return {
        "input": {"name": model.input_name, "shape": [-1, *_input_chw(model)], "dtype": model.input_dtype},
        "output": {"name": model.output_name, "shape": [-1, model.embedding_dim], "dtype": model.output_dtype},
    }


def record(
    resolved: ResolvedBuild,
    info: gpu.GpuInfo,
    built: builder.BuiltPlan,
    seconds: float,
    checked: CheckedPrecision,
    prepared: builder.PreparedOnnx,
) -> Manifest:
    """The manifest of a plan just built for ``resolved`` on the GPU ``info`` from the ``prepared`` ONNX."""
    settings, model, plan = resolved.request.settings, resolved.model, resolved.plan
    plan_bytes = built.data
    searched = resolved.request.searched
    # A drift budget's plan records its search (which holds the fields the request matches on).
    expected = {**resolved.expected, **({"drift_budget": searched.record} if searched else {})}
    return Manifest(
        model=model.name,
        **expected,
        plan_sha256=hashlib.sha256(plan_bytes).hexdigest(),
        workspace_mb=settings.workspace_size_mb,
        gpu_name=info.name,
        tool_version=__version__,
        plan_bytes=len(plan_bytes),
        build_seconds=round(seconds, 3),
        input_name=model.input_name,
        embedding_dim=model.embedding_dim,
        input_spec=model.input_spec.to_dict(),
        recipe={**plan.recipe, **resolved.wanted.portability.recipe},
        extra={
            "precision_path": plan.path,
            "precision_plan": plan.to_dict(),
            "timing_cache": built.timing_cache,
            "timing_cache_entries_added": built.timing_entries_added,
            "dynamic_batch_rewritten": not model.dynamic_batch,
            "compute_capability": info.compute_capability,
            "io_tensors": _io_record(model),
        },
        precision_summary=checked.summary.to_dict(),
        precision_check=checked.verdict.to_dict(),
        parsed_onnx_sha256=prepared.sha256,
    )


def _build(
    resolved: ResolvedBuild, cache: ArtifactCache, info: gpu.GpuInfo, status: Status, on_progress: OnProgress | None
) -> tuple[Path, Manifest, float, LoadOptions]:
    """Build the plan of ``resolved`` and store it with its manifest (the caller holds the key's lock)."""
    settings, model, key = resolved.request.settings, resolved.model, resolved.key
    portability = resolved.wanted.portability
    searched = resolved.request.searched
    if searched is not None and searched.keep_fp32_nodes is not None:  # fp16: the budget's nodes kept in fp32
        resolved = replace(resolved, plan=resolved.plan.with_kept_nodes(searched.keep_fp32_nodes))
    # int8: the QDQ model the budget's search quantized, instead of the model itself.
    source = searched.onnx_path if searched is not None else None
    prepared = builder.parsed_onnx(resolved.plan, model, cache.root / "onnx", source)
    build_settings = builder.BuildSettings(
        min_batch=settings.min_batch_size,
        opt_batch=settings.opt_batch_size,
        max_batch=settings.max_batch_size,
        workspace_mb=settings.workspace_size_mb,
        portability=portability,
        timing_cache_path=(
            cache.root / key.folder / timing_cache_name(info.name, resolved.expected["trt_version"])
            if settings.timing_cache
            else None
        ),
    )
    start = time.perf_counter()
    built = builder.build_serialized_plan(
        prepared, _input_chw(model), build_settings, trt_api.TrtLog(), status, on_progress
    )
    seconds = time.perf_counter() - start
    refit = prepared.path if portability.strip_weights else None
    load = load_options(portability, settings, trt_api.version(), refit, prepared.sha256)
    checked = check_precision(resolved, prepared, built.data, load)
    status(f"precision: {checked.verdict.reason}")
    manifest = record(resolved, info, built, seconds, checked, prepared)
    path = cache.store(key, built.data, manifest)
    status(f"stored {path} ({len(built.data) / 1e6:.1f} MB, built in {seconds:.1f} s)")
    return path, manifest, seconds, load


def _found(
    resolved: ResolvedBuild, cache: ArtifactCache, match: Match, lookup: CacheLookup, source: str, status: Status
) -> BuildResult:
    """The result of taking an existing plan for ``match`` (saying so when it is not the very plan asked for)."""
    manifest = lookup.manifest
    note = None if match.key == resolved.key else match.describe()
    if note is not None:
        (status if match.kind == EXACT else log.warning)(f"taking {note} from the {source}")
    portability = Portability.of_key(match.key)
    refit = builder.parsed_onnx(resolved.plan, resolved.model, cache.root / "onnx").path if match.key.stripped else None
    settings = resolved.request.settings
    load = load_options(portability, settings, manifest.trt_version, refit, manifest.parsed_onnx_sha256)
    return BuildResult(match.key, lookup.path, manifest, source, match=match.kind, match_note=note, load=load)


def _existing(
    resolved: ResolvedBuild, cache: ArtifactCache, plans: PlanSource | None, status: Status
) -> BuildResult | None:
    """A cached or stored plan that serves the request, else None.

    The exact plan; with ``accept_compatible`` every plan of the cache or the store that serves the request,
    best first (:meth:`PlanRequest.candidates`: the exact one first), each looked up locally before it is fetched.
    """
    local: set[EngineKey] = {resolved.key}
    remote: set[EngineKey] = set()
    if resolved.request.accept_compatible:
        local |= set(cache.cached_keys())
        if plans is not None:
            try:
                remote = set(plans.available())
            except StoreError as exc:
                log.warning("could not list the engine store: %s", exc)
    elif plans is not None:
        remote = {resolved.key}  # asked for by name: the store says whether it has it
    for match in resolved.wanted.candidates(local | remote):
        expected = resolved.expected_of(match)
        found, source = cache.lookup(match.key, expected), "cache"
        if not found.hit and plans is not None and match.key in remote:
            source = "store"
            if _try_fetch(plans, match.key, cache, expected, status):
                found = cache.lookup(match.key, expected)
                if not found.hit:
                    log.warning(
                        "the fetched %s does not serve this request: %s", match.key.name, "; ".join(found.reasons)
                    )
        if found.hit and match.accepts(found.manifest.trt_version):
            return _found(resolved, cache, match, found, source, status)
    return None


@dataclass(frozen=True)
class _Here:
    """A request resolved on this machine: its GPU, its build, and the cache it goes to."""

    info: gpu.GpuInfo
    resolved: ResolvedBuild
    cache: ArtifactCache


def _resolve_here(request: BuildRequest) -> _Here:
    model = inspect_model(request.onnx_path, request.inputs)
    info = _require_trt_and_gpu()
    if request.arch and normalize_arch(request.arch) != info.sm_arch:
        raise InputError(
            f"--arch {normalize_arch(request.arch)} differs from this GPU ({info.name}, {info.sm_arch}): "
            "TensorRT builds for the GPU it runs on; build on such a GPU, or use --dry-run"
        )
    plan = PrecisionPlan.for_target(
        request.settings.precision,
        "gpu",
        trt_api.capabilities(),
        request.keep_fp32_nodes,
        quantized_source=_quantized_source(model),
        drift_budget=request.drift_budget,
    )
    model.report_input_spec()
    resolved = resolve(request, model, plan, info.sm_arch, trt_api.version())
    if request.drift_budget is not None and resolved.wanted.portability.strip_weights:
        raise InputError(
            "a drift budget's plan cannot be weight-stripped: it is refit from the ONNX its search made, "
            "which cannot be derived again from the model alone; drop --strip-weights"
        )
    return _Here(info, resolved, engine_cache(request.settings, request.cache_dir))


def find_engine(
    request: BuildRequest, on_status: Status | None = None, fetcher: PlanSource | None = None
) -> BuildResult | None:
    """The plan :func:`build_engine` would reuse or fetch, or None when it would have to build one."""
    status = on_status or (lambda message: log.info("%s", message))
    here = _resolve_here(request)
    return None if request.force else _existing(here.resolved, here.cache, fetcher, status)


def build_engine(
    request: BuildRequest,
    on_status: Status | None = None,
    fetcher: PlanSource | None = None,
    on_progress: OnProgress | None = None,
) -> BuildResult:
    """Reuse the cached plan when its manifest matches, else fetch it (from a ``fetcher``) or build it.

    With ``request.accept_compatible`` a compatible plan of the cache or the store serves too (exact
    first). ``on_status`` gets one-line notes; ``on_progress`` TensorRT's build phases and steps. A built
    plan whose layers do not carry the requested precision is a :class:`CheckFailedError` and is not stored.
    A drift budget's plan is built only from its search's answer (``request.searched``); without one it is
    served from the cache or the store, else an InputError names the command that builds it.
    """
    status = on_status or (lambda message: log.info("%s", message))
    here = _resolve_here(request)
    resolved, cache, key, info = here.resolved, here.cache, here.resolved.key, here.info
    if not request.force:
        found = _existing(resolved, cache, fetcher, status)
        if found is not None:
            return found
    if request.drift_budget is not None and request.searched is None:
        raise InputError(
            f"no {request.settings.precision} plan for drift budget {request.drift_budget:g} in the cache or the "
            f"store ({key.name}); build it with: arcface-trt build --precision {request.settings.precision} "
            f"--drift-budget {request.drift_budget:g}"
        )
    portability = resolved.wanted.portability
    portability.check_gpu(info.sm_arch)
    if portability.exclude_lean_runtime:
        lean_runtime_library(request.settings, trt_api.version())  # needed to check the plan, so asked for first
    with cache.lock(key):
        # Another process may have built it while this one waited for the lock.
        lookup = cache.lookup(key, resolved.expected)
        if lookup.hit and not request.force:
            return _found(resolved, cache, Match(key, EXACT, key, trt_api.version()), lookup, "cache", status)
        reasons = ["--force"] if request.force else list(lookup.reasons)
        status(f"building {key.relpath}: {'; '.join(reasons)}")
        path, manifest, seconds, load = _build(resolved, cache, info, status, on_progress)
    return BuildResult(key, path, manifest, "built", reasons, seconds, load=load)


def ensure_engine(
    model_path: str | Path,
    settings: TensorrtSection,
    keep_fp32_nodes: tuple[str, ...] | None = None,
    on_status: Status | None = None,
    fetcher: PlanSource | None = None,
    inputs: InputSettings | None = None,
    drift_budget: float | None = None,
) -> BuildResult:
    """The tensorrt backend's entry: the cached plan (or a compatible one), else fetched (``fetcher``), else built.

    ``drift_budget``: the plan a drift-budget build made (served from the cache or the store only).
    """
    request = BuildRequest(
        onnx_path=Path(model_path),
        settings=settings,
        keep_fp32_nodes=keep_fp32_nodes,
        inputs=inputs or InputSettings(),
        accept_compatible=True,
        drift_budget=drift_budget,
    )
    return build_engine(request, on_status, fetcher)
