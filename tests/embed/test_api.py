"""The embed library: sources, the read-ahead reader, the part store and resume, through the Python API."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.embed import embed_paths, embed_to_file, open_source, read_embeddings
from arcface_trt.embed.reader import read_batches
from arcface_trt.embed.sources import Unreadable
from arcface_trt.errors import InputError
from arcface_trt.inputs import read_image
from tests.support.embeddings import assert_matches_encode, reference, write_crops


def test_parquet_output_equals_encode_and_has_the_schema(embedder, crop_folder: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "emb.parquet"
    summary = embed_to_file(crop_folder, out, embedder=embedder, chunk_size=2)
    assert (summary.total, summary.embedded, summary.rows_in_output, summary.unreadable_count) == (6, 6, 6, 0)
    assert summary.images_per_s > 0 and summary.backend == "onnxruntime" and summary.precision == "fp32"
    assert 0 < summary.first_batch_s <= summary.embed_elapsed_s
    table = pq.read_table(out)
    assert table.column_names == ["path", "embedding", "backend", "precision", "model_sha256"]
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 512)
    assert set(table.column("model_sha256").to_pylist()) == {embedder.model.sha256}
    assert set(table.column("backend").to_pylist()) == {"onnxruntime"}
    keys, embeddings = read_embeddings(out)
    assert keys == open_source(crop_folder).keys and len(set(keys)) == 6
    assert all(Path(k).is_absolute() for k in keys)
    assert_matches_encode(keys, embeddings, embedder)
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # the parts folder is gone; the committed parts became the row groups: batches of 4 split into parts of 2
    assert not (tmp_path / "emb.parquet.parts").exists()
    metadata = pq.ParquetFile(out).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [2, 2, 2]


def test_npy_input_and_npy_output_with_index(embedder, faces: np.ndarray, tmp_path: Path) -> None:
    np.save(tmp_path / "crops.npy", faces[:6])
    out = tmp_path / "emb.npy"
    summary = embed_to_file(tmp_path / "crops.npy", out, embedder=embedder)
    assert summary.embedded == 6 and (tmp_path / "emb.index.parquet").is_file()
    keys, embeddings = read_embeddings(out)
    assert keys == [f"{tmp_path / 'crops.npy'}#{i}" for i in range(6)]
    assert embeddings.dtype == np.float32 and embeddings.shape == (6, 512)
    assert np.load(out).shape == (6, 512)
    cosine = np.sum(embedder.encode(faces[:6]) * embeddings, axis=1)
    assert cosine.min() >= 0.99999


def test_list_file_relative_paths_duplicates_and_missing(embedder, crop_folder: Path, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(
        "# crops to embed\n"
        "crops/sub0/face_0000.png\n"
        f"{crop_folder / 'sub1' / 'face_0001.png'}\n"
        "\n"
        "crops/sub0/face_0000.png\n"  # a duplicate: embedded once
        "crops/absent.png\n"
    )
    summary = embed_to_file(listing, tmp_path / "emb.parquet", embedder=embedder)
    assert (summary.total, summary.duplicates, summary.embedded, summary.unreadable_count) == (3, 1, 2, 1)
    assert summary.unreadable == [{"path": str(tmp_path / "crops" / "absent.png"), "reason": "file not found"}]
    keys, _ = read_embeddings(tmp_path / "emb.parquet")
    assert keys == [str(crop_folder / "sub0" / "face_0000.png"), str(crop_folder / "sub1" / "face_0001.png")]


def test_unreadable_images_are_skipped_and_reported(embedder, crop_folder: Path, tmp_path: Path) -> None:
    (crop_folder / "sub0" / "garbage.png").write_bytes(b"\x89PNG not really")
    (crop_folder / "sub1" / "empty.jpg").write_bytes(b"")
    (crop_folder / "sub1" / "truncated.png").write_bytes((crop_folder / "sub0" / "face_0000.png").read_bytes()[:60])
    summary = embed_to_file(crop_folder, tmp_path / "emb.parquet", embedder=embedder)
    assert summary.embedded == 6 and summary.unreadable_count == 3 and summary.rows_in_output == 6
    bad = {Path(u["path"]).name: u["reason"] for u in summary.unreadable}
    assert bad == dict.fromkeys(("garbage.png", "empty.jpg", "truncated.png"), "not a decodable image")
    keys, _ = read_embeddings(tmp_path / "emb.parquet")
    assert not any(Path(k).name in bad for k in keys)


def test_resume_adds_only_missing_paths(embedder, faces: np.ndarray, crop_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    embed_to_file(crop_folder, out, embedder=embedder)
    before = read_embeddings(out)
    write_crops(crop_folder, faces[6:8], start=6)  # two new crops arrive
    with pytest.raises(InputError, match="exists: pass --resume"):
        embed_to_file(crop_folder, out, embedder=embedder)
    summary = embed_to_file(crop_folder, out, embedder=embedder, resume=True)
    assert (summary.skipped_existing, summary.embedded, summary.rows_in_output) == (6, 2, 8)
    keys, embeddings = read_embeddings(out)
    assert sorted(keys) == sorted(open_source(crop_folder).keys) and len(set(keys)) == 8
    assert np.array_equal(embeddings[:6], before[1])  # the old rows are kept as they were
    assert_matches_encode(keys, embeddings, embedder)
    again = embed_to_file(crop_folder, out, embedder=embedder, resume=True)
    assert again.embedded == 0 and again.rows_in_output == 8


def test_resume_of_npy_output(embedder, faces: np.ndarray, crop_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.npy"
    embed_to_file(crop_folder, out, embedder=embedder)
    write_crops(crop_folder, faces[6:7], start=6)
    summary = embed_to_file(crop_folder, out, embedder=embedder, resume=True)
    assert summary.embedded == 1 and summary.rows_in_output == 7
    keys, embeddings = read_embeddings(out)
    assert len(set(keys)) == 7 and embeddings.shape == (7, 512)
    assert_matches_encode(keys, embeddings, embedder)


def test_resume_refuses_another_model(embedder, r18_model_seed1: Path, crop_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    embed_to_file(crop_folder, out, embedder=embedder)
    other = reference(r18_model_seed1)
    with pytest.raises(InputError, match="another model"):
        embed_to_file(crop_folder, out, embedder=other, resume=True)
    summary = embed_to_file(crop_folder, out, embedder=other, overwrite=True)
    assert summary.embedded == 6 and read_embeddings(out)[1].shape == (6, 512)


def test_unfinished_parts_need_resume_or_overwrite(embedder, crop_folder: Path, tmp_path: Path) -> None:
    from arcface_trt.embed.parts import PartStore

    out = tmp_path / "emb.parquet"
    keys = open_source(crop_folder).keys
    with PartStore.open(out, embedder.model.sha256, 512, resume=False, overwrite=False) as store:
        store.commit(keys[:4], embedder.encode([read_image(Path(k)) for k in keys[:4]]), "onnxruntime", "fp32")
    (tmp_path / "emb.parquet.parts" / ".part-000001.parquet.abcd1234.tmp").write_bytes(b"half a part")
    with pytest.raises(InputError, match="unfinished run"):
        embed_to_file(crop_folder, out, embedder=embedder)
    summary = embed_to_file(crop_folder, out, embedder=embedder, resume=True)
    assert (summary.skipped_existing, summary.embedded, summary.rows_in_output) == (4, 2, 6)
    done, embeddings = read_embeddings(out)
    assert sorted(done) == sorted(keys)
    assert_matches_encode(done, embeddings, embedder)


def test_embed_paths_in_memory(embedder, crop_folder: Path) -> None:
    paths = [*sorted(crop_folder.rglob("*.png"))[:5], crop_folder / "nope.png"]
    result = embed_paths(paths, embedder=embedder, threads=2)
    assert result.paths == [str(p) for p in paths[:5]]
    assert result.unreadable == [{"path": str(crop_folder / "nope.png"), "reason": "file not found"}]
    assert_matches_encode(result.paths, result.embeddings, embedder)


def test_reader_overlaps_reading_with_the_consumer() -> None:
    delay = 0.05

    def slow_load(key: str) -> np.ndarray:
        time.sleep(delay)
        return np.full((112, 112, 3), int(key), np.uint8)

    keys = [str(i) for i in range(12)]
    started = time.perf_counter()
    seen = []
    for batch in read_batches(keys, slow_load, lambda crops: np.stack(crops), batch_size=1, threads=2):
        time.sleep(delay)  # the "backend"
        seen.extend(batch.keys)
    elapsed = time.perf_counter() - started
    assert seen == keys  # in order
    assert elapsed < 0.75 * (2 * len(keys) * delay), elapsed  # serial would be reading + consuming


def test_reader_is_bounded_and_survives_a_failing_loader() -> None:
    lock = threading.Lock()
    state = {"loaded": 0, "max_ahead": 0, "consumed": 0}

    def load(key: str) -> np.ndarray | Unreadable:
        with lock:
            state["loaded"] += 1
            state["max_ahead"] = max(state["max_ahead"], state["loaded"] - state["consumed"])
        if key == "7":
            raise RuntimeError("disk on fire")
        if key == "9":
            return Unreadable("nope")
        return np.zeros((8, 8, 3), np.uint8)

    failures = []
    for batch in read_batches([str(i) for i in range(200)], load, np.stack, batch_size=2, threads=2, prefetch=3):
        time.sleep(0.001)
        with lock:
            state["consumed"] += len(batch.keys) + len(batch.failures)
        failures.extend(batch.failures)
    assert failures == [("7", "RuntimeError: disk on fire"), ("9", "nope")]
    assert state["max_ahead"] <= 3 * 2 + 2  # prefetch batches (+ the one being handed over)


def test_bad_sources_and_outputs(tmp_path: Path, faces: np.ndarray) -> None:
    import cv2

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    cv2.imwrite(str(tmp_path / "one.png"), faces[0])
    (tmp_path / "binary.lst").write_bytes(b"\xff\xfe\x00binary")
    for source, message in [
        (tmp_path / "absent", "input not found"),
        (tmp_path / "empty", "no images"),
        (tmp_path / "empty.txt", "lists no image paths"),
        (tmp_path / "one.png", "is a single image"),
        (tmp_path / "binary.lst", "not a UTF-8 text file"),
    ]:
        with pytest.raises(InputError, match=message):
            open_source(source)
    with pytest.raises(InputError, match=r"must end in \.parquet or \.npy"):
        embed_to_file(tmp_path, tmp_path / "out.csv")
    with pytest.raises(InputError, match="--batch-size must be at least 1"):
        embed_to_file(tmp_path, tmp_path / "out.parquet", batch_size=0)
    np.save(tmp_path / "someone_elses.npy", np.ones(3))
    for resume in (False, True):
        with pytest.raises(InputError, match="exists without its index"):
            embed_to_file(tmp_path / "one.png", tmp_path / "someone_elses.npy", resume=resume)
