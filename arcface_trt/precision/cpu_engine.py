"""CPU "engines": precision-transformed ONNX models with ONNX Runtime's graph optimisations saved.

``{cache}/cpu/{model}-{precision}-cpu.onnx`` plus ``{same name}.json`` (the manifest),
cached like TensorRT plans: reused only when the manifest matches what is asked for
(source model sha256, precision, ONNX Runtime version, calibration settings) and the
file's sha256 matches the manifest; otherwise rebuilt under the cache lock. The
engine is written first and the manifest last, both atomically: a manifest means a
complete engine.

The saved optimisation level is ``extended`` (operator fusions, QDQ -> integer
kernels), not ``all``: ORT's ``all`` adds layout transforms tied to the CPU's vector
width, which a saved file must not carry from one machine to another. Sessions
still run with every optimisation on when they load the engine.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError, first_line
from arcface_trt.precision import PRECISIONS
from arcface_trt.precision.int8 import CalibrationSettings, check_calibration_source

log = logging.getLogger("arcface_trt")

FORMAT = "arcface-trt-cpu-engine/1"
SAVED_OPTIMIZATION = "extended"
#: Manifest fields that must equal the request for a cached engine to be used.
MATCHED_FIELDS = ("format", "precision", "onnx_sha256", "ort_version", "calibration", "fp16_keep_fp32_nodes")


@dataclass(frozen=True)
class CpuEngine:
    """A usable CPU engine: where it is, its manifest, and whether this call built it."""

    path: Path
    manifest_path: Path
    manifest: dict[str, Any]
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
            "manifest": self.manifest,
        }


def cpu_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``{cache}/cpu``; ``cache_dir`` is the engine cache root (default: the user engine cache)."""
    from arcface_trt.paths import engines_dir

    root = Path(cache_dir).expanduser() if cache_dir else engines_dir()
    return root / "cpu"


def engine_paths(model_name: str, precision: str, cache_dir: str | Path | None = None) -> tuple[Path, Path]:
    """(engine, manifest) paths of ``{model}-{precision}-cpu.onnx`` in the CPU cache."""
    folder = cpu_cache_dir(cache_dir)
    name = f"{model_name}-{precision}-cpu"
    return folder / f"{name}.onnx", folder / f"{name}.json"


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision '{precision}' (choose {', '.join(PRECISIONS)})")


