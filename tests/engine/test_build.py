"""Building engines against both fake TensorRT shapes: cache reuse, rebuild reasons, precision paths, failures."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.config import TensorrtSection
from arcface_trt.engine import builder, trt_api
from arcface_trt.engine.build import BuildRequest, build_engine, dry_run
from arcface_trt.engine.builder import prepare_onnx
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.precision.plan import PATH_INT8_QDQ, TRANSFORM_FP16, PrecisionPlan
from tests.support.fakes import FakeCuda, FakeDevice, FakeStack, install_fakes
from tests.support.tiny_models import write_tiny_model


def _build(onnx: Path, settings: TensorrtSection, **kwargs):
    messages: list[str] = []
    result = build_engine(BuildRequest(onnx, settings, **kwargs), messages.append)
    return result, messages


def _plan(precision: str) -> PrecisionPlan:
    """The precision plan for the installed (fake) TensorRT: what a build must follow."""
    return PrecisionPlan.for_target(precision, "gpu", trt_api.capabilities())


def test_build_then_reuse(fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection) -> None:
    first, messages = _build(tiny_onnx, engine_settings)
    assert first.source == "built" and not first.from_cache
    assert first.plan_path == Path(engine_settings.cache_dir) / f"trt{fake_stack.major_minor}" / "tiny-fp32-sm90.plan"
    assert any("no cached plan" in m for m in messages)
    manifest = json.loads(first.plan_path.with_suffix(".json").read_text())
    assert manifest["trt_version"] == fake_stack.version
    assert manifest["sm_arch"] == "sm90" and manifest["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert (manifest["min_batch"], manifest["opt_batch"], manifest["max_batch"]) == (1, 4, 4)
    assert manifest["extra"]["precision_path"] == "fp32-onnx"
    again, messages = _build(tiny_onnx, engine_settings)
    assert again.source == "cache" and again.from_cache and messages == []
    assert again.manifest.plan_sha256 == first.manifest.plan_sha256


def test_changed_request_rebuilds_with_reason(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection
) -> None:
    _build(tiny_onnx, engine_settings)
    wider = dataclasses.replace(engine_settings, opt_batch_size=8, max_batch_size=16)
    result, messages = _build(tiny_onnx, wider)
    assert result.source == "built"
    assert result.reasons == ["opt_batch: cached 4, wanted 8", "max_batch: cached 4, wanted 16"]
    assert "opt_batch: cached 4, wanted 8" in messages[0]
    level = dataclasses.replace(wider, hardware_compatibility="same_cc")  # same name, other level
    result, _ = _build(tiny_onnx, level)
    assert result.plan_path.name == "tiny-fp32-sm90.plan"
    assert result.reasons == ["hardware_compatibility: cached 'none', wanted 'same_cc'"]
    assert result.manifest.hardware_compatibility == "same_cc"
    forced, _ = _build(tiny_onnx, level, force=True)
    assert forced.source == "built" and forced.reasons == ["--force"]


def test_other_model_and_corrupt_plan_rebuild(
    fake_stack: FakeStack, tmp_path: Path, engine_settings: TensorrtSection
) -> None:
    onnx = write_tiny_model(tmp_path / "m" / "face.onnx", seed=0)
    _build(onnx, engine_settings)
    write_tiny_model(onnx, seed=1)  # same name, other weights
    result, _ = _build(onnx, engine_settings)
    assert result.source == "built" and result.reasons[0].startswith("onnx_sha256: cached ")
    result.plan_path.write_bytes(result.plan_path.read_bytes()[:-10] + b"0123456789")
    again, _ = _build(onnx, engine_settings)
    assert again.source == "built"
    assert again.reasons == ["cached plan's sha256 does not match its manifest (corrupt or replaced)"]


def _timing_file(settings: TensorrtSection, stack: FakeStack, gpu: str = "nvidia-h100-80gb-hbm3") -> Path:
    return Path(settings.cache_dir) / f"trt{stack.major_minor}" / f"timing-{gpu}-{stack.version}.cache"


def _timing_device(path: Path) -> str:
    """The device a (fake) serialized timing cache was measured on."""
    from tests.support.faketrt import timing_cache

    return timing_cache.parse(path.read_bytes())["device"]


def test_timing_cache_is_kept_and_reused(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection, caplog
) -> None:
    first, _ = _build(tiny_onnx, engine_settings)
    cache_file = _timing_file(engine_settings, fake_stack)  # one file per GPU model and full TensorRT version
    assert cache_file.exists() and cache_file.stat().st_size > 0
    assert first.manifest.extra["timing_cache"] == "new" and fake_stack.builds[-1].timing_cache == "accepted"
    caplog.set_level("DEBUG", logger="arcface_trt")
    again, _ = _build(tiny_onnx, engine_settings, force=True)
    assert "timing cache hit" in caplog.text and fake_stack.builds[-1].timing_cache_hit
    assert again.manifest.extra["timing_cache"] == "loaded"
    without = dataclasses.replace(
        engine_settings, timing_cache=False, cache_dir=str(Path(engine_settings.cache_dir) / "b")
    )
    off, _ = _build(tiny_onnx, without)
    assert not list(Path(without.cache_dir).rglob("timing-*.cache"))
    assert off.manifest.extra["timing_cache"] == "off" and fake_stack.builds[-1].timing_cache == "none"


def test_a_refused_timing_cache_is_replaced_not_kept(
    monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection
) -> None:
    """A cache TensorRT refuses (another device or version) must neither be used nor stay on disk."""
    l4 = install_fakes(monkeypatch, "11", FakeCuda([FakeDevice("NVIDIA L4", 8, 9)]))
    _build(tiny_onnx, engine_settings)
    measured_on_l4 = _timing_file(engine_settings, l4, "nvidia-l4")
    stack = install_fakes(monkeypatch, "11")  # an H100 with the same TensorRT
    stale = _timing_file(engine_settings, stack)
    stale.write_bytes(measured_on_l4.read_bytes())  # e.g. copied between machines by hand
    result, messages = _build(tiny_onnx, engine_settings)
    assert stack.builds[-1].timing_cache == "accepted"  # a fresh cache, not the L4's with ignore_mismatch
    assert result.manifest.extra["timing_cache"] == "refused-replaced"
    assert any(f"timing cache {stale.name} is unusable here" in m for m in messages)
    assert _timing_device(stale) == "NVIDIA H100 80GB HBM3"  # the stale file was replaced
    _build(tiny_onnx, engine_settings, force=True)
    assert stack.builds[-1].timing_cache == "accepted" and stack.builds[-1].timing_cache_hit


def test_builder_flags_follow_the_plan(fake_stack: FakeStack, tmp_path: Path, engine_settings: TensorrtSection) -> None:
    """fp32 means fp32 (TF32, on by default in TensorRT, is cleared); fp16 and int8 as the precision plan says."""
    plain = write_tiny_model(tmp_path / "plain.onnx")
    _build(plain, engine_settings)
    fp32 = fake_stack.builds[-1]
    assert "TF32" not in fp32.flags and not fp32.flags & {"FP16", "INT8"}
    _build(plain, dataclasses.replace(engine_settings, precision="fp16"))
    fp16, plan = fake_stack.builds[-1], _plan("fp16")
    assert set(plan.set_flags) <= fp16.flags and fp16.strongly_typed is plan.strongly_typed
    assert ("FP16" in fp16.flags) is (fake_stack.major == "10")
    _build(write_tiny_model(tmp_path / "q.onnx", qdq=True), dataclasses.replace(engine_settings, precision="int8"))
    int8 = fake_stack.builds[-1]
    assert int8.strongly_typed and not int8.flags & {"FP16", "INT8"}


def test_fp16_build_follows_the_plan(fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection) -> None:
    """Which fp16 path a TensorRT version takes is the plan's (tests/precision/test_plan.py); the build follows it."""
    result, _ = _build(tiny_onnx, dataclasses.replace(engine_settings, precision="fp16"))
    assert result.plan_path.name == "tiny-fp16-sm90.plan"
    plan = _plan("fp16")
    assert result.manifest.extra["precision_path"] == plan.path
    assert result.manifest.extra["precision_plan"] == plan.to_dict()
    if plan.transform != TRANSFORM_FP16:
        assert not list(Path(engine_settings.cache_dir).rglob("*fp16*.onnx"))
    else:
        converted = list((Path(engine_settings.cache_dir) / "onnx").glob("tiny-fp16-*.onnx"))
        assert len(converted) == 1
        import onnx

        model = onnx.load(str(converted[0]))
        # fp32 in and out, fp16 inside: the strongly typed network takes its precision from here.
        assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)


