"""ONNX -> serialized TensorRT plan, on TensorRT 10.x and 11.x.

The steps are NVIDIA's: ``Builder`` -> ``create_network`` -> ``OnnxParser.parse`` (every
parser error reported) -> ``create_builder_config`` -> workspace pool limit -> one
optimization profile (min/opt/max batch; ``opt`` is the serving batch) -> timing
cache -> hardware compatibility level -> ``build_serialized_network``.

Precision is chosen by what the module has (see :mod:`arcface_trt.engine.trt_api`):

- fp32: the ONNX as it is; TF32 is switched off so "fp32" means fp32.
- fp16 with ``BuilderFlag.FP16`` (10.x): the flag on the fp32 network.
- fp16 without it (11.x, strongly typed): the ONNX is first converted to mixed
  precision (fp32 inputs/outputs kept) and built as a strongly typed network.
- int8: only from a QDQ (explicitly quantized) ONNX, built strongly typed with no
  precision flags, as NVIDIA recommends for explicit quantization.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from arcface_trt.engine.trt_api import TrtLog
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.fileio import write_bytes_atomic

log = logging.getLogger("arcface_trt.engine")

#: How each precision reaches TensorRT, for the manifest and the docs.
PATH_FP32 = "fp32-onnx"
PATH_FP16_FLAG = "fp16-builder-flag"
PATH_FP16_ONNX = "fp16-mixed-precision-onnx"
PATH_INT8_QDQ = "int8-qdq-onnx"

Phase = Callable[[str], None]


@dataclass(frozen=True)
class BuildSettings:
    """What the builder needs besides the ONNX file."""

    precision: str
    min_batch: int
    opt_batch: int
    max_batch: int
    workspace_mb: int
    hardware_compatibility: str = "none"
    #: On-disk timing cache to read and update; None builds without one.
    timing_cache_path: Path | None = None


@dataclass(frozen=True)
class PreparedOnnx:
    """The ONNX file handed to the parser and how the precision gets into the engine."""

    path: Path
    precision_path: str
    #: The network is created STRONGLY_TYPED (precision comes from the graph's types).
    strongly_typed: bool


def prepare_onnx(
    trt: ModuleType,
    onnx_path: Path,
    precision: str,
    work_dir: Path,
    sha256: str,
    keep_fp32_nodes: Sequence[str] | None = None,
) -> PreparedOnnx:
    """Turn the request's precision into the ONNX to parse (converting for fp16 on 11.x)."""
    if precision == "fp32":
        return PreparedOnnx(onnx_path, PATH_FP32, strongly_typed=False)
    if precision == "fp16":
        if hasattr(trt.BuilderFlag, "FP16"):
            return PreparedOnnx(onnx_path, PATH_FP16_FLAG, strongly_typed=False)
        from arcface_trt.precision.fp16 import convert_to_fp16

        # The converted file is keyed by the source and the kept nodes (stable across processes).
        kept = "default" if keep_fp32_nodes is None else "\n".join(keep_fp32_nodes)
        suffix = hashlib.sha256(kept.encode()).hexdigest()[:10]
        dst = work_dir / f"{onnx_path.stem}-fp16-{sha256[:16]}-{suffix}.onnx"
        if not dst.exists():
            convert_to_fp16(onnx_path, dst, keep_fp32_nodes)
        return PreparedOnnx(dst, PATH_FP16_ONNX, strongly_typed=True)
    if precision == "int8":
        from arcface_trt.precision.qdq import is_qdq_model

        if not is_qdq_model(onnx_path):
            raise InputError(
                f"{onnx_path}: int8 engines are built only from a QDQ (explicitly quantized) ONNX model; "
                "this model has no QuantizeLinear/DequantizeLinear nodes: quantize it first with "
                f"arcface-trt quantize --onnx-path {onnx_path} --out <model>-int8-qdq.onnx"
            )
        _check_int8_qdq(onnx_path)
        return PreparedOnnx(onnx_path, PATH_INT8_QDQ, strongly_typed=True)
    raise InputError(f"unknown precision {precision!r} (choose fp32, fp16 or int8)")


