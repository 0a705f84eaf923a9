"""Fixtures of the fake TensorRT stack (see ``fakes.py``), for every test folder.

``tests/conftest.py`` registers this module through ``pytest_plugins``.
"""

from __future__ import annotations

import pytest

from tests.support.fakes import FakeStack, hide_gpu_stack, install_fakes


@pytest.fixture(params=["10", "11"], ids=["trt10.16", "trt11.4"])
def fake_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FakeStack:
    """The fake TensorRT (each shape in turn) and a fake H100 (sm90)."""
    return install_fakes(monkeypatch, request.param)


@pytest.fixture
def fake_stack_10(monkeypatch: pytest.MonkeyPatch) -> FakeStack:
    """Only the 10.16-shaped fake."""
    return install_fakes(monkeypatch, "10")


@pytest.fixture
def fake_stack_11(monkeypatch: pytest.MonkeyPatch) -> FakeStack:
    """Only the 11.4-shaped fake."""
    return install_fakes(monkeypatch, "11")


@pytest.fixture
def no_gpu_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither tensorrt nor cuda-python importable (as on this project's machines)."""
    hide_gpu_stack(monkeypatch)


@pytest.fixture
def engine_settings(tmp_path):
    """TensorRT settings with a per-test engine cache and small batches."""
    from arcface_trt.config import TensorrtSection

    return TensorrtSection(
        precision="fp32", min_batch_size=1, opt_batch_size=4, max_batch_size=4, cache_dir=str(tmp_path / "engines")
    )
