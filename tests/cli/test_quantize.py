"""``arcface-trt quantize``: the QDQ model TensorRT's int8 build takes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcface_trt.engine import trt_api
from arcface_trt.engine.builder import prepare_onnx
from arcface_trt.precision.plan import PrecisionPlan
from arcface_trt.precision.qdq import is_qdq_model, summarize_qdq
from tests.support.cli import invoke
from tests.support.fakes import install_fakes


def test_quantize_writes_a_symmetric_int8_qdq_model_tensorrt_accepts(
    r18_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "m-int8.onnx"
    result = invoke("quantize", "--onnx-path", str(r18_model), "--out", str(out), "--calib-samples", "16", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["path"] == str(out) and record["calibration"]["activation_type"] == "int8"
    assert record["calibration"]["reduce_range"] is False
    assert is_qdq_model(out)
    summary = summarize_qdq(out)
    assert summary.quantize_nodes > 0 and summary.dequantize_nodes > 0
    assert "UINT8" not in {*summary.activation_types, *summary.weight_types}
    # the TensorRT int8 path takes it as an explicitly quantized, strongly typed network
    install_fakes(monkeypatch, "11")
    plan = PrecisionPlan.for_target("int8", "gpu", trt_api.capabilities())
    prepared = prepare_onnx(plan, out, tmp_path / "work", record["sha256"])
    assert prepared.plan.strongly_typed and prepared.path == out


def test_quantize_bad_input(r18_model: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    out = tmp_path / "q.onnx"
    cases = [
        (["--calib-images", str(tmp_path / "empty")], "no images"),
        (["--activation-type", "int4"], "unknown activation type 'int4'"),
        (["--calib-samples", "0"], "--calib-samples must be at least 1"),
    ]
    for extra, message in cases:
        result = invoke("quantize", "--onnx-path", str(r18_model), "--out", str(out), *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not out.exists()
