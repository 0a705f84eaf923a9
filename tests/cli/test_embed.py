"""``arcface-trt embed`` through CliRunner and as a real subprocess, including a real kill and --resume."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.embed import open_source, read_embeddings
from tests.support.cli import invoke, run_cli, start_cli
from tests.support.embeddings import assert_matches_encode, reference, summary_of, write_crops


@pytest.fixture(scope="module")
def eight_crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight PNG crops."""
    from arcface_trt.faces import sample_faces

    folder = tmp_path_factory.mktemp("cli") / "crops"
    write_crops(folder, sample_faces(8, seed=3))
    return folder


def _model_args(r18_model: Path) -> list[str]:
    return ["--onnx-path", str(r18_model), "--backend", "onnxruntime", "--device", "cpu", "--batch-size", "4"]


def test_cli_json_summary_and_table(r18_model: Path, eight_crops: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    result = invoke("embed", str(eight_crops), "--out", str(out), *_model_args(r18_model), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds only the JSON
    assert summary["embedded"] == 8 and summary["rows_in_output"] == 8 and summary["unreadable"] == []
    assert summary["backend"] == "onnxruntime" and summary["images_per_s"] > 0
    keys, embeddings = read_embeddings(out)
    assert_matches_encode(keys, embeddings, reference(r18_model))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.parquet"]  # no parts folder, no lock file left
    table = invoke("embed", str(eight_crops), "--out", str(out), *_model_args(r18_model), "--resume")
    assert table.exit_code == 0, table.output
    assert "already in output (skipped)" in table.stdout and "img/s" in table.stdout


def test_cli_summary_has_each_stage_alone_and_the_pipeline(r18_model: Path, eight_crops: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    args = ["embed", str(eight_crops), "--out", str(out), *_model_args(r18_model), "--batch-size", "1"]
    summary = json.loads(invoke(*args, "--json").stdout)
    stages = summary["stages"]
    assert stages["probe_images"] == 2 and stages["pipelined_images"] == 6 and stages["reader_threads"] >= 1
    for key in ("embed_img_s", "decode_only_img_s", "encode_only_img_s", "embed_vs_bound"):
        assert stages[key] > 0, key
    assert stages["bound_stage"] in ("decode", "encode")
    table = invoke(*args, "--overwrite")
    assert table.exit_code == 0, table.output
    for row in ("overlapped, steady state", "(first 6)", "decode+preprocess alone", "(last 2, ", "encode alone"):
        assert row in table.stdout, row
    assert "decode: overlapped runs at" in table.stdout or "encode: overlapped runs at" in table.stdout


def test_bad_input_is_one_line_and_exit_2(r18_model: Path, eight_crops: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    existing = tmp_path / "done.parquet"
    existing.write_bytes(b"x")
    model = _model_args(r18_model)
    cases = [
        ([str(tmp_path / "absent"), "--out", str(tmp_path / "o.parquet")], "input not found"),
        ([str(tmp_path / "empty"), "--out", str(tmp_path / "o.parquet")], "no images"),
        ([str(eight_crops), "--out", str(tmp_path / "o.csv")], "must end in .parquet or .npy"),
        ([str(eight_crops), "--out", str(tmp_path / "o.parquet"), "--batch-size", "0"], "--batch-size must be"),
        ([str(eight_crops), "--out", str(tmp_path / "o.parquet"), "--resume", "--overwrite"], "not both"),
        ([str(eight_crops), "--out", str(existing)], "exists: pass --resume"),
        ([str(eight_crops), "--out", str(existing), "--resume"], "cannot read"),
        ([str(eight_crops), "--out", str(tmp_path / "o.parquet"), "--backend", "caffe"], "unknown backend"),
        ([str(eight_crops), "--out", str(tmp_path / "o.parquet"), "--ray", "--actors", "4,2"], "--actors must be"),
        ([str(eight_crops), "--out", str(tmp_path / "o.parquet"), "--ray", "--threads-per-actor", "0"], "at least 1"),
        ([str(eight_crops), "--out", "s3:///o.parquet"], "not an s3://bucket/key URI"),
        ([str(eight_crops), "--out", str(existing / "o.parquet")], "is not a writable folder"),
    ]
    for args, message in cases:
        result = invoke("embed", *(model if "--backend" not in args else []), *args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (args, result.stderr)
    assert not (tmp_path / "o.parquet").exists() and existing.read_bytes() == b"x"


def test_npy_output_with_index(r18_model: Path, eight_crops: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.npy"
    result = invoke("embed", str(eight_crops), "--out", str(out), *_model_args(r18_model), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows_in_output"] == 8 and (tmp_path / "emb.index.parquet").is_file()
    keys, embeddings = read_embeddings(out)
    assert keys == open_source(eight_crops).keys and embeddings.shape == (8, 512)


def _committed(parts: Path) -> list[Path]:
    return sorted(parts.glob("part-*.parquet")) if parts.is_dir() else []


def test_resume_after_a_real_kill(r18_model: Path, tmp_path: Path) -> None:
    from arcface_trt.faces import sample_faces

    n = 40
    folder = tmp_path / "crops"
    write_crops(folder, sample_faces(n, seed=5))
    (folder / "sub0" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "emb.parquet"
    parts = tmp_path / "emb.parquet.parts"
    args = ["embed", str(folder), "--out", str(out), *_model_args(r18_model), "--chunk-size", "4", "--json"]
    process = start_cli(*args)
    try:
        deadline = time.monotonic() + 240
        while len(_committed(parts)) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be killed: " + process.communicate()[1]
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not out.exists()
    committed = _committed(parts)
    before = {k for p in committed for k in read_embeddings_part(p)}
    done_before = len(before)
    assert 12 <= done_before < n  # a readable prefix, not the whole job

    rerun = run_cli(*args)
    assert rerun.returncode == 2 and "unfinished run" in rerun.stderr  # no silent restart without --resume
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    summary = summary_of(resumed.stdout)
    assert summary["skipped_existing"] >= done_before
    assert summary["skipped_existing"] + summary["embedded"] + summary["unreadable_count"] == n + 1
    assert [Path(u["path"]).name for u in summary["unreadable"]] == ["broken.png"]
    keys, embeddings = read_embeddings(out)
    expected = [k for k in open_source(folder).keys if not k.endswith("broken.png")]
    assert len(keys) == len(set(keys)) == n and sorted(keys) == sorted(expected)  # every path exactly once
    assert not parts.exists()
    # rows committed before the kill and rows embedded after the resume both equal encode
    check = [i for i, k in enumerate(keys) if k in before][:4] + [i for i, k in enumerate(keys) if k not in before][:4]
    assert_matches_encode([keys[i] for i in check], embeddings[check], reference(r18_model))


def read_embeddings_part(part: Path) -> list[str]:
    """Keys of one committed part (each part is a complete Parquet file)."""
    import pyarrow.parquet as pq

    return pq.read_table(part, columns=["path"]).column("path").to_pylist()


def test_npy_input_through_cli(r18_model: Path, tmp_path: Path) -> None:
    from arcface_trt.faces import sample_faces

    crops = sample_faces(5, seed=9)
    np.save(tmp_path / "crops.npy", crops)
    out = tmp_path / "emb.parquet"
    result = invoke("embed", str(tmp_path / "crops.npy"), "--out", str(out), *_model_args(r18_model))
    assert result.exit_code == 0, result.output
    keys, embeddings = read_embeddings(out)
    assert [k.rsplit("#", 1)[1] for k in keys] == ["0", "1", "2", "3", "4"]
    cosine = np.sum(reference(r18_model).encode(crops) * embeddings, axis=1)
    assert cosine.min() >= 0.99999


def test_the_table_says_whether_ray_was_started_or_joined() -> None:
    from types import SimpleNamespace

    from arcface_trt.cli.embed import _where

    def where(**fields) -> str:
        return _where(SimpleNamespace(**{"ray": True, "ray_address": None, "ray_actors": None, **fields}))

    assert where(ray_cluster="started", ray_actors="2 CPU actors x 1 thread") == (
        " on Ray (started a local instance; 2 CPU actors x 1 thread)"
    )
    assert where(ray_cluster="joined", ray_address="auto") == " on Ray (joined the cluster at auto)"
    assert where(ray_cluster="joined") == " on Ray (joined the running Ray)"
    assert where(ray_cluster=None) == " on Ray (nothing left to embed)"
    assert _where(SimpleNamespace(ray=False)) == ""