def _check_int8_qdq(onnx_path: Path) -> None:
    """TensorRT takes symmetric INT8 Q/DQ only: refuse UINT8 (ONNX Runtime's CPU-friendly U8S8) up front."""
    from arcface_trt.precision.qdq import summarize_qdq

    summary = summarize_qdq(onnx_path)
    unsigned = sorted({*summary.activation_types, *summary.weight_types} & {"UINT8"})
    if unsigned:
        raise InputError(
            f"{onnx_path}: TensorRT builds int8 engines only from symmetric INT8 Q/DQ (zero point 0); this model "
            "quantizes with UINT8 (ONNX Runtime's CPU default): quantize it again with int8 activations "
            "(--activation-type int8)"
        )


def _network_flags(trt: ModuleType, strongly_typed: bool) -> int:
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


def _hardware_level(trt: ModuleType, name: str) -> Any:
    levels = {
        "none": trt.HardwareCompatibilityLevel.NONE,
        "ampere_plus": trt.HardwareCompatibilityLevel.AMPERE_PLUS,
        "same_cc": trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY,
    }
    if name not in levels:
        raise InputError(f"unknown hardware compatibility {name!r} (choose none, ampere_plus or same_cc)")
    return levels[name]


def _load_timing_cache(config: Any, path: Path | None) -> Any:
    """Attach the on-disk timing cache (or an empty one) to ``config``; returns it or None."""
    if path is None:
        return None
    data = b""
    if path.exists():
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read timing cache %s (%s); starting an empty one", path, exc.strerror)
    cache = config.create_timing_cache(data)
    if cache is None and data:
        log.warning("timing cache %s is unusable (other TensorRT version?); starting an empty one", path)
        cache = config.create_timing_cache(b"")
    if cache is None:
        return None
    # ignore_mismatch=False: a cache from another device or version is refused, not used.
    if not config.set_timing_cache(cache, False):
        log.warning("TensorRT refused the timing cache %s; building without it", path)
        return None
    return cache


def _save_timing_cache(config: Any, path: Path | None) -> None:
    if path is None:
        return
    cache = config.get_timing_cache()
    if cache is None:
        return
    write_bytes_atomic(path, bytes(cache.serialize()))


def build_serialized_plan(
    trt: ModuleType,
    prepared: PreparedOnnx,
    input_shape: tuple[int, int, int],
    settings: BuildSettings,
    trt_log: TrtLog,
    on_phase: Phase | None = None,
) -> bytes:
    """Build the plan; :class:`InputError` with TensorRT's own messages when it cannot."""
    phase = on_phase or (lambda message: None)
    try:
        builder = trt.Builder(trt_log.trt_logger)
    except TypeError:  # pybind: "factory function returned nullptr" when CUDA cannot start
        raise BackendUnavailableError(
            f"TensorRT cannot create a builder (no usable GPU?): {trt_log.summary()}"
        ) from None

    network = builder.create_network(_network_flags(trt, prepared.strongly_typed))
    parser = trt.OnnxParser(network, trt_log.trt_logger)
    phase(f"parsing {prepared.path.name}")
    data = prepared.path.read_bytes()
    if not parser.parse(data, str(prepared.path)):
        errors = parser_errors(parser) or [trt_log.summary()]
        raise InputError(f"TensorRT cannot parse {prepared.path}: " + "; ".join(errors))
    if network.num_inputs != 1:
        raise InputError(f"{prepared.path}: the network has {network.num_inputs} inputs, a recognition model has one")
    input_name = network.get_input(0).name

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    if settings.precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)
    if settings.precision == "fp16" and not prepared.strongly_typed and hasattr(trt.BuilderFlag, "FP16"):
        config.set_flag(trt.BuilderFlag.FP16)
    config.hardware_compatibility_level = _hardware_level(trt, settings.hardware_compatibility)

    c, h, w = input_shape
    profile = builder.create_optimization_profile()
    profile.set_shape(
        input_name,
        (settings.min_batch, c, h, w),
        (settings.opt_batch, c, h, w),
        (settings.max_batch, c, h, w),
    )
    config.add_optimization_profile(profile)
    _load_timing_cache(config, settings.timing_cache_path)

    phase(
        f"building the {settings.precision} engine "
        f"(batch {settings.min_batch}..{settings.max_batch}, opt {settings.opt_batch})"
    )
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise InputError(f"TensorRT could not build an engine from {prepared.path}: {trt_log.summary()}")
    log.info("TensorRT built the engine in %.1f s", time.perf_counter() - start)
    _save_timing_cache(config, settings.timing_cache_path)
    return bytes(serialized)
