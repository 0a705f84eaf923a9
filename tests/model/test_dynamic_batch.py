"""Fixed batch-1 exports get a dynamic batch dimension, written atomically and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcface_trt.model.dynamic_batch import ensure_dynamic_batch, make_batch_dynamic
from arcface_trt.model.inspect import inspect_model
from tests.support.tiny_models import write_tiny_model


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input.1": x})[0]


def test_fixed_batch_becomes_dynamic(tmp_path: Path) -> None:
    fixed = write_tiny_model(tmp_path / "fixed.onnx", fixed_batch=1)
    info = inspect_model(fixed)
    assert info.dynamic_batch is False
    x = np.random.default_rng(0).normal(size=(3, 3, 112, 112)).astype(np.float32)
    dynamic = ensure_dynamic_batch(info, tmp_path / "work")
    assert dynamic != fixed and inspect_model(dynamic).dynamic_batch
    out = _run(dynamic, x)  # the Reshape [1, -1] target was rewritten too
    assert out.shape == (3, 64)
    np.testing.assert_allclose(out[1:2], _run(fixed, x[1:2]), rtol=1e-5, atol=1e-6)
    mtime = dynamic.stat().st_mtime_ns
    assert ensure_dynamic_batch(info, tmp_path / "work") == dynamic and dynamic.stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "work").iterdir()] == [dynamic.name]  # no temporary files left


def test_dynamic_model_is_used_as_is(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "dyn.onnx")
    assert ensure_dynamic_batch(inspect_model(model), tmp_path / "work") == model
    assert not (tmp_path / "work").exists()


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    import arcface_trt.fileio as fileio

    fixed = write_tiny_model(tmp_path / "fixed.onnx", fixed_batch=1)
    monkeypatch.setattr(fileio.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "disk full")))
    dst = tmp_path / "out" / "x.onnx"
    with pytest.raises(OSError, match="disk full"):
        make_batch_dynamic(fixed, dst)
    assert not dst.exists() and list((tmp_path / "out").iterdir()) == []
