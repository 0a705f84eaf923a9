"""The CUDA major of each installed GPU package (read from metadata, never imported) and the mismatch check."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from arcface_trt.diagnose import checks
from arcface_trt.diagnose.cuda_stack import CudaBuild, installed_cuda_builds
from tests.support.distributions import install_distribution


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site-packages folder searched before the real one (which holds none of these GPU packages)."""
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    return tmp_path


ORT_INFO = "onnxruntime/capi/build_and_package_info.py"


def test_each_package_says_its_cuda_major_its_own_way(site: Path) -> None:
    install_distribution(site, "tensorrt-cu12", "10.16.1.11")
    install_distribution(site, "tensorrt_cu12_libs", "10.16.1.11")
    install_distribution(site, "tensorrt-cu12-bindings", "10.16.1.11")
    install_distribution(site, "cuda-bindings", "13.5.0")
    install_distribution(site, "cuda-python", "13.4.4")
    info = "package_name = 'onnxruntime-gpu'\n__version__ = '1.26.0'\ncuda_version = '12.8'\n"
    install_distribution(site, "onnxruntime-gpu", "1.26.0", {ORT_INFO: info})
    builds = installed_cuda_builds()
    assert [(b.component, b.package, b.cuda_major) for b in builds] == [
        ("tensorrt", "tensorrt-cu12", 12),
        ("tensorrt", "tensorrt-cu12-bindings", 12),
        ("tensorrt", "tensorrt_cu12_libs", 12),
        ("cuda-python", "cuda-bindings", 13),  # what imports as cuda.bindings
        ("onnxruntime-gpu", "onnxruntime-gpu", 12),
    ]


def test_a_cpu_onnxruntime_over_the_gpu_one_hides_its_major(site: Path) -> None:
    # Both installed: the CPU wheel's build record (no cuda_version) replaced the GPU one's.
    cpu_record = "package_name = 'onnxruntime'\n__version__ = '1.32.0'\n"
    install_distribution(site, "onnxruntime-gpu", "1.31.1", {ORT_INFO: cpu_record})
    assert all(b.component != "onnxruntime-gpu" for b in installed_cuda_builds())


def _builds(**majors: int) -> list[CudaBuild]:
    names = {"tensorrt": "tensorrt-cu{}", "cuda_python": "cuda-bindings", "onnxruntime_gpu": "onnxruntime-gpu"}
    return [
        CudaBuild(component.replace("_", "-"), names[component].format(major), f"{major}.0", major)
        for component, major in majors.items()
    ]


def test_one_major_is_no_problem() -> None:
    assert checks.check_cuda_majors(_builds(tensorrt=12, cuda_python=12, onnxruntime_gpu=12), "12.8") is None
    assert checks.check_cuda_majors([], None) is None


def test_a_mismatch_is_named_and_fixed_towards_tensorrts_major() -> None:
    problem = checks.check_cuda_majors(_builds(tensorrt=12, cuda_python=13, onnxruntime_gpu=13), None)
    assert problem.code == "cuda_major_mismatch"
    assert "tensorrt-cu12 12.0 (CUDA 12), cuda-bindings 13.0 (CUDA 13), onnxruntime-gpu 13.0 (CUDA 13)" in (
        problem.message
    )
    assert problem.fix == (
        "pip install 'arcface-trt[gpu-cu12]' && pip uninstall -y onnxruntime-gpu && "
        "pip install 'onnxruntime-gpu>=1.21,<1.27' (CUDA 12 needs NVIDIA driver R535 or newer)"
    )
    only_ort = checks.check_cuda_majors(_builds(tensorrt=13, cuda_python=13, onnxruntime_gpu=12), "13.0")
    assert only_ort.fix == (
        "pip uninstall -y onnxruntime-gpu && pip install 'onnxruntime-gpu>=1.27' "
        "(CUDA 13 needs NVIDIA driver R580 or newer)"
    )


def test_a_driver_too_old_for_tensorrts_major_turns_the_fix_around() -> None:
    problem = checks.check_cuda_majors(_builds(tensorrt=13, cuda_python=12), "12.8")
    assert problem.fix == (
        "pip uninstall -y tensorrt-cu13 && pip install 'arcface-trt[gpu-cu12]' "
        "(CUDA 12 needs NVIDIA driver R535 or newer)"
    )


def test_a_major_without_a_tested_stack_names_the_ones_there_are() -> None:
    problem = checks.check_cuda_majors(_builds(tensorrt=11, cuda_python=12), None)
    assert "one CUDA major (CUDA 12: arcface-trt[gpu-cu12], CUDA 13: arcface-trt[gpu-cu13])" in problem.fix
