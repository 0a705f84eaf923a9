"""Engine key, manifest and the local engine cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arcface_trt.engine.cache import EngineCache
from arcface_trt.engine.key import EngineKey, Manifest, normalize_arch, same_trt_version, trt_major_minor
from arcface_trt.errors import InputError
from arcface_trt.fileio import sha256_file


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
    assert key.plan_relpath == "trt10.16/w600k_r50-fp16-sm90.plan"
    assert key.manifest_relpath == "trt10.16/w600k_r50-fp16-sm90.json"
    with pytest.raises(InputError, match="model name"):
        EngineKey("../evil", "fp16", "90", "10.16")


def _manifest(plan: bytes, **changes: object) -> Manifest:
    import hashlib

    fields = {
        "model": "m",
        "precision": "fp16",
        "sm_arch": "sm90",
        "trt_version": "10.16.1.11",
        "onnx_sha256": "a" * 64,
        "plan_sha256": hashlib.sha256(plan).hexdigest(),
        "min_batch": 1,
        "opt_batch": 32,
        "max_batch": 32,
        "workspace_mb": 1024,
        "hardware_compatibility": "none",
        "gpu_name": "NVIDIA H100",
        "tool_version": "0.1.0",
    }
    fields.update(changes)
    return Manifest(**fields)  # type: ignore[arg-type]


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
    with pytest.raises(InputError, match="cannot read manifest"):
        Manifest.read(path)


def test_cache_lookup_reuses_only_matching_plans(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
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
    assert any("onnx_sha256" in r for r in stale.reasons) and any("opt_batch 32 != 64" in r for r in stale.reasons)
    path.write_bytes(b"tampered")
    assert "sha256 does not match" in cache.lookup(key, expected).reasons[0]
    assert [m.model for m in cache.entries()] == ["m"]
    cache.manifest_path(key).unlink()
    assert cache.lookup(key, expected).reasons == ("cached plan has no manifest",)


def test_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    manifest = _manifest(b"x")
    cache.store(manifest.key, b"x", manifest)
    assert sorted(p.name for p in (tmp_path / "trt10.16").iterdir()) == ["m-fp16-sm90.json", "m-fp16-sm90.plan"]
