"""Session-wide fixtures: an isolated cache folder, generated models (r18, its int8 forms, tiny, residual), real
face crops."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.support.tiny_models import R18_WIDTH

#: Face crops the int8 fixtures calibrate on.
CALIB_SAMPLES = 16

#: The fake TensorRT stack fixtures (fake_stack, no_gpu_stack, engine_settings, ...) and the S3 server
#: fixtures (moto_server, aws_env, s3, bucket), for every folder.
pytest_plugins = ["tests.support.trt_fixtures", "tests.support.s3_fixtures"]


def _gpu_available() -> bool:
    try:
        from cuda.bindings import runtime  # type: ignore[import-not-found]
    except ImportError:
        try:
            from cuda import cudart as runtime  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return False
    err, count = runtime.cudaGetDeviceCount()
    return int(err) == 0 and count > 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any("gpu" in item.keywords for item in items) and not _gpu_available():
        skip = pytest.mark.skip(reason="needs an NVIDIA GPU and cuda-python")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test run gets its own cache folder (models, engines) and no user config."""
    root = tmp_path_factory.mktemp("cache")
    saved = {k: os.environ.get(k) for k in ("ARCFACE_TRT_CACHE_DIR", "ARCFACE_TRT_CONFIG")}
    os.environ["ARCFACE_TRT_CACHE_DIR"] = str(root)
    os.environ.pop("ARCFACE_TRT_CONFIG", None)
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def r18_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """IResNet-18 (seed 0) at :data:`R18_WIDTH`: the real architecture most tests use, made fast.

    At a quarter of the built-in width it has a sixteenth of the convolution work (on 2 CPU cores:
    491 against 58 img/s at batch 32), which keeps the default test run short; a test that needs
    the full width makes its own model.
    """
    from arcface_trt.model.iresnet import write_model

    return write_model(tmp_path_factory.mktemp("models") / "arcface_r18.onnx", "r18", 0, R18_WIDTH)


@pytest.fixture(scope="session")
def r18_model_seed1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same architecture with other weights: a model that really differs."""
    from arcface_trt.model.iresnet import write_model

    return write_model(tmp_path_factory.mktemp("models") / "arcface_r18_seed1.onnx", "r18", 1, R18_WIDTH)


@pytest.fixture(scope="session")
def r18_qdq(r18_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The r18 fixture quantized to an int8 QDQ ONNX (default settings, CALIB_SAMPLES calibration crops).

    Calibration is the slow step (seconds per run on r18): made once per session and shared.
    """
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

    def reuse_qdq(src: Path, dst: Path, calibration: int8.CalibrationSettings, inputs: object = None) -> Path:
        assert Path(src) == r18_model and calibration == settings
        shutil.copyfile(r18_qdq, dst)
        return dst

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(int8, "quantize_int8", reuse_qdq)
        return ensure_cpu_engine(r18_model, "int8", calibration=settings)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny recognition-shaped model ``tiny.onnx`` (dynamic batch, 112x112 in, 64-d out).

    For tests where the model does not matter (engines named ``tiny-<precision>-sm<arch>.plan``).
    """
    from tests.support.tiny_models import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="session")
def residual_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny residual model ``residual.onnx`` (stem + 3 blocks + head): drift-budget searches on it take seconds."""
    from tests.support.tiny_models import write_residual_model

    return write_residual_model(tmp_path_factory.mktemp("residual") / "residual.onnx")


@pytest.fixture(scope="session")
def faces() -> np.ndarray:
    """Twelve seeded face crops built from the real faces in the insightface wheel."""
    from arcface_trt.faces import sample_faces

    return sample_faces(12, seed=0)
