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


def _int32_dequantized(model_path: Path) -> list[str]:
    """Names of the DequantizeLinear nodes fed by an INT32 initializer (quantized biases)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    int32 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT32}
    return [n.name for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int32]


@pytest.fixture(scope="module")
def tensorrt_qdq(r18_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """What ``arcface-trt quantize`` writes for the r18 (and its JSON record)."""
    out = tmp_path_factory.mktemp("quantize") / "m-int8.onnx"
    result = invoke("quantize", "--onnx-path", str(r18_model), "--out", str(out), "--calib-samples", "16", "--json")
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_quantize_writes_a_symmetric_int8_qdq_model_with_float_bias(tensorrt_qdq: tuple[Path, dict]) -> None:
    out, record = tensorrt_qdq
    assert record["path"] == str(out) and record["calibration"]["activation_type"] == "int8"
    assert record["calibration"]["reduce_range"] is False and record["calibration"]["quantize_bias"] is False
    assert is_qdq_model(out)
    summary = summarize_qdq(out)
    assert summary.quantize_nodes > 0 and summary.dequantize_nodes > 0
    assert "UINT8" not in {*summary.activation_types, *summary.weight_types}
    assert summary.per_channel_weights > 0
    assert _int32_dequantized(out) == []  # TensorRT's parser refuses a DequantizeLinear of an INT32 bias


@pytest.mark.parametrize("major", ["10", "11"])
def test_tensorrt_builds_the_quantize_output_and_refuses_int32_bias(
    major: str,
    r18_model: Path,
    tensorrt_qdq: tuple[Path, dict],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from arcface_trt.config import TensorrtSection
    from arcface_trt.engine.build import BuildRequest, build_engine
    from arcface_trt.errors import InputError
    from arcface_trt.precision.int8 import CalibrationSettings, quantize_int8

    install_fakes(monkeypatch, major)
    settings = TensorrtSection(precision="int8", opt_batch_size=4, max_batch_size=4, cache_dir=str(tmp_path / "e"))
    out, record = tensorrt_qdq
    plan = PrecisionPlan.for_target("int8", "gpu", trt_api.capabilities())
    prepared = prepare_onnx(plan, out, tmp_path / "work", record["sha256"])
    assert prepared.plan.strongly_typed and prepared.path == out
    built = build_engine(BuildRequest(out, settings), lambda m: None)
    assert built.source == "built" and built.manifest.extra["precision_path"] == "int8-qdq-onnx"
    # ONNX Runtime's CPU default quantizes biases to INT32: the parser says no, and the build says why.
    int32_bias = quantize_int8(
        r18_model, tmp_path / "int32-bias.onnx", CalibrationSettings(samples=16, activation_type="int8")
    )
    assert _int32_dequantized(int32_bias)
    with pytest.raises(InputError) as info:
        build_engine(BuildRequest(int32_bias, settings), lambda m: None)
    message = str(info.value)
    assert "INVALID_NODE at node" in message and "only activation types allowed as input to this layer" in message
    assert "float biases: make one with arcface-trt quantize" in message


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
