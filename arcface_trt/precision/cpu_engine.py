"""CPU "engines": precision-transformed ONNX models with ONNX Runtime's graph optimisations saved.

``{cache}/cpu/{model}-{precision}-cpu.onnx`` plus ``{same name}.json`` (the manifest), kept
in the one artifact cache beside the TensorRT plans: reused only when the manifest
matches what is asked for (source model sha256, precision, ONNX Runtime version,
calibration settings and the input spec calibrated through, kept-fp32 nodes) and the file's
sha256 matches the manifest; otherwise rebuilt under the key's lock. The transform comes from the
:class:`~arcface_trt.precision.plan.PrecisionPlan` of the precision for the ``cpu`` target; an
already quantized (QDQ) model is its own int8 engine (optimised, not quantized again).
Every manifest records the input spec; fp32 and fp16 engines do not depend on it (preprocessing
runs on the host), so only an int8 engine calibrated through it is matched on it.

An engine made for a drift budget (``{model}-{precision}-budget-{recipe8}-cpu.onnx``) is built by the
search in :mod:`arcface_trt.budget` through :func:`resolve_cpu_engine` and
:meth:`ResolvedCpuEngine.store`; :func:`ensure_cpu_engine` serves it from the cache only.

The saved optimisation level is ``extended`` (operator fusions, QDQ -> integer
kernels), not ``all``: ORT's ``all`` adds layout transforms tied to the CPU's vector
width, which a saved file must not carry from one machine to another. Sessions
still run with every optimisation on when they load the engine.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from arcface_trt.artifacts.cache import ArtifactCache, CacheLookup
from arcface_trt.artifacts.key import EngineKey, Variant
from arcface_trt.artifacts.manifest import CpuManifest, utc_now
from arcface_trt.errors import InputError, first_line
from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.lazy import lazy_import
from arcface_trt.model.input_spec import InputSettings, InputSpec
from arcface_trt.model.inspect import ModelInfo, external_data_files, inspect_model, load_onnx, serialize_model
from arcface_trt.paths import engine_cache_root
from arcface_trt.precision import fp16, int8
from arcface_trt.precision.int8 import CalibrationSettings
from arcface_trt.precision.plan import TRANSFORM_FP16, TRANSFORM_QUANTIZE, PrecisionPlan
from arcface_trt.version import __version__

ort = lazy_import("onnxruntime")
onnx = lazy_import("onnx")

log = logging.getLogger("arcface_trt")

T = TypeVar("T")

FORMAT = "arcface-trt-cpu-engine/1"
SAVED_OPTIMIZATION = "extended"


@dataclass(frozen=True)
class CpuEngine:
    """A usable CPU engine: where it is, its manifest, and whether this call built it."""

    path: Path
    manifest_path: Path
    manifest: CpuManifest
    built: bool
    #: Why the cache could not be used (empty on a cache hit).
    rebuild_reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record."""
        return {
            "path": str(self.path),
            "manifest_path": str(self.manifest_path),
            "built": self.built,
            "rebuild_reasons": list(self.rebuild_reasons),
            "manifest": self.manifest.to_dict(),
        }


def expected_fields(onnx_sha256: str, plan: PrecisionPlan, calibration: CalibrationSettings | None) -> dict[str, Any]:
    """The manifest values a cached engine must have to serve this request."""
    return {
        "format": FORMAT,
        "precision": plan.precision,
        "onnx_sha256": onnx_sha256,
        "ort_version": ort.__version__,
        # Only quantization is calibrated, only the fp16 transform keeps nodes: others record None.
        "calibration": (
            (calibration or CalibrationSettings()).resolved().to_dict()
            if plan.transform == TRANSFORM_QUANTIZE
            else None
        ),
        "keep_fp32_nodes": (
            None if plan.transform != TRANSFORM_FP16 or plan.keep_fp32_nodes is None else list(plan.keep_fp32_nodes)
        ),
    }


def spec_fields(plan: PrecisionPlan, spec: InputSpec) -> dict[str, Any]:
    """The input spec a cached engine must have been made with: only an engine calibrated through it depends on it."""
    return {"input_spec": spec.key()} if plan.transform == TRANSFORM_QUANTIZE else {}


