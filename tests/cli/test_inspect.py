"""``arcface-trt inspect``: manifest facts without TensorRT; with (the fake) TensorRT, the engine's own account."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from arcface_trt.config import TensorrtSection
from arcface_trt.engine.build import BuildRequest, build_engine
from tests.support.cli import invoke, run_cli
from tests.support.fakes import hide_gpu_stack, install_fakes
from tests.support.tiny_models import write_tiny_model


def _build(monkeypatch: pytest.MonkeyPatch, onnx: Path, cache: Path, precision: str = "fp16") -> Path:
    """A plan built by the 11.4-shaped fake into ``cache``; its path."""
    install_fakes(monkeypatch, "11")
    settings = TensorrtSection(precision=precision, opt_batch_size=4, max_batch_size=8, cache_dir=str(cache))
    return build_engine(BuildRequest(onnx, settings)).plan_path


def _json(*args: object) -> tuple[int, dict]:
    result = invoke("inspect", *args, "--json")
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def test_a_cached_plan_without_tensorrt_shows_the_manifest_facts(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    plan = _build(monkeypatch, tiny_onnx, tmp_path / "engines")
    hide_gpu_stack(monkeypatch)
    code, report = _json(plan)
    assert code == 0 and report["disagreements"] == [] and report["engine"] is None
    facts = report["manifest"]
    assert (facts["model"], facts["precision"], facts["trt_version"]) == ("tiny", "fp16", "11.4.0.106")
    assert (facts["sm_arch"], facts["gpu_name"], facts["compute_capability"]) == (
        "sm90",
        "NVIDIA H100 80GB HBM3",
        "9.0",
    )
    assert facts["hardware_compatibility"] == "none" and facts["version_compatible"] is False
    assert facts["batch_profile"] == {"min": 1, "opt": 4, "max": 8} and facts["plan_sha256_matches"]
    assert facts["io_tensors"]["output"] == {"name": "embedding", "shape": [-1, 64], "dtype": "float32"}
    spec = facts["input_spec"]
    assert (spec["mean"], spec["std"], spec["color"]) == ([127.5] * 3, [127.5] * 3, "RGB") and spec["source"]
    assert facts["precision_summary"]["share"] == 1.0 and facts["precision_check"]["passed"]
    assert facts["build_seconds"] is not None and facts["timing_cache"] == "new"
    unknown = "what the engine itself says (its I/O tensors, batch profile and layer precisions)"
    assert report["unknown"] == [f"{unknown}: TensorRT is not installed here"]
    human = invoke("inspect", plan)
    assert human.exit_code == 0
    assert "TensorRT:    11.4.0.106" in human.stdout and "batch:       1..8, opt 4" in human.stdout
    assert "precision:   1 of 1 convolution/matrix layers run in fp16" in human.stdout
    assert "kept in fp32: fc + features" in human.stdout


def test_the_key_options_find_the_cached_plan(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    plan = _build(monkeypatch, tiny_onnx, tmp_path / "engines")
    hide_gpu_stack(monkeypatch)
    key = ["--model", "tiny", "--precision", "fp16", "--arch", "90", "--trt-version", "11.4"]
    code, report = _json(*key, "--cache-dir", tmp_path / "engines")
    assert code == 0 and report["plan_path"] == str(plan)
    missing = invoke("inspect", *key[:-1], "10.16", "--cache-dir", tmp_path / "engines")
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: no cached plan trt10.16/tiny-fp16-sm90.plan in ")
    both = invoke("inspect", plan, "--precision", "fp16")
    assert both.exit_code == 2 and "not both" in both.stderr
    no_arch = invoke("inspect", "--model", "tiny")
    assert no_arch.exit_code == 2 and "pass --arch" in no_arch.stderr


def test_a_plan_without_manifest_says_what_cannot_be_known(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    bare = tmp_path / "copied" / "model.plan"
    bare.parent.mkdir()
    shutil.copyfile(_build(monkeypatch, tiny_onnx, tmp_path / "engines"), bare)
    hide_gpu_stack(monkeypatch)
    code, report = _json(bare)
    assert code == 0 and report["manifest"] is None and report["name"] is None
    assert report["manifest_problem"] == "no manifest beside the plan (model.json)"
    assert len(report["unknown"]) == 2 and "TensorRT is not installed here" in report["unknown"][0]
    assert "the TensorRT version, GPU, batch profile" in report["unknown"][1]
    assert len(report["plan_sha256"]) == 64


def test_with_tensorrt_the_engine_confirms_its_manifest(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    plan = _build(monkeypatch, tiny_onnx, tmp_path / "engines")
    code, report = _json(plan)
    assert code == 0 and report["disagreements"] == [] and not report["mislabelled"]
    engine = report["engine"]
    assert engine["trt_version"] == "11.4.0.106" and engine["profiling_verbosity"] == "DETAILED"
    assert engine["batch_profile"] == {"min": 1, "opt": 4, "max": 8} and engine["hardware_compatibility"] == "none"
    assert engine["io_tensors"] == report["manifest"]["io_tensors"]
    assert engine["precision_summary"] == report["manifest"]["precision_summary"]
    # A plan without its manifest is still judged, by the precision in its name; but which nodes were kept
    # in fp32 on purpose is then unknown, so they count (the tiny model's head is one of its two layers).
    bare = tmp_path / "trt11.4" / "tiny-fp16-sm90.plan"
    bare.parent.mkdir()
    shutil.copyfile(plan, bare)
    code, report = _json(bare)
    assert report["name"]["precision"] == "fp16" and report["engine"]["precision_summary"]["kept_fp32_nodes"] == []
    assert code == 1 and report["disagreements"][0].startswith("the engine labelled fp16 is not fp16: 1 of 2")


def _forge(plan: Path, **fields: object) -> Path:
    """Rewrite fields of the plan's manifest (what a hand edit or another tool might leave)."""
    manifest = plan.with_suffix(".json")
    data = json.loads(manifest.read_text())
    data.update(fields)
    manifest.write_text(json.dumps(data))
    return plan


