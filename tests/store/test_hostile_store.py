"""The engine store as an attacker or a faulty peer fills it, against the real moto S3 server.

The store is shared, so its objects are input from other people: oversized and malformed
manifests, plans whose size differs from their manifest, keys made of markup, escape
sequences and paths, and endpoints carrying ``user:password@``. Each must end in one
``error:`` line with exit 2 (or a correct result), no traceback, no secret in any output or
file, bounded memory, and a cache folder that is unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from tests.support.cli import invoke as cli
from tests.support.cli import run_cli_measured
from tests.support.manifests import plan_manifest, sha256_of
from tests.support.s3_server import free_port, tree
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

#: Peak resident memory a command may reach on hostile input (the acceptance bound).
MAX_RSS_MB = 300
PASSWORD = "pa55wordX-sentinel"


def _put(s3, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _manifest_json(**changes: object) -> dict:
    """A valid manifest of the test plan key, as JSON data, with ``changes`` applied (None deletes nothing)."""
    data = plan_manifest(MODEL, "fp16", "sm90", "10.16.1.11", plan_sha256="1" * 64, plan_bytes=300_000).to_dict()
    data.update(changes)
    return data


# -- credentials in endpoint URLs ----------------------------------------------------------------------

ENDPOINTS = {
    "underscore host (botocore refuses)": f"http://user:{PASSWORD}@bad_host:5077",
    "port out of range": f"http://user:{PASSWORD}@127.0.0.1:99999",
    "no scheme": f"user:{PASSWORD}@127.0.0.1:5077",
    "one slash": f"http:/user:{PASSWORD}@127.0.0.1:5077",
    "unclosed IPv6 bracket": f"http://u:{PASSWORD}@[::1:5077",
    "refused port": "refused",
}


def _no_secret_anywhere(result, *folders: Path) -> None:
    assert PASSWORD not in result.stdout and PASSWORD not in result.stderr
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else ():
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("form", list(ENDPOINTS))
def test_endpoint_credentials_never_leak_from_any_store_command(
    form, make_plan, tmp_path, monkeypatch, fake_stack_10, tiny_onnx
):
    """Every URL form, from the option, the config file and $AWS_ENDPOINT_URL, through every store command."""
    from arcface_trt.store import s3 as s3_module

    monkeypatch.setattr(s3_module, "MAX_ATTEMPTS", 1)  # a refused port fails at once
    endpoint = ENDPOINTS[form]
    if endpoint == "refused":
        endpoint = f"http://user:{PASSWORD}@127.0.0.1:{free_port()}"
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    flags = ["--bucket", "bkt", "--endpoint-url", endpoint]
    config = write_config(tmp_path / "cfg", engine_s3_bucket="bkt", engine_s3_endpoint_url=endpoint)
    built = tmp_path / "built"
    commands = {
        "fetch-engine": [*fetch_args(cache), *flags],
        "push-engine": ["push-engine", make_plan().plan, *flags],
        "list-engines": ["list-engines", *flags],
        "build --upload (config)": ["build", "--onnx-path", tiny_onnx, "--precision", "fp32", "--cache-dir", built,
                                    "--upload", "--config", config],
        "fetch-engine (config)": [*fetch_args(cache), "--config", config],
        "list-engines (config)": ["list-engines", "--config", config],
    }  # fmt: skip
    for name, args in commands.items():
        for debug in ((), ("--debug",)):
            result = cli(*debug, *args)
            assert result.exit_code == 2, (name, debug, result.output)
            _no_secret_anywhere(result, cache, built)
            if debug:
                assert "Traceback" in result.stderr, (name, result.stderr)
            else:
                assert_failed(result, secrets=(PASSWORD,))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for args in ([*fetch_args(cache), "--bucket", "bkt"], ["list-engines", "--bucket", "bkt"]):
        assert_failed(cli(*args), secrets=(PASSWORD,))
    assert tree(cache) == before


def test_a_working_endpoint_with_credentials_in_it_prints_none(moto_server, bucket, make_plan, tmp_path):
    """Even when the server answers, no output (table, JSON, files) carries the URL's password."""
    endpoint = moto_server.url.replace("http://", f"http://user:{PASSWORD}@")
    flags = ["--bucket", bucket, "--endpoint-url", endpoint]
    cache = tmp_path / "cache"
    for args in (
        ["push-engine", make_plan().plan, "--json", *flags],
        [*fetch_args(cache, "--json"), *flags],
        ["list-engines", "--json", *flags],
        ["list-engines", *flags],
    ):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        _no_secret_anywhere(result, cache)
    missing = cli("list-engines", "--bucket", "no-such-bucket", "--endpoint-url", endpoint)  # names the endpoint
    line = assert_failed(missing, "does not exist at http://***@127.0.0.1:", secrets=(PASSWORD,))
    assert PASSWORD not in line


