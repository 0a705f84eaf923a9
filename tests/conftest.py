"""Shared fixtures: an isolated cache folder, small generated models, real face crops."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: The fake TensorRT stack fixtures (fake_stack, no_gpu_stack, engine_settings, ...), for every folder.
pytest_plugins = ["tests.support.trt_fixtures"]


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
    """The built-in IResNet-18 (seed 0): the small real-architecture model most tests use."""
    from arcface_trt.model.iresnet import write_model

    return write_model(tmp_path_factory.mktemp("models") / "arcface_r18.onnx", "r18", 0)


@pytest.fixture(scope="session")
def r18_model_seed1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same architecture with other weights: a model that really differs."""
    from arcface_trt.model.iresnet import write_model

    return write_model(tmp_path_factory.mktemp("models") / "arcface_r18_seed1.onnx", "r18", 1)


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny recognition-shaped model ``tiny.onnx`` (dynamic batch, 112x112 in, 64-d out).

    For tests where the model does not matter (engines named ``tiny-<precision>-sm<arch>.plan``).
    """
    from tests.support.tiny_models import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.fixture(scope="session")
def faces() -> np.ndarray:
    """Twelve seeded face crops built from the real faces in the insightface wheel."""
    from arcface_trt.faces import sample_faces

    return sample_faces(12, seed=0)
