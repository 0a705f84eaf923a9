"""The S3 engine store against a real moto S3 server: push-engine, fetch-engine, list-engines.

Every failure the issue names is provoked for real (a missing bucket, moto's IAM
enforcement, empty credential files, a refused port, a proxy that goes silent or cuts
the body mid-download, bytes changed in the bucket) and must end with exit 2, one
``error:`` line, no traceback, no credential in the output, and an unchanged cache folder.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.support.cli import invoke as cli
from tests.support.cli import run_cli, run_python
from tests.support.s3_server import ACCESS_KEY, SECRET_KEY, free_port, tree
from tests.support.store_cli import (
    MANIFEST_KEY,
    MODEL,
    PLAN_KEY,
    assert_failed,
    fetch_args,
    seeded_cache,
    store,
    write_config,
)

# -- acceptance --------------------------------------------------------------------------------------


def test_push_then_fetch_is_byte_identical_then_current_then_listed(moto_server, bucket, make_plan, tmp_path, s3):
    plan = make_plan()
    pushed = cli("push-engine", plan.plan, *store(moto_server.url, bucket))
    assert pushed.exit_code == 0, pushed.output
    assert f"uploaded s3://{bucket}/{PLAN_KEY}" in pushed.stdout
    # plan_sha256 rides along as object metadata on both objects
    sha = json.loads(plan.manifest_bytes)["plan_sha256"]
    for key in (PLAN_KEY, MANIFEST_KEY):
        assert s3.head_object(Bucket=bucket, Key=key)["Metadata"] == {"plan_sha256": sha}

    cache = tmp_path / "empty-cache"
    first = cli(*fetch_args(cache, "--json"), *store(moto_server.url, bucket))
    assert first.exit_code == 0, first.output
    record = json.loads(first.stdout)
    target = cache / "trt10.16" / "arcface_r18-fp16-sm90.plan"
    assert record["downloaded"] is True and record["plan_path"] == str(target)
    assert record["source"] == f"s3://{bucket}/{PLAN_KEY}"
    assert target.read_bytes() == plan.content
    assert target.with_suffix(".json").read_bytes() == plan.manifest_bytes
    # the plan and its manifest (besides the key's hidden lock file); no temporary file left behind
    visible = sorted(p for p in tree(cache) if not Path(p).name.startswith("."))
    assert visible == ["trt10.16", "trt10.16/arcface_r18-fp16-sm90.json", "trt10.16/arcface_r18-fp16-sm90.plan"]
    assert not [p for p in tree(cache) if p.endswith(".tmp")]

    stamp = (target.stat().st_ino, target.stat().st_mtime_ns)
    second = cli(*fetch_args(cache), *store(moto_server.url, bucket))
    assert second.exit_code == 0, second.output
    assert second.stdout.startswith(f"up to date: {target}")
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == stamp  # not downloaded again
    again = json.loads(cli(*fetch_args(cache, "--json"), *store(moto_server.url, bucket)).stdout)
    assert again["downloaded"] is False and again["attempts"] == 0

    forced = json.loads(cli(*fetch_args(cache, "--json", "--force"), *store(moto_server.url, bucket)).stdout)
    assert forced["downloaded"] is True and target.read_bytes() == plan.content
    assert target.stat().st_ino != stamp[0]  # a new file renamed into place

    listed = cli("list-engines", "--json", *store(moto_server.url, bucket))
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert data["store"] == f"s3://{bucket}/engines/"
    (entry,) = data["engines"]
    assert entry["model"] == MODEL and entry["precision"] == "fp16" and entry["sm_arch"] == "sm90"
    assert entry["trt_version"] == "10.16" and entry["plan_bytes"] == len(plan.content) and entry["has_manifest"]
    assert entry["last_modified"]


def test_list_engines_table_filter_and_empty(moto_server, bucket, make_plan):
    for precision, arch in (("fp16", "90"), ("fp32", "86")):
        assert (
            cli(
                "push-engine", make_plan(precision=precision, arch=arch).plan, *store(moto_server.url, bucket)
            ).exit_code
            == 0
        )
    assert (
        cli("push-engine", make_plan(model="glintr100", size=500).plan, *store(moto_server.url, bucket)).exit_code == 0
    )
    table = cli("list-engines", *store(moto_server.url, bucket))
    assert table.exit_code == 0, table.output
    for text in ("arcface_r18", "glintr100", "fp32", "sm86", "sm90", "10.16", "300.0 kB", "500 B"):
        assert text in table.stdout
    only = json.loads(cli("list-engines", "--json", "--model", "glintr100", *store(moto_server.url, bucket)).stdout)
    assert [e["model"] for e in only["engines"]] == ["glintr100"]
    empty = cli("list-engines", "--prefix", "nothing-here", *store(moto_server.url, bucket))
    assert empty.exit_code == 0 and "no engines in" in empty.stdout


# -- push-engine ---------------------------------------------------------------------------------------


def test_push_same_content_is_a_noop_and_different_content_needs_overwrite(
    moto_server, bucket, make_plan, s3, tmp_path
):
    plan = make_plan()
    assert cli("push-engine", plan.plan, *store(moto_server.url, bucket)).exit_code == 0
    etag = s3.head_object(Bucket=bucket, Key=PLAN_KEY)["ETag"]
    same = cli("push-engine", plan.plan, "--json", *store(moto_server.url, bucket))
    assert same.exit_code == 0, same.output
    assert json.loads(same.stdout)["uploaded"] is False
    assert s3.head_object(Bucket=bucket, Key=PLAN_KEY)["ETag"] == etag

    other = make_plan(seed=7)  # same key, other bytes
    refused = cli("push-engine", other.plan, *store(moto_server.url, bucket))
    assert_failed(refused, "already holds a different plan", "--overwrite")
    assert s3.get_object(Bucket=bucket, Key=PLAN_KEY)["Body"].read() == plan.content

    replaced = cli("push-engine", other.plan, "--overwrite", *store(moto_server.url, bucket))
    assert replaced.exit_code == 0 and replaced.stdout.startswith("replaced ")
    cache = tmp_path / "cache"
    assert cli(*fetch_args(cache), *store(moto_server.url, bucket)).exit_code == 0
    assert (cache / "trt10.16" / "arcface_r18-fp16-sm90.plan").read_bytes() == other.content


def test_push_refuses_plan_without_manifest_or_with_wrong_sha(moto_server, bucket, make_plan, s3):
    lonely = make_plan()
    lonely.manifest.unlink()
    assert_failed(cli("push-engine", lonely.plan, *store(moto_server.url, bucket)), "has no manifest beside it")
    changed = make_plan()
    changed.plan.write_bytes(changed.content[:-1] + b"X")
    assert_failed(cli("push-engine", changed.plan, *store(moto_server.url, bucket)), "its manifest says", "sha256")
    assert_failed(
        cli("push-engine", changed.plan.with_name("nope.plan"), *store(moto_server.url, bucket)), "no plan file"
    )
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_push_uploads_plan_before_manifest(moto_server, bucket, make_plan, tmp_path, monkeypatch):
    """A push that dies between the two uploads leaves a plan without manifest, which nobody uses."""
    from arcface_trt.errors import StoreError
    from arcface_trt.store import s3 as s3_module

    upload = s3_module.S3Store.put_bytes

    def broken(self, relpath, data, metadata, content_type):
        if relpath.endswith(".json"):  # the plan goes up; the manifest upload dies
            raise StoreError(f"simulated failure uploading {relpath}")
        upload(self, relpath, data, metadata, content_type)

    with monkeypatch.context() as patched:
        patched.setattr(s3_module.S3Store, "put_bytes", broken)
        pushed = cli("push-engine", make_plan().plan, *store(moto_server.url, bucket))
    assert_failed(pushed, "simulated failure", ".json")
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    result = cli(*fetch_args(cache), *store(moto_server.url, bucket))
    assert_failed(result, "manifest missing", MANIFEST_KEY)
    assert tree(cache) == before


# -- fetch-engine failures: exit 2, one line, cache unchanged ------------------------------------------


def test_fetch_without_bucket(make_plan, tmp_path):
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    config = write_config(tmp_path / "cfg")
    assert_failed(cli(*fetch_args(cache, "--config", config)), "no engine bucket configured", "--bucket")
    assert_failed(cli("list-engines", "--config", config), "no engine bucket configured")
    assert tree(cache) == before


def test_fetch_bucket_missing(moto_server, make_plan, tmp_path):
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    name = f"missing-{uuid.uuid4().hex[:8]}"
    line = assert_failed(cli(*fetch_args(cache), *store(moto_server.url, name)), f"bucket '{name}' does not exist")
    assert moto_server.url in line
    assert_failed(cli("list-engines", *store(moto_server.url, name)), "does not exist")
    assert_failed(cli("push-engine", make_plan().plan, *store(moto_server.url, name)), "does not exist")
    assert tree(cache) == before


def test_access_denied_and_rejected_credentials(moto_server, bucket, make_plan, tmp_path, monkeypatch):
    """moto's IAM enforcement: a real user without permissions, then a key the server does not know."""
    import boto3

    assert cli("push-engine", make_plan().plan, *store(moto_server.url, bucket)).exit_code == 0
    iam = boto3.client("iam", endpoint_url=moto_server.url, region_name="us-east-1")
    user = f"nobody-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    moto_server.set_auth(True)
    try:
        outcomes = {}
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        secrets = (key["SecretAccessKey"], key["AccessKeyId"])
        outcomes["fetch"] = assert_failed(cli(*fetch_args(cache), *store(moto_server.url, bucket)), secrets=secrets)
        outcomes["list"] = assert_failed(cli("list-engines", *store(moto_server.url, bucket)), secrets=secrets)
        outcomes["push"] = assert_failed(
            cli("push-engine", make_plan(seed=3).plan, *store(moto_server.url, bucket)), secrets=secrets
        )
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        rejected = assert_failed(cli(*fetch_args(cache), *store(moto_server.url, bucket)))
    finally:
        moto_server.set_auth(False)
    for line in outcomes.values():
        assert "access denied" in line and f"s3://{bucket}/engines/" in line, line
    assert "rejected the AWS credentials (InvalidAccessKeyId)" in rejected
    assert tree(cache) == before


