"""embed from and to an object store (the real S3 server on loopback), in one process.

Inputs (a folder prefix, a list file, a .npy), outputs (.parquet, .npy + index), the model by URI,
--resume of a remote output, and the refusals: an output that cannot be written (before any
work), a parts prefix the tool did not make, leftovers of an interrupted set-up or clean-up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcface_trt.backends.spec import BackendSpec
from arcface_trt.embed import embed_to_file, open_source, read_embeddings
from arcface_trt.embed.storage import FORMAT_TAG, MARKER
from arcface_trt.errors import InputError
from tests.support.cli import invoke
from tests.support.embeddings import reference, summary_of
from tests.support.s3_server import SECRET_KEY, free_port, objects, upload


@pytest.fixture(autouse=True)
def endpoint(moto_server, aws_env, monkeypatch: pytest.MonkeyPatch) -> str:
    """The S3 server as the environment's endpoint (what ObjectStore.default() and the CLI read)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    return moto_server.url


def test_folder_prefix_to_parquet_equals_the_local_run(embedder, s3, bucket, crop_folder: Path, tmp_path: Path) -> None:
    uris = upload(s3, bucket, "crops", crop_folder)
    (crop_folder / "sub0" / "notes.txt").write_text("not an image")  # listed by suffix: never a key
    upload(s3, bucket, "crops", crop_folder)
    local = embed_to_file(crop_folder, tmp_path / "local.parquet", embedder=embedder, chunk_size=4)
    remote = embed_to_file(f"s3://{bucket}/crops/", f"s3://{bucket}/out/emb.parquet", embedder=embedder, chunk_size=4)
    assert (remote.total, remote.embedded, remote.rows_in_output) == (6, 6, 6)
    assert remote.output == f"s3://{bucket}/out/emb.parquet" and remote.input == f"s3://{bucket}/crops/"
    keys, embeddings = read_embeddings(f"s3://{bucket}/out/emb.parquet")
    local_keys, local_embeddings = read_embeddings(tmp_path / "local.parquet")
    assert keys == uris  # URIs as keys, in the listing's (sorted) order
    assert [k.rsplit("/crops/", 1)[1] for k in keys] == [k.rsplit("/crops/", 1)[1] for k in local_keys]
    assert np.array_equal(embeddings, local_embeddings)  # the same bytes decode to the same crops
    assert local.model_sha256 == remote.model_sha256
    left = objects(s3, bucket, "out/")
    assert set(left) == {"out/emb.parquet"}  # parts and the write check are gone


def test_list_file_npy_output_and_resume_of_a_remote_output(embedder, s3, bucket, crop_folder: Path) -> None:
    uris = upload(s3, bucket, "crops", crop_folder)
    listing = f"sub0/{Path(uris[0]).name}\n{uris[3]}\n# a comment\nsub1/absent.png\n{uris[3]}\n"
    s3.put_object(Bucket=bucket, Key="crops/list.txt", Body=listing.encode())
    out = f"s3://{bucket}/out/emb.npy"
    first = embed_to_file(f"s3://{bucket}/crops/list.txt", out, embedder=embedder)
    assert (first.total, first.duplicates, first.embedded) == (3, 1, 2)
    assert first.unreadable == [{"path": f"s3://{bucket}/crops/sub1/absent.png", "reason": "file not found"}]
    assert {"out/emb.npy", "out/emb.index.parquet"} == set(objects(s3, bucket, "out/"))
    # --resume of a finished remote output with a whole folder: the finished rows are kept, the others added
    again = embed_to_file(f"s3://{bucket}/crops/", out, embedder=embedder, resume=True, chunk_size=2)
    assert (again.skipped_existing, again.embedded, again.rows_in_output) == (2, 4, 6)
    keys, embeddings = read_embeddings(out)
    assert sorted(keys) == uris and len(set(keys)) == 6
    assert keys[:2] == [uris[0], uris[3]]  # the rows of the earlier run come first
    from arcface_trt.inputs import read_image

    expected = embedder.encode([read_image(crop_folder / Path(k).parent.name / Path(k).name) for k in keys])
    assert np.sum(expected * embeddings, axis=1).min() >= 0.99999