# -- manifests: size, types, nesting ---------------------------------------------------------------------


def test_oversized_manifest_is_refused_before_it_is_read(moto_server, bucket, s3, make_plan, tmp_path):
    plan = make_plan()
    assert cli("push-engine", plan.plan, *store(moto_server.url, bucket)).exit_code == 0
    huge = b'{"model": "' + b"x" * (64 << 20) + b'"}'  # 64 MiB
    _put(s3, bucket, MANIFEST_KEY, huge)
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    result, peak_mb = run_cli_measured(*fetch_args(cache), *store(moto_server.url, bucket), timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is larger than 1,048,576 bytes" in lines[0] and "not read" in lines[0], lines
    assert peak_mb < MAX_RSS_MB, peak_mb
    assert tree(cache) == before
    # push-engine treats it as an unreadable manifest: replaced only with --overwrite
    assert_failed(cli("push-engine", plan.plan, *store(moto_server.url, bucket)), "cannot be read", "--overwrite")
    assert cli("push-engine", plan.plan, "--overwrite", *store(moto_server.url, bucket)).exit_code == 0
    assert s3.get_object(Bucket=bucket, Key=MANIFEST_KEY)["Body"].read() == plan.manifest_bytes


MALFORMED = {
    "model is a number": (json.dumps(_manifest_json(model=5)).encode(), "'model' must be str, got 5"),
    "plan_sha256 is null": (json.dumps(_manifest_json(plan_sha256=None)).encode(), "'plan_sha256' must be a sha256"),
    "plan_sha256 is not hex": (json.dumps(_manifest_json(plan_sha256="zz")).encode(), "must be a sha256 hex digest"),
    "batch is a string": (json.dumps(_manifest_json(max_batch="32")).encode(), "'max_batch' must be int"),
    "negative size": (json.dumps(_manifest_json(plan_bytes=-1)).encode(), "'plan_bytes' must be a size"),
    "100k-deep nesting": (
        json.dumps(_manifest_json(extra="NEST")).replace('"NEST"', "[" * 100_000 + "]" * 100_000).encode(),
        "nests deeper than 16 levels",
    ),
    "20-deep nesting": (
        json.dumps(_manifest_json(extra="NEST")).replace('"NEST"', "[" * 20 + "]" * 20).encode(),
        "nests deeper than 16 levels",
    ),
    "traversal model name": (json.dumps(_manifest_json(model="../../evil")).encode(), "model name '../../evil'"),
    "newline in model name": (json.dumps(_manifest_json(model="ok\n")).encode(), "model name 'ok\\n'"),
    "not JSON": (b"\xff\xfe not json", "not a JSON manifest"),
    "a JSON list": (b"[1, 2]", "a manifest is a JSON object"),
    "recipe is a list": (json.dumps(_manifest_json(recipe=[1])).encode(), "'recipe' must be dict"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_store_manifest_is_one_line_everywhere(case, moto_server, bucket, s3, make_plan, tmp_path):
    raw, expected = MALFORMED[case]
    plan = make_plan()
    assert cli("push-engine", plan.plan, *store(moto_server.url, bucket)).exit_code == 0
    _put(s3, bucket, MANIFEST_KEY, raw)
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    line = assert_failed(cli(*fetch_args(cache), *store(moto_server.url, bucket)), expected)
    assert f"s3://{bucket}/{MANIFEST_KEY}" in line
    assert tree(cache) == before
    # push-engine: an unreadable manifest is replaced like a different one (never a TypeError/RecursionError)
    assert_failed(cli("push-engine", plan.plan, *store(moto_server.url, bucket)), "cannot be read", "--overwrite")
    assert cli("push-engine", plan.plan, "--overwrite", *store(moto_server.url, bucket)).exit_code == 0
    assert cli(*fetch_args(cache), *store(moto_server.url, bucket)).exit_code == 0


def test_tensorrt_backend_builds_when_the_store_manifest_is_malformed(
    moto_server, bucket, s3, fake_stack_10, tiny_onnx, tmp_path, caplog
):
    """The backend's fetch-then-build path: a store-side fault is "fetch failed, build instead", not a crash."""
    from arcface_trt.config import TensorrtSection
    from arcface_trt.engine.build import BuildRequest, build_engine
    from arcface_trt.store.engines import store_fetcher

    settings = TensorrtSection(
        precision="fp32", min_batch_size=1, opt_batch_size=4, max_batch_size=4, cache_dir=str(tmp_path / "engines"),
        engine_s3_bucket=bucket, engine_s3_endpoint_url=moto_server.url,
    )  # fmt: skip
    key = "engines/trt10.16/tiny-fp32-sm90.json"
    for raw in (MALFORMED["model is a number"][0], MALFORMED["100k-deep nesting"][0], b"x" * (2 << 20)):
        _put(s3, bucket, key, raw)
        _put(s3, bucket, key.replace(".json", ".plan"), b"not a plan")
        request = BuildRequest(onnx_path=tiny_onnx, settings=settings, force=False)
        with caplog.at_level(logging.WARNING, logger="arcface_trt"):
            result = build_engine(request, fetcher=store_fetcher(settings))
        assert result.source == "built"
        assert "could not fetch trt10.16/tiny-fp32-sm90.plan from the engine store" in caplog.text
        result.plan_path.unlink()  # the next round must ask the store again
        caplog.clear()


# -- plans: size compared with the manifest ----------------------------------------------------------------


def _stage(s3, bucket: str, content: bytes, plan_bytes: int) -> None:
    """A plan object and a manifest that names its sha256 but claims ``plan_bytes``."""
    manifest = plan_manifest(MODEL, "fp16", "sm90", "10.16.1.11", plan_sha256=sha256_of(content), plan_bytes=plan_bytes)
    _put(s3, bucket, PLAN_KEY, content)
    _put(s3, bucket, MANIFEST_KEY, manifest.to_json().encode())


def test_plan_larger_than_its_manifest_is_not_downloaded(moto_server, bucket, s3, make_plan, tmp_path):
    content = os.urandom(64 << 20)  # 64 MiB against a manifest saying 10 bytes
    _stage(s3, bucket, content, plan_bytes=10)
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    result, peak_mb = run_cli_measured(*fetch_args(cache), *store(moto_server.url, bucket), timeout=120)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"size mismatch: s3://{bucket}/{PLAN_KEY} is 67,108,864 bytes but its manifest says 10" in line
    assert peak_mb < MAX_RSS_MB, peak_mb
    assert tree(cache) == before
    # shorter than the manifest says: refused the same way
    _stage(s3, bucket, content[:1000], plan_bytes=2000)
    assert_failed(
        cli(*fetch_args(cache), *store(moto_server.url, bucket)), "is 1,000 bytes but its manifest says 2,000"
    )
    assert tree(cache) == before


def _patch_get_object(monkeypatch, wrap) -> None:
    """Every store's ``client.get_object`` becomes ``wrap(the real one)`` (a server misbehaving on GET)."""
    from arcface_trt.store import s3 as s3_module

    real = s3_module.S3Store.__init__

    def patched(self, settings):
        real(self, settings)
        self.client.get_object = wrap(self.client.get_object)

    monkeypatch.setattr(s3_module.S3Store, "__init__", patched)


def test_plan_streaming_past_its_manifest_size_is_cut_off(moto_server, bucket, s3, make_plan, tmp_path, monkeypatch):
    """A server that sends no Content-Length: the body is cut where the manifest's size ends."""
    content = os.urandom(3 << 20)
    _stage(s3, bucket, content, plan_bytes=10)

    def without_length(get_object):
        def get(**kwargs):
            response = get_object(**kwargs)
            response.pop("ContentLength", None)
            return response

        return get

    _patch_get_object(monkeypatch, without_length)
    cache = seeded_cache(tmp_path, make_plan)
    before = tree(cache)
    assert_failed(cli(*fetch_args(cache), *store(moto_server.url, bucket)), "sent more than 10 bytes", "not kept")
    assert tree(cache) == before


# -- names: markup, escapes, paths ----------------------------------------------------------------------

HOSTILE_KEYS = (
    "engines/trt10.16/[/bad]-fp16-sm90.plan",
    "engines/trt10.16/[link=http://x]click[/link]-fp16-sm90.plan",
    "engines/trt10.16/a\x1b[31mred-fp16-sm90.plan",
    "engines/trt10.16/../../evil-fp16-sm90.plan",
    "engines/trt10.16/a/b/c-fp16-sm90.plan",
    "engines/trt10.16/.hidden-fp16-sm90.plan",
    "engines/trt10.16/ok-fp16-keepALL-deadbeef-sm90.plan",
)  # keys with a newline (which moto cannot store) are refused by EngineKey.parse: tests/artifacts/test_key.py


def test_listing_shows_only_valid_names_as_text(moto_server, bucket, s3, make_plan):
    assert cli("push-engine", make_plan().plan, *store(moto_server.url, bucket)).exit_code == 0
    for key in HOSTILE_KEYS:
        _put(s3, bucket, key, b"x")
    table = cli("list-engines", *store(moto_server.url, bucket), env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert MODEL in table.stdout and "\x1b" not in table.stdout
    for name in ("bad", "click", "red", "evil", "c-fp16", "hidden", "keepALL"):
        assert name not in table.stdout, name
    listed = cli("list-engines", "--json", *store(moto_server.url, bucket))
    assert [e["model"] for e in json.loads(listed.stdout)["engines"]] == [MODEL]


def test_markup_in_a_prefix_is_shown_literally(moto_server, bucket, make_plan):
    for prefix in ("[/bad]", "[link=x]click[/link]", "[bold]team"):
        flags = [*store(moto_server.url, bucket), "--prefix", prefix]
        assert cli("push-engine", make_plan().plan, *flags).exit_code == 0
        table = cli("list-engines", *flags, env={"COLUMNS": "200"})
        assert table.exit_code == 0, table.output
        assert f"Engines in s3://{bucket}/{prefix}/" in table.stdout, table.stdout


@pytest.mark.parametrize("prefix", ["../../", "engines/../other", "./engines", "a/\x1b[31m/b"])
def test_prefix_with_dot_segments_or_controls_is_refused(prefix, moto_server, bucket, make_plan, tmp_path):
    flags = [*store(moto_server.url, bucket), "--prefix", prefix]
    assert_failed(cli("list-engines", *flags), "may not hold '.' or '..' segments")
    assert_failed(cli("push-engine", make_plan().plan, *flags), "may not hold '.' or '..' segments")
    assert_failed(cli(*fetch_args(tmp_path / "c"), *flags), "may not hold '.' or '..' segments")


@pytest.mark.parametrize("model", ["../../evil", "a/b/c", "ok\n", "[/bad]", ".hidden", "a\x1b[31m"])
def test_model_names_from_the_command_line_pass_the_key_rule(model, moto_server, bucket, tmp_path):
    line = assert_failed(cli("list-engines", "--model", model, *store(moto_server.url, bucket)), "model name")
    assert "\x1b" not in line
    fetch = ["fetch-engine", "--model", model, "--precision", "fp16", "--arch", "90", "--trt-version", "10.16"]
    assert_failed(cli(*fetch, "--cache-dir", tmp_path / "c", *store(moto_server.url, bucket)), "model name")
    assert not (tmp_path / "c").exists()


def test_server_error_text_cannot_drive_the_terminal(moto_server, bucket, tmp_path, monkeypatch):
    """An S3 error message is the server's text: printed with its control characters written out."""
    from botocore.exceptions import ClientError

    def hostile(get_object):
        def get(**kwargs):
            body = {"Error": {"Code": "Teapot", "Message": "\x1b]8;;http://x\x1b\\click\x1b]8;;\x1b\\ \x1b[2J"}}
            raise ClientError(body, "GetObject")

        return get

    _patch_get_object(monkeypatch, hostile)
    line = assert_failed(cli(*fetch_args(tmp_path / "c"), *store(moto_server.url, bucket)))
    assert "\x1b" not in line and "\\x1b]8;;http://x" in line


# -- temporary files and locks in the cache ------------------------------------------------------------


def test_fetch_removes_stale_temporaries_and_only_those(moto_server, bucket, make_plan, tmp_path):
    plan = make_plan()
    assert cli("push-engine", plan.plan, *store(moto_server.url, bucket)).exit_code == 0
    folder = tmp_path / "cache" / "trt10.16"
    folder.mkdir(parents=True)
    stale = folder / ".arcface_r18-fp16-sm90.plan.k3x9_q2a.tmp"  # a killed fetch's temporary file
    fresh = folder / ".arcface_r18-fp16-sm90.plan.b7y2m0zp.tmp"  # another fetch writing right now
    foreign = [folder / "notes.tmp", folder / "x.plan.tmp", folder / ".other.abcdefgh.tmp.keep"]
    hour_ago = time.time() - 2 * 3600
    for path in (stale, fresh, *foreign):
        path.write_bytes(b"partial")
        if path != fresh:
            os.utime(path, (hour_ago, hour_ago))
    fetched = cli(*fetch_args(tmp_path / "cache"), *store(moto_server.url, bucket))
    assert fetched.exit_code == 0, fetched.output
    assert not stale.exists() and fresh.exists() and all(p.exists() for p in foreign)


def test_a_symlinked_lock_file_is_refused_not_followed(moto_server, bucket, make_plan, tmp_path):
    plan = make_plan()
    assert cli("push-engine", plan.plan, *store(moto_server.url, bucket)).exit_code == 0
    folder = tmp_path / "cache" / "trt10.16"
    folder.mkdir(parents=True)
    target = tmp_path / "elsewhere" / "created-by-the-lock"
    target.parent.mkdir()
    (folder / ".arcface_r18-fp16-sm90.plan.lock").symlink_to(target)
    assert_failed(cli(*fetch_args(tmp_path / "cache"), *store(moto_server.url, bucket)), "is a symbolic link")
    assert not target.exists()
    assert not (folder / "arcface_r18-fp16-sm90.plan").exists()
