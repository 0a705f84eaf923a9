"""The fake TensorRT is as strict as a GPU about refit, host code, lean runtimes and hardware levels.

These drive the fake directly (as TensorRT's own samples do), so a fake that let a missing step through
fails here, not only in the product's tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import pytest

from tests.support.fakes import FakeCuda, FakeDevice, FakeStack, install_fakes
from tests.support.faketrt.runtime import write_lean_library
from tests.support.tiny_models import write_tiny_model


class _Logger:
    """What the fake logs, through the product's collecting logger (``trt.ILogger`` subclass)."""

    def __init__(self) -> None:
        from arcface_trt.engine.trt_api import TrtLog

        self.log = TrtLog()
        self.sink = self.log.trt_logger

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.log.messages]


def _plan(trt: Any, onnx_path: Path, *flags: str, level: str = "NONE") -> bytes:
    """A serialized plan of ``onnx_path`` built with ``flags`` (as NVIDIA's samples build one)."""
    log = _Logger()
    logger = log.sink
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes(), str(onnx_path))
    config = builder.create_builder_config()
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level)
    profile = builder.create_optimization_profile()
    profile.set_shape(network.get_input(0).name, (1, 3, 112, 112), (2, 3, 112, 112), (2, 3, 112, 112))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None, log.messages
    return bytes(serialized)


def _engine(trt: Any, data: bytes, host_code: bool = False) -> tuple[Any, Any, _Logger]:
    log = _Logger()
    runtime = trt.Runtime(log.sink)
    runtime.engine_host_code_allowed = host_code
    return runtime, runtime.deserialize_cuda_engine(data), log


def test_a_refit_needs_every_stripped_weight(fake_stack: FakeStack, tiny_onnx: Path) -> None:
    trt = fake_stack.trt
    _, engine, logger = _engine(trt, _plan(trt, tiny_onnx, "STRIP_PLAN", "REFIT_IDENTICAL"))
    assert engine.refittable
    assert engine.create_execution_context() is None and "not refit yet" in logger.messages[-1]
    refitter = trt.Refitter(engine, logger.sink)
    every = refitter.get_all_weights()
    assert set(every) == {"conv.w", "conv.b", "fc.w", "fc.b", "bn.scale", "bn.bias", "bn.mean", "bn.var"}
    assert refitter.get_missing_weights() == every
    assert refitter.refit_cuda_engine() is False and "missing weights: bn.bias" in logger.messages[-1]
    # A file holding only some of them leaves the rest missing.
    partial = onnx.load(str(tiny_onnx))
    keep = [init for init in partial.graph.initializer if init.name != "fc.w"]
    del partial.graph.initializer[:]
    partial.graph.initializer.extend(keep)
    onnx.save(partial, str(tiny_onnx.parent / "partial.onnx"))
    assert trt.OnnxParserRefitter(refitter, logger.sink).refit_from_file(str(tiny_onnx.parent / "partial.onnx"))
    assert refitter.get_missing_weights() == ["fc.w"] and refitter.refit_cuda_engine() is False
    assert trt.OnnxParserRefitter(refitter, logger.sink).refit_from_file(str(tiny_onnx))
    assert refitter.get_missing_weights() == [] and refitter.refit_cuda_engine() is True
    assert engine.create_execution_context() is not None


def test_weights_of_another_shape_are_a_refit_error(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    trt = fake_stack.trt
    _, engine, logger = _engine(trt, _plan(trt, tiny_onnx, "STRIP_PLAN"))
    parser_refitter = trt.OnnxParserRefitter(trt.Refitter(engine, logger.sink), logger.sink)
    wider = write_tiny_model(tmp_path / "wider.onnx", dim=32)
    assert parser_refitter.refit_from_file(str(wider)) is False
    error = parser_refitter.get_error(0)
    assert error.code() == trt.ErrorCode.REFIT_FAILED and "fc.w" in error.desc()


def test_a_plan_built_without_refit_cannot_be_refit(fake_stack: FakeStack, tiny_onnx: Path) -> None:
    trt = fake_stack.trt
    _, engine, logger = _engine(trt, _plan(trt, tiny_onnx))
    refitter = trt.Refitter(engine, logger.sink)
    assert not engine.refittable and refitter.get_all_weights() == []
    assert refitter.refit_cuda_engine() is False and "not built refittable" in logger.messages[-1]
    # REFIT alone keeps the weights: refittable, and it runs as it is.
    _, refittable, _ = _engine(trt, _plan(trt, tiny_onnx, "REFIT"))
    assert refittable.refittable and refittable.create_execution_context() is not None


def test_host_code_and_lean_runtimes(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    trt = fake_stack.trt
    embedded = _plan(trt, tiny_onnx, "VERSION_COMPATIBLE")
    assert _engine(trt, embedded)[1] is None
    assert _engine(trt, embedded, host_code=True)[1] is not None
    excluded = _plan(trt, tiny_onnx, "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME")
    assert len(excluded) < len(embedded)
    assert _engine(trt, excluded, host_code=True)[1] is None  # the full runtime does not load it
    logger = _Logger()
    runtime = trt.Runtime(logger.sink)
    assert runtime.load_runtime(str(tiny_onnx)) is None and "could not load" in logger.messages[-1]
    lean = runtime.load_runtime(str(write_lean_library(tmp_path / "lean.so", fake_stack.version)))
    assert lean.deserialize_cuda_engine(excluded) is not None
    assert lean.deserialize_cuda_engine(_plan(trt, tiny_onnx)) is None  # only its version-compatible plans


@pytest.mark.parametrize(("device", "level"), [((7, 5), "AMPERE_PLUS"), ((7, 0), "SAME_COMPUTE_CAPABILITY")])
def test_hardware_levels_need_a_recent_gpu(monkeypatch, tiny_onnx: Path, device: tuple[int, int], level: str) -> None:
    stack = install_fakes(monkeypatch, "10", FakeCuda([FakeDevice("old", *device)]))
    trt = stack.trt
    logger = _Logger()
    builder = trt.Builder(logger.sink)
    network = builder.create_network(0)
    assert trt.OnnxParser(network, logger.sink).parse(tiny_onnx.read_bytes(), str(tiny_onnx))
    config = builder.create_builder_config()
    config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level)
    profile = builder.create_optimization_profile()
    profile.set_shape(network.get_input(0).name, (1, 3, 112, 112), (1, 3, 112, 112), (1, 3, 112, 112))
    config.add_optimization_profile(profile)
    assert builder.build_serialized_network(network, config) is None
    assert f"{level} is not supported" in logger.messages[-1]