def test_a_killed_remote_run_resumes_exactly_once(embedder, s3, bucket, crop_folder: Path) -> None:
    upload(s3, bucket, "crops", crop_folder)
    out = f"s3://{bucket}/emb.parquet"
    calls = []

    def die_after_two_parts(advance: int, todo: int) -> None:
        calls.append(advance)
        if len(calls) == 3:  # the hook runs after a batch is committed: two parts of two rows are in
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_to_file(
            f"s3://{bucket}/crops/", out, embedder=embedder, chunk_size=2, batch_size=2, progress=die_after_two_parts
        )
    left = objects(s3, bucket)
    parts = sorted(k for k in left if k.startswith("emb.parquet.parts/part-"))
    assert len(parts) == 2 and left[f"emb.parquet.parts/{MARKER}"].decode().split() == [FORMAT_TAG]
    assert "emb.parquet" not in left
    with pytest.raises(InputError, match="holds an unfinished run"):
        embed_to_file(f"s3://{bucket}/crops/", out, embedder=embedder)
    resumed = embed_to_file(f"s3://{bucket}/crops/", out, embedder=embedder, resume=True)
    assert (resumed.skipped_existing, resumed.embedded, resumed.rows_in_output) == (4, 2, 6)
    keys, _ = read_embeddings(out)
    assert keys == open_source(f"s3://{bucket}/crops/").keys  # each once, in input order
    assert set(objects(s3, bucket)) - {k for k in left if k.startswith("crops/")} == {"emb.parquet"}


def test_an_output_that_cannot_be_written_is_refused_before_any_work(s3, bucket, crop_folder: Path) -> None:
    spec = BackendSpec.resolve("onnxruntime", "cpu", onnx_path="/no/such/model.onnx")  # never loaded
    with pytest.raises(InputError) as refused:
        embed_to_file(crop_folder, "s3://no-such-bucket-22/emb.parquet", spec=spec)
    message = str(refused.value)
    assert message.startswith("cannot write s3://no-such-bucket-22/emb.parquet") and "bucket does not exist" in message
    assert SECRET_KEY not in message
    result = invoke(
        "embed", str(crop_folder), "--out", "s3://no-such-bucket-22/emb.parquet", "--onnx-path", "/no/model.onnx"
    )
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "bucket does not exist" in result.stderr


def test_a_parts_prefix_the_tool_did_not_make_is_refused_and_kept(embedder, s3, bucket, crop_folder: Path) -> None:
    s3.put_object(Bucket=bucket, Key="emb.parquet.parts/part-000000.parquet", Body=b"someone else's")
    before = objects(s3, bucket)
    for flags in ({}, {"resume": True}, {"overwrite": True}):
        with pytest.raises(InputError, match="was not made by arcface-trt embed"):
            embed_to_file(crop_folder, f"s3://{bucket}/emb.parquet", embedder=embedder, **flags)
    assert objects(s3, bucket) == before


@pytest.mark.parametrize("state", ["building", "retired"])
def test_leftovers_of_a_cut_short_set_up_or_clean_up_are_finished(
    state, embedder, s3, bucket, crop_folder: Path
) -> None:
    """A marker saying building/retired is never live: the next run deletes the tool's objects, keeps others."""
    s3.put_object(Bucket=bucket, Key=f"emb.parquet.parts/{MARKER}", Body=f"{FORMAT_TAG} {state}\n".encode())
    s3.put_object(Bucket=bucket, Key="emb.parquet.parts/part-000000.parquet", Body=b"half a copy")
    s3.put_object(Bucket=bucket, Key="emb.parquet.parts/mine.txt", Body=b"not the tool's")
    summary = embed_to_file(crop_folder, f"s3://{bucket}/emb.parquet", embedder=embedder)
    assert summary.embedded == 6 and summary.skipped_existing == 0
    left = objects(s3, bucket)
    assert left["emb.parquet.parts/mine.txt"] == b"not the tool's"
    assert f"emb.parquet.parts/{MARKER}" not in left and "emb.parquet.parts/part-000000.parquet" not in left


