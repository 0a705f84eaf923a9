"""Fixtures of the precision tests: one int8 QDQ model and one int8 CPU engine of the r18 fixture.

Calibration is the slow step (seconds per run on r18), so each is made once per session
on 16 seeded face crops and shared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CALIB_SAMPLES = 16


@pytest.fixture(scope="session")
def r18_qdq(r18_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The r18 fixture quantized to an int8 QDQ ONNX (default settings, 16 calibration crops)."""
    from arcface_trt.precision.int8 import CalibrationSettings, quantize_int8

    dst = tmp_path_factory.mktemp("qdq") / "arcface_r18-int8-qdq.onnx"
    return quantize_int8(r18_model, dst, CalibrationSettings(samples=CALIB_SAMPLES))


@pytest.fixture(scope="session")
def r18_int8_engine(r18_model: Path, r18_qdq: Path, isolated_cache: Path):
    """The r18 int8 CPU engine in the session's engine cache (what the backend and compare reuse).

    Built by the real ``ensure_cpu_engine`` from the ``r18_qdq`` model made with the same
    settings, so the session calibrates once.
    """
    import shutil

    from arcface_trt.precision import int8
    from arcface_trt.precision.cpu_engine import ensure_cpu_engine

    settings = int8.CalibrationSettings(samples=CALIB_SAMPLES)

    def reuse_qdq(src: Path, dst: Path, calibration: int8.CalibrationSettings) -> Path:
        assert Path(src) == r18_model and calibration == settings
        shutil.copyfile(r18_qdq, dst)
        return dst

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(int8, "quantize_int8", reuse_qdq)
        return ensure_cpu_engine(r18_model, "int8", calibration=settings)
