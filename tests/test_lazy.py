"""The one lazy-import mechanism: a module proxy that imports on first use, with the install hint."""

from __future__ import annotations

import sys
import types

import pytest

from arcface_trt.errors import BackendUnavailableError
from arcface_trt.lazy import LazyModule, available, lazy_import, require, resolve


def test_the_import_happens_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = lazy_import("arcface_test_lazy_mod")
    assert isinstance(proxy, LazyModule)
    first = types.ModuleType("arcface_test_lazy_mod")
    first.value = 1
    monkeypatch.setitem(sys.modules, "arcface_test_lazy_mod", first)
    assert proxy.value == 1
    # A module swapped in sys.modules (the tests' fakes do this) is seen at once.
    second = types.ModuleType("arcface_test_lazy_mod")
    second.value = 2
    monkeypatch.setitem(sys.modules, "arcface_test_lazy_mod", second)
    assert proxy.value == 2 and resolve(proxy) is second


def test_a_missing_module_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    trt = lazy_import("tensorrt")
    with pytest.raises(
        BackendUnavailableError,
        match=r"'tensorrt' is not importable \(TensorRT is not installed .*pip install 'arcface-trt\[gpu\]'",
    ):
        trt.Builder  # noqa: B018
    assert not available("tensorrt")
    with pytest.raises(BackendUnavailableError, match=r"pip install arcface_test_absent"):
        require("arcface_test_absent.sub")


def test_fallbacks_are_tried_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    older = types.ModuleType("arcface_test_old")
    monkeypatch.setitem(sys.modules, "arcface_test_new", None)
    monkeypatch.setitem(sys.modules, "arcface_test_old", older)
    assert resolve(lazy_import("arcface_test_new", "arcface_test_old")) is older
    assert available("arcface_test_new", "arcface_test_old")
