"""The GPU gate cannot pass by accident: scripts/check_tensorrt_report.py on real compare reports, and the whole
scripts/gpu_smoke.sh run on the fake TensorRT and an H100."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.cli import invoke, process_env, run_python
from tests.support.fakes import FakeStack
from tests.support.paths import REPO

CHECKER = REPO / "scripts" / "check_tensorrt_report.py"


def _config(tmp_path: Path, onnx: Path, precision: str = "fp16", fallback: bool = False) -> Path:
    (tmp_path / "trt.yaml").write_text(
        f"tensorrt: {{precision: {precision}, min_batch_size: 1, opt_batch_size: 4, max_batch_size: 4, "
        f"cache_dir: '{tmp_path / 'engines'}'}}\n"
    )
    path = tmp_path / "embedding.yaml"
    path.write_text(
        f"embedding: {{backend: tensorrt, model_path: '{onnx}', batch_size: 4, "
        f"allow_cpu_fallback: {str(fallback).lower()}, tensorrt_config: trt.yaml}}\nvalidation: {{n_samples: 4}}\n"
    )
    return path


def _report(tmp_path: Path, name: str, *args: str) -> Path:
    result = invoke("compare", "--backend-b", "tensorrt", *args, "--json")
    path = tmp_path / f"{name}.json"
    path.write_text(result.stdout)
    return path


def _check(*reports: Path) -> subprocess.CompletedProcess:
    return run_python(CHECKER, *reports)


def test_a_real_tensorrt_report_passes_the_check(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    report = _report(tmp_path, "trt", "--config", str(_config(tmp_path, tiny_onnx)))
    result = _check(report)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"ok: {report}: tensorrt fp16 (TensorRT {fake_stack.version}), worst drift ")
    assert result.stdout.rstrip().endswith("<= 0.002 (validation.max_drift_cosine_fp16)")


def test_a_fallback_fails_the_check(no_gpu_stack, tiny_onnx: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, tiny_onnx, fallback=True)
    fallback = _report(tmp_path, "fallback", "--config", str(config))
    assert json.loads(fallback.read_text())["passed"] is True  # compare alone would let it through
    result = _check(fallback)
    assert result.returncode == 1 and result.stdout == ""
    problems = result.stderr.splitlines()
    assert problems[0] == f"fail: {fallback}: backend B ran insightface (asked for tensorrt), not tensorrt"
    assert problems[1].startswith(f"fail: {fallback}: backend B fell back: cannot build or run a TensorRT engine here")
    assert problems[2:] == [
        f"fail: {fallback}: backend B ran on ['CPUExecutionProvider'], not a TensorRT engine",
        f"fail: {fallback}: backend B names no engine file",
    ]


def test_the_check_wants_the_precisions_own_tolerance_and_a_pass(
    fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path
) -> None:
    config = str(_config(tmp_path, tiny_onnx))
    loose = _report(tmp_path, "loose", "--config", config, "--max-drift-cosine", "0.5")
    result = _check(loose)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"fail: {loose}: the check used --max-drift-cosine, not the fp16 key validation.max_drift_cosine_fp16"
    ]
    failing = json.loads(loose.read_text())
    fp16 = "validation.max_drift_cosine_fp16"
    failing.update(passed=False, max_drift=0.01, max_drift_cosine=0.002, tolerance_key=fp16)
    (tmp_path / "failing.json").write_text(json.dumps(failing))
    result = _check(tmp_path / "failing.json")
    assert result.returncode == 1 and "parity failed: worst drift 0.01 > 0.002 (validation.max_drift_cosine_fp16)" in (
        result.stderr
    )
    (tmp_path / "broken.json").write_text("{")
    assert _check(tmp_path / "broken.json").returncode == 2
    assert _check().returncode == 2


def test_the_gpu_smoke_script_passes_on_the_fake_gpu(tmp_path: Path, isolated_cache: Path) -> None:
    """The whole script with the CLI on the fake TensorRT: builds, reuses, compares, checks, gpu tests, benchmark."""
    reports = tmp_path / "reports"
    env = process_env(
        {
            "ARCFACE_TRT": f"{sys.executable} -m tests.support.fake_cli",
            "PYTHON": sys.executable,
            "MODEL_ARCH": "r18",
            "MODEL_WIDTH": "16",
            "N_SAMPLES": "4",
            "BATCH": "4",
            "BENCH_SECONDS": "0.2",
            "REPORT_DIR": str(reports),
        }
    )
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_smoke.sh")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["failed_steps"] == []
    for precision, key in (("fp32", "validation.max_drift_cosine"), ("fp16", "validation.max_drift_cosine_fp16")):
        compare = report["compare"][precision]
        assert compare["backend_b"]["backend"] == "tensorrt" and compare["tolerance_key"] == key
        assert compare["tensorrt_ran"][0].startswith("ok: ")
    assert any("skipped" in line or "passed" in line for line in report["gpu_tests"])
    assert {"compare-fp16.json", "tensorrt-ran-fp16.txt", "gpu-tests.xml"} <= {p.name for p in reports.iterdir()}
