"""Plans that travel, against both fake TensorRT shapes: stripped + refit, hardware- and version-compatible plans.

The fake drops the stripped weights from a STRIP_PLAN plan and refuses an execution context until every
one is refit; it refuses a version-compatible plan unless host code is allowed, loads it only on the
versions NVIDIA supports, and an sm80+ plan only on Ampere or newer GPUs.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.config import TensorrtSection
from arcface_trt.engine.build import BuildRequest, build_engine, ensure_engine
from arcface_trt.engine.runtime import LoadOptions, TrtRunner
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.model.inspect import onnx_sha256
from tests.support.fakes import FakeCuda, FakeDevice, FakeStack, install_fakes
from tests.support.faketrt.runtime import write_lean_library
from tests.support.tiny_models import write_tiny_model

A100 = FakeDevice("NVIDIA A100-SXM4-80GB", 8, 0)
L4 = FakeDevice("NVIDIA L4", 8, 9)
T4 = FakeDevice("Tesla T4", 7, 5)


def _build(onnx: Path, settings: TensorrtSection, **kwargs):
    return build_engine(BuildRequest(onnx, settings, **kwargs), lambda message: None)


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    from arcface_trt.faces import sample_faces
    from arcface_trt.model.input_spec import InputSpec
    from arcface_trt.preprocess import preprocess

    return preprocess(sample_faces(8, seed=5), InputSpec.default(112))


def _run(result, batch: np.ndarray, load: LoadOptions | None = None) -> np.ndarray:
    with TrtRunner(result.plan_path, load=result.load if load is None else load) as runner:
        out = runner.infer(batch)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_strip_and_refit_round_trip(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection, batch: np.ndarray, precision: str
) -> None:
    settings = dataclasses.replace(engine_settings, precision=precision)
    full = _build(tiny_onnx, settings)
    stripped = _build(tiny_onnx, dataclasses.replace(settings, strip_weights=True))
    record = fake_stack.builds[-1]
    assert {"STRIP_PLAN", "REFIT_IDENTICAL"} <= record.flags and "REFIT" not in record.flags
    assert stripped.plan_path.name.startswith(f"tiny-{precision}-stripped-") and stripped.plan_path.name.endswith(
        "-sm90.plan"
    )
    # Much smaller, not weightless: the fake keeps the graph and the weights TensorRT needs (none here).
    assert stripped.plan_path.stat().st_size < full.plan_path.stat().st_size / 10
    manifest = stripped.manifest
    assert manifest.weights == "stripped" and manifest.recipe == {"stripped": True}
    assert manifest.onnx_sha256 == full.manifest.onnx_sha256
    # The refit source is the ONNX the parser was given: on 11.x (fp16) the converted copy, else the model.
    assert stripped.load.refit_onnx is not None and manifest.parsed_onnx_sha256 == onnx_sha256(stripped.load.refit_onnx)
    assert full.manifest.parsed_onnx_sha256 == manifest.parsed_onnx_sha256
    cosine = np.sum(_run(full, batch) * _run(stripped, batch), axis=1)
    assert cosine.min() >= 0.9999
    # Used without its refit, the stripped engine does not run.
    with pytest.raises(BackendUnavailableError, match=r"could not create an execution context.*not refit"):
        _run(stripped, batch, LoadOptions())


def test_a_different_onnx_is_refused(
    fake_stack: FakeStack, tmp_path: Path, engine_settings: TensorrtSection, batch: np.ndarray
) -> None:
    """REFIT_IDENTICAL promises the build's own weights: a file of other weights (same shapes) is never refit from."""
    fixed = write_tiny_model(tmp_path / "fixed.onnx", fixed_batch=1)  # parsed: the dynamic-batch copy, on both
    stripped = _build(fixed, dataclasses.replace(engine_settings, strip_weights=True))
    source = stripped.load.refit_onnx
    assert source is not None and source.parent.name == "onnx"
    other = write_tiny_model(tmp_path / "other.onnx", seed=7)
    with pytest.raises(
        InputError, match=r"refusing to refit .* from .*other\.onnx: its sha256 is .* the plan was built"
    ):
        _run(stripped, batch, dataclasses.replace(stripped.load, refit_onnx=other))
    # The derived copy itself replaced (by another converter, or by hand): refused when the plan is loaded.
    source.write_bytes(write_tiny_model(tmp_path / "other-fixed.onnx", seed=7, fixed_batch=None).read_bytes())
    again = ensure_engine(fixed, dataclasses.replace(engine_settings, strip_weights=True))
    assert again.source == "cache"
    with pytest.raises(InputError, match="refusing to refit"):
        _run(again, batch)
    with pytest.raises(InputError, match="records no parsed_onnx_sha256"):
        _run(stripped, batch, dataclasses.replace(stripped.load, refit_sha256=None))


