"""fetch-engine against a real S3 server: the exact plan first, a compatible one when the store has no exact plan.

And the whole trip of a weight-stripped plan: built here (fake TensorRT), pushed, fetched into an empty cache,
refit from the local ONNX by the backend, giving the embeddings of the full engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from arcface_trt.artifacts.key import Variant
from tests.support.cli import invoke as cli
from tests.support.store_cli import assert_failed, store

VC = {"vercompat": True}


def _fetch(cache: Path, arch: str, trt_version: str, *more: str) -> list[object]:
    return ["fetch-engine", "--model", "arcface_r18", "--precision", "fp16", "--arch", arch,
            "--trt-version", trt_version, "--cache-dir", cache, *more]  # fmt: skip


def _push(make_plan, moto_server, bucket, **plan) -> object:
    made = make_plan(**plan)
    pushed = cli("push-engine", made.plan, *store(moto_server.url, bucket))
    assert pushed.exit_code == 0, pushed.output
    return made


def test_the_exact_plan_is_taken_over_a_compatible_one(moto_server, bucket, make_plan, tmp_path):
    portable = _push(make_plan, moto_server, bucket, arch="80+", seed=1)
    exact = _push(make_plan, moto_server, bucket, arch="86", seed=2)
    _push(make_plan, moto_server, bucket, arch="86", trt_version="10.14.1.48", recipe=VC, seed=3)
    result = cli(*_fetch(tmp_path / "c", "86", "10.16", "--json"), *store(moto_server.url, bucket))
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["engine_name"] == "arcface_r18-fp16-sm86.plan" and record["match"] == "exact"
    assert record["match_note"] is None
    assert Path(record["plan_path"]).read_bytes() == exact.content
    assert not (tmp_path / "c" / portable.key.relpath).exists()  # only the taken plan is downloaded


def test_a_compatible_plan_when_no_exact_plan_exists(moto_server, bucket, make_plan, tmp_path):
    portable = _push(make_plan, moto_server, bucket, arch="80+", seed=1)
    older = _push(make_plan, moto_server, bucket, arch="86", trt_version="10.14.1.48", recipe=VC, seed=3)
    _push(make_plan, moto_server, bucket, arch="89", seed=4)  # another GPU's plan never serves an sm86
    human = cli(*_fetch(tmp_path / "c", "86", "10.16"), *store(moto_server.url, bucket))
    assert human.exit_code == 0, human.output
    assert f"fetched s3://{bucket}/engines/{portable.key.relpath}" in human.stdout
    assert (
        "not the exact plan (trt10.16/arcface_r18-fp16-sm86.plan), which the store lacks: took "
        "trt10.16/arcface_r18-fp16-sm80+.plan (hardware-compatible: sm80+ on this sm86)"
    ) in human.stdout
    record = json.loads(cli(*_fetch(tmp_path / "c", "86", "10.16", "--json"), *store(moto_server.url, bucket)).stdout)
    assert record["match"] == "hardware-compatible" and record["downloaded"] is False  # current: kept

    # A T4 (sm75) is not Ampere: no plan of the store serves it, and the error lists what there is.
    none = cli(*_fetch(tmp_path / "t4", "75", "10.16"), *store(moto_server.url, bucket))
    assert_failed(none, "no engine at", "the store has for model 'arcface_r18'", "sm80+")

    # TensorRT 11.4 loads no 10.16 plan but the 10.14 version-compatible one (NVIDIA: 10.x plans on 11.x).
    eleven = json.loads(cli(*_fetch(tmp_path / "e", "86", "11.4", "--json"), *store(moto_server.url, bucket)).stdout)
    assert eleven["engine_name"] == older.key.name and eleven["match"] == "version-compatible"
    assert eleven["version_compatible"] is True
    assert "built by TensorRT 10.14, run by 11.4" in eleven["match_note"]


def test_list_engines_shows_what_each_plan_is(moto_server, bucket, make_plan):
    """The table's plan column: full, stripped or vercompat beside the arch (sm80+ for a hardware-compatible plan)."""
    _push(make_plan, moto_server, bucket, arch="86", seed=1)
    _push(make_plan, moto_server, bucket, arch="80+", recipe={"stripped": True}, seed=2)
    _push(make_plan, moto_server, bucket, arch="90", trt_version="10.14.1.48", recipe=VC, seed=3)
    table = cli("list-engines", *store(moto_server.url, bucket), env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    rows = {line.split("│")[3].strip(): line for line in table.stdout.splitlines() if "arcface_r18" in line}
    assert [cell.strip() for cell in rows["sm86"].split("│")[3:6]] == ["sm86", "10.16", "full"]
    assert [cell.strip() for cell in rows["sm80+"].split("│")[3:6]] == ["sm80+", "10.16", "stripped"]
    assert [cell.strip() for cell in rows["sm90"].split("│")[3:6]] == ["sm90", "10.14", "vercompat"]


def test_a_newer_version_compatible_plan_is_not_taken(moto_server, bucket, make_plan, tmp_path):
    _push(make_plan, moto_server, bucket, arch="90", trt_version="11.4.0.106", recipe=VC)
    result = cli(*_fetch(tmp_path / "c", "90", "10.16"), *store(moto_server.url, bucket))
    line = assert_failed(result, "no engine at", "trt11.4 fp16 vercompat-")
    assert Variant.of(VC).recipe in line


def test_a_plan_whose_manifest_breaks_its_promise_is_passed_over(moto_server, bucket, make_plan, tmp_path):
    """A trt10.16 version-compatible plan built by 10.16.2 ranks first for 10.16.1, but that runtime cannot load it:
    fetch-engine passes it over, unread, and takes the next plan that serves (an earlier builder's)."""
    _push(make_plan, moto_server, bucket, arch="86", trt_version="10.16.2.1", recipe=VC, seed=5)
    older = _push(make_plan, moto_server, bucket, arch="86", trt_version="10.14.1.48", recipe=VC, seed=3)
    result = cli(*_fetch(tmp_path / "c", "86", "10.16.1.11", "--json"), *store(moto_server.url, bucket))
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["engine_name"] == older.key.name and record["match"] == "version-compatible"
    assert Path(record["plan_path"]).read_bytes() == older.content
    assert not list((tmp_path / "c").rglob("trt10.16/*.plan"))  # the refused plan was never downloaded

    # With nothing else under a prefix, the error says why its one candidate was passed over.
    only = [*store(moto_server.url, bucket), "--prefix", "only/"]
    lone = make_plan(arch="86", trt_version="10.16.2.1", recipe=VC, seed=6)
    pushed = cli("push-engine", lone.plan, *only)
    assert pushed.exit_code == 0, pushed.output
    refused = cli(*_fetch(tmp_path / "d", "86", "10.16.1.11"), *only)
    assert_failed(refused, "no engine at", "passed over", "built by TensorRT 10.16.2.1, which 10.16.1.11 cannot run")
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").rglob("*.plan"))


def test_a_stripped_plan_travels_through_the_store(
    moto_server, bucket, fake_stack_10, tiny_onnx, tmp_path, monkeypatch
):
    """Built stripped, pushed, fetched into an empty cache, refit from the local ONNX: the full engine's embeddings."""
    from arcface_trt.backends import get_embedding_backend
    from arcface_trt.config import ArcfaceTensorrtSection, EmbeddingConfig, TensorrtConfig, TensorrtSection
    from arcface_trt.faces import sample_faces

    def settings(cache: Path, **more) -> TensorrtSection:
        return TensorrtSection(
            precision="fp16", min_batch_size=1, opt_batch_size=4, max_batch_size=4, cache_dir=str(cache), **more
        )

    built = cli("build", "--onnx-path", tiny_onnx, "--precision", "fp16", "--opt-batch", "4", "--max-batch", "4",
                "--strip-weights", "--cache-dir", tmp_path / "builder", "--json")  # fmt: skip
    assert built.exit_code == 0, built.output
    record = json.loads(built.stdout)
    assert record["manifest"]["weights"] == "stripped"
    pushed = cli("push-engine", record["plan_path"], *store(moto_server.url, bucket))
    assert pushed.exit_code == 0, pushed.output
    listed = json.loads(cli("list-engines", "--json", *store(moto_server.url, bucket)).stdout)["engines"]
    assert [(e["weights"], e["version_compatible"]) for e in listed] == [("stripped", False)]

    user = tmp_path / "user-cache"
    fetched = cli("fetch-engine", "--model", "tiny", "--precision", "fp16", "--cache-dir", user, "--json",
                  *store(moto_server.url, bucket))  # fmt: skip
    assert fetched.exit_code == 0, fetched.output
    fetched_record = json.loads(fetched.stdout)
    assert fetched_record["weights"] == "stripped" and fetched_record["match"] == "exact"
    assert "weights stripped: refit from the local ONNX" in fetched_record["match_note"]

    crops = sample_faces(6, seed=2)

    def embed(cache: Path, **more) -> tuple[np.ndarray, str]:
        cfg = TensorrtConfig(ArcfaceTensorrtSection(enabled=True), settings(cache, **more))
        embedder = get_embedding_backend("tensorrt", tensorrt_config=cfg, onnx_path=tiny_onnx, config=EmbeddingConfig())
        return embedder.encode(crops), str(embedder.info().engine_path)

    stripped, path = embed(user)  # no bucket configured: the fetched plan, refit here
    assert path == fetched_record["plan_path"]
    full, full_path = embed(tmp_path / "full-cache")
    assert Path(full_path).name == "tiny-fp16-sm90.plan"
    assert np.sum(stripped * full, axis=1).min() >= 0.9999
