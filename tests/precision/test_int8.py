"""int8 transform: a real QDQ model with per-channel weight scales, calibrated on face crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from arcface_trt.errors import InputError
from arcface_trt.model.inspect import inspect_model
from arcface_trt.precision import int8
from arcface_trt.precision.int8 import CalibrationSettings, calibration_batches, load_calibration_crops
from arcface_trt.precision.qdq import is_qdq_model, summarize_qdq
from tests.support.embeddings import embed_with_ort


def test_qdq_model_has_quantize_dequantize_and_per_channel_weights(r18_qdq: Path) -> None:
    model = onnx.load(str(r18_qdq))
    summary = summarize_qdq(model)
    assert summary.quantize_nodes > 0
    assert summary.dequantize_nodes > summary.quantize_nodes  # weights have DQ only
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert summary.per_channel_weights == len(convs) > 10
    assert summary.per_tensor_weights == 0
    assert summary.weight_types == ("INT8",)
    assert summary.activation_types == ("UINT8",)
    # Each Conv weight has one scale per output channel.
    inits = {i.name: i for i in model.graph.initializer}
    producers = {out: n for n in model.graph.node for out in n.output}
    for conv in convs[:3]:
        dq = producers[conv.input[1]]
        assert dq.op_type == "DequantizeLinear"
        weight, scale = inits[dq.input[0]], inits[dq.input[1]]
        assert list(scale.dims) == [weight.dims[0]] and weight.dims[0] > 1


def test_head_stays_fp32_and_is_qdq_detection(r18_model: Path, r18_qdq: Path) -> None:
    model = onnx.load(str(r18_qdq))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    inits = {i.name: i.data_type for i in model.graph.initializer}
    assert inits[gemm.input[1]] == onnx.TensorProto.FLOAT
    assert is_qdq_model(r18_qdq) and is_qdq_model(model)
    assert not is_qdq_model(r18_model)


def test_int8_drift_on_faces(r18_model: Path, r18_qdq: Path, faces: np.ndarray) -> None:
    cosine = np.sum(embed_with_ort(r18_model, faces) * embed_with_ort(r18_qdq, faces), axis=1)
    assert 0.99 <= cosine.mean() < 0.99999  # close, and really quantized


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samples": 0}, "at least 1"),
        ({"method": "kl"}, "calibration method"),
        ({"activation_type": "int4"}, "activation type"),
        ({"percentile": 10.0}, "percentile"),
    ],
)
def test_settings_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        CalibrationSettings(**kwargs)


def test_calibration_batches_have_one_size(r18_model: Path, faces: np.ndarray) -> None:
    sizes = [b.shape[0] for b in calibration_batches(inspect_model(r18_model), faces[:10])]
    assert sum(sizes) == 10 and len(set(sizes)) == 1 and sizes[0] == 5


def test_unreadable_files_beside_readable_ones_are_skipped(tmp_path: Path, faces: np.ndarray) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), faces[0])
    (tmp_path / "b.jpg").write_bytes(b"not an image")
    crops = load_calibration_crops(CalibrationSettings(images=str(tmp_path), samples=8))
    assert len(crops) == 1 and crops[0].shape == (112, 112, 3)


def test_reduce_range_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(int8.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(int8, "_cpu_flags", lambda: {"avx2", "fma"})
    assert int8.default_reduce_range() is True
    monkeypatch.setattr(int8, "_cpu_flags", lambda: {"avx2", "avx512_vnni"})
    assert int8.default_reduce_range() is False
    monkeypatch.setattr(int8.platform, "machine", lambda: "aarch64")
    assert int8.default_reduce_range() is False
    assert CalibrationSettings(reduce_range=None).resolved().reduce_range is False


@pytest.mark.parametrize("cache", [True, False], ids=["calibration-cache", "no-calibration-cache"])
def test_a_prepared_quantization_calibrates_once_and_quantizes_many_ways(
    residual_onnx: Path, tmp_path: Path, faces: np.ndarray, monkeypatch: pytest.MonkeyPatch, cache: bool
) -> None:
    from arcface_trt.precision.qdq import summarize_qdq

    if cache and not int8._has_calibration_cache():
        pytest.skip("this ONNX Runtime's quantize_static keeps no calibration cache")
    monkeypatch.setattr(int8, "_has_calibration_cache", lambda: cache)
    prepared = int8.PreparedQuantization(residual_onnx, CalibrationSettings(samples=8), None, tmp_path, faces[:8])
    passes = []
    rewind = prepared._reader.rewind
    monkeypatch.setattr(prepared._reader, "rewind", lambda: (passes.append(1), rewind()))
    full = summarize_qdq(prepared.quantize("full"))
    fewer = summarize_qdq(prepared.quantize("fewer", exclude=["Conv_3", "Conv_5"]))
    only = summarize_qdq(prepared.quantize("only", only=["Conv_8"]))
    # Seven convolutions (the head's Gemm stays float); excluded ones keep float weights.
    assert len(full.weight_scales) == 7 and len(fewer.weight_scales) == 5 and len(only.weight_scales) == 1
    # With ONNX Runtime's calibration cache the crops run through the model once; without it, every time.
    assert len(passes) == (1 if cache else 3)


def test_the_calibration_folder_is_keyed_by_its_resolved_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "faces").mkdir()
    monkeypatch.chdir(tmp_path)
    typed = CalibrationSettings(images="faces", reduce_range=True)
    absolute = CalibrationSettings(images=str(tmp_path / "faces"), reduce_range=True)
    dotted = CalibrationSettings(images=str(tmp_path / "faces" / ".." / "faces"), reduce_range=True)
    assert typed.images == absolute.images == dotted.images == str(tmp_path.resolve() / "faces")
    # one folder, one recipe (the manifest and the engine key's hash read to_dict): the same folder reuses the engine
    assert typed.to_dict() == absolute.to_dict() == dotted.to_dict()
    assert CalibrationSettings(images=str(tmp_path), reduce_range=True).to_dict() != typed.to_dict()