def expected_fields(
    onnx_sha256: str,
    precision: str,
    calibration: CalibrationSettings | None,
    keep_fp32_nodes: Sequence[str] | None,
) -> dict[str, Any]:
    """The manifest values a cached engine must have to serve this request."""
    import onnxruntime

    return {
        "format": FORMAT,
        "precision": precision,
        "onnx_sha256": onnx_sha256,
        "ort_version": onnxruntime.__version__,
        # Only int8 is calibrated, only fp16 keeps nodes: other precisions record None.
        "calibration": (calibration or CalibrationSettings()).resolved().to_dict() if precision == "int8" else None,
        "fp16_keep_fp32_nodes": (
            (None if keep_fp32_nodes is None else list(keep_fp32_nodes)) if precision == "fp16" else None
        ),
    }


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path``, or None when missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def lookup(engine: Path, manifest_path: Path, expected: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The cached manifest and the reasons it cannot be used (none: a hit)."""
    if not engine.exists():
        return None, ["no cached CPU engine"]
    manifest = read_manifest(manifest_path)
    if manifest is None:
        return None, ["cached CPU engine has no readable manifest"]
    reasons = []
    for key, value in expected.items():
        cached = manifest.get(key)
        if isinstance(cached, dict) and isinstance(value, dict):
            # Name the sub-keys that differ (calibration settings), not two whole dicts.
            reasons += [
                f"{key}.{sub}: cached {cached.get(sub)!r}, wanted {value.get(sub)!r}"
                for sub in sorted(set(cached) | set(value))
                if cached.get(sub) != value.get(sub)
            ]
        elif cached != value:
            reasons.append(f"{key}: cached {cached!r}, wanted {value!r}")
    if not reasons:
        from arcface_trt.fileio import sha256_file

        if sha256_file(engine) != manifest.get("engine_sha256"):
            reasons.append("cached CPU engine's sha256 does not match its manifest (corrupt or replaced)")
    return manifest, reasons


def ensure_cpu_engine(
    onnx_path: str | Path,
    precision: str,
    *,
    calibration: CalibrationSettings | None = None,
    keep_fp32_nodes: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
) -> CpuEngine:
    """Return the cached CPU engine of ``onnx_path`` at ``precision``, building it when needed.

    ``calibration`` applies to int8: None accepts a cached engine whatever its
    calibration (so a backend reuses what ``build --target cpu`` made) and builds with
    the default :class:`CalibrationSettings`; given settings must match. ``keep_fp32_nodes``
    applies to fp16 (None: the embedding head). ``force`` rebuilds even on a cache hit.
    """
    from arcface_trt.filelock import file_lock
    from arcface_trt.model.inspect import inspect_model

    _check_precision(precision)
    info = inspect_model(onnx_path)
    if precision == "int8" and calibration is not None:
        check_calibration_source(calibration)
    expected = expected_fields(info.sha256, precision, calibration, keep_fp32_nodes)
    # What must match: everything but the calibration when none was asked for.
    required = {k: v for k, v in expected.items() if calibration is not None or k != "calibration"}
    engine, manifest_path = engine_paths(info.name, precision, cache_dir)
    with file_lock(engine.parent / f".{engine.name}.lock"):
        # Looked up under the lock: a build that finished meanwhile is a hit.
        manifest, reasons = lookup(engine, manifest_path, required)
        if manifest is not None and not reasons and not force:
            log.debug("CPU engine cache hit: %s", engine)
            return CpuEngine(engine, manifest_path, manifest, built=False)
        if force:
            reasons = ["rebuild forced", *reasons]
        log.info("building CPU engine %s (%s)", engine.name, "; ".join(reasons))
        manifest = _build(
            Path(onnx_path),
            engine,
            manifest_path,
            precision,
            expected,
            calibration or CalibrationSettings(),
            keep_fp32_nodes,
        )
        return CpuEngine(engine, manifest_path, manifest, built=True, rebuild_reasons=tuple(reasons))


def _build(
    src: Path,
    engine: Path,
    manifest_path: Path,
    precision: str,
    expected: dict[str, Any],
    calibration: CalibrationSettings,
    keep_fp32_nodes: Sequence[str] | None,
) -> dict[str, Any]:
    from arcface_trt import __version__
    from arcface_trt.fileio import sha256_file, write_bytes_atomic, write_text_atomic

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="arcface-trt-cpu-") as tmp:
        transformed = Path(tmp) / f"{precision}.onnx"
        if precision == "fp16":
            from arcface_trt.precision.fp16 import convert_to_fp16

            convert_to_fp16(src, transformed, keep_fp32_nodes)
        elif precision == "int8":
            from arcface_trt.precision.int8 import quantize_int8

            quantize_int8(src, transformed, calibration)
        else:
            transformed = src
        optimized = Path(tmp) / "optimized.onnx"
        optimize_for_cpu(transformed, optimized)
        write_bytes_atomic(engine, optimized.read_bytes())
    manifest = {
        **expected,
        "model": src.stem,
        "source_path": str(src),
        "saved_optimization": SAVED_OPTIMIZATION,
        "engine_sha256": sha256_file(engine),
        "engine_bytes": engine.stat().st_size,
        "build_seconds": round(time.perf_counter() - started, 3),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool_version": __version__,
    }
    write_text_atomic(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return manifest


def optimize_for_cpu(src: Path, dst: Path) -> Path:
    """Apply ONNX Runtime's ``extended`` graph optimisations for the CPU and save to ``dst``.

    ``dst`` is written by ONNX Runtime itself (``SessionOptions.optimized_model_filepath``);
    callers pass a path in a temporary folder and move the result atomically.
    """
    from arcface_trt.lazy import require

    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    try:
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types for bad models
        raise InputError(f"ONNX Runtime cannot optimise {src}: {first_line(exc)}") from None
    return dst