def test_the_backend_runs_a_stripped_plan(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection, batch: np.ndarray, caplog
) -> None:
    """A cache holding only the stripped plan serves a plain request too: refit from the local ONNX."""
    stripped = _build(tiny_onnx, dataclasses.replace(engine_settings, strip_weights=True))
    messages: list[str] = []
    taken = ensure_engine(tiny_onnx, engine_settings, on_status=messages.append)
    assert taken.plan_path == stripped.plan_path and taken.source == "cache" and taken.match == "exact"
    assert taken.match_note is not None and "weights stripped: refit from the local ONNX" in taken.match_note
    assert any("taking trt" in m for m in messages)
    full = _build(tiny_onnx, engine_settings)  # `build` asks for the exact plan: it builds the full one
    assert full.source == "built" and full.plan_path != stripped.plan_path
    assert np.sum(_run(taken, batch) * _run(full, batch), axis=1).min() >= 0.9999
    # Now that the full plan is there, it is taken first.
    assert ensure_engine(tiny_onnx, engine_settings).plan_path == full.plan_path


def test_version_compatible_plans(
    monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection, batch: np.ndarray, caplog
) -> None:
    settings = dataclasses.replace(engine_settings, version_compatible=True)
    ten = install_fakes(monkeypatch, "10")
    built = _build(tiny_onnx, settings)
    assert "VERSION_COMPATIBLE" in ten.builds[-1].flags and "EXCLUDE_LEAN_RUNTIME" not in ten.builds[-1].flags
    assert built.plan_path.name.startswith("tiny-fp32-vercompat-")
    assert (built.manifest.version_compatible, built.manifest.lean_runtime) == (True, "embedded")
    assert built.load.host_code_allowed  # the embedded lean runtime is host code: allowed for this plan only
    plain = _build(tiny_onnx, engine_settings)
    assert built.plan_path.stat().st_size > plain.plan_path.stat().st_size  # it carries the lean runtime
    assert not plain.load.host_code_allowed
    with pytest.raises(BackendUnavailableError, match="setEngineHostCodeAllowed"):
        _run(built, batch, LoadOptions())
    reference = _run(built, batch)

    # TensorRT 11.4 runs a 10.16 version-compatible plan (NVIDIA's support matrix): the backend takes it.
    install_fakes(monkeypatch, "11")
    with caplog.at_level(logging.WARNING, logger="arcface_trt"):
        taken = ensure_engine(tiny_onnx, engine_settings)
    assert taken.plan_path == built.plan_path and taken.match == "version-compatible"
    assert "version-compatible: built by TensorRT 10.16, run by 11.4.0.106" in caplog.text
    assert np.sum(_run(taken, batch) * reference, axis=1).min() >= 0.9999
    # An 11.4 version-compatible plan is never taken on 10.16 (no older runtime): 10.16 builds its own.
    eleven = _build(tiny_onnx, settings)
    install_fakes(monkeypatch, "10", version="10.14.1.48")
    older = ensure_engine(tiny_onnx, engine_settings)
    assert older.source == "built" and older.plan_path.parent.name == "trt10.14"
    assert eleven.plan_path.parent.name == "trt11.4"


def test_a_later_minor_takes_a_version_compatible_plan(
    monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection
) -> None:
    install_fakes(monkeypatch, "10", version="10.14.1.48")
    built = _build(tiny_onnx, dataclasses.replace(engine_settings, version_compatible=True))
    install_fakes(monkeypatch, "10")
    taken = ensure_engine(tiny_onnx, engine_settings)
    assert taken.plan_path == built.plan_path and taken.match == "version-compatible"
    # `build` asks for this version's exact plan.
    assert _build(tiny_onnx, engine_settings).source == "built"


