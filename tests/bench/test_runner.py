"""The benchmark runner: batch-size parsing and what one benchmark row times (real face crops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcface_trt.backends.base import Embedder
from arcface_trt.bench.runner import benchmark_one, parse_batch_sizes
from arcface_trt.bench.timing import TimingPlan
from arcface_trt.errors import InputError


def test_parse_batch_sizes_keeps_order_and_drops_repeats() -> None:
    assert parse_batch_sizes("32, 1,8,1") == (32, 1, 8)
    with pytest.raises(InputError):
        parse_batch_sizes(" , ")


class RecordingEmbedder(Embedder):
    """A backend that records the crops it is given (its forward is trivial)."""

    name = "onnxruntime"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[np.ndarray] = []
        self.providers = ["CPUExecutionProvider"]

    def _load(self) -> None:
        pass

    def preprocess(self, crops):
        self.seen.append(np.asarray(crops).copy())
        return super().preprocess(crops)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return np.ones((len(batch), 512), dtype=np.float32)


def test_inputs_are_real_face_crops_not_zeros(r18_model: Path) -> None:
    from arcface_trt.faces import sample_faces
    from arcface_trt.model.inspect import inspect_model

    embedder = RecordingEmbedder(inspect_model(r18_model), "cpu", batch_size=4)
    row = benchmark_one(embedder, 4, TimingPlan(iterations=2, warmup_s=0.0), seed=3)
    assert embedder.seen, "the benchmark never preprocessed anything"
    for crops in embedder.seen:
        np.testing.assert_array_equal(crops, sample_faces(4, 3))
        assert crops.std() > 10  # face images, not a constant
    assert row["modes"]["inference"]["iterations"] == 2


def test_chart_legend_names_the_precision_of_every_backend() -> None:
    from arcface_trt.bench.plot import _series

    def row(backend: str, precision: str, batch: int) -> dict:
        mode = {"throughput_fps": 1.0, "latency_ms": {"mean": 1.0}}
        return {"backend": backend, "precision": precision, "batch_size": batch, "modes": {"end_to_end": mode}}

    report = {"results": [row("onnxruntime", "fp32", 1), row("onnxruntime", "int8", 1), row("insightface", "fp32", 1)]}
    assert list(_series(report)) == ["onnxruntime (fp32)", "onnxruntime (int8)", "insightface (fp32)"]
