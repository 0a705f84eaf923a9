"""The ``tensorrt`` backend through ``get_embedding_backend`` and ``compare --backend-b tensorrt`` (fake stack)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.backends import get_embedding_backend
from arcface_trt.config import (
    ArcfaceTensorrtSection,
    EmbeddingConfig,
    EmbeddingSection,
    TensorrtConfig,
    TensorrtSection,
)
from arcface_trt.errors import BackendUnavailableError, ConfigError
from tests.support.fakes import FakeStack


def _config(cache: Path, enabled: bool | None = True, precision: str = "fp32", **extra) -> TensorrtConfig:
    return TensorrtConfig(
        arcface_tensorrt=ArcfaceTensorrtSection(enabled=enabled),
        tensorrt=TensorrtSection(
            precision=precision, min_batch_size=1, opt_batch_size=4, max_batch_size=4, cache_dir=str(cache), **extra
        ),
    )


def test_backend_encodes_like_the_reference(
    fake_stack: FakeStack, tiny_onnx: Path, faces: np.ndarray, tmp_path: Path
) -> None:
    trt_cfg = _config(tmp_path / "engines")
    embedder = get_embedding_backend(
        "tensorrt", device="auto", tensorrt_config=trt_cfg, onnx_path=tiny_onnx, config=EmbeddingConfig(), batch_size=8
    )
    out = embedder.encode(faces[:6])
    reference = get_embedding_backend("onnxruntime", device="cpu", onnx_path=tiny_onnx, config=EmbeddingConfig())
    expected = reference.encode(faces[:6])
    assert out.shape == (6, 64)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert np.sum(out * expected, axis=1).min() > 0.99999
    info = embedder.info()
    assert info.backend == "tensorrt" and info.requested_backend == "tensorrt"
    assert info.precision == "fp32" and info.fallback_reason is None
    assert info.engine_path == str(tmp_path / "engines" / f"trt{fake_stack.major_minor}" / "tiny-fp32-sm90.plan")
    assert info.providers == [f"TensorRT {fake_stack.version}"]
    assert info.device == "cuda (NVIDIA H100 80GB HBM3)"


def test_naming_tensorrt_runs_it_whatever_the_flag_says(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    """``arcface_tensorrt.enabled`` is the automatic choice's setting: asking for tensorrt by name gets TensorRT."""
    for enabled in (False, None):
        embedder = get_embedding_backend(
            "tensorrt",
            tensorrt_config=_config(tmp_path / "engines", enabled=enabled),
            onnx_path=tiny_onnx,
            config=EmbeddingConfig(),
            allow_cpu_fallback=True,
        )
        info = embedder.info()
        assert info.backend == "tensorrt" and info.fallback_reason is None


