"""TrtRunner against both fake TensorRT shapes: results, chunking, timing, CUDA graphs, load failures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.config import TensorrtSection
from arcface_trt.engine.build import BuildRequest, build_engine
from arcface_trt.errors import BackendUnavailableError, InputError
from tests.support.fakes import FakeCuda, FakeDevice, FakeStack, install_fakes
from tests.support.tiny_models import write_tiny_model


def _plan(onnx: Path, settings: TensorrtSection) -> Path:
    return build_engine(BuildRequest(onnx, settings), lambda m: None).plan_path


def _reference(onnx: Path, batch: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    return session.run(None, {"input.1": batch})[0]


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    from arcface_trt.faces import sample_faces
    from arcface_trt.model.input_spec import InputSpec
    from arcface_trt.preprocess import preprocess

    return preprocess(sample_faces(10, seed=3), InputSpec.default(112))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_infer_matches_onnxruntime_and_chunks(fake_stack: FakeStack, tiny_onnx: Path, engine_settings, batch) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    with TrtRunner(_plan(tiny_onnx, engine_settings)) as runner:
        assert (runner.min_batch, runner.opt_batch, runner.max_batch) == (1, 4, 4)
        assert runner.input_name == "input.1" and runner.output_name == "embedding"
        out = runner.infer(batch)  # 10 inputs, max batch 4: three chunks
        assert out.shape == (10, 64) and out.dtype == np.float32
        np.testing.assert_allclose(out, _reference(tiny_onnx, batch), rtol=1e-5, atol=1e-5)
        one = runner.infer(batch[:1])
        np.testing.assert_allclose(one, out[:1], rtol=1e-6, atol=1e-6)
        assert runner.infer(batch[:0]).shape == (0, 64)
        with pytest.raises(InputError, match=r"shape \(N, 3, 112, 112\)"):
            runner.infer(batch[:, :, :56])
        copies = [c for c in fake_stack.cuda.calls if c.startswith("memcpy")]
        assert copies.count("memcpy-cudaMemcpyHostToDevice") == 4  # 3 chunks + 1 single
    assert fake_stack.cuda.outstanding() == []
    with pytest.raises(InputError, match="closed"):
        runner.infer(batch)


def test_buffers_are_allocated_once(fake_stack: FakeStack, tiny_onnx: Path, engine_settings, batch) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    with TrtRunner(_plan(tiny_onnx, engine_settings)) as runner:
        before = list(fake_stack.cuda.calls)
        runner.infer(batch)
        runner.infer(batch[:3])
        assert not [c for c in fake_stack.cuda.calls[len(before) :] if c.startswith("alloc")]
        assert sorted(k for k, _ in fake_stack.cuda.outstanding()) == ["device", "device", "host", "host"]
        assert runner.buffer_bytes == 4 * (3 * 112 * 112 * 4 + 64 * 4)


def test_min_batch_is_padded(fake_stack: FakeStack, tiny_onnx: Path, engine_settings, batch) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    settings = dataclasses.replace(engine_settings, min_batch_size=2, opt_batch_size=4, max_batch_size=4)
    with TrtRunner(_plan(tiny_onnx, settings)) as runner:
        out = runner.infer(batch[:5])  # chunks of 4 and 1 (padded to 2)
        np.testing.assert_allclose(out, _reference(tiny_onnx, batch[:5]), rtol=1e-5, atol=1e-5)


def test_timed_infer_and_compute_only(fake_stack: FakeStack, tiny_onnx: Path, engine_settings, batch) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    with TrtRunner(_plan(tiny_onnx, engine_settings)) as runner:
        out, times = runner.timed_infer(batch[:6])
        assert out.shape == (6, 64)
        assert set(times) == {"h2d_ms", "compute_ms", "d2h_ms"}
        assert all(v >= 0 for v in times.values()) and times["compute_ms"] > 0
        ms = runner.compute_only(4)
        assert ms > 0
        graph_ms = runner.compute_only(4, cuda_graph=True)
        graph_ms = runner.compute_only(4, cuda_graph=True)
        assert graph_ms > 0
        assert fake_stack.cuda.calls.count("graph-launch") == 2
        assert len(fake_stack.cuda.graphs) == 1  # captured once per batch size
        with pytest.raises(InputError, match="outside the engine profile"):
            runner.compute_only(5)
        assert runner.device_memory_bytes == 7 << 20
    assert fake_stack.cuda.outstanding() == [] and fake_stack.cuda.graphs == {}


def test_graph_capture_after_a_shape_change(fake_stack: FakeStack, tiny_onnx: Path, engine_settings, batch) -> None:
    """TensorRT's first enqueue after a shape change cannot be captured: the runner runs it once before capture."""
    from arcface_trt.engine.runtime import TrtRunner

    with TrtRunner(_plan(tiny_onnx, engine_settings)) as runner:
        runner.infer(batch[:2])  # the context's last shape is 2
        assert runner.compute_only(4, cuda_graph=True) > 0
        assert runner.compute_only(3, cuda_graph=True) > 0  # another shape, another graph
        assert len(fake_stack.cuda.graphs) == 2
        # The graphs replay the real engine: the output buffer holds the batch's embeddings afterwards.
        np.testing.assert_allclose(runner.infer(batch[:3]), _reference(tiny_onnx, batch[:3]), rtol=1e-5, atol=1e-5)


