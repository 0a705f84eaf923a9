"""Engine keys' arch and version forms, typed manifests, and the one local cache of plans and CPU engines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcface_trt.artifacts.cache import ArtifactCache
from arcface_trt.artifacts.key import EngineKey, normalize_arch, same_trt_version, trt_major_minor
from arcface_trt.artifacts.manifest import CpuManifest, Manifest
from arcface_trt.errors import InputError
from arcface_trt.fileio import sha256_file
from tests.support.manifests import plan_manifest, sha256_of


@pytest.mark.parametrize(
    ("given", "arch"), [(90, "sm90"), ("9.0", "sm90"), ("sm89", "sm89"), ("SM_75", "sm75"), ("100", "sm100")]
)
def test_arch_forms(given: object, arch: str) -> None:
    assert normalize_arch(given) == arch  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "ampere", "sm", "9", "sm9000"])
def test_bad_arch(bad: str) -> None:
    with pytest.raises(InputError, match="compute capability"):
        normalize_arch(bad)


def test_versions() -> None:
    assert trt_major_minor("10.16.1.11") == "10.16"
    assert trt_major_minor("11.4") == "11.4"
    with pytest.raises(InputError):
        trt_major_minor("ten")
    assert same_trt_version("10.16.1.11", "10.16")
    assert same_trt_version("10.16.1.11", "10.16.1.11")
    assert not same_trt_version("10.16.1.11", "10.16.0.72")
    assert not same_trt_version("10.16.1.11", "11.4")


def test_key_names() -> None:
    key = EngineKey("w600k_r50", "fp16", "90", "10.16.1.11")
    assert key.relpath == "trt10.16/w600k_r50-fp16-sm90.plan"
    assert key.manifest_relpath == "trt10.16/w600k_r50-fp16-sm90.json"
    with pytest.raises(InputError, match="model name"):
        EngineKey("../evil", "fp16", "90", "10.16")


def _manifest(plan: bytes, **changes: object) -> Manifest:
    fields = {"onnx_sha256": "a" * 64, "plan_sha256": sha256_of(plan), "gpu_name": "NVIDIA H100", **changes}
    return plan_manifest("m", "fp16", "sm90", "10.16.1.11", **fields)


def test_manifest_round_trip_and_required_fields(tmp_path: Path) -> None:
    manifest = _manifest(b"plan")
    path = tmp_path / "m.json"
    path.write_text(manifest.to_json())
    again = Manifest.read(path)
    assert again == manifest
    data = json.loads(path.read_text())
    for required in ("model", "precision", "sm_arch", "trt_version", "onnx_sha256", "plan_sha256", "created_at"):
        assert required in data
    del data["plan_sha256"]
    with pytest.raises(InputError, match="lacks plan_sha256"):
        Manifest.from_dict(data)
    path.write_text("{not json")
    with pytest.raises(InputError, match="not a JSON manifest"):
        Manifest.read(path)


def test_cache_lookup_reuses_only_matching_plans(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    plan = b"serialized engine"
    manifest = _manifest(plan)
    key = manifest.key
    expected = {
        "onnx_sha256": "a" * 64,
        "precision": "fp16",
        "sm_arch": "sm90",
        "trt_version": "10.16.1.11",
        "opt_batch": 32,
    }
    assert cache.lookup(key, expected).reasons == ("no cached plan",)
    path = cache.store(key, plan, manifest)
    assert path == tmp_path / "trt10.16" / "m-fp16-sm90.plan"
    assert sha256_file(path) == manifest.plan_sha256
    assert cache.lookup(key, expected).hit
    stale = cache.lookup(key, {**expected, "onnx_sha256": "b" * 64, "opt_batch": 64})
    assert not stale.hit
    assert any("onnx_sha256" in r for r in stale.reasons) and any(
        "opt_batch: cached 32, wanted 64" in r for r in stale.reasons
    )
    path.write_bytes(b"tampered")
    assert "sha256 does not match" in cache.lookup(key, expected).reasons[0]
    assert [m.model for m in cache.entries()] == ["m"]
    cache.manifest_path(key).unlink()
    assert cache.lookup(key, expected).reasons == ("cached plan has no manifest",)


def test_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    manifest = _manifest(b"x")
    cache.store(manifest.key, b"x", manifest)
    assert sorted(p.name for p in (tmp_path / "trt10.16").iterdir()) == ["m-fp16-sm90.json", "m-fp16-sm90.plan"]


def _cpu_manifest(engine: bytes) -> CpuManifest:
    import hashlib

    return CpuManifest(
        format="arcface-trt-cpu-engine/1",
        model="m",
        precision="int8",
        onnx_sha256="a" * 64,
        ort_version="1.20.0",
        calibration={"samples": 16, "method": "minmax"},
        keep_fp32_nodes=None,
        saved_optimization="extended",
        engine_sha256=hashlib.sha256(engine).hexdigest(),
        engine_bytes=len(engine),
        created_at="2026-12-01T00:00:00+00:00",
        tool_version="0.1.0",
    )


def test_plans_and_cpu_engines_share_one_cache(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    plan_manifest, cpu_manifest = _manifest(b"plan"), _cpu_manifest(b"onnx")
    cache.store(plan_manifest.key, b"plan", plan_manifest)
    cpu_key = cpu_manifest.key
    assert cache.lookup(cpu_key, {}).reasons == ("no cached CPU engine",)
    assert cache.store(cpu_key, b"onnx", cpu_manifest) == tmp_path / "cpu" / "m-int8-cpu.onnx"
    assert cache.lookup(cpu_key, {"precision": "int8", "onnx_sha256": "a" * 64}).hit
    # A mapping field names the sub-keys that differ.
    stale = cache.lookup(cpu_key, {"calibration": {"samples": 17, "method": "minmax"}})
    assert stale.reasons == ("calibration.samples: cached 16, wanted 17",)
    assert [m.key for m in cache.entries("gpu")] == [plan_manifest.key]
    assert [m.key for m in cache.entries("cpu")] == [cpu_key]
    (tmp_path / "cpu" / "m-int8-cpu.onnx").write_bytes(b"other")
    assert cache.lookup(cpu_key, {}).reasons == (
        "cached CPU engine's sha256 does not match its manifest (corrupt or replaced)",
    )
    # A manifest of the wrong kind does not parse as the other kind.
    (tmp_path / "cpu" / "m-int8-cpu.json").write_text(plan_manifest.to_json())
    assert "manifest lacks" in cache.lookup(cpu_key, {}).reasons[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"keep_fp32_nodes": [1, 2]}, "'keep_fp32_nodes' must be list[str] | None, got [1, 2]"),
        ({"calibration": ["samples"]}, "'calibration' must be dict[str, Any] | None"),
        ({"engine_bytes": True}, "'engine_bytes' must be a size in bytes"),
        ({"engine_sha256": "A" * 64}, "'engine_sha256' must be a sha256 hex digest"),
        ({"model": "a/b"}, "malformed manifest (model name 'a/b'"),
        ({"precision_plan": {"a": {"b": {"c": [[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}}}}, "nests deeper than 16 levels"),
        ({"format": "x" * 10_000}, None),  # a long string of the right type is data, not an error
    ],
)
def test_cpu_manifests_are_checked_by_the_same_parser(changes: dict, message: str | None, tmp_path: Path) -> None:
    data = {**_cpu_manifest(b"onnx").to_dict(), **changes}
    if message is None:
        assert CpuManifest.from_dict(data).format == "x" * 10_000
        return
    with pytest.raises(InputError) as refused:
        CpuManifest.from_dict(data, "cpu/m-int8-cpu.json")
    assert str(refused.value).startswith("cpu/m-int8-cpu.json: ") and message in str(refused.value)
    assert len(str(refused.value)) < 300


def test_cache_manifests_are_read_bounded(tmp_path: Path) -> None:
    import os

    cache = ArtifactCache(tmp_path)
    manifest = _manifest(b"plan")
    cache.store(manifest.key, b"plan", manifest)
    path = cache.manifest_path(manifest.key)
    path.write_bytes(b" " * (2 << 20) + manifest.to_json().encode())  # valid JSON, but 2 MiB
    assert "larger than 1,048,576 bytes" in cache.lookup(manifest.key, {}).reasons[0]
    path.unlink()
    os.mkfifo(path)
    assert "is not a regular file" in cache.lookup(manifest.key, {}).reasons[0]  # returns, never blocks
