"""The TensorRT timing path (H2D / compute / D2H by CUDA events, compute only, CUDA graph) on the strict fakes.

The fakes of tests/support stand in for ``tensorrt`` and cuda-python; the engine they
"run" is the ONNX on ONNX Runtime, so the CUDA-event times are real CPU times.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcface_trt.bench.runner import BenchmarkRequest, run_benchmark
from arcface_trt.bench.timing import TimingPlan
from tests.support.cli import invoke
from tests.support.fakes import FakeStack

LATENCY_KEYS = {"n", "mean", "p50", "p90", "p95", "p99", "min", "max", "std"}


@pytest.fixture
def trt_config(tmp_path: Path, tiny_onnx: Path) -> Path:
    (tmp_path / "trt.yaml").write_text(
        "arcface_tensorrt: {enabled: true}\n"
        f"tensorrt: {{precision: fp32, min_batch_size: 1, opt_batch_size: 4, max_batch_size: 4, "
        f"cache_dir: '{tmp_path / 'engines'}'}}\n"
    )
    path = tmp_path / "embedding.yaml"
    path.write_text(
        f"embedding: {{backend: tensorrt, device: auto, model_path: '{tiny_onnx}', batch_size: 4, "
        f"tensorrt_config: '{tmp_path / 'trt.yaml'}'}}\nvalidation: {{n_samples: 4}}\n"
    )
    return path


def test_trt_modes_split_transfers_and_compute(fake_stack: FakeStack, trt_config: Path) -> None:
    request = BenchmarkRequest(
        backends=("tensorrt",),
        batch_sizes=(1, 4, 6),
        plan=TimingPlan(iterations=3, warmup_s=0.0),
        config=str(trt_config),
        cuda_graph=True,
    )
    report = run_benchmark(request)
    rows = {r["batch_size"]: r for r in report["results"]}
    for batch, row in rows.items():
        assert row["backend"] == "tensorrt" and row["precision"] == "fp32"
        assert row["engine_path"] and Path(row["engine_path"]).exists()
        assert f"trt{fake_stack.major_minor}" in row["engine_path"] and "sm90" in row["engine_path"]
        inference = row["modes"]["inference"]
        assert set(inference["parts_ms"]) == {"h2d_ms", "compute_ms", "d2h_ms"}
        assert all(set(stats) == LATENCY_KEYS and stats["n"] == 3 for stats in inference["parts_ms"].values())
        gpu_latency = inference["gpu_latency_ms"]["mean"]
        parts = inference["parts_ms"]
        assert gpu_latency == pytest.approx(sum(parts[p]["mean"] for p in ("h2d_ms", "compute_ms", "d2h_ms")))
        # the host sees at least the device work it waited for
        assert inference["latency_ms"]["mean"] >= parts["compute_ms"]["mean"] > 0
        memory = row["memory"]
        assert memory["engine_device_memory_mb"] is not None and memory["engine_device_memory_mb"] >= 0
        assert memory["gpu_memory_source"] in ("nvml_process", "cuda_device_used")
        if batch <= 4:  # inside the engine profile: compute-only modes, timed by CUDA events
            assert set(row["modes"]) == {"end_to_end", "inference", "gpu_compute", "gpu_compute_cuda_graph"}
            for mode in ("gpu_compute", "gpu_compute_cuda_graph"):
                record = row["modes"][mode]
                assert record["timed_by"] == "CUDA events" and record["iterations"] == 3
                assert record["throughput_fps"] == pytest.approx(batch * 1000 / record["latency_ms"]["mean"], rel=1e-9)
        else:  # above max batch: the runner chunks inference; compute-only has no single-shot figure
            assert set(row["modes"]) == {"end_to_end", "inference"}
    env = report["environment"]
    assert env["tensorrt"]["version"] == fake_stack.version
    assert env["gpu"]["gpus"][0]["sm_arch"] == "sm90"


def test_trt_benchmark_cli_json(fake_stack: FakeStack, trt_config: Path) -> None:
    result = invoke(
        "benchmark",
        "--config",
        str(trt_config),
        "--backend",
        "tensorrt",
        "--batch-sizes",
        "2",
        "--iterations",
        "2",
        "--warmup",
        "0",
        "--json",
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["backend"] == "tensorrt" and "gpu_compute" in row["modes"]
    assert "gpu_compute_cuda_graph" not in row["modes"]  # only with --cuda-graph


def test_trt_benchmark_table_shows_gpu_memory(fake_stack: FakeStack, trt_config: Path) -> None:
    result = invoke(
        "benchmark",
        "--config",
        str(trt_config),
        "--backend",
        "tensorrt",
        "--batch-sizes",
        "1",
        "--iterations",
        "1",
        "--warmup",
        "0",
    )
    assert result.exit_code == 0, result.output
    assert "tensorrt (fp32)" in result.stdout and "GPU" in result.stdout and "engine" in result.stdout


def test_diagnose_on_the_tensorrt_backend(fake_stack: FakeStack, trt_config: Path) -> None:
    result = invoke("diagnose", "--config", str(trt_config), "--iterations", "2", "--n-samples", "4", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["backend"] == record["requested_backend"] == "tensorrt"
    assert record["fallback_reason"] is None and record["precision"] == "fp32" and record["batch_size"] == 4
    assert record["engine_path"].endswith("-fp32-sm90.plan") and Path(record["engine_path"]).exists()
    assert record["embedding_dim"] == 64
    assert record["vram_mb"] is not None and record["vram_mb"] >= 0
    assert record["benchmark"]["vram_source"] in ("nvml_process", "cuda_device_used", "engine_device_memory")
    assert record["throughput_fps"] == pytest.approx(4 * 1000 / record["latency_ms"])
    assert record["validation"]["regression_test"] == "passed"  # the fake engine runs the ONNX itself
    assert record["environment"]["providers_applied"] == [f"TensorRT {fake_stack.version}"]
    assert record["environment"]["gpu"]["gpus"][0]["sm_arch"] == "sm90"
    assert record["problems"] == []  # its own freshly built engine matches this (fake) GPU and TensorRT
    assert record["validation"]["tolerance_key"] == "validation.max_drift_cosine"


def test_diagnose_judges_an_fp16_engine_by_the_fp16_tolerance(fake_stack_10: FakeStack, trt_config: Path) -> None:
    trt_yaml = trt_config.parent / "trt.yaml"
    trt_yaml.write_text(trt_yaml.read_text().replace("precision: fp32", "precision: fp16"))
    result = invoke("diagnose", "--config", str(trt_config), "--iterations", "1", "--n-samples", "4", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["backend"] == "tensorrt" and record["precision"] == "fp16"
    validation = record["validation"]
    assert (validation["tolerance_key"], validation["max_drift_cosine"]) == ("validation.max_drift_cosine_fp16", 0.002)


@pytest.mark.gpu
def test_real_gpu_trt_timing(trt_config: Path) -> None:
    """On a real GPU (skipped elsewhere): the same figures from real CUDA events."""
    pytest.importorskip("tensorrt")
    request = BenchmarkRequest(
        backends=("tensorrt",), batch_sizes=(4,), plan=TimingPlan(iterations=20, warmup_s=0.1), config=str(trt_config)
    )
    row = run_benchmark(request)["results"][0]
    parts = row["modes"]["inference"]["parts_ms"]
    assert all(parts[p]["mean"] > 0 for p in ("h2d_ms", "compute_ms", "d2h_ms"))
    assert row["modes"]["gpu_compute"]["latency_ms"]["mean"] > 0
    assert row["memory"]["engine_device_memory_mb"] is not None


def test_naming_tensorrt_and_a_precision_overrides_the_config(fake_stack: FakeStack, trt_config: Path) -> None:
    # the automatic choice is off (and the pipeline runs onnxruntime), the file says fp32:
    # `--backend tensorrt --precision fp16` still means both
    trt_yaml = trt_config.parent / "trt.yaml"
    trt_yaml.write_text(trt_yaml.read_text().replace("enabled: true", "enabled: false"))
    trt_config.write_text(trt_config.read_text().replace("backend: tensorrt", "backend: onnxruntime"))
    args = ["benchmark", "--config", str(trt_config), "--backend", "tensorrt", "--precision", "fp16"]
    result = invoke(*args, "--batch-sizes", "2", "--iterations", "1", "--warmup", "0", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["backend"] == "tensorrt" and row["precision"] == "fp16"
    assert row["engine_path"].endswith("tiny-fp16-sm90.plan")


def test_precisions_build_one_plan_each_timed_side_by_side(fake_stack: FakeStack, trt_config: Path) -> None:
    request = BenchmarkRequest(
        backends=("tensorrt",),
        batch_sizes=(2,),
        plan=TimingPlan(iterations=2, warmup_s=0.0),
        config=str(trt_config),
        precisions=("fp32", "fp16"),
    )
    report = run_benchmark(request)
    fp32, fp16 = report["results"]
    assert (fp32["precision"], fp16["precision"]) == ("fp32", "fp16")
    assert fp32["engine_path"].endswith("tiny-fp32-sm90.plan") and fp16["engine_path"].endswith("tiny-fp16-sm90.plan")
    assert report["precision_applies_to"] == ["tensorrt"]
    assert fp16["vs_first_precision"]["end_to_end"] == pytest.approx(fp16["throughput_fps"] / fp32["throughput_fps"])
