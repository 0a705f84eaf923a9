"""Config files: shipped YAML equals the documented defaults; bad keys, types and ranges are named errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from arcface_trt.config import (
    DRIFT_KEYS,
    EmbeddingConfig,
    TensorrtConfig,
    TensorrtSection,
    Tolerance,
    ValidationSection,
    load_config,
    load_tensorrt_config,
    with_overrides,
)
from arcface_trt.errors import ConfigError
from arcface_trt.names import PRECISIONS
from tests.support.paths import REPO

EMBEDDING_YAML = REPO / "config/pipeline/embedding.yaml"
TENSORRT_YAML = REPO / "config/pipeline/arcface_tensorrt.yaml"


def _as_yaml_dict(obj: object) -> dict:
    """The config as the shipped file must hold it: every key but the deprecated ones."""
    data = dataclasses.asdict(obj)
    data.pop("source", None)
    data.pop("tensorrt", None) if isinstance(obj, EmbeddingConfig) else None
    for section in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, section.name)
        if dataclasses.is_dataclass(value) and section.name in data:
            for item in dataclasses.fields(value):
                if "deprecated" in item.metadata:
                    data[section.name].pop(item.name)
    return data


def test_shipped_files_hold_every_key_with_the_documented_defaults() -> None:
    assert yaml.safe_load(EMBEDDING_YAML.read_text()) == _as_yaml_dict(EmbeddingConfig())
    assert yaml.safe_load(TENSORRT_YAML.read_text()) == _as_yaml_dict(TensorrtConfig())


def test_issue_defaults() -> None:
    cfg = load_config(EMBEDDING_YAML)
    assert cfg.embedding.backend == "pytorch"
    assert cfg.embedding.tensorrt_config == "arcface_tensorrt.yaml"  # beside embedding.yaml
    assert Path(cfg.tensorrt.source).resolve() == TENSORRT_YAML.resolve()
    v = cfg.validation
    assert (v.max_drift_cosine, v.max_drift_cosine_fp16, v.max_drift_cosine_int8) == (0.001, 0.002, 0.02)
    assert cfg.tensorrt.arcface_tensorrt.enabled is None
    t = cfg.tensorrt.tensorrt
    assert (t.precision, t.min_batch_size, t.opt_batch_size, t.max_batch_size) == ("fp16", 1, 32, 32)
    assert t.workspace_size_mb == 1024
    assert t.engine_s3_bucket is None
    assert t.min_fp16_share == 0.8  # the mislabel gate of fp16 builds


def test_config_is_frozen() -> None:
    cfg = load_config(EMBEDDING_YAML)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.embedding.backend = "onnxruntime"  # type: ignore[misc]


def _write(tmp_path: Path, embedding: str, tensorrt: str | None = None) -> Path:
    trt = tmp_path / "trt.yaml"
    trt.write_text(tensorrt if tensorrt is not None else "tensorrt:\n  precision: fp32\n")
    path = tmp_path / "embedding.yaml"
    path.write_text(f"embedding:\n  tensorrt_config: {trt}\n" + embedding)
    return path


@pytest.mark.parametrize(
    ("embedding", "tensorrt", "message"),
    [
        ("  colour: red\n", None, "unknown key 'embedding.colour'"),
        ("validation:\n  max_drift_cosine: high\n", None, "'validation.max_drift_cosine' must be float"),
        ("validation:\n  max_drift_cosine: -1\n", None, "'validation.max_drift_cosine' must be >= 0.0"),
        ("  batch_size: 0\n", None, "'embedding.batch_size' must be >= 1"),
        ("  allow_cpu_fallback: 'yes'\n", None, "'embedding.allow_cpu_fallback' must be bool"),
        ("  backend: tensorflow\n", None, "'embedding.backend' must be one of"),
        ("extra:\n  a: 1\n", None, "unknown key 'extra'"),
        ("", "tensorrt:\n  precision: fp8\n", "'tensorrt.precision' must be one of fp32, fp16, int8"),
        (
            "",
            "tensorrt:\n  max_batch_size: 16\n  opt_batch_size: 32\n",
            "min_batch_size <= opt_batch_size <= max_batch_size",
        ),
        ("", "tensorrt:\n  workspace_mb: 10\n", "unknown key 'tensorrt.workspace_mb'"),
        ("", "tensorrt:\n  min_fp16_share: 80\n", "'tensorrt.min_fp16_share' must be <= 1.0"),
        ("", "arcface_tensorrt:\n  enabled: 1\n", "'arcface_tensorrt.enabled' must be bool | None"),
        ("validation:\n  max_drift_cosine_int8: 3\n", None, "'validation.max_drift_cosine_int8' must be <= 2.0"),
        ("validation:\n  max_drift_cosine_fp8: 0.1\n", None, "unknown key 'validation.max_drift_cosine_fp8'"),
        ("precision:\n  keep_fp32_nodes: fc\n", None, "'precision.keep_fp32_nodes' must be tuple"),
        ("precision:\n  fp16: true\n", None, "unknown key 'precision.fp16'"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, embedding: str, tensorrt: str | None, message: str) -> None:
    path = _write(tmp_path, embedding, tensorrt)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("embedding: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_an_embedding_config_without_tensorrt_config_needs_no_tensorrt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "embedding.yaml"
    path.write_text("embedding:\n  batch_size: 8\n")
    assert load_config(path).tensorrt == TensorrtConfig()  # the default name, absent: TensorRT defaults
    (tmp_path / "arcface_tensorrt.yaml").write_text("tensorrt:\n  precision: fp32\n")
    assert load_config(path).tensorrt.tensorrt.precision == "fp32"  # present beside it: read
    path.write_text("embedding:\n  tensorrt_config: arcface_tensorrt.yaml\n")
    (tmp_path / "arcface_tensorrt.yaml").unlink()
    with pytest.raises(ConfigError, match="does not exist"):  # written in the file: must exist
        load_config(path)


def test_tensorrt_config_path_must_exist_and_the_error_names_every_place_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cfg" / "embedding.yaml"
    path.parent.mkdir()
    path.write_text("embedding:\n  tensorrt_config: nowhere/arcface_tensorrt.yaml\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "'embedding.tensorrt_config'" in message and "does not exist" in message
    assert f"tried {tmp_path}/nowhere/arcface_tensorrt.yaml, {tmp_path}/cfg/nowhere/arcface_tensorrt.yaml" in message
    monkeypatch.chdir(path.parent)  # one place, named once
    with pytest.raises(ConfigError, match=rf"\(tried {tmp_path}/cfg/nowhere/arcface_tensorrt.yaml\)$"):
        load_config("embedding.yaml")


def test_relative_config_paths_resolve_from_the_working_folder_then_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project" / "cfg"
    folder.mkdir(parents=True)
    (folder / "trt.yaml").write_text("tensorrt:\n  precision: int8\n")
    (folder / "model.onnx").write_bytes(b"beside the config")
    path = folder / "embedding.yaml"
    path.write_text("embedding:\n  tensorrt_config: trt.yaml\n  model_path: model.onnx\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(path)  # found beside the config, from any working folder
    assert cfg.tensorrt.tensorrt.precision == "int8" and Path(cfg.tensorrt.source) == folder / "trt.yaml"
    assert Path(cfg.embedding.model_path) == folder / "model.onnx"
    # The working folder comes first.
    (elsewhere / "trt.yaml").write_text("tensorrt:\n  precision: fp32\n")
    (elsewhere / "model.onnx").write_bytes(b"in the working folder")
    cfg = load_config(path)
    assert cfg.tensorrt.tensorrt.precision == "fp32" and cfg.embedding.model_path == "model.onnx"
    # A model found nowhere stays as written (commands that only name engines need no file).
    path.write_text("embedding:\n  tensorrt_config: trt.yaml\n  model_path: absent.onnx\n")
    assert load_config(path).embedding.model_path == "absent.onnx"


def test_the_shipped_config_works_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(EMBEDDING_YAML)
    assert Path(cfg.tensorrt.source) == TENSORRT_YAML


def test_a_config_naming_tensorrt_while_disabling_it_is_an_error_naming_both_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "  backend: tensorrt\n", "arcface_tensorrt:\n  enabled: false\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "'embedding.backend' is tensorrt" in message and "'arcface_tensorrt.enabled' is false" in message
    assert str(path) in message and str(tmp_path / "trt.yaml") in message
    # Unset (the shipped null) or true: naming tensorrt is enough.
    for enabled in ("null", "true"):
        path = _write(tmp_path, "  backend: tensorrt\n", f"arcface_tensorrt:\n  enabled: {enabled}\n")
        assert load_config(path).embedding.backend == "tensorrt"
    # Disabled beside another backend is the automatic choice's setting, not a contradiction.
    path = _write(tmp_path, "  backend: auto\n", "arcface_tensorrt:\n  enabled: false\n")
    assert load_config(path).tensorrt.arcface_tensorrt.enabled is False


def test_each_precision_has_its_own_drift_tolerance() -> None:
    validation = ValidationSection(max_drift_cosine=0.1, max_drift_cosine_fp16=0.2, max_drift_cosine_int8=0.3)
    assert [validation.drift_tolerance(p) for p in PRECISIONS] == [
        Tolerance(0.1, "validation.max_drift_cosine"),
        Tolerance(0.2, "validation.max_drift_cosine_fp16"),
        Tolerance(0.3, "validation.max_drift_cosine_int8"),
    ]
    assert set(DRIFT_KEYS) == set(PRECISIONS)
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        validation.drift_tolerance("fp8")


def test_values_are_read_and_overrides_are_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, "  backend: onnxruntime\nvalidation:\n  max_drift_cosine: 0.01\n")
    cfg = load_config(path)
    assert cfg.embedding.backend == "onnxruntime"
    assert cfg.validation.max_drift_cosine == 0.01
    assert cfg.tensorrt.tensorrt.precision == "fp32"
    assert load_tensorrt_config(tmp_path / "trt.yaml").tensorrt.precision == "fp32"
    assert with_overrides(cfg.validation, "validation", max_drift_cosine=0.5).max_drift_cosine == 0.5
    assert with_overrides(cfg.validation, "validation", max_drift_cosine=None) is cfg.validation
    with pytest.raises(ConfigError, match=r"command line: 'validation\.n_samples' must be >= 1"):
        with_overrides(cfg.validation, "validation", n_samples=0)


def test_default_config_comes_from_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert load_config().source == "config/pipeline/embedding.yaml"
    monkeypatch.chdir(tmp_path)
    assert load_config().source is None  # built-in defaults
    monkeypatch.setenv("ARCFACE_TRT_CONFIG", str(_write(tmp_path, "  backend: onnxruntime\n")))
    assert load_config().embedding.backend == "onnxruntime"


def test_one_precision_section_for_every_target(tmp_path: Path) -> None:
    path = _write(tmp_path, "precision:\n  keep_fp32_nodes: [fc, features]\n")
    assert load_config(path).precision.keep_fp32_nodes == ("fc", "features")
    # The deprecated TensorRT key fills the same value, once, for every reader.
    legacy = _write(tmp_path, "", "tensorrt:\n  fp16_keep_fp32_nodes: [fc]\n")
    assert load_config(legacy).precision.keep_fp32_nodes == ("fc",)


def test_the_batch_profile_rule_holds_for_every_tensorrt_section() -> None:
    with pytest.raises(ConfigError, match=r"max_batch_size does not hold \(1, 8, 4\)"):
        TensorrtSection(opt_batch_size=8, max_batch_size=4)
    with pytest.raises(ConfigError, match=r"command line: tensorrt\.min_batch_size <= opt_batch_size"):
        with_overrides(TensorrtSection(), "tensorrt", min_batch_size=64)
