"""int8 calibration options shared by ``build --target cpu`` and ``quantize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli.common import option

CalibImagesOption = Annotated[
    Path | None,
    option(
        "--calib-images",
        help="int8: folder of face crops to calibrate on (with --drift-budget also a list file or .npy).",
    ),
]
CalibSamplesOption = Annotated[
    int, typer.Option("--calib-samples", help="int8: crops to calibrate on (seeded faces without --calib-images).")
]
CalibrationMethodOption = Annotated[
    str, typer.Option("--calibration-method", help="int8: minmax | entropy | percentile.")
]
ActivationTypeOption = Annotated[
    str | None,
    typer.Option(
        "--activation-type", help="int8: uint8 (U8S8, fast ONNX Runtime CPU kernels) | int8 (S8S8, TensorRT needs it)."
    ),
]


def calibration_settings(
    calib_images: Path | None,
    calib_samples: int,
    calibration_method: str,
    activation_type: str,
    reduce_range: bool | None = None,
    quantize_bias: bool = True,
) -> Any:
    """The :class:`~arcface_trt.precision.int8.CalibrationSettings` these options describe (validated)."""
    from arcface_trt.precision.int8 import CalibrationSettings

    return CalibrationSettings(
        samples=calib_samples,
        method=calibration_method,
        activation_type=activation_type,
        images=str(calib_images) if calib_images else None,
        reduce_range=reduce_range,
        quantize_bias=quantize_bias,
    )
