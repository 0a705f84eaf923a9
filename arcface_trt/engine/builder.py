"""ONNX -> serialized TensorRT plan, on TensorRT 10.x and 11.x.

The steps are NVIDIA's: ``Builder`` -> ``create_network`` -> ``OnnxParser.parse`` (every
parser error reported) -> ``create_builder_config`` -> workspace pool limit -> precision
flags -> the flags of plans that travel (weights stripped, version compatibility) -> hardware
compatibility level -> one optimization profile (min/opt/max batch;
``opt`` is the serving batch) -> timing cache -> detailed profiling verbosity (so the engine
inspector can say what each layer runs in) -> progress monitor -> ``build_serialized_network``.

Precision is not decided here: :func:`prepare_onnx` runs the transform the
:class:`~arcface_trt.precision.plan.PrecisionPlan` names, and :func:`build_serialized_plan`
sets the flags and network type the plan names, and the flags the
:class:`~arcface_trt.artifacts.portability.Portability` names. :func:`parsed_onnx` is the one
derivation of the ONNX the parser is given, so a stripped plan is refit at load from the same file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.portability import Portability
from arcface_trt.engine.progress import OnProgress, progress_monitor
from arcface_trt.engine.trt_api import TrtLog, trt
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.model.dynamic_batch import ensure_dynamic_batch
from arcface_trt.model.inspect import ModelInfo, load_onnx, onnx_sha256
from arcface_trt.precision import fp16, qdq
from arcface_trt.precision.plan import TRANSFORM_FP16, TRANSFORM_NONE, TRANSFORM_REQUIRE_QDQ, PrecisionPlan

log = logging.getLogger("arcface_trt.engine")

Phase = Callable[[str], None]


@dataclass(frozen=True)
class BuildSettings:
    """What the builder needs besides the ONNX file and its precision plan."""

    min_batch: int
    opt_batch: int
    max_batch: int
    workspace_mb: int
    #: Weights stripped, hardware level, version compatibility.
    portability: Portability = field(default_factory=Portability)
    #: On-disk timing cache to read and update; None builds without one.
    timing_cache_path: Path | None = None


@dataclass(frozen=True)
class PreparedOnnx:
    """The ONNX file handed to the parser, the precision plan it was prepared for, and its nodes kept in fp32."""

    path: Path
    plan: PrecisionPlan
    #: Node names the transform kept in fp32 on purpose (the precision check does not count them).
    kept_fp32_nodes: tuple[str, ...] = ()
    #: The file's identity (:func:`~arcface_trt.model.inspect.onnx_sha256`; its external data files included).
    sha256: str = ""


def prepare_onnx(plan: PrecisionPlan, onnx_path: Path, work_dir: Path, sha256: str) -> PreparedOnnx:
    """Run the plan's transform on ``onnx_path`` (converted files are cached in ``work_dir``)."""
    if plan.transform == TRANSFORM_NONE:
        return PreparedOnnx(onnx_path, plan)
    if plan.transform == TRANSFORM_FP16:
        # The converted file is keyed by the source and the kept nodes (stable across processes).
        kept = "default" if plan.keep_fp32_nodes is None else "\n".join(plan.keep_fp32_nodes)
        suffix = hashlib.sha256(kept.encode()).hexdigest()[:10]
        dst = work_dir / f"{onnx_path.stem}-fp16-{sha256[:16]}-{suffix}.onnx"
        if not dst.exists():
            fp16.convert_to_fp16(onnx_path, dst, plan.keep_fp32_nodes)
        kept_nodes = fp16.kept_fp32_nodes(load_onnx(onnx_path), plan.keep_fp32_nodes)
        return PreparedOnnx(dst, plan, tuple(kept_nodes))
    if plan.transform == TRANSFORM_REQUIRE_QDQ:
        qdq.check_tensorrt_qdq(onnx_path)
        return PreparedOnnx(onnx_path, plan)
    raise InputError(f"TensorRT engines cannot be made by the '{plan.transform}' transform")


