"""compare --precision (backend B on a CPU engine) and --precisions (the drift report)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import invoke, run_cli

BASE = ["compare", "--backend-a", "onnxruntime", "--backend-b", "onnxruntime", "--n-samples", "12"]


#: The keys of plain ``compare --json`` (ParityResult.to_dict): --precision must keep them.
COMPARE_KEYS = {
    "backend_a", "backend_b", "n_samples", "cosine", "l2", "nn_agreement", "throughput_a", "throughput_b",
    "speed_measured", "max_drift_cosine", "tolerance_key", "max_drift", "passed", "tolerance_applies_to", "collapse",
}  # fmt: skip


def test_compare_precision_int8_keeps_the_compare_json(r18_model: Path, r18_int8_engine) -> None:
    result = invoke(*BASE, "--onnx-path", str(r18_model), "--precision", "int8", "--max-drift-cosine", "0.05", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == COMPARE_KEYS
    assert data["backend_b"]["precision"] == "int8"
    assert data["backend_b"]["engine_path"] == str(r18_int8_engine.path)
    assert data["backend_a"]["precision"] == "fp32" and data["backend_a"]["engine_path"] is None
    assert 0.99 <= data["cosine"]["mean"] < 0.99999
    assert (data["tolerance_key"], data["max_drift_cosine"]) == ("--max-drift-cosine", 0.05)
    # Without the override: the int8 key, not the fp32 one.
    result = invoke(*BASE, "--onnx-path", str(r18_model), "--precision", "int8", "--json")
    data = json.loads(result.stdout)
    assert (data["tolerance_key"], data["max_drift_cosine"]) == ("validation.max_drift_cosine_int8", 0.02)
    assert result.exit_code == 0 and data["passed"] and data["max_drift"] > 0.001


def test_drift_report_judges_each_precision_by_its_own_tolerance(r18_model: Path, r18_int8_engine) -> None:
    result = invoke(*BASE, "--onnx-path", str(r18_model), "--precisions", "fp32,int8", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["n_samples"] == 12
    assert "warm-up excluded" in report["speed_measured"] and "interleaved" in report["speed_measured"]
    rows = {row["precision"]: row for row in report["rows"]}
    assert list(rows) == ["fp32", "int8"]
    assert (rows["fp32"]["tolerance_key"], rows["fp32"]["max_drift_cosine"]) == ("validation.max_drift_cosine", 0.001)
    assert (rows["int8"]["tolerance_key"], rows["int8"]["max_drift_cosine"]) == (
        "validation.max_drift_cosine_int8",
        0.02,
    )
    assert rows["int8"]["max_drift"] > 0.001  # the fp32 tolerance would fail it
    # --max-drift-cosine is one tolerance for every precision of the run: int8 fails it, exit 1, JSON still out.
    result = invoke(*BASE, "--onnx-path", str(r18_model), "--precisions", "fp32,int8", "--max-drift-cosine", "0.001")
    assert result.exit_code == 1, result.output
    result = invoke(
        *BASE, "--onnx-path", str(r18_model), "--precisions", "fp32,int8", "--max-drift-cosine", "0.001", "--json"
    )
    report = json.loads(result.stdout)
    assert report["passed"] is False
    rows = {row["precision"]: row for row in report["rows"]}
    assert rows["fp32"]["passed"] is True and rows["int8"]["passed"] is False
    assert {row["tolerance_key"] for row in rows.values()} == {"--max-drift-cosine"}
    assert rows["fp32"]["cosine"]["min"] > 0.9999
    assert 0.99 <= rows["int8"]["cosine"]["mean"] < rows["fp32"]["cosine"]["mean"]
    for row in rows.values():
        assert set(row["cosine"]) >= {"mean", "min", "p01"} and "mean" in row["l2"]
        assert 0.0 <= row["nn_agreement"] <= 1.0 and row["throughput"] > 0 and row["speedup"] > 0
        assert row["backend"]["precision"] == row["precision"]


def test_precision_options_are_checked(r18_model: Path) -> None:
    both = invoke(*BASE, "--onnx-path", str(r18_model), "--precision", "int8", "--precisions", "fp32")
    assert both.exit_code == 2 and "either --precision or --precisions" in both.stderr
    bad = invoke(*BASE, "--onnx-path", str(r18_model), "--precisions", "fp32,int4")
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [
        "error: unknown precision int4 in --precisions (choose fp32, fp16, int8)"
    ]
    # the message names the option the user gave
    one = invoke(*BASE, "--onnx-path", str(r18_model), "--precision", "fp8")
    assert one.stderr.strip().splitlines() == ["error: unknown precision fp8 in --precision (choose fp32, fp16, int8)"]


def test_drift_report_table_subprocess(r18_model: Path, r18_int8_engine) -> None:
    args = [*BASE, "--onnx-path", str(r18_model), "--precisions", "int8", "--max-drift-cosine", "0.05"]
    proc = run_cli(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Precision drift against onnxruntime fp32 on 12 crops" in proc.stdout
    lines = {
        line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.split()[:1] in (["fp32"], ["int8"])
    }
    assert set(lines) == {"int8"}
    assert lines["int8"][-2:] == ["pass", "≤0.05"] and float(lines["int8"][1]) >= 0.99
    assert "check: 1 - min cosine ≤ --max-drift-cosine (int8)" in proc.stdout
