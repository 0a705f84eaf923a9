"""CPU engines: cached like TensorRT plans, reused when the manifest matches, rebuilt when not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from arcface_trt.artifacts.cache import ArtifactCache
from arcface_trt.artifacts.key import EngineKey, Variant
from arcface_trt.backends import get_embedding_backend
from arcface_trt.errors import BackendUnavailableError, ConfigError
from arcface_trt.fileio import sha256_file
from arcface_trt.precision.cpu_engine import ensure_cpu_engine, expected_fields
from arcface_trt.precision.int8 import CalibrationSettings
from arcface_trt.precision.plan import PrecisionPlan
from tests.support.embeddings import embed_with_ort


def test_fp32_engine_is_built_then_reused_then_rebuilt(r18_model: Path, tmp_path: Path) -> None:
    first = ensure_cpu_engine(r18_model, "fp32", cache_dir=tmp_path)
    assert first.built and first.rebuild_reasons == ("no cached CPU engine",)
    assert first.path == tmp_path / "cpu" / "arcface_r18-fp32-cpu.onnx"
    assert first.manifest_path == tmp_path / "cpu" / "arcface_r18-fp32-cpu.json"
    manifest = json.loads(first.manifest_path.read_text())
    for key in ("onnx_sha256", "precision", "ort_version", "calibration", "created_at", "tool_version"):
        assert key in manifest
    assert manifest["engine_sha256"] == sha256_file(first.path)
    assert manifest["onnx_sha256"] == sha256_file(r18_model)
    mtime = first.path.stat().st_mtime_ns

    second = ensure_cpu_engine(r18_model, "fp32", cache_dir=tmp_path)
    assert not second.built and second.path.stat().st_mtime_ns == mtime

    # A stale ONNX Runtime version in the manifest means a rebuild, and says so.
    manifest["ort_version"] = "0.0.1"
    first.manifest_path.write_text(json.dumps(manifest))
    third = ensure_cpu_engine(r18_model, "fp32", cache_dir=tmp_path)
    assert third.built and any(r.startswith("ort_version: cached '0.0.1'") for r in third.rebuild_reasons)

    # A corrupted engine file is detected by its sha256.
    with open(first.path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff\xfe\xfd")
    fourth = ensure_cpu_engine(r18_model, "fp32", cache_dir=tmp_path)
    assert fourth.built and "sha256" in fourth.rebuild_reasons[0]
    assert not [p for p in (tmp_path / "cpu").iterdir() if p.name.endswith(".tmp")]


def test_int8_engine_reuse_and_calibration_mismatch(r18_model: Path, r18_int8_engine) -> None:
    assert r18_int8_engine.manifest.calibration["samples"] == 16
    assert r18_int8_engine.manifest.calibration["reduce_range"] in (True, False)  # resolved, not None
    # No calibration asked for: any cached calibration serves (a backend reuses what build made).
    again = ensure_cpu_engine(r18_model, "int8")
    assert not again.built and again.path == r18_int8_engine.path
    same = ensure_cpu_engine(r18_model, "int8", calibration=CalibrationSettings(samples=16))
    assert not same.built
    # Other settings do not match, and the reason names the setting.
    info_sha = r18_int8_engine.manifest.onnx_sha256
    plan = PrecisionPlan.for_target("int8", "cpu")
    wanted = expected_fields(info_sha, plan, CalibrationSettings(samples=17, method="percentile"))
    cache = ArtifactCache(r18_int8_engine.path.parents[1])
    assert cache.lookup(r18_int8_engine.manifest.key, wanted).reasons == (
        "calibration.method: cached 'minmax', wanted 'percentile'",
        "calibration.samples: cached 16, wanted 17",
    )
    # The ORT-optimised engine has its QDQ pairs fused into integer convolutions.
    ops = {node.op_type for node in onnx.load(str(r18_int8_engine.path)).graph.node}
    assert "QLinearConv" in ops and "Conv" not in ops


def test_onnxruntime_backend_runs_the_int8_engine(r18_model: Path, r18_int8_engine, faces: np.ndarray) -> None:
    embedder = get_embedding_backend("onnxruntime", onnx_path=r18_model, precision="int8", batch_size=8)
    info = embedder.info()
    assert info.precision == "int8"
    assert info.engine_path == str(r18_int8_engine.path)
    assert info.model_path == str(r18_model)
    assert info.providers == ["CPUExecutionProvider"]
    out = embedder.encode(faces)
    assert out.shape == (len(faces), 512)
    cosine = np.sum(out * embed_with_ort(r18_model, faces), axis=1)
    assert 0.99 <= cosine.mean() < 0.99999
    plain = get_embedding_backend("onnxruntime", onnx_path=r18_model).info()
    assert plain.precision == "fp32" and plain.engine_path is None


def test_precision_is_checked(r18_model: Path) -> None:
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        get_embedding_backend("onnxruntime", onnx_path=r18_model, precision="int4")
    with pytest.raises(ConfigError, match="insightface backend takes none"):
        get_embedding_backend("insightface", onnx_path=r18_model, precision="int8")
    with pytest.raises(BackendUnavailableError, match="runs on the CPU only"):
        get_embedding_backend(
            "onnxruntime", device="cuda", onnx_path=r18_model, precision="int8", allow_cpu_fallback=False
        )


def test_engine_paths_layout(tmp_path: Path) -> None:
    cache, key = ArtifactCache(tmp_path), EngineKey.cpu("w600k_r50", "fp16")
    assert cache.path(key) == tmp_path / "cpu" / "w600k_r50-fp16-cpu.onnx"
    assert cache.manifest_path(key) == tmp_path / "cpu" / "w600k_r50-fp16-cpu.json"


def test_kept_fp32_nodes_make_a_variant_beside_the_default(r18_model: Path, tmp_path: Path) -> None:
    default = ensure_cpu_engine(r18_model, "fp16", cache_dir=tmp_path)
    kept = ensure_cpu_engine(r18_model, "fp16", keep_fp32_nodes=[], cache_dir=tmp_path)
    variant = Variant.of({"keep": []})
    assert kept.path == tmp_path / "cpu" / f"arcface_r18-fp16-keep-{variant.recipe}-cpu.onnx"
    assert kept.manifest.recipe == {"keep": []} and kept.manifest.keep_fp32_nodes == []
    assert default.path.exists() and default.manifest.keep_fp32_nodes is None  # both stay cached
    assert not ensure_cpu_engine(r18_model, "fp16", cache_dir=tmp_path).built


def test_a_cached_engine_is_served_without_the_lock(tiny_onnx: Path, tmp_path: Path, monkeypatch) -> None:
    """A read-only cache still serves a valid engine: only a build takes the key's lock."""
    built = ensure_cpu_engine(tiny_onnx, "fp32", cache_dir=tmp_path)

    def no_lock(self, key):
        raise PermissionError(13, "Read-only file system", str(self.root / key.folder / f".{key.name}.lock"))

    monkeypatch.setattr(ArtifactCache, "lock", no_lock)
    hit = ensure_cpu_engine(tiny_onnx, "fp32", cache_dir=tmp_path)
    assert not hit.built and hit.path == built.path
    with pytest.raises(PermissionError):  # a build would need the lock
        ensure_cpu_engine(tiny_onnx, "fp32", cache_dir=tmp_path, force=True)
