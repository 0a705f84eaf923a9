"""Refit a weight-stripped plan from the ONNX it was parsed from: NVIDIA's parser refitter.

A plan built with ``STRIP_PLAN`` + ``REFIT_IDENTICAL`` holds the kernels and only the weights TensorRT
needs for performance; before it runs, its refittable weights are filled in from the ONNX it was built
from: ``Refitter(engine)`` -> ``OnnxParserRefitter(refitter).refit_from_file(onnx)`` ->
``get_missing_weights()`` (must be empty) -> ``refit_cuda_engine()``. ``REFIT_IDENTICAL`` promises
TensorRT the weights are the build's own (other weights are undefined behaviour), so the file is
checked first against the sha256 the manifest records, and any other file is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arcface_trt.engine.builder import parser_errors
from arcface_trt.engine.trt_api import TrtLog, trt
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.model.inspect import onnx_sha256

#: Missing weight names a message lists before "and N more".
_MAX_NAMED = 8


def _named(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMED])
    return shown + (f" and {len(names) - _MAX_NAMED} more" if len(names) > _MAX_NAMED else "")


def check_refit_source(onnx: Path, expected_sha256: str | None, where: object) -> None:
    """An :class:`InputError` unless ``onnx`` is the file (sha256, external data included) the plan was parsed from."""
    if expected_sha256 is None:
        raise InputError(
            f"{where} has its weights stripped but its manifest records no parsed_onnx_sha256, so the ONNX it "
            "must be refit from cannot be proven; rebuild it with this arcface-trt (arcface-trt build --force)"
        )
    have = onnx_sha256(onnx)
    if have != expected_sha256:
        raise InputError(
            f"refusing to refit {where} from {onnx}: its sha256 is {have[:16]}..., but the plan was built from an "
            f"ONNX with sha256 {expected_sha256[:16]}... (another model, or the same model converted by other "
            "onnx / onnxconverter-common versions); refit needs the identical weights: rebuild the plan here"
        )


def refit_engine(engine: Any, onnx: Path, expected_sha256: str | None, trt_log: TrtLog, where: object) -> None:
    """Fill in the stripped weights of a deserialized ``engine`` from ``onnx`` (checked first), or raise why not."""
    check_refit_source(onnx, expected_sha256, where)
    if not engine.refittable:
        raise BackendUnavailableError(
            f"{where} is not refittable (built without STRIP_PLAN/REFIT_IDENTICAL), though its manifest says its "
            "weights are stripped: rebuild it (arcface-trt build --force)"
        )
    try:
        refitter = trt.Refitter(engine, trt_log.trt_logger)
        parser_refitter = trt.OnnxParserRefitter(refitter, trt_log.trt_logger)
    except TypeError:  # pybind11: "factory function returned nullptr"
        raise BackendUnavailableError(f"TensorRT cannot refit {where}: {trt_log.summary()}") from None
    if not parser_refitter.refit_from_file(str(onnx)):
        errors = parser_errors(parser_refitter) or [trt_log.summary()]
        raise InputError(f"TensorRT cannot refit {where} from {onnx}: " + "; ".join(errors))
    missing = list(refitter.get_missing_weights())
    if missing:
        raise InputError(f"{onnx} does not hold every weight {where} needs; missing: {_named(missing)}")
    if not refitter.refit_cuda_engine():
        raise BackendUnavailableError(f"TensorRT could not refit {where}: {trt_log.summary()}")
