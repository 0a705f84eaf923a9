"""``arcface-trt compare`` and the CLI frame, through CliRunner and as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.support.cli import invoke, run_cli
from tests.support.fakes import FakeStack
from tests.support.tiny_models import write_tiny_model

STAT_KEYS = {"mean", "min", "p01", "p50", "max"}


def _compare(*args: str):
    return invoke("compare", *args)


def test_compare_passes_on_the_same_model(r18_model: Path) -> None:
    result = _compare("--onnx-path", str(r18_model), "--n-samples", "10", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds only the JSON
    assert data["passed"] is True and data["n_samples"] == 10
    assert set(data["cosine"]) == STAT_KEYS and set(data["l2"]) == STAT_KEYS
    assert data["cosine"]["min"] >= 0.99999
    assert data["nn_agreement"] == 1.0
    assert data["throughput_a"] > 0 and data["throughput_b"] > 0
    assert data["backend_a"]["backend"] == "insightface" and data["backend_b"]["backend"] == "onnxruntime"
    assert (data["max_drift_cosine"], data["tolerance_key"]) == (0.001, "validation.max_drift_cosine")


def test_compare_table_output(r18_model: Path) -> None:
    result = _compare("--onnx-path", str(r18_model), "--n-samples", "4")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout and "cosine" in result.stdout and "L2 distance" in result.stdout


def test_a_model_that_really_differs_fails_with_exit_1(r18_model: Path, r18_model_seed1: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = _compare(
        "--onnx-path",
        str(r18_model),
        "--onnx-path-b",
        str(r18_model_seed1),
        "--n-samples",
        "6",
        "--json",
        "--output",
        str(report),
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is False and data["cosine"]["mean"] < 0.9
    assert len(json.loads(report.read_text())["per_sample_cosine"]) == 6


def test_tolerance_applies_to_the_worst_sample(r18_model: Path, r18_model_seed1: Path) -> None:
    # a tolerance of 2 admits any cosine: the same pair now passes
    result = _compare(
        "--onnx-path",
        str(r18_model),
        "--onnx-path-b",
        str(r18_model_seed1),
        "--n-samples",
        "4",
        "--max-drift-cosine",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output


def test_images_and_npy_inputs(r18_model: Path, faces: np.ndarray, tmp_path: Path) -> None:
    import cv2

    folder = tmp_path / "crops" / "nested"
    folder.mkdir(parents=True)
    for i, face in enumerate(faces[:4]):
        cv2.imwrite(str(folder / f"{i}.png"), face)
    result = _compare("--onnx-path", str(r18_model), "--images", str(tmp_path / "crops"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_samples"] == 4
    np.save(tmp_path / "crops.npy", faces[:3])
    result = _compare("--onnx-path", str(r18_model), "--npy", str(tmp_path / "crops.npy"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_samples"] == 3
    # --n-samples with a folder: the first N images, and never silently fewer than asked for
    two = _compare("--onnx-path", str(r18_model), "--images", str(tmp_path / "crops"), "--n-samples", "2", "--json")
    assert two.exit_code == 0, two.output
    assert json.loads(two.stdout)["n_samples"] == 2
    many = _compare("--onnx-path", str(r18_model), "--images", str(tmp_path / "crops"), "--n-samples", "50")
    assert many.exit_code == 2
    assert many.stderr.strip().splitlines() == [
        f"error: --n-samples 50 asks for more crops than {tmp_path / 'crops'} holds (4); "
        "leave --n-samples out to use all of them"
    ]


def _bad_inputs(tmp_path: Path, r18_model: Path) -> list[tuple[list[str], str]]:
    text = tmp_path / "text.onnx"
    text.write_text("not a model")
    small = write_tiny_model(tmp_path / "small.onnx", input_shape=["N", 3, 112, 96])  # not square
    four_d = write_tiny_model(tmp_path / "fourd.onnx", feature_map_output=True)
    (tmp_path / "empty").mkdir()
    config = tmp_path / "embedding.yaml"
    config.write_text("embedding:\n  colour: red\n")
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((2, 112, 112, 3), np.nan, dtype=np.float32))
    four_channel = tmp_path / "chw.npy"
    np.save(four_channel, np.zeros((4, 112, 112), dtype=np.uint8))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_text("not an image")
    model = ["--onnx-path", str(r18_model)]
    return [
        (["--onnx-path", str(tmp_path / "absent.onnx")], "ONNX model not found"),
        (["--onnx-path", str(text)], "not a valid ONNX model"),
        (["--onnx-path", str(small)], "a recognition model takes [N, 3, S, S]"),
        (["--onnx-path", str(four_d)], "a recognition model returns [N, D]"),
        ([*model, "--n-samples", "0"], "n_samples' must be >= 1"),
        ([*model, "--images", str(tmp_path / "empty")], "no images"),
        ([*model, "--images", str(tmp_path / "junk")], "not a readable image"),
        ([*model, "--npy", str(nan)], "NaN"),
        # the shape named is the file's, not the (1, ...) it would be read as
        ([*model, "--npy", str(four_channel)], "got (4, 112, 112)"),
        ([*model, "--config", str(config)], "unknown key 'embedding.colour'"),
        ([*model, "--backend-b", "caffe"], "unknown backend 'caffe'"),
    ]


def test_bad_input_is_one_line_and_exit_2(r18_model: Path, tmp_path: Path) -> None:
    for args, message in _bad_inputs(tmp_path, r18_model):
        result = _compare(*args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
        assert message in lines[0], (args, lines[0])
        assert "Traceback" not in result.output


def test_subprocess_compare_json_and_failures(r18_model: Path, r18_model_seed1: Path) -> None:
    ok = run_cli("compare", "--onnx-path", str(r18_model), "--n-samples", "3", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["passed"] is True
    differ = run_cli(
        "compare", "--onnx-path", str(r18_model), "--onnx-path-b", str(r18_model_seed1), "--n-samples", "3"
    )
    assert differ.returncode == 1 and "FAIL" in differ.stdout
    missing = run_cli("compare", "--onnx-path", "/nonexistent/m.onnx")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: ONNX model not found: /nonexistent/m.onnx"


# -- TensorRT as backend B, on the fake stack --------------------------------------------------------------------


def test_every_fallback_prints_one_warning_line_in_a_real_process(r18_model: Path) -> None:
    """No CUDA here: --device cuda falls back to the CPU for A and B, each saying so on stderr once."""
    result = run_cli("compare", "--onnx-path", r18_model, "--device", "cuda", "--allow-cpu-fallback", "--n-samples", 3)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    for backend, line in zip(("insightface", "onnxruntime"), lines, strict=True):
        assert line.startswith(f"warning: {backend} backend: device 'cuda' unavailable: CUDAExecutionProvider is not")
        assert line.endswith("; falling back to the CPU")
    assert "[CPUExecutionProvider]" in result.stdout and "PASS" in result.stdout
    # A backend fallback: TensorRT cannot run here (no tensorrt module in this process or no GPU).
    result = run_cli(
        "compare",
        "--onnx-path",
        r18_model,
        "--backend-b",
        "tensorrt",
        "--allow-cpu-fallback",
        "--n-samples",
        3,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    reason = json.loads(result.stdout)["backend_b"]["fallback_reason"]
    assert (
        line == f"warning: tensorrt backend unavailable: {reason}; falling back to the InsightFace reference on the CPU"
    )


def _write_configs(tmp_path: Path, onnx: Path, enabled: bool = True, backend: str = "tensorrt") -> Path:
    trt_yaml = tmp_path / "arcface_tensorrt.yaml"
    trt_yaml.write_text(
        f"arcface_tensorrt:\n  enabled: {str(enabled).lower()}\ntensorrt:\n  precision: fp16\n  min_batch_size: 1\n"
        f"  opt_batch_size: 4\n  max_batch_size: 4\n  cache_dir: {tmp_path / 'engines'}\n"
    )
    emb_yaml = tmp_path / "embedding.yaml"
    emb_yaml.write_text(
        f"embedding:\n  backend: {backend}\n  tensorrt_config: {trt_yaml}\n  model_path: {onnx}\n  batch_size: 4\n"
        "validation:\n  n_samples: 6\n  max_drift_cosine: 0.001\n"
    )
    return emb_yaml


def test_compare_backend_b_tensorrt(fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path) -> None:
    config = _write_configs(tmp_path, tiny_onnx)
    result = invoke("compare", "--backend-b", "tensorrt", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend_b"]["backend"] == "tensorrt" and report["backend_b"]["precision"] == "fp16"
    assert report["backend_b"]["engine_path"].endswith(f"trt{fake_stack.major_minor}/tiny-fp16-sm90.plan")
    assert report["backend_a"]["backend"] == "insightface"
    assert report["passed"] and report["cosine"]["min"] > 0.999
    # an fp16 engine is judged by the fp16 tolerance (the file sets only the fp32 one)
    assert (report["tolerance_key"], report["max_drift_cosine"]) == ("validation.max_drift_cosine_fp16", 0.002)


def test_compare_naming_tensorrt_overrides_a_disabled_config(
    fake_stack: FakeStack, tiny_onnx: Path, tmp_path: Path
) -> None:
    config = _write_configs(tmp_path, tiny_onnx, enabled=False, backend="onnxruntime")
    result = invoke("compare", "--backend-b", "tensorrt", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend_b"]["backend"] == "tensorrt" and report["backend_b"]["fallback_reason"] is None


def test_identical_backends_show_zero_drift_and_cosines_within_one(r18_model: Path) -> None:
    args = ["--onnx-path", str(r18_model), "--backend-b", "insightface", "--n-samples", "3"]
    data = json.loads(_compare(*args, "--json").stdout)
    assert data["max_drift"] == 0.0 and data["cosine"]["max"] <= 1.0 and data["cosine"]["min"] > 1.0 - 1e-12
    table = _compare(*args)
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    assert "worst drift (1 - min cosine) 0 vs" in text and "1.000000" in text and "1.00000007" not in text
    assert "Parity: insightface fp32 vs insightface fp32" in text
