"""The insightface and onnxruntime backends, the factory and fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from arcface_trt import get_embedding_backend
from arcface_trt.config import EmbeddingConfig, EmbeddingSection
from arcface_trt.errors import BackendUnavailableError, ConfigError


@pytest.fixture(scope="module")
def pair(r18_model: Path):
    ref = get_embedding_backend("insightface", device="cpu", onnx_path=r18_model)
    ort = get_embedding_backend("onnxruntime", device="cpu", onnx_path=r18_model)
    return ref, ort


def test_backends_agree_and_equal_insightface_get_feat(pair, faces: np.ndarray, r18_model: Path) -> None:
    from insightface.model_zoo import get_model

    ref, ort = pair
    a, b = ref.encode(faces), ort.encode(list(faces))
    assert a.shape == b.shape == (len(faces), 512)
    assert a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, rtol=1e-5)
    assert np.min(np.sum(a * b, axis=1)) >= 0.99999
    direct = get_model(str(r18_model), providers=["CPUExecutionProvider"]).get_feat(list(faces))
    direct = direct / np.linalg.norm(direct, axis=1, keepdims=True)
    np.testing.assert_allclose(a, direct, atol=1e-6)
    np.testing.assert_allclose(b, direct, atol=1e-5)


def test_batching_splits_large_inputs(r18_model: Path, faces: np.ndarray) -> None:
    whole = get_embedding_backend("onnxruntime", device="cpu", onnx_path=r18_model, batch_size=32)
    small = get_embedding_backend("onnxruntime", device="cpu", onnx_path=r18_model, batch_size=5)
    calls: list[int] = []
    forward = small.forward
    small.forward = lambda batch: calls.append(len(batch)) or forward(batch)  # type: ignore[method-assign]
    np.testing.assert_allclose(small.encode(faces), whole.encode(faces), atol=1e-5)
    assert calls == [5, 5, 2]


def test_info_records_what_runs(pair) -> None:
    ref, ort = pair
    info = ort.info().to_dict()
    assert info["backend"] == "onnxruntime" and info["providers"] == ["CPUExecutionProvider"]
    assert info["fallback_reason"] is None and info["embedding_dim"] == 512
    assert ref.info().backend == "insightface"


def test_pytorch_is_an_alias_of_the_reference(r18_model: Path) -> None:
    embedder = get_embedding_backend("pytorch", device="cpu", onnx_path=r18_model)
    assert embedder.info().backend == "insightface"
    assert embedder.info().requested_backend == "insightface"


def test_unknown_backend(r18_model: Path) -> None:
    with pytest.raises(ConfigError, match="unknown backend 'caffe'"):
        get_embedding_backend("caffe", onnx_path=r18_model)


def test_missing_gpu_provider_is_an_error_without_fallback(r18_model: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider is not available"):
        get_embedding_backend("onnxruntime", device="cuda", onnx_path=r18_model, allow_cpu_fallback=False)


def test_missing_gpu_provider_falls_back_with_a_reason_and_one_warning(
    r18_model: Path, faces: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="arcface_trt"):
        embedder = get_embedding_backend("onnxruntime", device="cuda", onnx_path=r18_model, allow_cpu_fallback=True)
    info = embedder.info()
    assert info.providers == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider is not available" in info.fallback_reason
    assert [r.getMessage() for r in caplog.records] == [
        f"onnxruntime backend: device 'cuda' unavailable: {info.fallback_reason}; falling back to the CPU"
    ]
    assert embedder.encode(faces[:2]).shape == (2, 512)


def test_tensorrt_without_tensorrt_falls_back_to_the_reference(
    r18_model: Path, faces: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(BackendUnavailableError):
        get_embedding_backend("tensorrt", onnx_path=r18_model, allow_cpu_fallback=False)
    with caplog.at_level(logging.WARNING, logger="arcface_trt"):
        embedder = get_embedding_backend("tensorrt", onnx_path=r18_model, allow_cpu_fallback=True)
    info = embedder.info()
    assert info.backend == "insightface" and info.requested_backend == "tensorrt"
    assert info.device == "cpu" and info.fallback_reason
    assert any("falling back" in r.getMessage() for r in caplog.records)
    assert embedder.encode(faces[:3]).shape == (3, 512)


def test_config_supplies_defaults(r18_model: Path) -> None:
    cfg = EmbeddingConfig(
        embedding=EmbeddingSection(backend="onnxruntime", device="cpu", model_path=str(r18_model), batch_size=7)
    )
    embedder = get_embedding_backend(config=cfg)
    assert embedder.info().backend == "onnxruntime" and embedder.batch_size == 7