def test_fetch_without_credentials(moto_server, bucket, make_plan, tmp_path, monkeypatch):
    assert cli("push-engine", make_plan().plan, *store(moto_server.url, bucket)).exit_code == 0
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")  # AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE are empty files
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    assert_failed(cli(*fetch_args(cache), *store(moto_server.url, bucket)), "no usable AWS credentials", "AWS_PROFILE")
    assert tree(cache) == before


def test_fetch_endpoint_unreachable_fails_fast_naming_it(make_plan, tmp_path):
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    endpoint = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    line = assert_failed(
        cli(*fetch_args(cache), *store(endpoint, "some-bucket")), f"cannot reach the S3 endpoint {endpoint}"
    )
    assert "connection refused" in line
    assert time.monotonic() - started < 15
    # credentials written into the URL are not printed either
    with_password = f"http://engineer:pa55word-sentinel@127.0.0.1:{free_port()}"
    assert_failed(
        cli(*fetch_args(cache), *store(with_password, "some-bucket")),
        "http://***@127.0.0.1:",
        secrets=("pa55word-sentinel",),
    )
    assert tree(cache) == before


def test_fetch_from_silent_server_is_bounded(proxy, make_plan, tmp_path, monkeypatch):
    from arcface_trt.store import s3 as s3_module

    monkeypatch.setattr(s3_module, "READ_TIMEOUT_S", 0.4)
    monkeypatch.setattr(s3_module, "MAX_ATTEMPTS", 2)
    proxy.silent = True
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    started = time.monotonic()
    assert_failed(
        cli(*fetch_args(cache), *store(proxy.url, "some-bucket")),
        f"cannot reach the S3 endpoint {proxy.url}",
        "no answer within 0.4 s",
    )
    assert time.monotonic() - started < 10
    assert tree(cache) == before


