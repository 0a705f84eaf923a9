"""The single-process pipeline: reading overlaps forward, each stage is measured alone, parts keep their size."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.embed import embed_to_file, read_embeddings
from arcface_trt.embed.pipeline import MeasuredRun, probe_batches
from arcface_trt.embed.reader import default_threads
from tests.support.embeddings import assert_matches_encode, write_crops

#: How long a load takes: long enough that a batch read ahead is still loading when forward starts.
LOAD_S = 0.05


class Recorder:
    """A loader that records which thread loads each key, and a forward that records the loads during it."""

    def __init__(self, crops: dict[str, np.ndarray], forward) -> None:
        self.crops = crops
        self.real_forward = forward
        self.lock = threading.Lock()
        self.loaded: list[tuple[str, str]] = []  # (key, thread name)
        self.forwards: list[dict] = []

    def load(self, key: str) -> np.ndarray:
        time.sleep(LOAD_S)
        with self.lock:
            self.loaded.append((key, threading.current_thread().name))
        return self.crops[key]

    def forward(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            before = len(self.loaded)
        out = self.real_forward(batch)
        # Wait (bounded) for a load to finish while this forward "runs": one does only if reading overlaps.
        deadline = time.monotonic() + 10 * LOAD_S
        while time.monotonic() < deadline and before < len(self.crops):
            with self.lock:
                if len(self.loaded) > before:
                    break
            time.sleep(LOAD_S / 10)
        with self.lock:
            self.forwards.append({"loaded_before": before, "loaded_during": len(self.loaded) - before})
        return out


def test_reading_overlaps_forward_on_reader_threads_and_the_stages_are_measured_alone(
    embedder, faces: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [str(i) for i in range(16)]
    recorder = Recorder({k: faces[int(k) % len(faces)] for k in keys}, embedder.forward)
    monkeypatch.setattr(embedder, "forward", recorder.forward)
    run = MeasuredRun(embedder, keys, recorder.load, batch_size=2, threads=2)
    batches = list(run)

    assert [k for b in batches for k in b.keys] == keys  # in order
    probed = probe_batches(16, 2)
    assert probed == 2 and run.rates is not None and run.rates.probe_images == 4
    # every key is loaded once, on a reader thread, never on the thread that runs forward
    assert sorted(k for k, _ in recorder.loaded) == sorted(keys)
    assert {name.startswith("arcface-trt-read") for _, name in recorder.loaded} == {True}
    pipelined, probe = recorder.forwards[:-probed], recorder.forwards[-probed:]
    # overlapped first: while forward runs on a batch, later batches are being read
    still_to_read = [f for f in pipelined if f["loaded_before"] < len(keys) - 4]
    assert still_to_read and all(f["loaded_during"] > 0 for f in still_to_read), pipelined
    assert max(f["loaded_before"] + f["loaded_during"] for f in pipelined) <= len(keys) - 4  # the last 4 wait
    # then stage by stage: the last keys were all decoded before their encode, and nothing loads during it
    assert probe == [{"loaded_before": len(keys), "loaded_during": 0}] * probed
    # and the results are encode's
    embeddings = np.concatenate([b.embeddings for b in batches])
    monkeypatch.undo()
    assert np.allclose(embeddings, embedder.encode([faces[int(k) % len(faces)] for k in keys]), atol=1e-5)


def test_the_summary_reports_each_stage_and_names_the_slower(embedder, faces: np.ndarray, tmp_path: Path) -> None:
    write_crops(tmp_path / "crops", faces)
    summary = embed_to_file(tmp_path / "crops", tmp_path / "emb.parquet", embedder=embedder, batch_size=1, threads=2)
    stages = summary.stages
    assert stages is not None and summary.threads == stages.reader_threads == 2
    assert (stages.pipelined_images, stages.probe_images) == (9, 3)  # the last quarter of 12 batches of 1
    figures = (stages.decode_only_img_s, stages.encode_only_img_s, stages.embed_img_s)
    assert all(np.isfinite(f) and f > 0 for f in figures), figures
    slower = min(stages.decode_only_img_s, stages.encode_only_img_s)
    assert stages.bound_stage == ("decode" if stages.decode_only_img_s == slower else "encode")
    assert stages.embed_vs_bound == pytest.approx(stages.embed_img_s / slower)
    assert set(summary.to_dict()["stages"]) >= {"embed_img_s", "decode_only_img_s", "encode_only_img_s", "bound_stage"}
    keys, embeddings = read_embeddings(tmp_path / "emb.parquet")
    assert len(keys) == 12
    assert_matches_encode(keys, embeddings, embedder)


def test_a_run_too_short_to_measure_has_no_stage_figures(embedder, faces: np.ndarray, tmp_path: Path) -> None:
    assert [probe_batches(n, 4) for n in (1, 28, 29, 32, 64, 1000)] == [0, 0, 2, 2, 4, 8]
    assert [probe_batches(100_000, size) for size in (128, 256, 1024)] == [8, 4, 2]  # at most 1,024 images
    write_crops(tmp_path / "crops", faces[:6])
    summary = embed_to_file(tmp_path / "crops", tmp_path / "emb.parquet", embedder=embedder)
    assert summary.stages is None and summary.embedded == 6


def test_parts_never_exceed_the_chunk_size(embedder, faces: np.ndarray, tmp_path: Path) -> None:
    """A batch short of an unreadable file no longer lets a part grow to nearly two chunks."""
    import pyarrow.parquet as pq

    paths = write_crops(tmp_path / "crops", faces[:10])
    paths[1].write_bytes(b"not an image")  # the first batch of 4 gives 3 rows
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in paths))
    out = tmp_path / "emb.parquet"
    summary = embed_to_file(listing, out, embedder=embedder, batch_size=4, chunk_size=4)
    assert summary.embedded == 9 and summary.unreadable_count == 1
    metadata = pq.ParquetFile(out).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [4, 4, 1]
    keys, _ = read_embeddings(out)
    assert keys == [str(p) for p in paths if p != paths[1]]


def test_reader_threads_are_sized_to_the_machine() -> None:
    # a GPU backend: every CPU but one decodes (1 to 16); a CPU backend shares them: half, 1 to 4
    assert [default_threads(on_gpu=True, cpus=c) for c in (1, 2, 8, 64)] == [1, 1, 7, 16]
    assert [default_threads(on_gpu=False, cpus=c) for c in (1, 2, 8, 64)] == [1, 1, 4, 4]
