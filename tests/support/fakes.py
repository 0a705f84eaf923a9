"""Install the fake ``tensorrt`` and cuda-python modules for a test (importable by other test folders).

Usage from any test (the benchmark tests use it too)::

    from tests.support.fakes import install_fakes

    def test_something(monkeypatch):
        fake = install_fakes(monkeypatch, "11")      # or "10"; FakeCuda() by default
        from arcface_trt.engine.runtime import TrtRunner
        ...                                           # fake.trt, fake.cuda (FakeCuda state)

or use the fixtures of ``tests/support/trt_fixtures.py`` (``fake_stack`` runs once per
TensorRT shape, ``fake_stack_10`` / ``fake_stack_11`` pin one). ``hide_gpu_stack``
makes ``tensorrt`` and ``cuda`` unimportable, even on a machine that has them.
Everything is undone by ``monkeypatch`` at the end of the test.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest

from tests.support.fakecuda import FakeCuda, FakeDevice
from tests.support.faketrt import VERSIONS, BuildRecord, make_tensorrt

__all__ = ["VERSIONS", "FakeCuda", "FakeDevice", "FakeStack", "hide_gpu_stack", "install_fakes"]


@dataclass
class FakeStack:
    """The installed fakes: the ``tensorrt`` module object and the cuda state behind ``cuda.bindings.runtime``."""

    major: str
    trt: types.ModuleType
    cuda: FakeCuda

    @property
    def version(self) -> str:
        return str(self.trt.__version__)

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def builds(self) -> list[BuildRecord]:
        """What each build asked the fake builder for (flags, network type, timing-cache decision)."""
        return self.trt._fake_env.builds

    @property
    def fp32_tactics(self) -> set[str]:
        """ONNX node names the fake builder keeps in fp32 under 10.x's FP16 flag (add to it to make it do so)."""
        return self.trt._fake_env.fp32_tactics


def install_cuda(monkeypatch: pytest.MonkeyPatch, cuda: FakeCuda) -> None:
    """Make ``from cuda.bindings import runtime`` return the fake runtime of ``cuda``."""
    pkg = types.ModuleType("cuda")
    pkg.__path__ = []  # a package, so submodule imports resolve through sys.modules
    bindings = types.ModuleType("cuda.bindings")
    bindings.__path__ = []
    bindings.runtime = cuda.module
    pkg.bindings = bindings
    monkeypatch.setitem(sys.modules, "cuda", pkg)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cuda.module)
    monkeypatch.setitem(sys.modules, "cuda.cudart", None)


def install_fakes(
    monkeypatch: pytest.MonkeyPatch, major: str = "10", cuda: FakeCuda | None = None, version: str | None = None
) -> FakeStack:
    """Install a 10.16-like (``"10"``) or 11.4-like (``"11"``) fake TensorRT and a fake CUDA runtime.

    ``version`` makes it another release of that major (``"10.14.1.48"``), for tests of version compatibility.
    """
    cuda = cuda if cuda is not None else FakeCuda()
    trt = make_tensorrt(major, cuda, version)
    install_cuda(monkeypatch, cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return FakeStack(major, trt, cuda)


def hide_gpu_stack(monkeypatch: pytest.MonkeyPatch, tensorrt: bool = True, cuda: bool = True) -> None:
    """Make ``tensorrt`` and/or cuda-python unimportable (a None entry in sys.modules raises ImportError)."""
    if tensorrt:
        monkeypatch.setitem(sys.modules, "tensorrt", None)
    if cuda:
        for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
            monkeypatch.setitem(sys.modules, name, None)
