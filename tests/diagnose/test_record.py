"""The diagnose record's pieces that need no backend: when a backend computes as the reference does."""

from __future__ import annotations

import dataclasses

import pytest

from arcface_trt.backends.base import BackendInfo
from arcface_trt.diagnose.record import COMPUTATION_FIELDS, same_computation

REFERENCE = BackendInfo(
    backend="insightface",
    requested_backend="insightface",
    device="cpu",
    model_path="/m.onnx",
    providers=["CPUExecutionProvider"],
    input_spec={"side": 112},
    reference="insightface ArcFaceONNX.get_feat",
)


def test_the_reference_on_the_cpu_is_its_own_computation_whatever_was_asked() -> None:
    asked_auto = dataclasses.replace(REFERENCE, device="auto", requested_backend="tensorrt", batch_size=8)
    assert same_computation(asked_auto, REFERENCE)


@pytest.mark.parametrize(
    "change",
    [
        {"backend": "onnxruntime"},
        {"providers": ["CUDAExecutionProvider", "CPUExecutionProvider"]},  # device auto that found a GPU
        {"precision": "fp16"},
        {"model_path": "/other.onnx"},
        {"input_spec": {"side": 128}},
        {"engine_path": "/e.plan"},
        {"reference": "onnxruntime CPU session"},
    ],
)
def test_any_difference_in_what_computes_is_not_self(change: dict) -> None:
    assert set(change) <= set(COMPUTATION_FIELDS)
    assert not same_computation(dataclasses.replace(REFERENCE, **change), REFERENCE)
