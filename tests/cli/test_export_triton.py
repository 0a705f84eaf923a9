"""``arcface-trt export-triton``: a real process on the CPU engine, the fake TensorRT, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import invoke, run_cli
from tests.support.fakes import FakeStack
from tests.support.triton import read_config


def test_cpu_export_as_a_user_runs_it(r18_model: Path, r18_int8_engine, tmp_path: Path) -> None:
    repo = tmp_path / "models"
    args = ["export-triton", "--onnx-path", r18_model, "--precision", "int8", "--target", "cpu"]
    proc = run_cli(*args, "--model-repository", repo, "--json", timeout=240)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    folder = repo / "arcface_r18-int8"
    assert record["folder"] == str(folder) and record["engine_source"] == "cache"
    assert record["files"] == [str(folder / "1" / "model.onnx")]
    assert record["model"]["input"] == {"name": "input.1", "data_type": "TYPE_FP32", "dims": [3, 112, 112]}
    spec = record["model"]["input_spec"]
    assert (spec["side"], spec["color"], spec["mean"], spec["std"]) == (112, "RGB", [127.5] * 3, [127.5] * 3)
    config = read_config(folder)
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size >= 1
    assert list(config.input[0].dims) == [3, 112, 112] and list(config.output[0].dims) == [512]

    again = run_cli(*args, "--model-repository", repo, timeout=240)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip().splitlines() == [f"error: {folder} already exists; pass --overwrite to replace it"]
    replaced = run_cli(
        *args, "--model-repository", repo, "--overwrite", "--opt-batch", 4, "--max-batch", 8, timeout=240
    )
    assert replaced.returncode == 0, replaced.stderr
    assert f"model folder: {folder} (replaced)" in replaced.stdout
    assert "max_batch_size 8, preferred [4, 8]" in replaced.stdout
    assert read_config(folder).max_batch_size == 8


def test_gpu_export_with_the_fake(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    base = ["export-triton", "--onnx-path", tiny_onnx, "--precision", "fp16", "--cache-dir", tmp_path / "engines"]
    result = invoke(*base, "--model-repository", tmp_path / "repo", "--max-batch", "16", "--opt-batch", "4")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "repo" / "tiny-fp16"
    assert "platform:     tensorrt_plan (KIND_GPU), max_batch_size 16, preferred [4, 16]" in result.stdout
    assert "file:         1/model.plan <- tiny-fp16-sm90.plan" in result.stdout
    assert f"the Triton container must carry TensorRT {fake_stack.version}" in result.stdout
    config = read_config(folder)
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 16
    record = json.loads(invoke(*base, "--model-repository", tmp_path / "other", "--json").stdout)
    assert record["engine_source"] == "built"  # another batch profile (the config's 32) is another plan


def test_gpu_export_without_tensorrt_is_one_line(no_gpu_stack, tiny_onnx: Path, tmp_path: Path) -> None:
    result = invoke("export-triton", "--onnx-path", tiny_onnx, "--model-repository", tmp_path / "repo")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot build or run a TensorRT engine here")
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--target", "cpu"], "--target cpu needs --precision"),
        (["--target", "cpu", "--precision", "fp32", "--workspace-mb", "64"], "apply to TensorRT plans"),
        (["--target", "tpu"], "unknown --target 'tpu'"),
        (["--target", "cpu", "--precision", "fp32", "--name", "../up"], "may only hold letters, digits"),
        (["--target", "cpu", "--precision", "fp32", "--max-batch", "0"], "max_batch_size"),
    ],
)
def test_bad_options_are_one_line(tiny_onnx: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    result = invoke("export-triton", "--onnx-path", tiny_onnx, "--model-repository", tmp_path / "repo", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not (tmp_path / "repo").exists()
