"""Measuring candidates: the engine as it runs (timed against fp32) or ONNX Runtime as a TensorRT proxy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcface_trt.budget import evaluate
from arcface_trt.budget.crops import EvaluationSettings, evaluation_set
from arcface_trt.budget.evaluate import MODE_ENGINE, MODE_PROXY, Evaluator
from arcface_trt.model.inspect import inspect_model
from tests.support.tiny_models import write_tiny_model


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each ONNX Runtime session the evaluator opened had its graph optimisations on."""
    seen: list[bool] = []
    real = evaluate.make_session

    def spy(path: str, providers: list[str], threads: int | None = None, optimized: bool = True):
        seen.append(optimized)
        return real(path, providers, threads, optimized)

    monkeypatch.setattr(evaluate, "make_session", spy)
    return seen


def test_the_engine_mode_runs_optimised_and_times_against_fp32(residual_onnx: Path, sessions: list[bool]) -> None:
    evaluator = Evaluator(inspect_model(residual_onnx), evaluation_set(EvaluationSettings()), MODE_ENGINE)
    same = evaluator.measure(residual_onnx)
    assert sessions == [True, True]
    assert same.max_drift < 1e-6 and same.crops == 60
    assert same.throughput > 0 and same.fp32_throughput > 0
    # A sensitivity (a subset of the crops) is scored, not timed.
    subset = evaluator.measure(residual_onnx, [0, 5, 59])
    assert subset.crops == 3 and subset.throughput is None


def test_the_proxy_mode_runs_without_graph_optimisations_and_untimed(residual_onnx: Path, sessions: list[bool]) -> None:
    evaluator = Evaluator(inspect_model(residual_onnx), evaluation_set(EvaluationSettings()), MODE_PROXY)
    measured = evaluator.measure(residual_onnx)
    assert sessions == [False, False] and measured.throughput is None and measured.fp32_throughput is None


def test_a_fixed_batch_model_is_fed_padded_batches(tmp_path: Path) -> None:
    model = write_tiny_model(tmp_path / "fixed.onnx", fixed_batch=7)
    evaluator = Evaluator(inspect_model(model), evaluation_set(EvaluationSettings()), MODE_ENGINE)
    assert evaluator.reference.shape == (60, 64)  # 60 crops in batches of 7, the last one padded
    assert np.allclose(np.linalg.norm(evaluator.reference, axis=1), 1.0, atol=1e-5)
    assert evaluator.measure(model).max_drift < 1e-6
