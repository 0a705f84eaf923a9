"""The input spec through the commands: shown, overridable, matched on by int8 engines; collapse guard; QDQ models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.embed import read_embeddings
from arcface_trt.faces import sample_faces
from tests.support.cli import invoke, run_cli
from tests.support.embeddings import write_crops
from tests.support.quirk_models import raw_pixel_embeddings, write_quirk_model

#: What a user passes for a model that takes raw RGB pixels.
RAW = ["--input-mean", "0", "--input-std", "1", "--input-color", "rgb"]
#: Wrong for a graph that normalises itself: it normalises twice.
TWICE = ["--input-mean", "127.5", "--input-std", "127.5"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-normalising model (lower-case sub/mul) and a 150x150, 128-d model that takes raw pixels."""
    root = tmp_path_factory.mktemp("spec-models")
    return {
        "sub_mul": write_quirk_model(root / "tf_sub_mul.onnx", "sub_mul"),
        "raw150": write_quirk_model(root / "dlib150.onnx", "folded", side=150, dim=128),
    }


@pytest.fixture
def cache(tmp_path: Path) -> list[str]:
    return ["--cache-dir", str(tmp_path / "engines")]


def _ok(result) -> dict:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_compare_on_a_self_normalising_model_passes_and_shows_the_spec(models: dict[str, Path]) -> None:
    args = ["compare", "--onnx-path", models["sub_mul"], "--n-samples", "12"]
    data = _ok(invoke(*args, "--json"))
    assert data["passed"] and data["cosine"]["min"] > 0.99999
    for side in ("backend_a", "backend_b"):
        spec = data[side]["input_spec"]
        assert (spec["source"], spec["normalized_in_graph"], spec["mean"]) == ("graph", True, [0.0, 0.0, 0.0])
    assert data["backend_a"]["reference"] == "insightface ArcFaceONNX.get_feat"
    assert [c["collapsed"] for c in data["collapse"]] == [False, False]
    table = invoke(*args)
    assert table.exit_code == 0, table.stdout
    shown = " ".join(table.stdout.split())  # rich wraps the caption
    assert "input spec: 112x112 RGB, mean 0, std 1 (graph); the graph normalises its input: Sub, Mul" in shown


def test_a_150_side_128_d_raw_pixel_model_runs_through_every_command(
    models: dict[str, Path], tmp_path: Path, cache: list[str]
) -> None:
    model = ["--onnx-path", models["raw150"]]
    compare = _ok(invoke("compare", *model, *RAW, "--n-samples", "8", "--json"))
    assert compare["passed"] and compare["backend_a"]["embedding_dim"] == 128
    assert compare["backend_a"]["input_spec"]["side"] == 150
    assert compare["backend_b"]["input_spec"]["source"] == "config"
    for precision in ("fp32", "fp16", "int8"):
        built = _ok(invoke("build", "--target", "cpu", "--precision", precision, *model, *RAW, *cache, "--json"))
        assert built["manifest"]["input_spec"]["source"] == "config" and built["manifest"]["input_spec"]["side"] == 150
    bench = _ok(invoke("benchmark", *model, *RAW, "--batch-sizes", "2", "--iterations", "3", "--warmup", "0", "--json"))
    assert bench["environment"]["input_spec"]["mean"] == [0.0, 0.0, 0.0]
    crops = tmp_path / "crops"
    write_crops(crops, sample_faces(6, seed=2))
    out = tmp_path / "emb.parquet"
    summary = _ok(invoke("embed", crops, "--out", out, *model, "--backend", "onnxruntime", *RAW, "--json"))
    assert summary["input_spec"]["source"] == "config" and summary["collapse"]["collapsed"] is False
    import pyarrow.parquet as pq

    recorded = json.loads(pq.read_schema(out).metadata[b"input_spec"])
    assert recorded["side"] == 150 and recorded["mean"] == [0.0, 0.0, 0.0]
    record = _ok(invoke("diagnose", *model, *RAW, "--n-samples", "4", "--iterations", "1", "--json"))
    assert record["input_spec"]["source"] == "config" and record["embedding_dim"] == 128
    assert "input_collapse" not in [p["code"] for p in record["problems"]]


