"""``arcface-trt quantize``: fp32 ONNX -> int8 QDQ ONNX, calibrated on face crops."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli.calibration import (
    ActivationTypeOption,
    CalibImagesOption,
    CalibrationMethodOption,
    CalibSamplesOption,
    calibration_settings,
)
from arcface_trt.cli.common import emit_json, status
from arcface_trt.cli.drift_budget import (
    CurvePlotOption,
    DriftBudgetOption,
    EvalImagesOption,
    SearchTimeoutOption,
    budget_request,
    echo_search,
    finish_search,
)
from arcface_trt.errors import InputError


def quantize(
    out: Annotated[Path, typer.Option("--out", help="Where to write the QDQ .onnx file.")],
    onnx_path: common.OnnxPathOption = None,
    calib_images: CalibImagesOption = None,
    calib_samples: CalibSamplesOption = 64,
    calibration_method: CalibrationMethodOption = "minmax",
    activation_type: ActivationTypeOption = "int8",
    reduce_range: Annotated[
        bool,
        typer.Option(
            "--reduce-range/--no-reduce-range",
            help="7-bit weights: only for ONNX Runtime on x86 CPUs without VNNI (8-bit kernels overflow there).",
        ),
    ] = False,
    drift_budget: DriftBudgetOption = None,
    search_timeout: SearchTimeoutOption = None,
    eval_images: EvalImagesOption = None,
    plot: CurvePlotOption = None,
    config: common.ConfigOption = None,
    input_mean: common.InputMeanOption = None,
    input_std: common.InputStdOption = None,
    input_color: common.InputColorOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Quantize a model to an int8 QDQ ONNX (per-channel weights, calibrated on face crops).

    The default (int8 activations, 8-bit weights, float biases) is the explicitly quantized model TensorRT builds
    as an int8 engine: `arcface-trt build --onnx-path OUT --precision int8`. For ONNX Runtime on the CPU,
    `build --target cpu --precision int8` quantizes and optimises in one step.

    With --drift-budget D: the QDQ model that leaves the fewest nodes in float such that the worst-sample drift on
    held-out crops is at most D (measured by ONNX Runtime with graph optimisations off, a proxy of TensorRT);
    exit 1 when none is within D.
    """
    from arcface_trt.config import load_config
    from arcface_trt.fileio import sha256_file
    from arcface_trt.model.default import resolve_model_path
    from arcface_trt.model.inspect import inspect_model
    from arcface_trt.precision.int8 import check_calibration_source, quantize_int8
    from arcface_trt.precision.qdq import summarize_qdq

    if out.is_dir():
        raise InputError(f"--out is a folder, give a file path: {out}")
    # TensorRT's parser takes float biases only (an INT32 DequantizeLinear is not an activation).
    settings = calibration_settings(
        calib_images, calib_samples, calibration_method, activation_type, reduce_range, quantize_bias=False
    )
    inputs = common.input_settings(input_mean, input_std, input_color)
    budget = budget_request(drift_budget, "int8", settings, eval_images, search_timeout, plot)
    cfg = load_config(config)
    emb = cfg.embedding
    inputs = inputs.over(emb.input_settings())
    model_path = resolve_model_path(onnx_path, emb)
    spec = inspect_model(model_path, inputs).input_spec  # bad model or calibration folder: fail before any progress
    if budget is not None:
        _quantize_within_budget(model_path, out, budget, cfg, inputs, json_output, plot)
        return
    check_calibration_source(settings)
    status(f"calibrating on {settings.samples} crops and quantizing {model_path} ...", enabled=not json_output)
    quantize_int8(Path(model_path), out, settings, inputs=inputs)
    summary = summarize_qdq(out)
    record = {
        "path": str(out),
        "source": str(model_path),
        "bytes": out.stat().st_size,
        "sha256": sha256_file(out),
        "calibration": settings.to_dict(),
        "input_spec": spec.to_dict(),
        "quantize_linear_nodes": summary.quantize_nodes,
        "dequantize_linear_nodes": summary.dequantize_nodes,
    }
    if json_output:
        emit_json(record)
    else:
        typer.echo(
            f"wrote {out} ({record['bytes'] / 1e6:.1f} MB, {summary.quantize_nodes} QuantizeLinear / "
            f"{summary.dequantize_nodes} DequantizeLinear, {activation_type} activations)\n"
            f"calibrated through input spec {spec.describe()}"
        )


def _quantize_within_budget(
    model_path: Path, out: Path, budget: Any, cfg: Any, inputs: Any, json_output: bool, plot: Path | None
) -> None:
    """``--drift-budget``: search, write the chosen QDQ model, print the search; exit 1 when nothing is within D."""
    from arcface_trt.budget.qdq import quantize_within_budget
    from arcface_trt.fileio import sha256_file

    result = quantize_within_budget(
        model_path,
        out,
        budget,
        cache_dir=cfg.tensorrt.tensorrt.cache_dir,
        inputs=inputs,
        on_status=lambda message: status(message, enabled=not json_output),
    )
    written = result.path is not None
    record = {
        "path": str(out) if written else None,
        "source": str(model_path),
        "sha256": sha256_file(out) if written else None,
        "calibration": budget.calibration.to_dict(),
        "drift_budget": result.search,
    }
    if json_output:
        emit_json(record)
    else:
        typer.echo(f"wrote {out}" if written else f"nothing written to {out}")
        echo_search(result.search, searched=True)
    finish_search(result.search, plot)
