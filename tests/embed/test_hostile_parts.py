"""embed's folders as a user or another tool leaves them: it deletes only what it wrote, and --resume checks parts.

The parts folder is exactly ``<out>.parts/`` with the tool's marker in it; siblings, foreign folders
and foreign files survive every run. ``--resume`` refuses parts that would make a wrong output
(a duplicated part, another input's part, NaN rows, a part whose rows changed), naming the part.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.embed import embed_to_file, open_source, read_embeddings
from arcface_trt.embed.parts import MARKER, PartStore, make_table
from arcface_trt.errors import InputError
from tests.support.cli import invoke
from tests.support.embeddings import reference, write_crops
from tests.support.s3_server import tree


@pytest.fixture(scope="module")
def embedder(tiny_onnx: Path):
    """One loaded tiny-model embedder (64-dim) shared by this module's tests."""
    return reference(tiny_onnx, batch_size=2)


@pytest.fixture()
def crops(tmp_path: Path, faces: np.ndarray) -> list[str]:
    """Six crops in a folder; their keys as the embed source lists them."""
    write_crops(tmp_path / "crops", faces[:6])
    return open_source(tmp_path / "crops").keys


def _unit_rows(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _unfinished_run(out: Path, embedder, keys: list[str]) -> Path:
    """Parts of an interrupted run over ``keys`` (two rows a part); the parts folder."""
    with PartStore.open(out, embedder.model.sha256, 64, resume=False, overwrite=False, inputs=keys) as store:
        for start in range(0, len(keys), 2):
            store.commit(keys[start : start + 2], _unit_rows(len(keys[start : start + 2])), "onnxruntime", "fp32")
    return out.with_name(out.name + ".parts")


def test_sibling_and_foreign_folders_are_never_deleted(embedder, crops, tmp_path: Path) -> None:
    out = tmp_path / "emb" / "e.parquet"
    out.parent.mkdir()
    keep = {
        "e.parquet.parts.backup/important.txt": b"mine",
        "e.parquet.parts.old-12345/important.txt": b"an old tool's name, not ours",
        "e.parquet.parts.old-abcd1234/important.txt": b"our name pattern, but no marker",
        "e.parquet.parts.new-abcd1234/important.txt": b"our name pattern, but no marker",
    }
    for name, data in keep.items():
        (out.parent / name).parent.mkdir()
        (out.parent / name).write_bytes(data)
    summary = embed_to_file(tmp_path / "crops", out, embedder=embedder, chunk_size=2)
    assert summary.rows_in_output == 6
    for name, data in keep.items():
        assert (out.parent / name).read_bytes() == data
    assert not (out.parent / "e.parquet.parts").exists()
    again = embed_to_file(tmp_path / "crops", out, embedder=embedder, overwrite=True)
    assert again.rows_in_output == 6 and all((out.parent / name).read_bytes() == d for name, d in keep.items())


def test_a_parts_folder_the_tool_did_not_make_is_refused(embedder, crops, tmp_path: Path) -> None:
    out = tmp_path / "e.parquet"
    foreign = tmp_path / "e.parquet.parts"
    foreign.mkdir()
    (foreign / "part-000000.parquet").write_bytes(b"someone else's file")
    before = tree(tmp_path)
    for flags in ([], ["--resume"], ["--overwrite"]):
        result = invoke("embed", tmp_path / "crops", "--out", out, "--onnx-path", tmp_path / "missing.onnx", *flags)
        assert result.exit_code == 2, result.output
        assert "was not made by arcface-trt embed" in result.stderr and result.stderr.count("\n") == 1
    with pytest.raises(InputError, match="not made by arcface-trt embed"):
        embed_to_file(tmp_path / "crops", out, embedder=embedder, overwrite=True)
    assert tree(tmp_path) == before
    shutil.rmtree(foreign)
    foreign.symlink_to(tmp_path / "crops")  # a link named like the parts folder is not ours either
    with pytest.raises(InputError, match="not made by arcface-trt embed"):
        embed_to_file(tmp_path / "crops", out, embedder=embedder, overwrite=True)


def test_a_foreign_file_inside_the_parts_folder_survives(embedder, crops, tmp_path: Path, caplog) -> None:
    out = tmp_path / "e.parquet"
    parts = _unfinished_run(out, embedder, crops[:4])
    assert (parts / MARKER).is_file()
    (parts / "notes.txt").write_text("my notes")
    summary = embed_to_file(tmp_path / "crops", out, embedder=embedder, resume=True)
    assert summary.rows_in_output == 6 and not parts.exists()
    (notes,) = tmp_path.glob("e.parquet.parts.old-*/notes.txt")
    assert notes.read_text() == "my notes"
    assert "holds files arcface-trt did not write" in caplog.text
    # the next run leaves that folder alone: it has no marker any more
    embed_to_file(tmp_path / "crops", out, embedder=embedder, overwrite=True)
    assert notes.read_text() == "my notes"


def _write_part(parts: Path, number: int, table) -> Path:
    import pyarrow.parquet as pq

    path = parts / f"part-{number:06d}.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("case", ["duplicated part", "another input", "NaN rows", "rows changed", "foreign part"])
def test_resume_refuses_parts_that_would_make_a_wrong_output(case, embedder, crops, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "e.parquet"
    parts = _unfinished_run(out, embedder, crops[:4])
    sha = embedder.model.sha256
    if case == "duplicated part":
        bad = parts / "part-000005.parquet"
        shutil.copy(parts / "part-000001.parquet", bad)
        expected = "repeats"
    elif case == "another input":
        bad = _write_part(parts, 5, make_table(["/elsewhere/a.png"], _unit_rows(1), "onnxruntime", "fp32", sha))
        expected = "which this input does not list"
    elif case == "NaN rows":
        rows = _unit_rows(2)
        rows[1, 3] = np.nan
        bad = _write_part(parts, 5, make_table(crops[4:6], rows, "onnxruntime", "fp32", sha))
        expected = "NaN or infinite"
    elif case == "rows changed":
        bad = parts / "part-000001.parquet"
        pq.write_table(pq.read_table(bad).slice(0, 1), bad)  # its metadata still says 2 rows
        expected = "holds 1 rows but was written with 2"
    else:
        plain = make_table(crops[4:6], _unit_rows(2), "onnxruntime", "fp32", sha).replace_schema_metadata(None)
        bad = _write_part(parts, 5, plain)
        expected = "was not written by arcface-trt embed"
    before = tree(tmp_path)
    with pytest.raises(InputError, match=expected) as refused:
        embed_to_file(tmp_path / "crops", out, embedder=embedder, resume=True)
    assert str(bad) in str(refused.value)
    assert tree(tmp_path) == before


def test_resume_refuses_the_issue_reproduction_through_the_cli(
    tiny_onnx: Path, embedder, crops, tmp_path: Path
) -> None:
    """A copied part gave 35 rows for 30 inputs, exit 0: now one line naming the part, exit 2."""
    out = tmp_path / "e.parquet"
    parts = _unfinished_run(out, embedder, crops[:4])
    shutil.copy(parts / "part-000000.parquet", parts / "part-000009.parquet")
    result = invoke("embed", tmp_path / "crops", "--out", out, "--onnx-path", tiny_onnx, "--resume")
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "part-000009.parquet repeats" in line


def test_resume_of_a_finished_output_checks_it_too(embedder, crops, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "e.parquet"
    embed_to_file(tmp_path / "crops", out, embedder=embedder)
    table = pq.read_table(out)
    pq.write_table(_with_nan(table), out)
    with pytest.raises(InputError, match=f"{out} holds NaN"):
        embed_to_file(tmp_path / "crops", out, embedder=embedder, resume=True)
    embed_to_file(tmp_path / "crops", out, embedder=embedder, overwrite=True)
    (tmp_path / "crops" / "sub0" / "face_0000.png").unlink()  # the input no longer lists a row of the output
    with pytest.raises(InputError, match="which this input does not list"):
        embed_to_file(tmp_path / "crops", out, embedder=embedder, resume=True)
    assert len(read_embeddings(out)[0]) == 6


def _with_nan(table):
    import pyarrow as pa

    from arcface_trt.embed.parts import embeddings_of

    rows = embeddings_of(table).copy()
    rows[0, 0] = np.inf
    column = pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1), pa.float32()), rows.shape[1])
    return table.set_column(1, "embedding", column)