def test_npy_input_and_model_by_uri(r18_model: Path, s3, bucket, faces: np.ndarray, tmp_path: Path) -> None:
    np.save(tmp_path / "crops.npy", faces[:5].astype(np.float32))  # float crops in 0..255 are rounded, as locally
    s3.put_object(Bucket=bucket, Key="in/crops.npy", Body=(tmp_path / "crops.npy").read_bytes())
    s3.put_object(Bucket=bucket, Key="models/arcface_r18.onnx", Body=r18_model.read_bytes())
    spec = BackendSpec.resolve("onnxruntime", "cpu", onnx_path=f"s3://{bucket}/models/arcface_r18.onnx", batch_size=2)
    summary = embed_to_file(f"s3://{bucket}/in/crops.npy", tmp_path / "emb.parquet", spec=spec)
    assert summary.model_path == f"s3://{bucket}/models/arcface_r18.onnx"
    assert summary.model_sha256 == reference(r18_model).model.sha256
    keys, embeddings = read_embeddings(tmp_path / "emb.parquet")
    assert keys == [f"s3://{bucket}/in/crops.npy#{i}" for i in range(5)]
    assert np.sum(reference(r18_model).encode(faces[:5]) * embeddings, axis=1).min() >= 0.99999
    missing = BackendSpec.resolve("onnxruntime", "cpu", onnx_path=f"s3://{bucket}/models/absent.onnx")
    with pytest.raises(InputError, match=f"not found: s3://{bucket}/models/absent.onnx"):
        embed_to_file(f"s3://{bucket}/in/crops.npy", tmp_path / "other.parquet", spec=missing)


