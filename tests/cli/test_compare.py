"""``arcface-trt compare`` and the CLI frame, through CliRunner and as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.support.cli import invoke, run_cli, run_python
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
    assert data["max_drift_cosine"] == 0.001


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


def _bad_inputs(tmp_path: Path, r18_model: Path) -> list[tuple[list[str], str]]:
    text = tmp_path / "text.onnx"
    text.write_text("not a model")
    small = write_tiny_model(tmp_path / "small.onnx", input_shape=["N", 3, 64, 64])
    four_d = write_tiny_model(tmp_path / "fourd.onnx", feature_map_output=True)
    (tmp_path / "empty").mkdir()
    config = tmp_path / "embedding.yaml"
    config.write_text("embedding:\n  colour: red\n")
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((2, 112, 112, 3), np.nan, dtype=np.float32))
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


def test_debug_shows_the_traceback() -> None:
    result = run_cli("--debug", "compare", "--onnx-path", "/nonexistent/m.onnx")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_make_model_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = run_cli("make-model", "--arch", "r18", "--out", str(out), "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["arch"] == "r18" and record["seed"] == 3 and out.stat().st_size == record["bytes"]
    bad = run_cli("make-model", "--arch", "r7", "--out", str(tmp_path / "x.onnx"))
    assert bad.returncode == 2 and "unknown architecture 'r7'" in bad.stderr
    assert not (tmp_path / "x.onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]  # no temporary file left behind


BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        heavy = {'tensorrt', 'cuda', 'onnxruntime', 'insightface', 'boto3', 'cv2', 'onnx', 'ray', 'pyarrow'}
        if name.split('.')[0] in heavy | {'matplotlib', 'onnxconverter_common'}:
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
from arcface_trt.cli.app import app
import typer.main
group = typer.main.get_command(app)
names = sorted(group.commands)
for name in [None, *names]:
    try:
        app([name, '--help'] if name else ['--help'], prog_name='arcface-trt')
    except SystemExit as exc:
        assert exc.code == 0, (name, exc.code)
print('COMMANDS', ' '.join(names))
"""


def test_every_help_works_without_heavy_modules() -> None:
    result = run_python("-c", BLOCKER, timeout=120)
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("COMMANDS")[-1].split()
    assert {"compare", "make-model"} <= set(commands)


def test_version_and_no_args() -> None:
    env = {"COLUMNS": "120"}
    version = run_cli("--version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("arcface-trt ")
    bare = run_cli(env=env)
    assert "compare" in bare.stdout + bare.stderr