def test_int8_needs_a_qdq_model(fake_stack: FakeStack, tmp_path: Path, engine_settings: TensorrtSection) -> None:
    int8 = dataclasses.replace(engine_settings, precision="int8")
    plain = write_tiny_model(tmp_path / "plain.onnx")
    with pytest.raises(InputError, match="QDQ"):
        _build(plain, int8)
    assert not list(Path(engine_settings.cache_dir).rglob("*.plan"))
    qdq = write_tiny_model(tmp_path / "quant.onnx", qdq=True)
    result, _ = _build(qdq, int8)
    assert result.manifest.extra["precision_path"] == PATH_INT8_QDQ
    unsigned = write_tiny_model(tmp_path / "quant_u8.onnx", qdq=True, qdq_uint8=True)
    with pytest.raises(InputError, match=r"symmetric INT8 Q/DQ .* UINT8"):
        _build(unsigned, int8)


def test_fixed_batch_model_is_made_dynamic(
    fake_stack: FakeStack, tmp_path: Path, engine_settings: TensorrtSection
) -> None:
    fixed = write_tiny_model(tmp_path / "fixed.onnx", fixed_batch=1)
    result, messages = _build(fixed, engine_settings)
    assert result.manifest.extra["dynamic_batch_rewritten"] is True
    assert any("fixed-dynbatch" in m for m in messages)


