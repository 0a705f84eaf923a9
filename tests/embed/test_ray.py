"""``embed --ray`` on a local Ray instance (2 CPUs, CPU backend) gives what the single-process run gives.

Started for the run (and stopped), or joined when this process has initialised Ray already.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcface_trt.backends.spec import BackendSpec
from arcface_trt.embed import embed_to_file, read_embeddings
from arcface_trt.errors import InputError
from tests.support.embeddings import reference, write_crops

pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'arcface-trt[ray]'")
# Ray Data warns about its own deprecated DataContext fields when it copies the context.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")


def test_ray_equals_the_single_process_run(r18_model: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from arcface_trt.faces import sample_faces

    folder = tmp_path / "crops"
    write_crops(folder, sample_faces(10, seed=7))
    (folder / "sub1" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    single = embed_to_file(folder, tmp_path / "single.parquet", embedder=reference(r18_model), chunk_size=4)
    ray = embed_to_file(
        folder,
        tmp_path / "ray.parquet",
        spec=BackendSpec.resolve("onnxruntime", "cpu", onnx_path=r18_model, batch_size=4),
        chunk_size=4,
        ray=True,
        ray_num_cpus=2,
    )
    assert ray.ray and (ray.embedded, ray.unreadable_count, ray.rows_in_output) == (10, 1, 10)
    assert (ray.ray_cluster, ray.ray_actors, ray.threads_per_actor) == ("started", "1 CPU actor x 1 thread", 1)
    assert 0 < ray.first_batch_s < ray.embed_elapsed_s < ray.elapsed_s
    assert ray.unreadable == single.unreadable and ray.backend == "onnxruntime" and ray.precision == "fp32"
    assert ray.model_sha256 == single.model_sha256
    keys_single, emb_single = read_embeddings(tmp_path / "single.parquet")
    keys_ray, emb_ray = read_embeddings(tmp_path / "ray.parquet")
    assert keys_ray == keys_single  # same rows, same order (Ray preserves the input order)
    cosine = np.sum(emb_single.astype(np.float64) * emb_ray.astype(np.float64), axis=1)
    assert cosine.min() >= 0.99999, cosine.min()
    assert pq.read_schema(tmp_path / "ray.parquet").equals(pq.read_schema(tmp_path / "single.parquet"))
    import ray as ray_module

    assert not ray_module.is_initialized()  # the local instance it started is stopped again


def test_ray_initialised_here_is_joined_npy_rows_are_read_by_tasks(r18_model: Path, tmp_path: Path) -> None:
    import ray as ray_module

    from arcface_trt.faces import sample_faces

    crops = sample_faces(6, seed=3).astype(np.float32)  # numbers in 0..255: rounded to crops, as locally
    np.save(tmp_path / "crops.npy", crops)
    spec = BackendSpec.resolve("onnxruntime", "cpu", onnx_path=r18_model, batch_size=4)
    ray_module.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(InputError, match="ray_num_cpus sizes a local instance"):
            embed_to_file(tmp_path / "crops.npy", tmp_path / "x.parquet", spec=spec, ray=True, ray_num_cpus=2)
        joined = embed_to_file(tmp_path / "crops.npy", tmp_path / "ray.parquet", spec=spec, ray=True, chunk_size=2)
        assert (joined.ray_cluster, joined.embedded, joined.unreadable_count) == ("joined", 6, 0)
        keys, embeddings = read_embeddings(tmp_path / "ray.parquet")
        assert [k.rsplit("#", 1)[1] for k in keys] == ["0", "1", "2", "3", "4", "5"]
        good = np.rint(crops).astype(np.uint8)
        assert np.sum(reference(r18_model).encode(good) * embeddings, axis=1).min() >= 0.99999

        # Not one listed file is there: Ray's reader has nothing to read, each path is reported.
        (tmp_path / "absent.txt").write_text("gone/a.png\ngone/_b.png\n")
        nothing = embed_to_file(tmp_path / "absent.txt", tmp_path / "none.parquet", spec=spec, ray=True)
        assert (nothing.embedded, nothing.rows_in_output) == (0, 0)
        assert [u["reason"] for u in nothing.unreadable] == ["file not found", "file not found"]

        # The .npy disappears once the driver has read its header: the task's own error reaches the caller.
        def remove_it(advance: int, todo: int) -> None:
            (tmp_path / "crops.npy").unlink(missing_ok=True)

        with pytest.raises(InputError, match=r"not found: .*crops\.npy"):
            embed_to_file(tmp_path / "crops.npy", tmp_path / "gone.parquet", spec=spec, ray=True, progress=remove_it)
        assert ray_module.is_initialized()  # a Ray this process started is left running
    finally:
        ray_module.shutdown()