def test_a_mislabelled_plan_is_flagged(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    """An fp32 engine sold as fp16 (renamed, manifest edited): the engine's layers give it away."""
    fp32 = _build(monkeypatch, tiny_onnx, tmp_path / "engines", precision="fp32")
    forged = fp32.with_name("tiny-fp16-sm90.plan")
    fp32.rename(forged)
    fp32.with_suffix(".json").rename(forged.with_suffix(".json"))
    _forge(forged, precision="fp16")
    code, report = _json(forged)
    assert code == 1 and report["mislabelled"]
    assert any(d.startswith("the engine labelled fp16 is not fp16: 0 of 2") for d in report["disagreements"])
    human = invoke("inspect", forged)
    assert human.exit_code == 1 and "DISAGREES:   the engine labelled fp16 is not fp16" in human.stdout
    hide_gpu_stack(monkeypatch)  # without TensorRT the manifest's own summary still tells
    code, report = _json(forged)
    assert code == 1 and report["mislabelled"]
    assert report["disagreements"] == ["the manifest says fp16, but its layer summary was made for fp32"]


def test_disagreements_with_the_manifest(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    plan = _forge(_build(monkeypatch, tiny_onnx, tmp_path / "engines"), max_batch=32, hardware_compatibility="same_cc")
    code, report = _json(plan)
    assert code == 1 and not report["mislabelled"]
    assert (
        "batch profile: the engine has {'min': 1, 'opt': 4, 'max': 8}, the manifest says" in report["disagreements"][0]
    )
    assert "hardware compatibility: the engine has none, the manifest says same_cc" in report["disagreements"][1]
    hide_gpu_stack(monkeypatch)
    plan.write_bytes(plan.read_bytes() + b"\0")
    code, report = _json(plan)
    assert code == 1 and report["manifest"]["plan_sha256_matches"] is False
    assert report["disagreements"] == [
        "the plan's sha256 differs from the manifest's plan_sha256 (replaced or damaged)"
    ]


def test_an_unreadable_manifest_is_reported_not_fatal(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    plan = _build(monkeypatch, tiny_onnx, tmp_path / "engines")
    hide_gpu_stack(monkeypatch)
    plan.with_suffix(".json").write_text('{"model": "\\u001b[31mred"}')
    code, report = _json(plan)
    assert code == 0 and report["manifest"] is None and "manifest lacks" in report["manifest_problem"]
    plan.with_suffix(".json").write_text(json.dumps({**_complete_fields(), "extra": ["not", "a", "mapping"]}))
    code, report = _json(plan)
    # One manifest parser: a field of the wrong type makes the record unreadable, named as such.
    assert code == 0 and report["manifest"] is None and "field 'extra' must be" in report["manifest_problem"]
    human = invoke("inspect", plan)
    assert "\x1b" not in human.stdout


def _complete_fields() -> dict:
    from tests.support.manifests import plan_manifest

    return plan_manifest("tiny\x1b[2J", "fp16", "sm90", "11.4.0.106").to_dict()


def test_a_real_process_without_tensorrt(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    """As a user without TensorRT runs it: a plan and manifest built by the fake, inspected by the real CLI."""
    plan = _build(monkeypatch, tiny_onnx, tmp_path / "engines")
    result = run_cli("inspect", plan, "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["manifest"]["precision_summary"]["compute_by_precision"] == {"fp16": 1, "fp32": 1}
    assert report["engine"] is None and report["engine_problem"] == "TensorRT is not installed here"
    missing = run_cli("inspect", tmp_path / "absent.plan", timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: plan not found: {tmp_path / 'absent.plan'}"


def test_plans_that_travel(monkeypatch, tiny_onnx: Path, tmp_path: Path) -> None:
    """Weights, hardware and version compatibility from the manifest; a stripped plan is refit from its model."""
    install_fakes(monkeypatch, "11")
    settings = TensorrtSection(precision="fp16", opt_batch_size=4, max_batch_size=8, cache_dir=str(tmp_path / "e"))
    stripped = build_engine(BuildRequest(tiny_onnx, dataclasses.replace(settings, strip_weights=True))).plan_path
    portable = build_engine(
        BuildRequest(
            tiny_onnx, dataclasses.replace(settings, version_compatible=True, hardware_compatibility="ampere_plus")
        )
    ).plan_path
    code, report = _json(stripped, "--onnx-path", tiny_onnx)
    assert code == 0 and report["disagreements"] == [], report
    facts = report["manifest"]
    assert (facts["weights"], facts["version_compatible"], facts["loads_on"]) == (
        "stripped",
        False,
        "TensorRT 11.4.0.106",
    )
    assert len(facts["parsed_onnx_sha256"]) == 64
    assert report["engine"]["precision_summary"]["share"] == 1.0  # loaded and refit, then inspected
    other = write_tiny_model(tmp_path / "other" / "tiny.onnx", seed=3)
    code, report = _json(stripped, "--onnx-path", other)
    assert code == 0 and report["engine"] is None
    assert "is not the model the plan was built from" in report["engine_problem"]

    code, report = _json(portable)
    facts = report["manifest"]
    assert code == 0 and report["engine"]["hardware_compatibility"] == "ampere_plus"  # loaded: host code allowed
    assert (facts["sm_arch"], facts["version_compatible"], facts["lean_runtime"]) == ("sm80+", True, "embedded")
    assert facts["loads_on"] == "TensorRT 11.4 and later 11.x"
    hide_gpu_stack(monkeypatch)
    human = invoke("inspect", portable)
    assert "travels:     weights full; hardware ampere_plus (sm80+); version-compatible (lean runtime embedded)" in (
        human.stdout
    )
    assert "loads on:    TensorRT 11.4 and later 11.x" in human.stdout
    assert "weights stripped (refit at load from the ONNX)" in invoke("inspect", stripped).stdout
    # The key options find what the backend would take: no full sm90 plan here, so the stripped one.
    key = [
        "--model",
        "tiny",
        "--precision",
        "fp16",
        "--arch",
        "90",
        "--trt-version",
        "11.4",
        "--cache-dir",
        tmp_path / "e",
    ]
    assert _json(*key)[1]["plan_path"] == str(stripped)
    assert _json(*key[:5], "89", *key[6:])[1]["plan_path"] == str(portable)  # an L4: the sm80+ plan