@dataclass(frozen=True)
class ResolvedCpuEngine:
    """What a request for a CPU engine means: the model, its plan, key and cache, and the manifest values it needs."""

    info: ModelInfo
    plan: PrecisionPlan
    key: EngineKey
    cache: ArtifactCache
    #: The manifest values of an engine made for this request.
    expected: dict[str, Any]
    #: The manifest values a cached engine must have to serve it.
    required: dict[str, Any]

    def lookup(self) -> CacheLookup:
        """The cached engine of this key, checked against ``required``."""
        return self.cache.lookup(self.key, self.required)

    def served(self, lookup: CacheLookup) -> CpuEngine:
        """The engine a cache hit serves."""
        log.debug("CPU engine cache hit: %s", lookup.path)
        return CpuEngine(lookup.path, lookup.manifest_path, lookup.manifest, built=False)

    def obtain(self, build: Callable[[list[str]], T], force: bool = False) -> CpuEngine | T:
        """The cached engine when it serves (and not ``force``), else ``build(reasons)`` under the key's lock.

        A valid engine is served without the lock (a read-only cache works); under the lock the cache is
        looked up again, so a build that finished meanwhile is a hit.
        """
        lookup = self.lookup()
        if lookup.hit and not force:
            return self.served(lookup)
        with self.cache.lock(self.key):
            lookup = self.lookup()
            if lookup.hit and not force:
                return self.served(lookup)
            reasons = ["rebuild forced", *lookup.reasons] if force else list(lookup.reasons)
            log.info("building CPU engine %s (%s)", self.key.name, "; ".join(reasons))
            return build(reasons)

    def store(
        self,
        data: bytes,
        build_seconds: float,
        reasons: Sequence[str],
        plan: PrecisionPlan | None = None,
        **fields: Any,
    ) -> CpuEngine:
        """Store ``data`` (the engine's bytes) with its manifest.

        ``plan``: the plan the engine was made by, when a search completed the request's (kept nodes);
        ``fields``: manifest fields beyond the request's (a search's ``drift_budget`` record).
        """
        plan = plan or self.plan
        manifest = CpuManifest(
            **{**self.expected, **fields},
            model=self.info.name,
            source_path=self.info.path,
            saved_optimization=SAVED_OPTIMIZATION,
            engine_sha256=hashlib.sha256(data).hexdigest(),
            engine_bytes=len(data),
            build_seconds=round(build_seconds, 3),
            created_at=utc_now(),
            tool_version=__version__,
            recipe=plan.recipe,
            precision_plan=plan.to_dict(),
            input_spec=self.info.input_spec.to_dict(),
        )
        path = self.cache.store(self.key, data, manifest)
        return CpuEngine(path, self.cache.manifest_path(self.key), manifest, built=True, rebuild_reasons=tuple(reasons))


def resolve_cpu_engine(
    onnx_path: str | Path,
    precision: str,
    *,
    calibration: CalibrationSettings | None = None,
    keep_fp32_nodes: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    inputs: InputSettings | None = None,
    drift_budget: float | None = None,
) -> ResolvedCpuEngine:
    """The plan, key and manifest values of a CPU engine request (arguments as :func:`ensure_cpu_engine`'s)."""
    info = inspect_model(onnx_path, inputs)
    plan = PrecisionPlan.for_target(
        precision,
        "cpu",
        keep_fp32_nodes=keep_fp32_nodes,
        quantized_source=str(onnx_path) if info.quantized else None,
        drift_budget=drift_budget,
    )
    info.report_input_spec()
    expected = expected_fields(info.sha256, plan, calibration)
    # What must match: everything but the calibration when none was asked for, and the input spec calibrated through.
    required = {k: v for k, v in expected.items() if calibration is not None or k != "calibration"}
    required.update(spec_fields(plan, info.input_spec))
    if drift_budget is not None:
        # The nodes kept are the search's result, not part of the request.
        required.pop("keep_fp32_nodes")
        required["drift_budget"] = {"budget": drift_budget}
    cache = ArtifactCache(engine_cache_root(cache_dir))
    key = EngineKey.cpu(info.name, precision, Variant.of(plan.recipe))
    return ResolvedCpuEngine(info, plan, key, cache, expected, required)


