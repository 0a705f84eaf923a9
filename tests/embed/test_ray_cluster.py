"""``embed --ray`` on a real two-node Ray cluster (``ray start`` head + node, loopback only) with the S3 server.

The input, the output and the model are all ``s3://`` URIs, so nothing is read from the driver's
disk. The driver is killed mid-run and ``--resume`` finishes; an actor is killed mid-run and Ray
restarts it and retries its batch; every input ends up once, in order, equal to the
single-process run, and ``--json`` stays one document. Start-up failures on the workers and a
token-auth refusal are one ``error:`` line.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.embed import embed_to_file, read_embeddings
from tests.support.cli import run_cli, start_cli
from tests.support.embeddings import write_crops
from tests.support.s3_server import objects, upload

pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'arcface-trt[ray]'")
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")]

#: Crops in the input: enough that both kills land while work is left.
N = 48


@pytest.fixture(scope="module")
def cluster(moto_server, tmp_path_factory: pytest.TempPathFactory):
    """The cluster, its nodes with the tests' fake AWS credentials (each node uses its own, as on a real cluster)."""
    from tests.support.ray_cluster import LoopbackCluster

    empty = tmp_path_factory.mktemp("aws") / "empty"
    empty.write_text("")
    node_env = {
        "AWS_ACCESS_KEY_ID": "AKIANODEKEY000000001",
        "AWS_SECRET_ACCESS_KEY": "node-secret-0123456789",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": None,  # the driver says where the store is: nodes must not need to know
        "AWS_PROFILE": None,
    }
    started = LoopbackCluster(node_env, cpus=2)
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def endpoint(moto_server, aws_env, monkeypatch: pytest.MonkeyPatch) -> str:
    """The S3 server as this process's endpoint (the test reads the outputs it checks from there)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    return moto_server.url


@pytest.fixture
def data(s3, bucket: str, r18_model: Path, tmp_path: Path) -> dict:
    """N crops and a broken image under s3://bucket/crops/, the r18 model under s3://bucket/models/."""
    from arcface_trt.faces import sample_faces

    folder = tmp_path / "crops"
    write_crops(folder, sample_faces(N, seed=11))
    (folder / "sub1" / "broken.png").write_bytes(b"not an image")
    upload(s3, bucket, "crops", folder)
    s3.put_object(Bucket=bucket, Key="models/arcface_r18.onnx", Body=r18_model.read_bytes())
    return {
        "folder": folder,
        "input": f"s3://{bucket}/crops/",
        "model": f"s3://{bucket}/models/arcface_r18.onnx",
    }


def _args(data: dict, out: str, cluster, *more: str) -> list[str]:
    return [
        "embed",
        data["input"],
        "--out",
        out,
        "--onnx-path",
        data["model"],
        "--backend",
        "onnxruntime",
        "--device",
        "cpu",
        "--batch-size",
        "4",
        "--chunk-size",
        "4",
        "--ray-address",
        cluster.address,
        "--actors",
        "2",
        "--threads-per-actor",
        "1",
        "--json",
        *more,
    ]


