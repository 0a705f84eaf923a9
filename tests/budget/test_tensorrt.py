"""Budgeted TensorRT plans against the fake TensorRT 10.x and 11.x: one strongly typed path, cached by budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcface_trt.budget import tensorrt as budget_tensorrt
from arcface_trt.budget.request import DriftBudgetRequest
from arcface_trt.budget.tensorrt import build_budgeted_plan
from arcface_trt.config import TensorrtSection
from arcface_trt.engine.build import BuildRequest, build_engine
from arcface_trt.errors import InputError
from arcface_trt.precision.int8 import CalibrationSettings
from arcface_trt.precision.plan import PATH_FP16_ONNX, PATH_INT8_QDQ
from arcface_trt.precision.qdq import summarize_qdq
from tests.support.fakes import FakeStack


def _settings(precision: str, tmp_path: Path) -> TensorrtSection:
    return TensorrtSection(
        precision=precision, min_batch_size=1, opt_batch_size=4, max_batch_size=4, cache_dir=str(tmp_path / "engines")
    )


def _budgeted(model: Path, precision: str, budget: float, tmp_path: Path, messages: list[str] | None = None):
    request = BuildRequest(model, _settings(precision, tmp_path))
    budget_request = DriftBudgetRequest(budget, precision, calibration=CalibrationSettings(samples=16))
    return build_budgeted_plan(request, budget_request, on_status=None if messages is None else messages.append)


def test_an_int8_budget_builds_the_qdq_model_it_searched_strongly_typed(
    fake_stack: FakeStack, residual_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = _budgeted(residual_onnx, "int8", 1e-12, tmp_path)  # impossible: the curve's two ends, nothing built
    assert probe.build is None and probe.search["status"] == "impossible" and fake_stack.builds == []
    budget = probe.search["curve"][0]["max_drift"] / 2
    messages: list[str] = []
    result = _budgeted(residual_onnx, "int8", budget, tmp_path, messages)
    assert result.searched and result.build is not None and result.build.source == "built"
    build = fake_stack.builds[-1]
    assert build.strongly_typed and not build.flags & {"FP16", "INT8"}
    manifest = result.build.manifest
    assert result.build.plan_path.name.startswith("residual-int8-budget-") and manifest.recipe == {"budget": budget}
    assert manifest.extra["precision_path"] == PATH_INT8_QDQ
    record = manifest.drift_budget
    assert record["evaluation_mode"] == "onnxruntime-proxy" and "proxy of the TensorRT engine" in record["proxy"]
    assert record["final_check"]["max_drift"] <= budget and record["final_check"]["throughput"] is None
    # For TensorRT the curve counts nodes per precision instead of timing them (that needs a GPU).
    chosen = next(row for row in record["curve"] if row["chosen"])
    assert chosen["throughput"] is None and chosen["nodes_by_precision"]["fp32"] == chosen["nodes_kept"] + 2
    assert chosen["nodes_by_precision"]["int8"] == 7 - chosen["nodes_kept"]
    # The QDQ model TensorRT built: symmetric int8 activations, 8-bit weights (TensorRT's QDQ rules).
    (qdq,) = (tmp_path / "engines" / "onnx").glob("residual-int8-budget-*.onnx")
    summary = summarize_qdq(qdq)
    assert summary.activation_types == ("INT8",) and summary.weight_types == ("INT8",)
    assert len(summary.weight_scales) == 7 - chosen["nodes_kept"]
    assert any(m.startswith("step ") for m in messages)

    # The same budget again: the cached plan, no search; without the search's answer nothing builds.
    monkeypatch.setattr(budget_tensorrt, "propose", lambda *a, **k: pytest.fail("a search ran"))
    again = _budgeted(residual_onnx, "int8", budget, tmp_path)
    assert not again.searched and again.build.source == "cache" and again.search == record
    other = BuildRequest(residual_onnx, _settings("int8", tmp_path), drift_budget=budget / 2)
    with pytest.raises(InputError, match=r"no int8 plan for drift budget .* arcface-trt build --precision int8"):
        build_engine(other)


def test_an_fp16_budget_keeps_its_nodes_in_a_mixed_precision_onnx_on_both_versions(
    fake_stack: FakeStack, residual_onnx: Path, tmp_path: Path
) -> None:
    probe = _budgeted(residual_onnx, "fp16", 1e-12, tmp_path)
    full_fp16, full_fp32 = probe.search["curve"][0]["max_drift"], probe.search["curve"][1]["max_drift"]
    result = _budgeted(residual_onnx, "fp16", (full_fp16 + full_fp32) / 2, tmp_path)
    assert result.build is not None
    build = fake_stack.builds[-1]
    # One path on 10.x and 11.x: the mixed-precision ONNX, strongly typed, never the FP16 builder flag.
    assert build.strongly_typed and "FP16" not in build.flags
    manifest = result.build.manifest
    plan = manifest.extra["precision_plan"]
    assert manifest.extra["precision_path"] == PATH_FP16_ONNX
    assert plan["keep_fp32_nodes"] == result.search["kept_fp32_nodes"] and len(plan["keep_fp32_nodes"]) > 2
    assert manifest.precision_check["passed"]
    stored = json.loads(result.build.plan_path.with_suffix(".json").read_text())
    assert stored["drift_budget"]["searched_nodes_kept"] == result.search["searched_nodes_kept"]


def test_an_answer_without_a_speedup_builds_no_plan(fake_stack: FakeStack, residual_onnx: Path, tmp_path: Path) -> None:
    probe = _budgeted(residual_onnx, "int8", 1e-12, tmp_path)
    full_fp32 = probe.search["curve"][1]["max_drift"]
    # Only every group in full precision stays within this budget: the fp32 plan is the answer.
    result = _budgeted(residual_onnx, "int8", full_fp32 * 1.01, tmp_path)
    assert result.build is None and result.search["status"] == "no-speedup"
    assert result.search["message"].startswith("no speedup available within")
    assert fake_stack.builds == []


def test_a_budgets_plan_is_never_weight_stripped(fake_stack: FakeStack, residual_onnx: Path, tmp_path: Path) -> None:
    """A stripped plan is refit from an ONNX derived again from the model; a budget's comes from its search."""
    settings = TensorrtSection(
        precision="int8",
        min_batch_size=1,
        opt_batch_size=4,
        max_batch_size=4,
        cache_dir=str(tmp_path / "engines"),
        strip_weights=True,
    )
    with pytest.raises(InputError, match="cannot be weight-stripped"):
        build_engine(BuildRequest(residual_onnx, settings, drift_budget=0.01))
    assert fake_stack.builds == []