def test_a_newer_patch_is_not_taken(monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection) -> None:
    """Same folder (10.16), but built by 10.16.2: NVIDIA supports no older runtime, so 10.16.1 builds its own."""
    install_fakes(monkeypatch, "10", version="10.16.2.1")
    newer = _build(tiny_onnx, dataclasses.replace(engine_settings, version_compatible=True))
    install_fakes(monkeypatch, "10")
    taken = ensure_engine(tiny_onnx, engine_settings)
    assert taken.source == "built" and taken.plan_path != newer.plan_path
    assert newer.plan_path.parent == taken.plan_path.parent  # both in trt10.16


def test_lean_runtime_excluded(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection, batch: np.ndarray, tmp_path: Path
) -> None:
    settings = dataclasses.replace(engine_settings, version_compatible=True, exclude_lean_runtime=True)
    with pytest.raises(InputError, match=r"set tensorrt\.lean_runtime_library"):
        _build(tiny_onnx, settings)
    assert not list(Path(engine_settings.cache_dir).rglob("*.plan"))  # refused before building
    library = write_lean_library(tmp_path / "libnvinfer_lean.so", fake_stack.version)
    built = _build(tiny_onnx, dataclasses.replace(settings, lean_runtime_library=str(library)))
    assert "EXCLUDE_LEAN_RUNTIME" in fake_stack.builds[-1].flags
    assert built.plan_path.name.startswith("tiny-fp32-nolean-vercompat-") and built.manifest.lean_runtime == "excluded"
    assert built.load == LoadOptions(lean_runtime_library=library)
    assert _run(built, batch).shape == (len(batch), 64)
    with pytest.raises(BackendUnavailableError, match="kEXCLUDE_LEAN_RUNTIME"):
        _run(built, batch, LoadOptions(host_code_allowed=True))
    other = write_lean_library(tmp_path / "libnvinfer_lean.so.other", "10.8.0.1")
    with pytest.raises(BackendUnavailableError, match="loads only version-compatible plans it built"):
        _run(built, batch, LoadOptions(lean_runtime_library=other))
    with pytest.raises(BackendUnavailableError, match="could not load the lean runtime"):
        _run(built, batch, LoadOptions(lean_runtime_library=tiny_onnx))


def test_hardware_compatible_plans(
    monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection, batch: np.ndarray, caplog
) -> None:
    portable_settings = dataclasses.replace(engine_settings, hardware_compatibility="ampere_plus")
    install_fakes(monkeypatch, "11", FakeCuda([A100]))
    portable = _build(tiny_onnx, portable_settings)
    assert portable.plan_path.name == "tiny-fp32-sm80+.plan"
    assert (portable.manifest.sm_arch, portable.manifest.hardware_compatibility) == ("sm80+", "ampere_plus")
    assert portable.manifest.extra["compute_capability"] == "8.0"  # the GPU that built it

    install_fakes(monkeypatch, "11", FakeCuda([L4]))
    with caplog.at_level(logging.WARNING, logger="arcface_trt"):
        taken = ensure_engine(tiny_onnx, engine_settings)
    assert taken.plan_path == portable.plan_path and taken.match == "hardware-compatible"
    assert "hardware-compatible: sm80+ on this sm89" in caplog.text
    assert _run(taken, batch).shape == (len(batch), 64)  # an A100 plan loads on an L4: built AMPERE_PLUS
    assert _build(tiny_onnx, engine_settings).plan_path.name == "tiny-fp32-sm89.plan"  # `build`: the exact plan

    install_fakes(monkeypatch, "11", FakeCuda([T4]))
    assert ensure_engine(tiny_onnx, engine_settings).plan_path.name == "tiny-fp32-sm75.plan"  # not Ampere: built
    with pytest.raises(InputError, match="Ampere or newer GPU"):
        _build(tiny_onnx, portable_settings)


def test_same_cc_keeps_the_arch_name(fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection) -> None:
    result = _build(tiny_onnx, dataclasses.replace(engine_settings, hardware_compatibility="same_cc"))
    assert result.plan_path.name == "tiny-fp32-sm90.plan" and result.manifest.hardware_compatibility == "same_cc"