def test_parser_errors_are_all_reported(
    fake_stack: FakeStack, tmp_path: Path, engine_settings: TensorrtSection
) -> None:
    bad = write_tiny_model(tmp_path / "custom.onnx", custom_op=True)
    with pytest.raises(InputError) as info:
        _build(bad, engine_settings)
    assert "UNSUPPORTED_NODE at node 2 'mystery' (Mystery): No importer registered for op: Mystery" in str(info.value)


def test_failed_build_carries_the_logger_messages(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection
) -> None:
    tiny_workspace = dataclasses.replace(engine_settings, workspace_size_mb=1)
    with pytest.raises(InputError, match=r"could not build an engine .* Insufficient workspace"):
        _build(tiny_onnx, tiny_workspace)
    folder = Path(engine_settings.cache_dir) / f"trt{fake_stack.major_minor}"
    leftovers = [p.name for p in folder.iterdir() if not p.name.startswith(".tiny-fp32-sm90.plan.lock")]
    assert leftovers == []  # no plan, no manifest, no temporary file


def test_interrupted_store_leaves_no_plan(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection, monkeypatch
) -> None:
    import arcface_trt.fileio as fileio

    real_replace = fileio.os.replace

    def failing_replace(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(OSError):
        _build(tiny_onnx, engine_settings)
    monkeypatch.setattr(fileio.os, "replace", real_replace)
    folder = Path(engine_settings.cache_dir) / f"trt{fake_stack.major_minor}"
    assert not list(folder.glob("*.tmp"))
    assert not (folder / "tiny-fp32-sm90.json").exists()
    # The plan without a manifest is not trusted: the next run rebuilds and says why.
    result, _ = _build(tiny_onnx, engine_settings)
    assert result.source == "built" and result.reasons == ["cached plan has no manifest"]


def test_concurrent_builds_share_one_build(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection, monkeypatch
) -> None:
    real = builder.build_serialized_plan
    calls = []

    def slow_build(*args, **kwargs):
        calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other thread to reach the lock
        return real(*args, **kwargs)

    monkeypatch.setattr(builder, "build_serialized_plan", slow_build)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(_build(tiny_onnx, engine_settings)[0])) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert sorted(r.source for r in results) == ["built", "cache"]
    assert results[0].manifest.plan_sha256 == results[1].manifest.plan_sha256


