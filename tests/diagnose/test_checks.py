"""The diagnose checks alone: each flags what it should and raises no false alarms; every code is documented."""

from __future__ import annotations

from pathlib import Path

from arcface_trt.diagnose import checks
from arcface_trt.model.inspect import inspect_model
from tests.support.manifests import engine_manifest
from tests.support.paths import REPO


def test_engine_check_ignores_other_models_and_unknown_machines(r18_model: Path) -> None:
    info = inspect_model(r18_model)
    old_trt = engine_manifest(r18_model, "sm90", "10.8.0")
    args = (info.name, info.sha256, "fp16")
    assert checks.check_engines([old_trt], *args, trt_version="10.16.1.11", sm_arch="sm90").code == "engine_mismatch"
    assert "TensorRT 10.8" in checks.check_engines([old_trt], *args, trt_version="10.16.1", sm_arch="sm90").message
    assert checks.check_engines([old_trt], *args, trt_version=None, sm_arch=None) is None  # nothing to compare
    assert checks.check_engines([old_trt], "other", "f" * 64, "fp16", trt_version="10.16", sm_arch="sm90") is None
    assert checks.check_engines([old_trt], *args[:2], "int8", trt_version="10.16", sm_arch="sm90") is None
    same_patchless = engine_manifest(r18_model, "sm90", "10.16.0")
    assert checks.check_engines([same_patchless], *args, trt_version="10.16.1.11", sm_arch="sm90") is None


def test_compatible_plans_load_where_nvidia_says(r18_model: Path) -> None:
    """An sm80+ plan loads on every Ampere or newer GPU; a version-compatible one on the later versions NVIDIA names."""
    info = inspect_model(r18_model)
    args = (info.name, info.sha256, "fp16")
    portable = engine_manifest(r18_model, "sm80+", "10.16.1.11", hardware_compatibility="ampere_plus")
    assert checks.check_engines([portable], *args, trt_version="10.16.1.11", sm_arch="sm86") is None
    old_gpu = checks.check_engines([portable], *args, trt_version="10.16.1.11", sm_arch="sm75")
    assert old_gpu is not None and "sm80+ (here sm75)" in old_gpu.message
    older = engine_manifest(
        r18_model, "sm90", "10.14.1.48", recipe={"vercompat": True}, version_compatible=True, lean_runtime="embedded"
    )
    assert checks.check_engines([older], *args, trt_version="11.4.0.106", sm_arch="sm90") is None
    newer = engine_manifest(
        r18_model, "sm90", "11.4.0.106", recipe={"vercompat": True}, version_compatible=True, lean_runtime="embedded"
    )
    assert checks.check_engines([newer], *args, trt_version="10.16.1.11", sm_arch="sm90").code == "engine_mismatch"


def test_provider_check_cases() -> None:
    cpu, cuda = "CPUExecutionProvider", "CUDAExecutionProvider"
    assert checks.check_provider_applied("onnxruntime", "onnxruntime", "cpu", [cpu], [cpu]) is None
    assert checks.check_provider_applied("onnxruntime", "onnxruntime", "auto", [cpu], [cpu]) is None
    assert checks.check_provider_applied("onnxruntime", "onnxruntime", "cuda", [cuda, cpu], [cuda, cpu]) is None
    # auto with CUDA offered but dropped (CUDA libraries missing): flagged, with the libraries fix
    dropped = checks.check_provider_applied("onnxruntime", "onnxruntime", "auto", [cuda, cpu], [cpu])
    assert dropped.code == "gpu_provider_not_applied" and "cudnn" in dropped.fix
    # a backend-level fallback is check_fallback's business, not this one's
    assert checks.check_provider_applied("tensorrt", "insightface", "cuda", [cpu], [cpu]) is None


def test_other_checks_do_not_fire_on_healthy_facts(tmp_path: Path) -> None:
    assert checks.check_onnxruntime_twins({"onnxruntime": "1.20", "onnxruntime-gpu": None}) is None
    assert checks.check_tensorrt_import("onnxruntime", {"importable": False, "installed": None}) is None
    assert checks.check_tensorrt_import("tensorrt", {"importable": True, "installed": "10.16"}) is None
    assert checks.check_fallback("tensorrt", "tensorrt", None) is None
    assert checks.check_backend_loaded("tensorrt", None) is None
    assert checks.check_parity("passed", 0.9999, 0.001, "validation.max_drift_cosine") is None
    failed = checks.check_parity("failed", 0.98, 0.002, "validation.max_drift_cosine_fp16")
    assert failed.code == "parity_failed"
    assert failed.message.endswith("below 1 - 0.002 (validation.max_drift_cosine_fp16)")
    fresh = tmp_path / "not" / "yet"
    assert checks.check_writable(fresh, "engine cache folder") is None
    assert not fresh.exists()  # checking creates nothing


def test_every_problem_code_is_in_the_troubleshooting_doc() -> None:
    text = (REPO / "docs" / "troubleshooting.md").read_text()
    for code in checks.CODES:
        assert f"`{code}`" in text, code