def parsed_onnx(plan: PrecisionPlan, model: ModelInfo, work_dir: Path, source: Path | None = None) -> PreparedOnnx:
    """The ONNX the parser is given for ``model``: batch made dynamic, then ``plan``'s transform (kept in ``work_dir``).

    ``source``: another ONNX of the same model to transform instead (a drift budget's QDQ model).

    Deterministic for one model, plan and set of onnx / onnxconverter-common versions: a build and a
    later refit of its stripped plan derive the same file, which the sha256 in the manifest proves.
    """
    source = source or ensure_dynamic_batch(model, work_dir)
    prepared = prepare_onnx(plan, source, work_dir, model.sha256)
    same = prepared.path == Path(model.path)
    return dataclasses.replace(prepared, sha256=model.sha256 if same else onnx_sha256(prepared.path))


def _network_flags(strongly_typed: bool) -> int:
    flags = 0
    # 10.x still has EXPLICIT_BATCH (deprecated, ignored); 11.x removed it.
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def parser_errors(parser: Any) -> list[str]:
    """Every error the ONNX parser recorded, one line each."""
    out = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        where = ""
        node_name, op = err.node_name(), err.node_operator()
        if node_name or op:
            where = f" at node {err.node()} '{node_name}' ({op})"
        out.append(f"{err.code().name}{where}: {err.desc()}")
    return out


def _hardware_levels() -> dict[str, Any]:
    """``hardware_compatibility`` setting -> TensorRT level."""
    return {
        "none": trt.HardwareCompatibilityLevel.NONE,
        "ampere_plus": trt.HardwareCompatibilityLevel.AMPERE_PLUS,
        "same_cc": trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY,
    }


def _hardware_level(name: str) -> Any:
    levels = _hardware_levels()
    if name not in levels:
        raise InputError(f"unknown hardware compatibility {name!r} (choose none, ampere_plus or same_cc)")
    return levels[name]


def hardware_setting(level: Any) -> str:
    """The ``hardware_compatibility`` setting of a TensorRT level (its member name for one this tool never sets)."""
    return next((name for name, value in _hardware_levels().items() if value == level), str(level.name))


def _apply_flags(config: Any, plan: PrecisionPlan, portability: Portability) -> None:
    """Set and clear the builder flags the precision plan and the portability options name (both only name flags
    the module has)."""
    for name in plan.clear_flags:
        config.clear_flag(getattr(trt.BuilderFlag, name))
    for name in (*plan.set_flags, *portability.set_flags):
        config.set_flag(getattr(trt.BuilderFlag, name))


#: What happened to the on-disk timing cache of a build (recorded in the manifest).
TIMING_OFF = "off"
TIMING_NEW = "new"
TIMING_LOADED = "loaded"
TIMING_REPLACED = "refused-replaced"


def _attach_timing_cache(config: Any, path: Path | None, phase: Phase) -> str:
    """Give the build the on-disk timing cache, or a fresh one when there is none or TensorRT refuses it.

    ``set_timing_cache(cache, ignore_mismatch=False)``: a cache of another device, CUDA or
    TensorRT version is refused, never used. A refused or unreadable file is replaced by the
    fresh cache after the build (so later builds on this machine are cached again), and the
    build output says so. Returns what happened (``TIMING_*``).
    """
    if path is None:
        return TIMING_OFF
    data = b""
    if path.exists():
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read timing cache %s (%s); starting an empty one", path, exc.strerror)
    state = TIMING_LOADED if data else TIMING_NEW
    cache = config.create_timing_cache(data) if data else None
    if cache is not None and not config.set_timing_cache(cache, False):
        cache = None
    if data and cache is None:
        state = TIMING_REPLACED
        phase(
            f"timing cache {path.name} is unusable here (another device, CUDA or TensorRT version?): "
            "building with a fresh one, which replaces it"
        )
    if cache is None:
        fresh = config.create_timing_cache(b"")
        if fresh is None or not config.set_timing_cache(fresh, False):
            log.warning("TensorRT refused an empty timing cache; building without one")
            return TIMING_OFF
    return state