def test_embeddings_of_the_raw_pixel_model_are_the_truth(models: dict[str, Path], tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    faces = sample_faces(4, seed=5)
    paths = write_crops(crops, faces)
    out = tmp_path / "emb.npy"
    model = ["--onnx-path", models["raw150"], "--backend", "insightface"]
    _ok(invoke("embed", crops, "--out", out, *model, *RAW, "--json"))
    keys, embeddings = read_embeddings(out)
    truth = raw_pixel_embeddings(models["raw150"], faces)
    order = [paths.index(Path(key)) for key in keys]
    assert np.sum(embeddings.astype(np.float64) * truth[order], axis=1).min() > 0.99999


def test_a_wrong_spec_collapses_and_is_caught(models: dict[str, Path], tmp_path: Path) -> None:
    model = ["--onnx-path", models["sub_mul"]]
    record = _ok(invoke("diagnose", *model, *TWICE, "--n-samples", "4", "--iterations", "1", "--json"))
    (problem,) = [p for p in record["problems"] if p["code"] == "input_collapse"]
    assert "mean 127.5, std 127.5 (config)" in problem["message"] and "input mean/std" in problem["fix"]
    assert record["collapse"]["collapsed"] and record["collapse"]["mean_cosine"] > 0.99
    compare = invoke("compare", *model, *TWICE, "--n-samples", "8")
    assert compare.exit_code == 1, compare.stdout
    assert "collapsed embeddings" in compare.stderr
    assert "input spec (112x112 RGB, mean 127.5, std 127.5 (config)" in compare.stderr
    shown = " ".join(compare.stdout.split())
    assert "FAIL collapse guard, insightface: 7 different faces have mean cosine" in shown
    assert "input spec: 112x112 RGB, mean 127.5" in shown
    crops = tmp_path / "crops"
    write_crops(crops, sample_faces(3))
    embed = invoke("embed", crops, "--out", tmp_path / "e.parquet", *model, "--backend", "onnxruntime", *TWICE)
    assert embed.exit_code == 0 and "WARNING" in embed.stdout and "collapsed embeddings" in embed.stderr


def test_an_int8_engine_is_matched_on_the_spec_it_was_calibrated_through(
    models: dict[str, Path], cache: list[str]
) -> None:
    base = ["build", "--target", "cpu", "--onnx-path", models["raw150"], *cache, "--json"]
    first = _ok(invoke(*base, "--precision", "int8"))
    assert first["built"]
    again = _ok(invoke(*base, "--precision", "int8", *RAW))
    assert again["built"] and any(r.startswith("input_spec.mean: cached") for r in again["rebuild_reasons"])
    assert _ok(invoke(*base, "--precision", "int8", *RAW))["built"] is False
    # fp32: preprocessing runs on the host, the engine does not depend on the spec (recorded only)
    assert _ok(invoke(*base, "--precision", "fp32"))["built"]
    assert _ok(invoke(*base, "--precision", "fp32", *RAW))["built"] is False


def test_a_qdq_model_is_its_own_int8_engine(models: dict[str, Path], tmp_path: Path, cache: list[str]) -> None:
    qdq = tmp_path / "tf_sub_mul-int8-qdq.onnx"
    _ok(invoke("quantize", "--onnx-path", models["sub_mul"], "--out", qdq, "--calib-samples", "16", "--json"))
    reused = invoke("build", "--target", "cpu", "--precision", "int8", "--onnx-path", qdq, *cache)
    assert reused.exit_code == 0, reused.stderr
    assert "already quantized (QDQ): used as the int8 engine as it is" in reused.stdout
    record = _ok(invoke("build", "--target", "cpu", "--precision", "int8", "--onnx-path", qdq, *cache, "--json"))
    assert record["manifest"]["calibration"] is None and record["manifest"]["input_spec"]["normalized_in_graph"]
    for args in (
        ["build", "--target", "cpu", "--precision", "fp16", "--onnx-path", qdq, *cache],
        ["build", "--precision", "fp16", "--onnx-path", qdq, "--dry-run", "--arch", "90", *cache],
        ["quantize", "--onnx-path", qdq, "--out", tmp_path / "twice.onnx"],
    ):
        # A real process: nothing said earlier in this test session hides a line on its stderr.
        refused = run_cli(*args)
        assert refused.returncode == 2, (args, refused.stdout)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "already quantized" in lines[0], lines
    compare = _ok(
        invoke(
            "compare",
            *("--onnx-path", models["sub_mul"], "--onnx-path-b", qdq, "--precision", "int8"),
            *("--n-samples", "8", "--max-drift-cosine", "0.05", "--json"),
        )
    )
    assert compare["backend_b"]["precision"] == "int8" and compare["cosine"]["mean"] > 0.99
    bench = _ok(invoke("benchmark", "--onnx-path", qdq, "--batch-sizes", "2", "--iterations", "3", "--json"))
    assert bench["results"][0]["precision"] == "int8"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--input-mean", "1,2", "--input-std", "1"], "--input-mean takes one number or three"),
        (["--input-color", "purple"], "--input-color must be rgb or bgr"),
        (["--input-mean", "0"], "give the input mean and std together"),
        (["--input-std", "-1"], "--input-std must be above 0"),
    ],
)
def test_bad_input_settings_are_one_line_errors(models: dict[str, Path], args: list[str], words: str) -> None:
    result = invoke("compare", "--onnx-path", models["sub_mul"], "--n-samples", "2", *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines


def test_config_input_settings_are_checked_and_named(models: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "embedding.yaml"
    config.write_text("embedding:\n  input_mean: [1, 2]\n")
    result = invoke("compare", "--onnx-path", models["sub_mul"], "--config", config, "--n-samples", "2")
    assert result.exit_code == 2
    assert "embedding.input_mean takes one number or three" in result.stderr and str(config) in result.stderr


def test_embed_resume_refuses_rows_of_another_input_spec(models: dict[str, Path], tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    write_crops(crops, sample_faces(3))
    out = tmp_path / "e.parquet"
    model = ["--onnx-path", models["raw150"], "--backend", "onnxruntime"]
    _ok(invoke("embed", crops, "--out", out, *model, *RAW, "--json"))
    write_crops(crops, sample_faces(2, seed=9), start=3)
    refused = invoke("embed", crops, "--out", out, *model, "--resume")  # the spec the graph gives: 127.5 / 127.5
    assert refused.exit_code == 2
    assert "was computed through another input spec (150x150 RGB, mean 0, std 1 (config)" in refused.stderr
    assert _ok(invoke("embed", crops, "--out", out, *model, *RAW, "--resume", "--json"))["embedded"] == 2
