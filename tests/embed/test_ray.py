"""``embed --ray`` on a local Ray instance (2 CPUs, CPU backend) gives what the single-process run gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcface_trt.backends.spec import BackendSpec
from arcface_trt.embed import embed_to_file, read_embeddings
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