def test_fetch_object_missing_lists_what_the_store_has(moto_server, bucket, make_plan, tmp_path):
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    nothing = assert_failed(
        cli(*fetch_args(cache), *store(moto_server.url, bucket)), f"no engine at s3://{bucket}/{PLAN_KEY}"
    )
    assert f"holds nothing for model '{MODEL}'" in nothing
    for precision, arch, trt in (("fp32", "90", "10.16"), ("fp16", "86", "10.16"), ("fp16", "90", "10.8")):
        pushed = cli(
            "push-engine",
            make_plan(precision=precision, arch=arch, trt_version=trt).plan,
            *store(moto_server.url, bucket),
        )
        assert pushed.exit_code == 0
    assert cli("push-engine", make_plan(model="glintr100").plan, *store(moto_server.url, bucket)).exit_code == 0
    line = assert_failed(
        cli(*fetch_args(cache), *store(moto_server.url, bucket)), "the store has for model 'arcface_r18':"
    )
    for have in ("trt10.16 fp32 sm90", "trt10.16 fp16 sm86", "trt10.8 fp16 sm90"):
        assert have in line
    assert "glintr100" not in line
    assert tree(cache) == before


def test_fetch_manifest_missing(moto_server, bucket, s3, make_plan, tmp_path):
    plan = make_plan()
    s3.put_object(Bucket=bucket, Key=PLAN_KEY, Body=plan.content)
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    assert_failed(cli(*fetch_args(cache), *store(moto_server.url, bucket)), "manifest missing", MANIFEST_KEY)
    assert tree(cache) == before
    listed = cli("list-engines", *store(moto_server.url, bucket))
    caption = " ".join(listed.stdout.split())  # the caption wraps at the terminal width
    assert "incomplete (fetch refuses them; push again): trt10.16 fp16 sm90 (no manifest)" in caption
    (entry,) = json.loads(cli("list-engines", "--json", *store(moto_server.url, bucket)).stdout)["engines"]
    assert entry["has_manifest"] is False and entry["plan_bytes"] == len(plan.content)


