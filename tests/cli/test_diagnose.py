"""``arcface-trt diagnose``: the record's keys, measured figures, fallback, and each flagged problem."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from arcface_trt.artifacts.cache import ArtifactCache
from tests.support.cli import invoke, run_cli
from tests.support.distributions import install_distribution
from tests.support.fakes import hide_gpu_stack, install_fakes
from tests.support.manifests import engine_manifest

FAST = ["--iterations", "1", "--n-samples", "3", "--json"]
REQUIRED = {
    "backend",
    "requested_backend",
    "fallback_reason",
    "engine_path",
    "precision",
    "batch_size",
    "embedding_dim",
    "throughput_fps",
    "latency_ms",
    "vram_mb",
    "validation",
    "environment",
}


def _diagnose(config: Path, *extra: str) -> tuple[int, dict]:
    result = invoke("diagnose", "--config", str(config), *FAST, *extra)
    return result.exit_code, json.loads(result.stdout)


def _codes(record: dict) -> set[str]:
    return {p["code"] for p in record["problems"]}


def test_record_keys_and_measured_figures(write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    hide_gpu_stack(monkeypatch)
    code, record = _diagnose(write_config())
    assert code == 0
    assert set(record) >= REQUIRED
    assert record["backend"] == record["requested_backend"] == "onnxruntime"
    assert record["fallback_reason"] is None and record["engine_path"] is None and record["vram_mb"] is None
    assert record["precision"] == "fp32" and record["batch_size"] == 2 and record["embedding_dim"] == 512
    # measured: one timed batch of 2, so throughput is exactly 2 / latency
    assert record["latency_ms"] > 0
    assert record["throughput_fps"] == pytest.approx(2 * 1000 / record["latency_ms"])
    validation = record["validation"]
    assert validation["regression_test"] == "passed" and validation["n_samples"] == 3
    assert 0.9999 <= validation["worst_cosine"] <= 1.0
    assert validation["max_drift"] == pytest.approx(1.0 - validation["worst_cosine"])
    # onnxruntime is not the reference's own computation, even on the CPU
    assert "note" not in validation
    assert "warm-up excluded" in record["benchmark"]["measured"]
    env = record["environment"]
    assert env["providers_applied"] == ["CPUExecutionProvider"] and env["device_requested"] == "cpu"
    assert "CPUExecutionProvider" in env["onnxruntime"]["providers_available"]
    assert env["tensorrt"]["importable"] is False and env["gpu"]["gpus"] == []
    assert env["packages"]["insightface"] and env["cpu"]["logical_cores"] >= 1
    assert record["problems"] == []


def test_tensorrt_with_fallback_reports_what_really_runs(
    write_config: Callable[..., Path], tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_gpu_stack(monkeypatch)
    config = write_config(backend="tensorrt", device="auto", allow_cpu_fallback=True, model_path=str(tiny_onnx))
    code, record = _diagnose(config)
    assert code == 0
    assert record["requested_backend"] == "tensorrt"
    assert record["backend"] == "insightface" and record["embedding_dim"] == 64
    assert "tensorrt" in record["fallback_reason"]
    assert record["throughput_fps"] > 0 and record["validation"]["regression_test"] == "passed"
    assert {"backend_fallback", "tensorrt_import_failed"} <= _codes(record)
    fix = next(p["fix"] for p in record["problems"] if p["code"] == "tensorrt_import_failed")
    assert "arcface-trt[gpu]" in fix
    # what runs is the reference's own computation: the parity note says so
    assert "reference itself" in record["validation"]["note"]
    # the fallback reason is shown once, not again in the problem that names the fallback
    fallback = next(p["message"] for p in record["problems"] if p["code"] == "backend_fallback")
    assert record["fallback_reason"] not in fallback and "fallback reason" in fallback
    table = invoke("diagnose", "--config", str(config), *FAST)
    assert " ".join(table.stdout.split()).count("no usable NVIDIA driver") <= 1


def test_tensorrt_without_fallback_prints_the_record_and_exits_1(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_gpu_stack(monkeypatch)
    code, record = _diagnose(write_config(backend="tensorrt", device="auto"))
    assert code == 1
    assert record["backend"] is None and record["throughput_fps"] is None
    assert record["error"] and "tensorrt" in record["error"]
    assert {"backend_unavailable", "tensorrt_import_failed"} <= _codes(record)


def test_subprocess_json(write_config: Callable[..., Path], tiny_onnx: Path) -> None:
    config = write_config(model_path=str(tiny_onnx))
    proc = run_cli("diagnose", "--config", str(config), *FAST, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) >= REQUIRED


def test_cuda_provider_not_applied_is_flagged(write_config: Callable[..., Path], tiny_onnx: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("CUDA provider present here")
    code, record = _diagnose(write_config(device="cuda", allow_cpu_fallback=True, model_path=str(tiny_onnx)))
    assert code == 0 and record["backend"] == "onnxruntime"
    problem = next(p for p in record["problems"] if p["code"] == "gpu_provider_not_applied")
    assert "CUDAExecutionProvider" in problem["message"] and "onnxruntime-gpu" in problem["fix"]


def _broken_tensorrt(site: Path) -> None:
    """An installed tensorrt distribution whose import fails the way a missing libnvinfer does."""
    failing = "raise ImportError('libnvinfer.so.10: cannot open shared object file: No such file or directory')\n"
    install_distribution(site, "tensorrt", "10.16.1", {"tensorrt/__init__.py": failing})


def test_twin_onnxruntimes_broken_tensorrt_and_unwritable_cache_are_flagged(
    write_config: Callable[..., Path], tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import arcface_trt.bench.environment as environment

    real_version = environment.distribution_version
    monkeypatch.setattr(
        environment, "distribution_version", lambda name: "1.20.1" if name == "onnxruntime-gpu" else real_version(name)
    )
    _broken_tensorrt(tmp_path / "site")
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, record = _diagnose(write_config(tensorrt={"cache_dir": str(blocker / "engines")}, model_path=str(tiny_onnx)))
    assert code == 0
    problems = {p["code"]: p for p in record["problems"]}
    assert set(problems) == {"onnxruntime_cpu_and_gpu_installed", "tensorrt_import_failed", "cache_not_writable"}
    assert "onnxruntime-gpu 1.20.1" in problems["onnxruntime_cpu_and_gpu_installed"]["message"]
    assert "libnvinfer" in problems["tensorrt_import_failed"]["message"]
    assert "--force-reinstall" in problems["tensorrt_import_failed"]["fix"]
    assert str(blocker) in problems["cache_not_writable"]["message"]
    assert record["environment"]["tensorrt"]["installed"] == "10.16.1"
    assert all(p["fix"] and "\n" not in p["fix"] for p in record["problems"])


def test_gpu_packages_of_two_cuda_majors_are_flagged_with_the_fix(
    write_config: Callable[..., Path], tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install_distribution(site, "tensorrt-cu12", "10.16.1.11")
    install_distribution(site, "cuda-python", "13.4.4")
    install_distribution(site, "cuda-bindings", "13.4.4")  # before a real one the dev extra may have installed
    monkeypatch.syspath_prepend(str(site))
    code, record = _diagnose(write_config(model_path=str(tiny_onnx)))
    assert code == 0  # a problem listed, not a failure
    assert [(b["package"], b["cuda_major"]) for b in record["environment"]["cuda_builds"]] == [
        ("tensorrt-cu12", 12),
        ("cuda-bindings", 13),
    ]
    (problem,) = [p for p in record["problems"] if p["code"] == "cuda_major_mismatch"]
    assert "tensorrt-cu12 10.16.1.11 (CUDA 12), cuda-bindings 13.4.4 (CUDA 13)" in problem["message"]
    assert problem["fix"].startswith("pip install 'arcface-trt[gpu-cu12]'")


def test_engine_for_another_arch_is_flagged_until_one_for_this_gpu_exists(
    write_config: Callable[..., Path], tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = install_fakes(monkeypatch, "10")  # TensorRT 10.16 and an H100 (sm90) here
    config = write_config(model_path=str(tiny_onnx))
    cache = ArtifactCache(tmp_path / "engines")
    other = engine_manifest(tiny_onnx, "sm86", "10.16.1.11")
    cache.store(other.key, b"plan", other)
    code, record = _diagnose(config)
    assert code == 0
    problem = next(p for p in record["problems"] if p["code"] == "engine_mismatch")
    assert "sm86 (here sm90)" in problem["message"] and "arcface-trt build" in problem["fix"]
    assert record["environment"]["tensorrt"]["version"] == stack.version

    here = engine_manifest(tiny_onnx, "sm90", "10.16.1.11")
    cache.store(here.key, b"plan", here)
    code, record = _diagnose(config)
    assert "engine_mismatch" not in _codes(record)


def test_table_output_keeps_bracketed_install_hints(
    write_config: Callable[..., Path], tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_gpu_stack(monkeypatch)
    config = write_config(backend="tensorrt", device="auto", model_path=str(tiny_onnx))
    result = invoke("diagnose", "--config", str(config), env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert "backend_unavailable" in result.stdout and "tensorrt_import_failed" in result.stdout
    assert "pip install 'arcface-trt[gpu]'" in result.stdout  # not eaten as rich markup
    assert result.stderr.strip().splitlines()[-1].startswith("error: the configured backend cannot load")


def test_a_compatible_plan_is_shown_and_not_flagged(
    write_config: Callable[..., Path], tiny_onnx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An sm80+ plan built on an A100 runs on this L4: diagnose says so, and flags nothing."""
    from arcface_trt.config import TensorrtSection
    from arcface_trt.engine.build import BuildRequest, build_engine
    from tests.support.fakes import FakeCuda, FakeDevice

    install_fakes(monkeypatch, "11", FakeCuda([FakeDevice("NVIDIA A100-SXM4-80GB", 8, 0)]))
    settings = TensorrtSection(
        precision="fp32", cache_dir=str(tmp_path / "engines"), hardware_compatibility="ampere_plus"
    )
    portable = build_engine(BuildRequest(tiny_onnx, settings)).plan_path
    install_fakes(monkeypatch, "11", FakeCuda([FakeDevice("NVIDIA L4", 8, 9)]))
    config = write_config(backend="tensorrt", device="auto", model_path=str(tiny_onnx), tensorrt={"precision": "fp32"})
    code, record = _diagnose(config)
    assert code == 0, record["error"]
    assert record["engine_path"] == str(portable) and "engine_mismatch" not in _codes(record)
    assert record["engine"] == {
        "weights": "full",
        "hardware_compatibility": "ampere_plus",
        "sm_arch": "sm80+",
        "version_compatible": False,
        "lean_runtime": None,
        "built_by": "11.4.0.106",
        "match": "hardware-compatible",
    }
    table = invoke("diagnose", "--config", str(config), "--iterations", "1", "--n-samples", "3", env={"COLUMNS": "400"})
    assert (
        "weights full; hardware ampere_plus (sm80+); this TensorRT version only; built by TensorRT 11.4.0.106 - "
        in (table.stdout)
    )
    assert "hardware-compatible here" in table.stdout