def test_unsupported_tensor_types_and_dynamic_embeddings_are_named(
    fake_stack: FakeStack, tmp_path: Path, engine_settings
) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    bf16 = write_tiny_model(tmp_path / "bf16.onnx", input_dtype="bfloat16")
    with pytest.raises(InputError, match=r"tensor 'input.1' is BF16, which this runner cannot feed or read"):
        TrtRunner(_plan(bf16, engine_settings))
    # The build refuses such a model (inspect_model); a plan made elsewhere is refused at load, by name.
    from arcface_trt.engine import builder, trt_api
    from arcface_trt.precision.plan import PrecisionPlan

    dynamic = write_tiny_model(tmp_path / "dyn.onnx", dynamic_embedding=True)
    prepared = builder.PreparedOnnx(dynamic, PrecisionPlan.for_target("fp32", "gpu", trt_api.capabilities()))
    built = builder.build_serialized_plan(prepared, (3, 112, 112), builder.BuildSettings(1, 4, 4, 64), trt_api.TrtLog())
    with pytest.raises(InputError, match=r"output 'embedding' has dynamic dimensions besides the batch \(\['\?'\]\)"):
        TrtRunner(built.data)
    assert fake_stack.cuda.outstanding() == []


def test_engine_from_other_tensorrt_is_refused(monkeypatch, tiny_onnx: Path, engine_settings) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    install_fakes(monkeypatch, "10")
    plan = _plan(tiny_onnx, engine_settings)
    install_fakes(monkeypatch, "11")
    with pytest.raises(BackendUnavailableError) as info:
        TrtRunner(plan)
    message = str(info.value)
    assert "another TensorRT version or for another GPU" in message
    assert "expecting library version 11.4.0.106 got 10.16.1.11" in message


def test_engine_from_other_gpu_is_refused(monkeypatch, tiny_onnx: Path, engine_settings) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    install_fakes(monkeypatch, "11")
    plan = _plan(tiny_onnx, engine_settings)
    stack = install_fakes(monkeypatch, "11", FakeCuda([FakeDevice("NVIDIA A10", 8, 6)]))
    with pytest.raises(BackendUnavailableError, match=r"expecting compute 8\.6 got compute 9\.0"):
        TrtRunner(plan)
    assert stack.cuda.outstanding() == []  # nothing leaked on the failed load
    portable = _plan(tiny_onnx, dataclasses.replace(engine_settings, hardware_compatibility="ampere_plus"))
    install_fakes(monkeypatch, "11")  # built on the A10 with ampere_plus: loads on the H100
    with TrtRunner(portable) as runner:
        assert runner.max_batch == 4


def test_damaged_plan_is_refused(fake_stack: FakeStack, tmp_path: Path) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    bad = tmp_path / "bad.plan"
    bad.write_bytes(b"not a plan at all")
    with pytest.raises(BackendUnavailableError, match="Magic tag does not match"):
        TrtRunner(bad)
    with pytest.raises(InputError, match="cannot read engine plan"):
        TrtRunner(tmp_path / "missing.plan")


def test_fp16_engines_stay_close_to_fp32(fake_stack: FakeStack, tiny_onnx: Path, engine_settings, batch) -> None:
    from arcface_trt.engine.runtime import TrtRunner

    with TrtRunner(_plan(tiny_onnx, dataclasses.replace(engine_settings, precision="fp16"))) as runner:
        out = runner.infer(batch)
    cos = _cosines(out, _reference(tiny_onnx, batch))
    assert cos.min() > 0.999
    assert not np.array_equal(out, _reference(tiny_onnx, batch))  # it really is another precision