def test_fetch_rejects_corrupted_object_and_keeps_the_old_copy(moto_server, bucket, s3, make_plan, tmp_path):
    plan = make_plan()
    assert cli("push-engine", plan.plan, *store(moto_server.url, bucket)).exit_code == 0
    corrupted = bytearray(plan.content)
    corrupted[len(corrupted) // 2] ^= 0xFF  # one byte changed in the bucket, same size
    s3.put_object(Bucket=bucket, Key=PLAN_KEY, Body=bytes(corrupted))
    cache = tmp_path / "cache"
    old = make_plan(seed=9, root=cache)  # an older, valid local copy of the same key
    before = tree(cache)
    assert_failed(cli(*fetch_args(cache), *store(moto_server.url, bucket)), "sha256 mismatch", "not kept")
    assert tree(cache) == before
    assert old.plan.read_bytes() == old.content
    # and into an empty cache: nothing at all is created
    empty = tmp_path / "empty"
    assert_failed(cli(*fetch_args(empty), *store(moto_server.url, bucket)), "sha256 mismatch")
    assert not empty.exists()
    # pushing the good plan again repairs the store without --overwrite (its manifest already names it)
    repaired = cli("push-engine", plan.plan, "--json", *store(moto_server.url, bucket))
    assert repaired.exit_code == 0, repaired.output
    assert json.loads(repaired.stdout)["uploaded"] is True
    assert cli(*fetch_args(empty), *store(moto_server.url, bucket)).exit_code == 0
    assert (empty / "trt10.16" / "arcface_r18-fp16-sm90.plan").read_bytes() == plan.content


def test_fetch_connection_dropped_mid_download_then_retry_succeeds(moto_server, bucket, proxy, make_plan, tmp_path):
    plan = make_plan()
    assert cli("push-engine", plan.plan, *store(moto_server.url, bucket)).exit_code == 0
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    proxy.cuts_left = -1  # every response is cut after 64 KiB
    line = assert_failed(
        cli(*fetch_args(cache), *store(proxy.url, bucket)),
        "connection dropped while downloading",
        "run the command again",
    )
    assert "bytes received" in line
    assert proxy.cuts == 2  # the first try and the in-process retry were both really cut
    assert tree(cache) == before

    proxy.cuts_left = 0
    retried = cli(*fetch_args(cache, "--json"), *store(proxy.url, bucket))
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["attempts"] == 1
    assert (cache / "trt10.16" / "arcface_r18-fp16-sm90.plan").read_bytes() == plan.content

    proxy.cuts_left = 1  # one drop: the in-process retry recovers
    other = tmp_path / "other-cache"
    recovered = cli(*fetch_args(other, "--json"), *store(proxy.url, bucket))
    assert recovered.exit_code == 0, recovered.output
    assert json.loads(recovered.stdout)["attempts"] == 2
    assert (other / "trt10.16" / "arcface_r18-fp16-sm90.plan").read_bytes() == plan.content
    assert proxy.cuts == 3


# -- settings, detection, library API ----------------------------------------------------------------


def test_settings_from_config_file_and_environment(moto_server, bucket, make_plan, tmp_path, monkeypatch):
    plan = make_plan()
    config = write_config(tmp_path / "cfg", engine_s3_bucket=bucket, engine_s3_prefix="team/engines",
                          engine_s3_endpoint_url=moto_server.url)  # fmt: skip
    pushed = cli("push-engine", plan.plan, "--config", config, "--json")
    assert pushed.exit_code == 0, pushed.output
    assert json.loads(pushed.stdout)["plan_uri"] == f"s3://{bucket}/team/engines/trt10.16/arcface_r18-fp16-sm90.plan"
    # endpoint from AWS_ENDPOINT_URL when the config has none; bucket and prefix from options
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    listed = cli("list-engines", "--json", "--bucket", bucket, "--prefix", "team/engines/")
    assert [e["model"] for e in json.loads(listed.stdout)["engines"]] == [MODEL]
    fetched = cli(*fetch_args(tmp_path / "cache"), "--config", config)
    assert fetched.exit_code == 0, fetched.output


def test_store_settings_resolution(monkeypatch):
    from arcface_trt.config import TensorrtSection
    from arcface_trt.errors import StoreError
    from arcface_trt.store.s3 import StoreSettings, normalize_prefix

    assert [normalize_prefix(p) for p in ("engines/", "/engines", "a/b/", "a//b", "", None)] == [
        "engines/",
        "engines/",
        "a/b/",
        "a/b/",
        "",
        "",
    ]
    for bad in ("../../", "a/../b", "./engines", "a/\x00b", "..", "a/\nb"):
        with pytest.raises(StoreError, match="may not hold"):
            normalize_prefix(bad)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env-host:9000")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    from_env = StoreSettings.from_section(TensorrtSection(engine_s3_bucket="s3://bkt/"))
    assert (from_env.bucket, from_env.endpoint_url, from_env.region) == ("bkt", "http://env-host:9000", "eu-west-3")
    explicit = StoreSettings.from_section(
        TensorrtSection(
            engine_s3_bucket="bkt", engine_s3_endpoint_url="https://minio:9000", engine_s3_region="us-west-2"
        )
    )
    assert (explicit.endpoint_url, explicit.region) == ("https://minio:9000", "us-west-2")
    assert explicit.uri("trt10.16/x.plan") == "s3://bkt/engines/trt10.16/x.plan"
    for bad in (
        TensorrtSection(),
        TensorrtSection(engine_s3_bucket="a/b"),
        TensorrtSection(engine_s3_bucket="b", engine_s3_endpoint_url="minio:9000"),
        TensorrtSection(engine_s3_bucket="b", engine_s3_endpoint_url="http://u:pw-sentinel@[::1:5077"),
        TensorrtSection(engine_s3_bucket="b", engine_s3_endpoint_url="http://u:pw-sentinel@host:99999"),
        TensorrtSection(engine_s3_bucket="b", engine_s3_endpoint_url="http:/u:pw-sentinel@host:9000"),
        TensorrtSection(engine_s3_bucket="b", engine_s3_endpoint_url="http://host :9000"),
    ):
        with pytest.raises(StoreError) as refused:
            StoreSettings.from_section(bad)
        assert "pw-sentinel" not in str(refused.value)


def test_fetch_detects_arch_and_trt_version_or_asks_for_them(moto_server, bucket, make_plan, tmp_path, monkeypatch):

    from arcface_trt.engine import gpu, trt_api
    from arcface_trt.errors import BackendUnavailableError

    def no_gpu(index=0):
        raise BackendUnavailableError("no CUDA GPU found")

    def no_trt():
        raise BackendUnavailableError("Python module 'tensorrt' is not importable")

    monkeypatch.setattr(gpu, "gpu_info", no_gpu)
    monkeypatch.setattr(trt_api, "version", no_trt)
    cache = tmp_path / "cache"
    base = ["fetch-engine", "--model", MODEL, "--cache-dir", cache, *store(moto_server.url, bucket)]
    assert_failed(
        cli(*base, "--trt-version", "10.16"), "cannot detect this machine's GPU arch", "no CUDA GPU found", "--arch"
    )
    assert_failed(cli(*base, "--arch", "90"), "cannot detect the TensorRT version", "--trt-version")
    assert not cache.exists()

    plan = make_plan()
    assert cli("push-engine", plan.plan, *store(moto_server.url, bucket)).exit_code == 0
    monkeypatch.setattr(gpu, "gpu_info", lambda index=0: gpu.GpuInfo(0, "NVIDIA H100", 9, 0, 80 << 30, 79 << 30))
    monkeypatch.setattr(trt_api, "version", lambda: "10.16.1.11")
    detected = cli(*base, "--precision", "fp16", "--json")
    assert detected.exit_code == 0, detected.output
    assert json.loads(detected.stdout)["sm_arch"] == "sm90"
    assert (cache / "trt10.16" / "arcface_r18-fp16-sm90.plan").read_bytes() == plan.content


def test_library_entry_points(moto_server, bucket, make_plan, tmp_path):
    from arcface_trt.artifacts.cache import ArtifactCache
    from arcface_trt.config import TensorrtSection
    from arcface_trt.store.engines import fetch, push_plan, store_fetcher

    settings = TensorrtSection(engine_s3_bucket=bucket, engine_s3_endpoint_url=moto_server.url)
    plan = make_plan()
    record = push_plan(settings, plan.plan)
    assert record["uploaded"] is True and record["plan_sha256"] == json.loads(plan.manifest_bytes)["plan_sha256"]
    assert push_plan(settings, plan.plan, overwrite=False)["uploaded"] is False
    cache = ArtifactCache(tmp_path / "cache")
    # The engine build's plan source lists complete plans, and its fetch says where the plan came from.
    source = store_fetcher(settings)
    assert source.available() == [plan.key]
    assert source.fetch(plan.key, cache, {"precision": "fp16"}) == f"s3://{bucket}/engines/{plan.key.relpath}"
    path = cache.path(plan.key)
    assert path.read_bytes() == plan.content
    assert cache.lookup(plan.key, {"sm_arch": "sm90", "precision": "fp16"}).hit
    again = fetch(settings, plan.key, cache, force=True)
    assert again.plan_path == path and again.downloaded


def test_store_and_cli_import_without_boto3():
    code = (
        "import sys, arcface_trt.store, arcface_trt.cli.app; "
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))"
    )
    out = run_python("-c", code, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_as_subprocess(moto_server, bucket, make_plan, tmp_path):
    plan = make_plan()
    flags = store(moto_server.url, bucket)
    pushed = run_cli("push-engine", str(plan.plan), *flags, timeout=60)
    assert pushed.returncode == 0, pushed.stderr
    cache = tmp_path / "cache"
    fetched = run_cli(*fetch_args(cache), *flags, timeout=60)
    assert fetched.returncode == 0, fetched.stderr
    assert f"fetched s3://{bucket}/{PLAN_KEY} -> {cache / 'trt10.16' / 'arcface_r18-fp16-sm90.plan'}" in fetched.stdout
    assert (cache / "trt10.16" / "arcface_r18-fp16-sm90.plan").read_bytes() == plan.content
    before = tree(cache)
    failed = run_cli(*fetch_args(cache, "--precision", "fp32"), *flags, timeout=60)
    assert failed.returncode == 2
    assert failed.stdout == ""
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no engine at") and "fp16 sm90" in lines[0]
    assert "Traceback" not in failed.stderr and SECRET_KEY not in failed.stderr
    assert tree(cache) == before


def test_error_messages_never_carry_credentials():
    """Even a server that echoes the secret back in its error message does not get it printed."""
    from botocore.exceptions import ClientError

    from arcface_trt.store.s3 import S3Store, StoreSettings

    store = S3Store(StoreSettings("bkt", endpoint_url="http://user:pw-sentinel@127.0.0.1:9"))
    echo = {"Error": {"Code": "Teapot", "Message": f"key {ACCESS_KEY} secret {SECRET_KEY}"}}
    message = str(store._error(ClientError(echo, "GetObject"), "download", "s3://bkt/x"))
    assert message.startswith("S3 error Teapot when trying to download s3://bkt/x: key *** secret ***")
    assert SECRET_KEY not in message and ACCESS_KEY not in message
    assert store.settings.endpoint_label == "http://***@127.0.0.1:9"


def test_build_upload_takes_the_store_options(moto_server, bucket, tmp_path, s3, fake_stack_10, tiny_onnx):
    built = tmp_path / "built"
    args = ["build", "--onnx-path", tiny_onnx, "--precision", "fp32", "--cache-dir", built]
    result = cli(*args, "--upload", *store(moto_server.url, bucket), "--prefix", "team/", "--json")
    assert result.exit_code == 0, result.output
    upload = json.loads(result.stdout)["upload"]
    assert upload["uploaded"] is True and upload["plan_uri"].startswith(f"s3://{bucket}/team/trt10.")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {k.rsplit(".", 1)[-1] for k in keys} == {"plan", "json"} and all(k.startswith("team/") for k in keys)
    # a store option without --upload is a mistake, said before building
    lonely = cli(*args, "--bucket", bucket)
    assert lonely.exit_code == 2 and lonely.stderr.strip() == "error: --bucket goes with --upload"


def test_push_engine_of_a_cpu_engine_says_cpu_engines_are_not_shared(moto_server, bucket, tmp_path, tiny_onnx):
    cache = tmp_path / "cache"
    built = cli(
        "build", "--target", "cpu", "--onnx-path", tiny_onnx, "--precision", "fp32", "--cache-dir", cache, "--json"
    )
    assert built.exit_code == 0, built.output
    engine = json.loads(built.stdout)["path"]
    result = cli("push-engine", engine, *store(moto_server.url, bucket))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {engine} is a CPU engine (ONNX Runtime): CPU engines are not shared through the engine store; "
        "build it where it runs with arcface-trt build --target cpu"
    ]