def test_auto_takes_tensorrt_only_when_enabled(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    for enabled, expected in ((True, "tensorrt"), (None, "insightface"), (False, "insightface")):
        cfg = EmbeddingConfig(
            embedding=EmbeddingSection(backend="auto", device="auto"),
            tensorrt=_config(tmp_path / "engines", enabled=enabled),
        )
        embedder = get_embedding_backend(onnx_path=tiny_onnx, config=cfg)
        assert (embedder.info().backend, embedder.info().fallback_reason) == (expected, None)


def test_a_config_naming_tensorrt_while_disabling_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'embedding\.backend' is tensorrt but 'arcface_tensorrt\.enabled' is false"):
        EmbeddingConfig(embedding=EmbeddingSection(backend="tensorrt"), tensorrt=_config(tmp_path, enabled=False))


def test_missing_tensorrt_falls_back_with_the_reason(
    no_gpu_stack, tiny_onnx: Path, faces: np.ndarray, tmp_path: Path
) -> None:
    enabled = _config(tmp_path / "engines")
    with pytest.raises(BackendUnavailableError, match="Python module 'tensorrt' is not importable"):
        get_embedding_backend(
            "tensorrt", tensorrt_config=enabled, onnx_path=tiny_onnx, config=EmbeddingConfig(), allow_cpu_fallback=False
        )
    embedder = get_embedding_backend(
        "tensorrt", tensorrt_config=enabled, onnx_path=tiny_onnx, config=EmbeddingConfig(), allow_cpu_fallback=True
    )
    info = embedder.info()
    assert info.backend == "insightface" and info.device == "cpu"
    assert "tensorrt" in info.fallback_reason and "cuda-python is not installed" in info.fallback_reason
    assert embedder.encode(faces[:2]).shape == (2, 64)
    # The same through the config alone: embedding.backend tensorrt with allow_cpu_fallback.
    cfg = EmbeddingConfig(embedding=EmbeddingSection(backend="tensorrt", allow_cpu_fallback=True), tensorrt=enabled)
    embedder = get_embedding_backend(onnx_path=tiny_onnx, config=cfg)
    assert embedder.info().requested_backend == "tensorrt" and embedder.info().backend == "insightface"
    assert "Python module 'tensorrt' is not importable" in embedder.info().fallback_reason
    assert embedder.encode(faces[:3]).shape == (3, 64)


def test_unloadable_engine_falls_back(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    """A cached plan from another TensorRT is rebuilt; a plan that still fails to load is a fallback reason."""
    from tests.support.fakes import install_fakes

    enabled = _config(tmp_path / "engines")
    install_fakes(monkeypatch, "10")
    get_embedding_backend("tensorrt", tensorrt_config=enabled, onnx_path=tiny_onnx, config=EmbeddingConfig())
    stack = install_fakes(monkeypatch, "10")
    stack.trt.Runtime.deserialize_cuda_engine = lambda self, serialized_engine: None
    embedder = get_embedding_backend(
        "tensorrt", tensorrt_config=enabled, onnx_path=tiny_onnx, config=EmbeddingConfig(), allow_cpu_fallback=True
    )
    assert "another TensorRT version or for another GPU" in embedder.info().fallback_reason


def test_store_is_asked_before_building(
    fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    """With engine_s3_bucket set, the store is listed and its plan fetched first; a StoreError is logged and the
    plan is built; a store that cannot be listed is logged too."""
    from arcface_trt.artifacts.key import EngineKey
    from arcface_trt.errors import StoreError
    from arcface_trt.store import engines as store

    key = EngineKey("tiny", "fp32", "sm90", fake_stack.version)
    calls = []

    def failing_fetch(settings, key, cache, force=False, expected=None):
        calls.append(key.relpath)
        raise StoreError("bucket 'engines' not reachable")

    monkeypatch.setattr(store, "open_store", lambda settings: None)
    monkeypatch.setattr(store, "complete_keys", lambda s3: [key])
    monkeypatch.setattr(store, "fetch", failing_fetch)
    cfg = _config(tmp_path / "engines", engine_s3_bucket="engines")
    with caplog.at_level(logging.WARNING, logger="arcface_trt"):
        embedder = get_embedding_backend("tensorrt", tensorrt_config=cfg, onnx_path=tiny_onnx, config=EmbeddingConfig())
    assert calls == [f"trt{fake_stack.major_minor}/tiny-fp32-sm90.plan"]
    assert "bucket 'engines' not reachable" in caplog.text
    assert Path(embedder.info().engine_path).exists()

    def unlistable(s3):
        raise StoreError("bucket 'engines' does not exist")

    monkeypatch.setattr(store, "complete_keys", unlistable)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="arcface_trt"):
        other = _config(tmp_path / "other", engine_s3_bucket="engines")
        embedder = get_embedding_backend(
            "tensorrt", tensorrt_config=other, onnx_path=tiny_onnx, config=EmbeddingConfig()
        )
    assert "could not list the engine store: bucket 'engines' does not exist" in caplog.text
    assert Path(embedder.info().engine_path).exists()
