"""A build on the fake TensorRT: its progress reaches the caller, its engine proves its precision, a mislabel fails."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from arcface_trt.config import TensorrtSection
from arcface_trt.engine.build import BuildRequest, build_engine
from arcface_trt.engine.progress import FINISH, START, STEP, PhaseEvent
from arcface_trt.errors import CheckFailedError
from arcface_trt.precision import fp16
from tests.support.fakes import FakeStack
from tests.support.tiny_models import write_tiny_model


def _fp16(settings: TensorrtSection, **changes) -> TensorrtSection:
    return dataclasses.replace(settings, precision="fp16", **changes)


def _stored(settings: TensorrtSection) -> list[str]:
    """Plans and manifests in the engine cache."""
    return sorted(p.name for p in Path(settings.cache_dir).rglob("*") if p.suffix in (".plan", ".json"))


def _check_nesting(events: list[PhaseEvent]) -> None:
    """Every phase starts once under an open parent, steps within its count, and finishes, innermost first."""
    open_phases: dict[str, int] = {}
    stack: list[str] = []
    for event in events:
        if event.kind == START:
            assert event.parent is None or event.parent in open_phases, event
            assert event.phase not in open_phases and event.steps > 0
            open_phases[event.phase] = event.steps
            stack.append(event.phase)
        elif event.kind == STEP:
            assert 1 <= event.steps <= open_phases[event.phase], event
        else:
            assert event.kind == FINISH and stack.pop() == event.phase
            del open_phases[event.phase]
    assert not open_phases


def test_progress_events_reach_the_caller(fake_stack: FakeStack, tiny_onnx: Path, engine_settings) -> None:
    events: list[PhaseEvent] = []
    build_engine(BuildRequest(tiny_onnx, engine_settings), on_progress=events.append)
    assert fake_stack.builds[-1].progress_monitor
    _check_nesting(events)
    top = [e for e in events if e.kind == START and e.parent is None]
    assert [(e.kind, e.phase) for e in top] == [(START, "Building engine")]
    started = [e.phase for e in events if e.kind == START]
    assert "Timing graph nodes" in started and "Finding fastest tactic for conv + relu" in started
    last_step = [e for e in events if e.kind == STEP and e.phase == "Building engine"][-1]
    assert last_step.steps == 4  # step 3 of 0..3 done: the whole phase
    # Rebuilt with the timing cache: nothing to time, so no tactic search is reported.
    events.clear()
    build_engine(BuildRequest(tiny_onnx, engine_settings, force=True), on_progress=events.append)
    assert not [e for e in events if e.phase.startswith("Finding fastest tactic")]


def test_a_failing_display_does_not_fail_the_build(fake_stack: FakeStack, tiny_onnx: Path, engine_settings) -> None:
    calls = []

    def broken(event: PhaseEvent) -> None:
        calls.append(event)
        raise ValueError("terminal gone")

    result = build_engine(BuildRequest(tiny_onnx, engine_settings), on_progress=broken)
    assert result.source == "built" and len(calls) == 1  # dropped after the first failure


def test_ctrl_c_during_a_build_cancels_it(fake_stack: FakeStack, tiny_onnx: Path, engine_settings) -> None:
    def interrupted(event: PhaseEvent) -> None:
        if event.phase == "Timing graph nodes" and event.kind == START:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_engine(BuildRequest(tiny_onnx, engine_settings), on_progress=interrupted)
    assert fake_stack.builds[-1].cancelled and _stored(engine_settings) == []


def test_every_build_is_inspected_and_summarised(fake_stack: FakeStack, tiny_onnx: Path, engine_settings) -> None:
    result = build_engine(BuildRequest(tiny_onnx, _fp16(engine_settings)))
    assert fake_stack.builds[-1].profiling_verbosity == "DETAILED"
    manifest = result.manifest
    summary, check = manifest.precision_summary, manifest.precision_check
    assert summary["requested"] == "fp16" and summary["detailed"] and check["passed"] and check["threshold"] == 0.8
    assert summary["compute_by_precision"]["fp16"] >= 1 and summary["share"] == 1.0
    if fake_stack.major == "11":  # the mixed-precision ONNX keeps the embedding head in fp32, on purpose
        assert summary["kept_fp32_nodes"] == ["fc", "features"] and summary["kept_layers"] == ["fc + features"]
        assert summary["counted"] == 1 and summary["fp32_layers"] == ["fc + features"]
    else:  # the FP16 flag: the builder ran every layer in fp16
        assert summary["kept_fp32_nodes"] == [] and summary["counted"] == 2 and summary["fp32_layers"] == []
    fp32 = build_engine(BuildRequest(tiny_onnx, engine_settings)).manifest
    assert fp32.precision_summary["by_precision"] == {"fp32": 3} and fp32.precision_check["passed"]
    assert fp32.extra["io_tensors"]["input"] == {"name": "input.1", "shape": [-1, 3, 112, 112], "dtype": "float32"}


def test_timing_cache_entries_are_counted(fake_stack: FakeStack, tiny_onnx: Path, engine_settings) -> None:
    first = build_engine(BuildRequest(tiny_onnx, engine_settings)).manifest.extra
    assert first["timing_cache"] == "new" and first["timing_cache_entries_added"] == 3  # one per layer timed
    again = build_engine(BuildRequest(tiny_onnx, engine_settings, force=True)).manifest.extra
    assert again["timing_cache"] == "loaded" and again["timing_cache_entries_added"] == 0
    other = build_engine(BuildRequest(tiny_onnx, _fp16(engine_settings))).manifest.extra
    assert other["timing_cache"] == "loaded" and other["timing_cache_entries_added"] > 0
    off = dataclasses.replace(engine_settings, timing_cache=False, cache_dir=str(Path(engine_settings.cache_dir) / "b"))
    assert build_engine(BuildRequest(tiny_onnx, off)).manifest.extra["timing_cache_entries_added"] is None


def test_trt10_fp32_tactics_under_the_fp16_flag_fail_the_gate(
    fake_stack_10: FakeStack, tiny_onnx: Path, engine_settings
) -> None:
    fake_stack_10.fp32_tactics.add("conv")  # the builder found the fp32 tactic faster
    with pytest.raises(CheckFailedError) as info:
        build_engine(BuildRequest(tiny_onnx, _fp16(engine_settings)))
    message = str(info.value)
    assert info.value.exit_code == 1
    assert "1 of 2 convolution/matrix layers run in fp16 (50%; at least 80% required)" in message
    assert "in fp32: conv + relu" in message and "FP16 builder flag" in message
    assert "precision.keep_fp32_nodes" in message and "[fc, features]" in message
    assert _stored(engine_settings) == []
    # The way out the message names: an explicit keep list builds the strongly typed mixed-precision path.
    result = build_engine(BuildRequest(tiny_onnx, _fp16(engine_settings), keep_fp32_nodes=("fc", "features")))
    assert result.manifest.extra["precision_path"] == "fp16-mixed-precision-onnx"
    assert result.manifest.precision_check["passed"] and fake_stack_10.builds[-1].strongly_typed
    # ... and so does a lower threshold, on the flag path.
    lenient = build_engine(BuildRequest(tiny_onnx, _fp16(engine_settings, min_fp16_share=0.5)))
    assert lenient.manifest.precision_summary["share"] == 0.5 and lenient.manifest.precision_check["passed"]


def test_trt11_unconverted_onnx_labelled_fp16_fails_and_is_not_cached(
    fake_stack_11: FakeStack, tiny_onnx: Path, engine_settings, monkeypatch
) -> None:
    def converter_that_did_nothing(src: Path, dst: Path, keep_fp32_nodes=None, **options) -> Path:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return dst

    with monkeypatch.context() as patched, pytest.raises(CheckFailedError) as info:
        patched.setattr(fp16, "convert_to_fp16", converter_that_did_nothing)
        build_engine(BuildRequest(tiny_onnx, _fp16(engine_settings)))
    message = str(info.value)
    assert "labelled fp16 is not fp16: 0 of 1 convolution/matrix layers run in fp16" in message
    assert "strongly typed" in message and "was discarded (not cached, not uploaded)" in message
    assert _stored(engine_settings) == []
    for stale in Path(engine_settings.cache_dir, "onnx").glob("*.onnx"):
        stale.unlink()  # the unconverted copy the broken converter left under the converted file's name
    converted = build_engine(BuildRequest(tiny_onnx, _fp16(engine_settings)))
    assert converted.source == "built" and converted.manifest.precision_check["passed"]
    assert _stored(engine_settings) == ["tiny-fp16-sm90.json", "tiny-fp16-sm90.plan"]


def test_int8_needs_quantized_convolutions(fake_stack: FakeStack, tmp_path: Path, engine_settings) -> None:
    int8 = dataclasses.replace(engine_settings, precision="int8")
    quantized = build_engine(BuildRequest(write_tiny_model(tmp_path / "q.onnx", qdq=True), int8)).manifest
    assert quantized.precision_summary["compute_by_precision"] == {"fp32": 1, "int8": 1}
    assert quantized.precision_check["passed"]
    input_only = write_tiny_model(tmp_path / "qin.onnx", qdq=True, qdq_weights=False)
    with pytest.raises(CheckFailedError, match=r"0 of 2 convolution/matrix layers run in int8.*arcface-trt quantize"):
        build_engine(BuildRequest(input_only, int8))
    assert not list(Path(engine_settings.cache_dir).rglob("qin-*"))