def _parts(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(k for k in objects(s3, bucket, prefix) if k.rsplit("/", 1)[-1].startswith("part-"))


def _wait_for(condition, process, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_s3_to_s3_on_two_nodes_kills_and_resume_exactly_once(cluster, data, s3, bucket, moto_server, tmp_path):
    env = cluster.driver_env(AWS_ENDPOINT_URL=moto_server.url)
    out = f"s3://{bucket}/emb.parquet"
    expected_keys, expected = read_embeddings(_single_run(data, tmp_path))

    # 1. The driver is killed after a few parts: what it committed stays, nothing is half-written.
    first = start_cli(*_args(data, out, cluster), env=env, stderr_file=tmp_path / "first.err")
    try:
        _wait_for(lambda: len(_parts(s3, bucket, "emb.parquet.parts/")) >= 2, first, "two parts were committed")
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    committed = _parts(s3, bucket, "emb.parquet.parts/")
    assert 2 <= len(committed) < N // 4 and "emb.parquet" not in objects(s3, bucket, "emb.parquet")

    # 2. --resume; an embedding actor is killed while batches are left: Ray restarts it and retries its batch.
    second = start_cli(*_args(data, out, cluster, "--resume"), env=env, stderr_file=tmp_path / "second.err")
    try:
        _wait_for(lambda: len(_parts(s3, bucket, "emb.parquet.parts/")) > len(committed), second, "a new part")
        victims = cluster.actor_pids("EmbedActor")
        assert victims, "no embedding actor found on the cluster"
        left_then = N // 4 + 1 - len(_parts(s3, bucket, "emb.parquet.parts/"))
        os.kill(victims[0], signal.SIGKILL)
        stdout, _ = second.communicate(timeout=300)
    finally:
        second.kill()
    stderr = (tmp_path / "second.err").read_text()
    assert second.returncode == 0, stderr[-3000:]
    assert left_then > 0  # the actor died with work left
    summary = json.loads(stdout)  # stdout is one JSON document, whatever Ray printed
    assert summary["ray_cluster"] == "joined" and summary["ray_actors"] == "2 CPU actors x 1 thread"
    assert summary["ray_address"] == cluster.address
    assert summary["model_path"] == data["model"] and summary["threads_per_actor"] == 1
    assert summary["skipped_existing"] == 4 * len(committed)
    assert summary["skipped_existing"] + summary["embedded"] == N and summary["rows_in_output"] == N
    assert [u["path"].rsplit("/", 1)[-1] for u in summary["unreadable"]] == ["broken.png"]

    keys, embeddings = read_embeddings(out)
    assert keys == expected_keys  # every input once, in input order
    cosine = np.sum(expected.astype(np.float64) * embeddings.astype(np.float64), axis=1)
    assert cosine.min() >= 0.99999, cosine.min()
    assert set(objects(s3, bucket, "emb.parquet")) == {"emb.parquet"}  # parts deleted, nothing else left


def _single_run(data: dict, tmp_path: Path) -> Path:
    """The single-process run of the same input and model (the reference the cluster must equal)."""
    from arcface_trt.backends.spec import BackendSpec

    out = tmp_path / "single.parquet"
    spec = BackendSpec.resolve("onnxruntime", "cpu", onnx_path=data["model"], batch_size=4)
    embed_to_file(data["input"], out, spec=spec)
    return out


def test_worker_start_up_failure_and_token_auth_are_one_line(cluster, data, s3, bucket, moto_server, tmp_path):
    import boto3

    # Token auth: Ray's own message after its retries says nothing about tokens; ours does.
    refused = run_cli(
        *_args(data, str(tmp_path / "a.parquet"), cluster),
        env=cluster.driver_env(RAY_AUTH_MODE=None, RAY_NUM_REDIS_GET_RETRIES="2", AWS_ENDPOINT_URL=moto_server.url),
        timeout=120,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: cannot connect to the Ray cluster at {cluster.address}: the cluster uses token auth: "
        "set RAY_AUTH_MODE=token or use --ray-address auto"
    )

    # The driver may read the model, the workers may not (their credentials are refused): the actors
    # cannot start, and that is one error line naming the cause, exit 2.
    iam = boto3.client("iam", endpoint_url=moto_server.url, region_name="us-east-1")
    user = f"driver-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(allow))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    local = dict(data, input=str(data["folder"]))  # local crops: the model is the only thing workers read from S3
    moto_server.set_auth(True)
    try:
        failed = run_cli(
            *_args(local, str(tmp_path / "b.parquet"), cluster),
            env=cluster.driver_env(
                AWS_ENDPOINT_URL=moto_server.url,
                AWS_ACCESS_KEY_ID=key["AccessKeyId"],
                AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
                ARCFACE_TRT_CACHE_DIR=str(tmp_path / "fresh-cache"),  # reaches the workers: nothing installed yet
            ),
            timeout=300,
        )
    finally:
        moto_server.set_auth(False)
    lines = failed.stderr.strip().splitlines()
    assert (failed.returncode, failed.stdout) == (2, ""), failed.stderr[-3000:]
    assert lines[-1].startswith("error: Ray node 127.0.0.1 cannot read the model: "), lines[-1]
    assert data["model"] in lines[-1] and "access denied" in lines[-1]
    # Ray's own messages (its copy of the worker's traceback) go to stderr too; the error is one line, the last.
    assert [line for line in lines if line.startswith("error:")] == lines[-1:]
    assert not (tmp_path / "b.parquet").exists() and not (tmp_path / "b.parquet.parts").exists()
