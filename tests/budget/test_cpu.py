"""Budgeted CPU engines on a real (tiny residual) model: search, artifact, cache reuse, endings, backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from arcface_trt.backends import get_embedding_backend
from arcface_trt.budget import cpu as budget_cpu
from arcface_trt.budget.cpu import build_budgeted_cpu_engine
from arcface_trt.budget.crops import EvaluationSettings
from arcface_trt.budget.request import DriftBudgetRequest
from arcface_trt.budget.search import IMPOSSIBLE, WITHIN_BUDGET
from arcface_trt.errors import InputError
from arcface_trt.fileio import sha256_file
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.precision.cpu_engine import ensure_cpu_engine
from arcface_trt.precision.int8 import CalibrationSettings

#: Calibration crops of these tests (few: the tiny model needs no more).
SAMPLES = 16


def _request(budget: float, precision: str = "int8", **kwargs) -> DriftBudgetRequest:
    return DriftBudgetRequest(budget, precision, calibration=CalibrationSettings(samples=SAMPLES), **kwargs)


def _build(model: Path, cache: Path, budget: float, precision: str = "int8", **kwargs):
    return build_budgeted_cpu_engine(model, _request(budget, precision, **kwargs), cache_dir=cache)


def test_a_budget_the_int8_model_meets_gives_it_without_exclusions_and_is_reused(
    residual_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _build(residual_onnx, tmp_path, 1.5)
    assert first.passed and first.searched and first.engine is not None and first.engine.built
    assert first.engine.path.parent == tmp_path / "cpu"
    assert first.engine.path.name.startswith("residual-int8-budget-") and first.engine.path.name.endswith("-cpu.onnx")
    record = first.engine.manifest.drift_budget
    assert record["status"] == WITHIN_BUDGET and record["searched_nodes_kept"] == []
    assert record["kept_fp32_nodes"] == record["always_kept"] == ["Gemm_18", "BatchNormalization_19"]
    assert [row["groups_kept"] for row in record["curve"]] == [0] and record["sensitivities"] == []
    assert record["final_check"]["within_budget"] and record["final_check"]["crops"] == 60
    assert record["calibration"]["identities"] == [0, 1, 2, 3] and record["calibration"]["crops"] == SAMPLES
    assert record["evaluation"]["identities"] == [4, 5, 6] and record["evaluation"]["seed"] == 1
    assert record["curve"][0]["throughput"] > 0 and record["curve"][0]["fp32_throughput"] > 0
    # It is the int8 engine: every convolution runs as an integer kernel.
    ops = [node.op_type for node in onnx.load(str(first.engine.path)).graph.node]
    assert ops.count("QLinearConv") == 7 and "Conv" not in ops

    # The same budget again: the cached engine, no search.
    monkeypatch.setattr(budget_cpu, "run_search", lambda *a, **k: pytest.fail("a search ran"))
    again = _build(residual_onnx, tmp_path, 1.5)
    assert not again.searched and not again.engine.built and again.engine.path == first.engine.path
    assert again.search == record and sha256_file(again.engine.path) == first.engine.manifest.engine_sha256


def test_an_impossible_budget_stores_nothing_and_a_new_budget_reuses_the_sensitivities(
    residual_onnx: Path, tmp_path: Path
) -> None:
    impossible = _build(residual_onnx, tmp_path, 1e-9)
    assert not impossible.passed and impossible.engine is None
    record = impossible.search
    assert record["status"] == IMPOSSIBLE and "cannot be met" in record["message"]
    assert record["final_check"] is None and not list((tmp_path / "cpu").glob("*.onnx"))
    assert len(record["sensitivities"]) == 4 and not record["sensitivities_from_cache"]
    full_int8, full_fp32 = record["curve"][0]["max_drift"], record["curve"][1]["max_drift"]
    assert full_fp32 < 1e-5 < full_int8

    budget = full_int8 / 2  # between: some groups must stay in fp32
    tighter = _build(residual_onnx, tmp_path, budget)
    record = tighter.search
    assert tighter.passed and record["status"] == WITHIN_BUDGET and record["sensitivities_from_cache"]
    chosen = next(row for row in record["curve"] if row["chosen"])
    assert 1 <= chosen["groups_kept"] < 4 and chosen["max_drift"] <= budget
    assert record["final_check"]["max_drift"] <= budget
    # The nodes kept are the most sensitive groups' convolutions, named as in the model.
    ranked = [s["group"] for s in record["sensitivities"]]
    assert record["searched_nodes_kept"] and set(record["searched_nodes_kept"]) <= {f"Conv_{i}" for i in range(20)}
    assert len(record["searched_nodes_kept"]) == chosen["nodes_kept"]
    assert ranked == sorted(
        ranked, key=lambda g: -next(s["mean_drift"] for s in record["sensitivities"] if s["group"] == g)
    )
    # The kept convolutions stay float in the engine; the others are integer kernels.
    ops = [node.op_type for node in onnx.load(str(tighter.engine.path)).graph.node]
    assert ops.count("Conv") >= chosen["nodes_kept"] and "QLinearConv" in ops


def test_other_evaluation_crops_rebuild_the_engine_of_the_same_name(residual_onnx: Path, tmp_path: Path) -> None:
    first = _build(residual_onnx, tmp_path, 1.5)
    eval_npy = tmp_path / "eval.npy"
    from arcface_trt.faces import sample_faces

    np.save(eval_npy, sample_faces(50, seed=9, identities=(5, 6)))
    other = _build(residual_onnx, tmp_path, 1.5, evaluation=EvaluationSettings(images=str(eval_npy)))
    assert other.searched and other.engine.path == first.engine.path
    assert any(r.startswith("drift_budget.evaluation: cached") for r in other.engine.rebuild_reasons)
    assert other.search["evaluation"]["images"] == str(eval_npy) and other.search["evaluation"]["crops"] == 50


def test_backends_select_the_budgets_engine_from_the_cache_only(
    residual_onnx: Path, tmp_path: Path, faces: np.ndarray
) -> None:
    with pytest.raises(
        InputError, match=r"no usable int8 CPU engine for drift budget 1.5 .*arcface-trt build --target cpu"
    ):
        ensure_cpu_engine(residual_onnx, "int8", cache_dir=tmp_path, drift_budget=1.5)
    built = _build(residual_onnx, tmp_path, 1.5)
    served = ensure_cpu_engine(residual_onnx, "int8", cache_dir=tmp_path, drift_budget=1.5)
    assert served.path == built.engine.path and not served.built
    from arcface_trt.config import EmbeddingConfig, TensorrtConfig, TensorrtSection

    config = EmbeddingConfig(tensorrt=TensorrtConfig(tensorrt=TensorrtSection(cache_dir=str(tmp_path))))
    embedder = get_embedding_backend(
        "onnxruntime", onnx_path=residual_onnx, precision="int8", drift_budget=1.5, config=config
    )
    info = embedder.info()
    assert info.engine_path == str(built.engine.path)
    assert info.drift_budget["budget"] == 1.5 and info.drift_budget["evaluation_mode"] == "cpu-engine"
    assert info.drift_budget["measured_max_drift"] == built.search["final_check"]["max_drift"]
    assert embedder.encode(faces[:3]).shape == (3, 32)


def test_the_fp16_search_returns_the_nodes_it_keeps(residual_onnx: Path, tmp_path: Path) -> None:
    probe = _build(residual_onnx, tmp_path, 1e-12, precision="fp16")  # the curve's two ends
    full_fp16, full_fp32 = probe.search["curve"][0]["max_drift"], probe.search["curve"][1]["max_drift"]
    assert probe.search["calibration"] is None and full_fp32 < full_fp16
    budget = (full_fp16 + full_fp32) / 2
    result = _build(residual_onnx, tmp_path, budget, precision="fp16")
    assert result.passed and result.search["sensitivities_from_cache"]
    kept = result.engine.manifest.keep_fp32_nodes
    assert kept == result.search["kept_fp32_nodes"] and kept[:2] == ["Gemm_18", "BatchNormalization_19"]
    assert len(kept) > 2  # the head and at least one group, all its nodes (BN, Conv, PRelu, Add)
    assert result.engine.manifest.precision_plan["keep_fp32_nodes"] == kept
    assert result.engine.manifest.recipe == {"budget": budget}


def test_sensitivities_are_measured_again_for_other_evaluation_crops(residual_onnx: Path, tmp_path: Path) -> None:
    from arcface_trt.faces import sample_faces

    first = _build(residual_onnx, tmp_path, 1e-9)
    assert len(first.search["sensitivities"]) == 4 and not first.search["sensitivities_from_cache"]
    eval_npy = tmp_path / "eval.npy"
    np.save(eval_npy, sample_faces(50, seed=9, identities=(5, 6)))
    other = _build(residual_onnx, tmp_path, 1e-9, evaluation=EvaluationSettings(images=str(eval_npy)))
    assert not other.search["sensitivities_from_cache"]
    assert _build(residual_onnx, tmp_path, 1e-9).search["sensitivities_from_cache"]


def test_sensitivities_are_measured_again_for_another_input_spec(residual_onnx: Path, tmp_path: Path) -> None:
    assert not _build(residual_onnx, tmp_path, 1e-9).search["sensitivities_from_cache"]
    # The same crops through another input spec are other model inputs: the model's resolved spec keys the cache.
    bgr = build_budgeted_cpu_engine(
        residual_onnx, _request(1e-9), cache_dir=tmp_path, inputs=InputSettings(color="bgr")
    )
    assert not bgr.search["sensitivities_from_cache"]
