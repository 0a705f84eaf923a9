"""``--drift-budget`` on build, quantize, compare and benchmark, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.precision.qdq import summarize_qdq
from tests.support.cli import invoke

#: Options every search here shares: few calibration crops (the tiny model needs no more).
FEW = ("--calib-samples", "16")


def _build(model: Path, cache: Path, budget: str, *extra: str, precision: str = "int8"):
    return invoke(
        "build", "--target", "cpu", "--precision", precision, "--onnx-path", model, "--cache-dir", cache,
        "--drift-budget", budget, *FEW, *extra,
    )  # fmt: skip


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_build_prints_the_plan_and_curve_draws_it_and_reuses_the_engine(residual_onnx: Path, tmp_path: Path) -> None:
    plot = tmp_path / "curve.png"
    record = _json(_build(residual_onnx, tmp_path, "1.5", "--json", "--plot", plot))
    assert record["searched"] and record["built"] and "-int8-budget-" in Path(record["path"]).name
    search = record["drift_budget"]
    assert search["status"] == "within-budget" and search["kept_fp32_nodes"] == ["Gemm_18", "BatchNormalization_19"]
    assert search["curve"][0]["chosen"] and search["curve"][0]["nodes_kept"] == 0
    assert record["manifest"]["drift_budget"] == search  # the artifact carries it
    assert plot.read_bytes().startswith(b"\x89PNG")

    again = _build(residual_onnx, tmp_path, "1.5")
    assert again.exit_code == 0, again.output
    assert "from cache: yes" in again.stdout and "search:       not run" in again.stdout
    assert "kept in full precision: 2 nodes: embedding head (Gemm_18, BatchNormalization_19)" in again.stdout


def test_an_impossible_budget_shows_the_closest_result_and_exits_1(residual_onnx: Path, tmp_path: Path) -> None:
    result = _build(residual_onnx, tmp_path, "1e-12")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: drift budget 1e-12 cannot be met: the closest result, ")
    assert "curve:" in result.stdout and "4 of 4 groups" in result.stdout
    as_json = _build(residual_onnx, tmp_path, "1e-12", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["drift_budget"]["status"] == "impossible"
    assert not list((tmp_path / "cpu").glob("*.onnx"))


def test_the_search_timeout_stops_with_the_best_result_so_far(residual_onnx: Path, tmp_path: Path) -> None:
    # Step 0 always completes; a budget it misses needs sensitivities, which the deadline cuts off.
    result = _build(residual_onnx, tmp_path, "1e-6", "--search-timeout", "0.001", "--json")
    assert result.exit_code == 1
    search = json.loads(result.stdout)["drift_budget"]
    assert search["status"] == "timeout" and len(search["curve"]) == 1
    assert search["message"].startswith("--search-timeout 0.001 s reached after 1 step(s): best so far 0 of 4 groups")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--drift-budget", "0"], "--drift-budget must be a number in (0, 2)"),
        (["--drift-budget", "nan"], "--drift-budget must be a number in (0, 2)"),
        (["--drift-budget", "0.01", "--precision", "fp32"], "--drift-budget applies to --precision fp16 or int8"),
        (["--search-timeout", "5"], "--search-timeout goes with --drift-budget"),
        (["--eval-images", "x"], "--eval-images goes with --drift-budget"),
        (["--drift-budget", "0.01", "--search-timeout", "0"], "--search-timeout must be a number of seconds above 0"),
        (["--drift-budget", "0.01", "--plot", "curve.txt"], "--plot writes a PNG"),
        (["--drift-budget", "0.01", "--eval-images", "FEW"], "--eval-images: "),
    ],
)
def test_bad_budget_options_are_one_line_errors(
    residual_onnx: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    few = tmp_path / "few.npy"
    np.save(few, np.zeros((10, 112, 112, 3), np.uint8))
    args = [str(few) if a == "FEW" else a for a in args]
    precision = [] if "--precision" in args else ["--precision", "int8"]
    result = invoke(
        "build", "--target", "cpu", *precision, "--onnx-path", residual_onnx, "--cache-dir", tmp_path, *args
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_too_few_evaluation_crops_name_the_option_and_the_minimum(residual_onnx: Path, tmp_path: Path) -> None:
    few = tmp_path / "few.npy"
    np.save(few, np.full((10, 112, 112, 3), 128, np.uint8))
    result = _build(residual_onnx, tmp_path, "0.01", "--eval-images", few)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: --eval-images: {few} has 10 readable crop(s); a drift-budget search needs at least 50 held-out "
        "crops to judge the worst sample"
    )


def test_calibration_crops_may_not_be_evaluation_crops(residual_onnx: Path, tmp_path: Path) -> None:
    from arcface_trt.budget.crops import EVALUATION_IDENTITIES
    from arcface_trt.faces import sample_faces

    leaked = tmp_path / "leaked.npy"
    np.save(leaked, sample_faces(60, seed=1, identities=EVALUATION_IDENTITIES))  # the default evaluation crops
    result = _build(residual_onnx, tmp_path, "0.01", "--calib-images", leaked)
    assert result.exit_code == 2
    assert "16 crop(s) are both in the calibration and in the evaluation images" in result.stderr


def test_quantize_writes_the_chosen_qdq_model(residual_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    record = _json(
        invoke("quantize", "--onnx-path", residual_onnx, "--out", out, *FEW, "--drift-budget", "1.5", "--json")
    )
    assert record["path"] == str(out) and record["drift_budget"]["evaluation_mode"] == "onnxruntime-proxy"
    summary = summarize_qdq(out)
    assert summary.activation_types == ("INT8",) and len(summary.weight_scales) == 7  # every conv: nothing kept

    impossible = invoke(
        "quantize", "--onnx-path", residual_onnx, "--out", tmp_path / "no.onnx", *FEW, "--drift-budget", "1e-12"
    )
    assert impossible.exit_code == 1 and "cannot be met" in impossible.stderr
    assert "nothing written" in impossible.stdout and not (tmp_path / "no.onnx").exists()


def test_compare_runs_the_budgets_engine_and_shows_the_budget_beside_its_tolerance(residual_onnx: Path) -> None:
    args = ("compare", "--onnx-path", residual_onnx, "--precision", "int8", "--drift-budget", "1.2", "--n-samples", "8")
    record = _json(invoke(*args, "--max-drift-cosine", "0.5", "--json"))
    backend = record["backend_b"]
    assert "-int8-budget-" in backend["engine_path"] and backend["drift_budget"]["budget"] == 1.2
    assert backend["drift_budget"]["measured_max_drift"] <= 1.2 and record["max_drift_cosine"] == 0.5
    # The budget is the engine's build target; compare's own tolerance decides.
    strict = invoke(*args, "--max-drift-cosine", "1e-9")
    assert strict.exit_code == 1
    shown = " ".join(strict.stdout.split())  # the table's caption wraps at the terminal's width
    assert "drift budget 1.2: B's engine was built within it (measured" in shown
    assert "pass/fail here is the tolerance 1.00e-09" in shown
    missing = invoke("compare", "--onnx-path", residual_onnx, "--drift-budget", "0.1")
    assert missing.exit_code == 2 and "applies to --precision fp16 or int8, got none" in missing.stderr


def test_benchmark_times_the_budgets_engine(residual_onnx: Path) -> None:
    args = ["benchmark", "--onnx-path", residual_onnx, "--backend", "onnxruntime", "--batch-sizes", "2"]
    record = _json(invoke(*args, "--precision", "int8", "--drift-budget", "1.3", "--iterations", "1", "--json"))
    (row,) = record["results"]
    assert "-int8-budget-" in row["engine_path"] and row["drift_budget"]["budget"] == 1.3
    fp32 = invoke(*args, "--precision", "fp32", "--drift-budget", "0.1")
    assert fp32.exit_code == 2 and "applies to --precision fp16 or int8, got fp32" in fp32.stderr