def test_arch_override_must_match_the_gpu(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection
) -> None:
    with pytest.raises(InputError, match="--arch sm86 differs from this GPU"):
        _build(tiny_onnx, engine_settings, arch="86")
    result, _ = _build(tiny_onnx, engine_settings, arch="sm_90")
    assert result.key.sm_arch == "sm90"


def test_other_gpu_gets_its_own_engine(monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection) -> None:
    install_fakes(monkeypatch, "10", FakeCuda([FakeDevice("NVIDIA L4", 8, 9)]))
    result, _ = _build(tiny_onnx, engine_settings)
    assert result.plan_path.name == "tiny-fp32-sm89.plan"
    assert result.manifest.gpu_name == "NVIDIA L4"


def test_no_gpu_is_a_clear_error(monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection) -> None:
    install_fakes(monkeypatch, "11", FakeCuda(driver=False))
    with pytest.raises(BackendUnavailableError, match="cudaErrorInsufficientDriver, 35"):
        _build(tiny_onnx, engine_settings)


def test_builder_without_cuda_reports_tensorrt_message(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection
) -> None:
    """If CUDA fails between the GPU check and the build, TensorRT's own words reach the user."""
    fake_stack.cuda.driver = False
    prepared = builder.PreparedOnnx(tiny_onnx, _plan("fp32"))
    settings = builder.BuildSettings(1, 4, 4, 64)
    with pytest.raises(BackendUnavailableError, match="CUDA initialization failure with error: 35"):
        builder.build_serialized_plan(prepared, (3, 112, 112), settings, trt_api.TrtLog())


def test_dry_run_with_fake_fills_everything(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection
) -> None:
    plan = dry_run(BuildRequest(tiny_onnx, dataclasses.replace(engine_settings, precision="fp16")))
    assert plan["engine_name"] == "tiny-fp16-sm90.plan"
    assert plan["folder"] == f"trt{fake_stack.major_minor}"
    assert plan["cache"]["status"] == "miss"
    assert plan["build_settings"]["precision_path"] == _plan("fp16").path
    assert not Path(engine_settings.cache_dir).exists() or not list(Path(engine_settings.cache_dir).rglob("*.plan"))


def test_capabilities_follow_attributes_not_versions(fake_stack: FakeStack) -> None:
    caps = trt_api.capabilities()
    assert caps.fp16_flag is (fake_stack.major == "10")
    assert caps.explicit_batch_flag is (fake_stack.major == "10")
    # The fakes are the two shapes the plan decides on without TensorRT (dry runs).
    shape = trt_api.KNOWN_SHAPES[f"{fake_stack.major}.x"]
    assert (caps.fp16_flag, caps.explicit_batch_flag, caps.strongly_typed_flag) == (
        shape.fp16_flag,
        shape.explicit_batch_flag,
        shape.strongly_typed_flag,
    )
    fake_stack.trt.__version__ = "99.0.0"  # a version string must not change the decision
    assert _plan("fp16").path == PrecisionPlan.for_target("fp16", "gpu", caps).path
    assert trt_api.major_minor() == "99.0"
    assert np.dtype(fake_stack.trt.nptype(fake_stack.trt.float32)) == np.float32


def test_tensorrt_int8_refuses_a_plain_model_and_names_the_fix(
    r18_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fakes(monkeypatch, "10")
    with pytest.raises(InputError, match="arcface-trt quantize --onnx-path"):
        prepare_onnx(_plan("int8"), r18_model, tmp_path, "0" * 64)
