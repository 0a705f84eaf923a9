"""GPU facts through cuda-python (fake runtime), and each way of not having a GPU."""

from __future__ import annotations

import pytest

from arcface_trt.engine import gpu
from arcface_trt.errors import BackendUnavailableError
from arcface_trt.lazy import resolve
from tests.support.fakes import FakeCuda, FakeDevice, hide_gpu_stack, install_cuda


def test_gpu_facts(monkeypatch) -> None:
    cuda = FakeCuda([FakeDevice("NVIDIA A100-SXM4-80GB", 8, 0, 80 << 30, 70 << 30), FakeDevice("NVIDIA L4", 8, 9)])
    install_cuda(monkeypatch, cuda)
    info = gpu.gpu_info()
    assert (info.name, info.sm_arch, info.compute_capability) == ("NVIDIA A100-SXM4-80GB", "sm80", "8.0")
    assert info.total_bytes == 80 << 30 and info.free_bytes == 70 << 30
    assert gpu.device_count() == 2
    assert gpu.gpu_info(1).sm_arch == "sm89"
    assert info.to_dict()["sm_arch"] == "sm80"
    with pytest.raises(BackendUnavailableError, match="GPU index 2 does not exist"):
        gpu.gpu_info(2)


def test_no_driver(monkeypatch) -> None:
    install_cuda(monkeypatch, FakeCuda(driver=False))
    with pytest.raises(
        BackendUnavailableError,
        match=r"no usable NVIDIA driver \(cudaGetDeviceCount: cudaErrorInsufficientDriver, 35\)",
    ):
        gpu.gpu_info()
    info, reason = gpu.try_gpu_info()
    assert info is None and "35" in reason


def test_no_device(monkeypatch) -> None:
    install_cuda(monkeypatch, FakeCuda(devices=[]))
    with pytest.raises(BackendUnavailableError, match="no CUDA GPU found"):
        gpu.device_count()


def test_no_cuda_python(monkeypatch) -> None:
    hide_gpu_stack(monkeypatch, tensorrt=False)
    with pytest.raises(
        BackendUnavailableError, match=r"cuda-python is not installed .*pip install 'arcface-trt\[gpu\]'"
    ):
        gpu.device_count()
    assert not gpu.cuda_python_installed()


def test_older_cudart_import_is_used(monkeypatch) -> None:
    import sys
    import types

    hide_gpu_stack(monkeypatch, tensorrt=False)
    cuda = FakeCuda()
    pkg = types.ModuleType("cuda")
    pkg.__path__ = []
    pkg.cudart = cuda.module
    monkeypatch.setitem(sys.modules, "cuda", pkg)
    monkeypatch.setitem(sys.modules, "cuda.cudart", cuda.module)
    assert resolve(gpu.cudart) is cuda.module
    assert gpu.gpu_info().sm_arch == "sm90"


def test_cuda_error_is_named(monkeypatch) -> None:
    cuda = FakeCuda()
    install_cuda(monkeypatch, cuda)
    with pytest.raises(BackendUnavailableError, match=r"cudaFree failed: invalid argument \(CUDA error 1\)"):
        gpu.check(cuda.module.cudaFree(12345), "cudaFree")


def test_real_cuda_python_without_driver() -> None:
    """Where cuda-python is installed but no driver exists (this project's machines), the 35 path is taken."""
    try:
        from cuda.bindings import runtime  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("cuda-python is not installed")
    err, _ = runtime.cudaGetDeviceCount()
    if int(err) != 35:
        pytest.skip("a CUDA driver is present here")
    with pytest.raises(BackendUnavailableError, match="cudaErrorInsufficientDriver, 35"):
        gpu.gpu_info()