def test_cli_from_and_to_s3_with_the_endpoint_option(
    r18_model: Path, s3, bucket, crop_folder: Path, monkeypatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the option, not the environment, names the server here
    endpoint = s3.meta.endpoint_url
    upload(s3, bucket, "crops", crop_folder)
    args = ["embed", f"s3://{bucket}/crops", "--out", f"s3://{bucket}/emb.parquet", "--endpoint-url", endpoint]
    model = ["--onnx-path", str(r18_model), "--backend", "onnxruntime", "--device", "cpu", "--json"]
    result = invoke(*args, *model)
    assert result.exit_code == 0, result.output
    assert summary_of(result.stdout)["rows_in_output"] == 6
    elsewhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the option is what is used
    refused = invoke(*args[:-1], elsewhere, *model, "--overwrite")
    assert refused.exit_code == 2 and f"cannot reach the S3 endpoint {elsewhere}" in refused.stderr


def test_a_model_with_external_data_by_uri_is_installed_with_it(s3, bucket, tmp_path: Path) -> None:
    from arcface_trt.embed.model_ref import fetch_model, inspect_remote_model
    from arcface_trt.model.inspect import inspect_model
    from arcface_trt.objectstore import ObjectStore
    from tests.support.tiny_models import write_external_data_model

    local = write_external_data_model(tmp_path / "exported" / "tiny.onnx", location="tiny.weights")
    upload(s3, bucket, "models", local.parent)
    uri = f"s3://{bucket}/models/tiny.onnx"
    store = ObjectStore.default()
    expected = inspect_model(local).sha256
    facts = inspect_remote_model(uri, store)  # what a Ray driver reads: nothing is kept
    assert (facts.sha256, facts.path) == (expected, uri)
    installed = fetch_model(uri, store, expected)
    assert installed.name == "tiny.onnx" and installed.parent.name == expected
    assert (installed.parent / "tiny.weights").read_bytes() == (local.parent / "tiny.weights").read_bytes()
    assert fetch_model(uri, store, expected) == installed  # the installed copy is reused
    with pytest.raises(InputError, match="differs between machines, or changed during the run"):
        fetch_model(uri, store, "0" * 64)
    s3.delete_object(Bucket=bucket, Key="models/tiny.weights")
    with pytest.raises(InputError, match=f"not found: s3://{bucket}/models/tiny.weights"):
        fetch_model(uri, store)


def test_a_set_up_or_clean_up_cut_short_never_looks_live(s3, bucket, monkeypatch) -> None:
    """The marker is rewritten before each step, so a failure in the middle leaves a folder the next run cleans."""
    from arcface_trt.embed.storage import ObjectStorage
    from arcface_trt.objectstore import ObjectStore

    storage = ObjectStorage(f"s3://{bucket}/emb.parquet", ObjectStore.default())

    def copy_cut_short(handle) -> None:
        handle.write(b"the first rows of a finished output")
        raise OSError("connection reset while copying the finished output")

    with pytest.raises(OSError):
        storage.create_parts(copy_cut_short)
    assert objects(s3, bucket) == {f"emb.parquet.parts/{MARKER}": f"{FORMAT_TAG} building\n".encode()}
    assert storage.parts_state() == "absent"

    storage.create_parts(None)
    storage.write_part("part-000000.parquet", lambda handle: handle.write(b"rows"))
    storage.write_part("part-000001.parquet", lambda handle: handle.write(b"rows"))
    assert storage.parts_state() == "ours" and storage.part_names() == ["part-000000.parquet", "part-000001.parquet"]
    deleted = []
    real_delete = ObjectStore.delete

    def delete_once(self: ObjectStore, uri: str) -> None:
        if deleted:
            raise InputError("the endpoint went away")
        deleted.append(uri)
        real_delete(self, uri)

    monkeypatch.setattr(ObjectStore, "delete", delete_once)
    with pytest.raises(InputError):
        storage.retire_parts()
    left = objects(s3, bucket)
    assert left[f"emb.parquet.parts/{MARKER}"] == f"{FORMAT_TAG} retired\n".encode() and len(left) == 2
    assert storage.parts_state() == "absent"  # a half-deleted folder is never continued
    monkeypatch.undo()
    storage.clean_leftovers()
    assert objects(s3, bucket) == {}


def test_an_image_object_over_the_bound_is_unreadable_in_both_readers(
    embedder, s3, bucket, crop_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The single-process reader refuses it before reading; a Ray decode task (whose reader read it whole) too."""
    from arcface_trt.embed import sources
    from arcface_trt.embed.ray_job import decode_images

    uris = upload(s3, bucket, "crops", crop_folder)
    sizes = {uri: (crop_folder / uri.split("/crops/", 1)[1]).stat().st_size for uri in uris}
    bound = sorted(sizes.values())[-1] - 1  # only the largest crop is over it
    monkeypatch.setattr(sources, "MAX_IMAGE_BYTES", bound)
    big = max(sizes, key=sizes.__getitem__)
    reason = f"{big} is {sizes[big]:,} bytes, more than the {bound:,} it may be"

    single = embed_to_file(f"s3://{bucket}/crops/", f"s3://{bucket}/emb.parquet", embedder=embedder)
    assert single.unreadable == [{"path": big, "reason": reason}] and single.embedded == len(uris) - 1

    names = [uri.removeprefix("s3://") for uri in uris]
    data = [(crop_folder / uri.split("/crops/", 1)[1]).read_bytes() for uri in uris]
    batch = {"path": np.array(names, dtype=object), "bytes": np.array(data, dtype=object)}
    rows = decode_images(batch, "s3://", embedder.model.input_spec)
    assert [str(e) for e in rows["error"]] == ["" if uri != big else reason for uri in uris]