def ensure_cpu_engine(
    onnx_path: str | Path,
    precision: str,
    *,
    calibration: CalibrationSettings | None = None,
    keep_fp32_nodes: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
    inputs: InputSettings | None = None,
    drift_budget: float | None = None,
) -> CpuEngine:
    """Return the cached CPU engine of ``onnx_path`` at ``precision``, building it when needed.

    ``calibration`` applies to int8: None accepts a cached engine whatever its
    calibration (so a backend reuses what ``build --target cpu`` made) and builds with
    the default :class:`CalibrationSettings`; given settings must match. ``keep_fp32_nodes``
    applies to fp16 (None: the embedding head). ``cache_dir`` is the engine cache root
    (None: the user's). ``force`` rebuilds even on a cache hit. ``inputs``: explicit input settings
    (the int8 calibration preprocesses through the model's input spec). ``drift_budget``: the engine a
    drift-budget search made for this budget (:mod:`arcface_trt.budget`), served from the cache only
    (an InputError names the command that builds it).
    """
    resolved = resolve_cpu_engine(
        onnx_path,
        precision,
        calibration=calibration,
        keep_fp32_nodes=keep_fp32_nodes,
        cache_dir=cache_dir,
        inputs=inputs,
        drift_budget=drift_budget,
    )
    if drift_budget is not None:
        lookup = resolved.lookup()
        if not lookup.hit:
            raise InputError(
                f"no usable {precision} CPU engine for drift budget {drift_budget:g} in the cache "
                f"({'; '.join(lookup.reasons)}); build it with: arcface-trt build --target cpu --precision {precision} "
                f"--drift-budget {drift_budget:g}"
            )
        return resolved.served(lookup)
    if resolved.plan.transform == TRANSFORM_QUANTIZE and calibration is not None:
        int8.check_calibration_source(calibration)

    def build(reasons: list[str]) -> CpuEngine:
        for note in resolved.plan.notes:
            log.info("%s: %s", onnx_path, note)
        started = time.perf_counter()
        inline = bool(resolved.info.external_data)
        data = _transform_and_optimize(
            Path(onnx_path), resolved.plan, calibration or CalibrationSettings(), inline, inputs
        )
        return resolved.store(data, time.perf_counter() - started, reasons)

    return resolved.obtain(build, force)


def _transform_and_optimize(
    src: Path, plan: PrecisionPlan, calibration: CalibrationSettings, inline: bool, inputs: InputSettings | None
) -> bytes:
    """The plan's transform of ``src``, then ONNX Runtime's saved optimisations: the engine's bytes.

    The engine is self-contained: the transforms write their result with every weight inline,
    and an untransformed model with external data (``inline``) is first inlined too (ONNX Runtime would
    otherwise save references to the source's data files, to be resolved in the cache folder).
    """
    with tempfile.TemporaryDirectory(prefix="arcface-trt-cpu-") as tmp:
        transformed = Path(tmp) / f"{plan.precision}.onnx"
        if plan.transform == TRANSFORM_FP16:
            fp16.convert_to_fp16(src, transformed, plan.keep_fp32_nodes)
        elif plan.transform == TRANSFORM_QUANTIZE:
            int8.quantize_int8(src, transformed, calibration, inputs=inputs)
        elif inline:
            write_bytes_atomic(transformed, serialize_model(load_onnx(src), src, "inline its external data"))
        else:
            transformed = src
        return engine_bytes(transformed, Path(tmp) / "optimized.onnx", src)


def engine_bytes(transformed: Path, optimized: Path, src: Path) -> bytes:
    """The CPU engine of the ``transformed`` model: optimised (written to ``optimized``), checked self-contained."""
    optimize_for_cpu(transformed, optimized)
    data = optimized.read_bytes()
    leftover = external_data_files(onnx.load_model_from_string(data))
    if leftover:  # never cache an engine that reads files beside it
        raise InputError(f"the CPU engine of {src} still refers to external data ({', '.join(leftover)})")
    return data


def optimize_for_cpu(src: Path, dst: Path) -> Path:
    """Apply ONNX Runtime's ``extended`` graph optimisations for the CPU and save to ``dst``.

    ``dst`` is written by ONNX Runtime itself (``SessionOptions.optimized_model_filepath``);
    callers pass a path in a temporary folder and move the result atomically.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types for bad models
        raise InputError(f"ONNX Runtime cannot optimise {src}: {first_line(exc)}") from None
    return dst