def _timing_entries(config: Any) -> int | None:
    """How many entries the build's timing cache holds (None without one)."""
    cache = config.get_timing_cache()
    return None if cache is None else len(cache.queryKeys())


def _save_timing_cache(config: Any, path: Path | None) -> None:
    if path is None:
        return
    cache = config.get_timing_cache()
    if cache is None:
        return
    write_bytes_atomic(path, bytes(cache.serialize()))


@dataclass(frozen=True)
class BuiltPlan:
    """A serialized plan and what happened to the timing cache while building it."""

    data: bytes
    #: ``TIMING_*``: what happened to the on-disk timing cache.
    timing_cache: str
    #: Entries the build added to the timing cache (kernels it had to time); None without a cache.
    timing_entries_added: int | None = None


def build_serialized_plan(
    prepared: PreparedOnnx,
    input_shape: tuple[int, int, int],
    settings: BuildSettings,
    trt_log: TrtLog,
    on_phase: Phase | None = None,
    on_progress: OnProgress | None = None,
) -> BuiltPlan:
    """Build the plan; :class:`InputError` with TensorRT's own messages when it cannot.

    ``on_phase`` gets one-line notes (parsing, building, a refused timing cache); ``on_progress``
    gets TensorRT's build phases and steps. A Ctrl-C during the build cancels it (KeyboardInterrupt).
    """
    phase = on_phase or (lambda message: None)
    plan = prepared.plan
    try:
        builder = trt.Builder(trt_log.trt_logger)
    except TypeError:  # pybind: "factory function returned nullptr" when CUDA cannot start
        raise BackendUnavailableError(
            f"TensorRT cannot create a builder (no usable GPU?): {trt_log.summary()}"
        ) from None

    network = builder.create_network(_network_flags(plan.strongly_typed))
    parser = trt.OnnxParser(network, trt_log.trt_logger)
    phase(f"parsing {prepared.path.name}")
    data = prepared.path.read_bytes()
    if not parser.parse(data, str(prepared.path)):
        errors = parser_errors(parser) or [trt_log.summary()]
        hint = ""
        if any(qdq.QDQ_OPS[0] in e or qdq.QDQ_OPS[1] in e for e in errors):
            hint = (
                " (TensorRT takes QDQ models with symmetric INT8, zero points 0 and float biases: "
                "make one with arcface-trt quantize)"
            )
        raise InputError(f"TensorRT cannot parse {prepared.path}: " + "; ".join(errors) + hint)
    if network.num_inputs != 1:
        raise InputError(f"{prepared.path}: the network has {network.num_inputs} inputs, a recognition model has one")
    input_name = network.get_input(0).name

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    _apply_flags(config, plan, settings.portability)
    config.hardware_compatibility_level = _hardware_level(settings.portability.hardware_compatibility)

    c, h, w = input_shape
    profile = builder.create_optimization_profile()
    profile.set_shape(
        input_name,
        (settings.min_batch, c, h, w),
        (settings.opt_batch, c, h, w),
        (settings.max_batch, c, h, w),
    )
    config.add_optimization_profile(profile)
    timing = _attach_timing_cache(config, settings.timing_cache_path, phase)
    entries_before = _timing_entries(config)
    # DETAILED: the engine inspector then shows each layer's formats, i.e. its real precision.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    # Kept referenced until the build returns: TensorRT holds only a pointer to it.
    monitor = progress_monitor(on_progress)
    config.progress_monitor = monitor

    phase(
        f"building the {plan.precision} engine "
        f"(batch {settings.min_batch}..{settings.max_batch}, opt {settings.opt_batch})"
    )
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        if monitor.cancelled:
            raise KeyboardInterrupt
        raise InputError(f"TensorRT could not build an engine from {prepared.path}: {trt_log.summary()}")
    log.info("TensorRT built the engine in %.1f s", time.perf_counter() - start)
    entries_after = _timing_entries(config)
    _save_timing_cache(config, settings.timing_cache_path)
    added = None if entries_before is None or entries_after is None else entries_after - entries_before
    return BuiltPlan(bytes(serialized), timing, added)
